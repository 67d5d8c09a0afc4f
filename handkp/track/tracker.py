"""Multi-hand tracking, MediaPipe's two-stage design: a detector finds hands, then the keypoint
model follows each one in a crop placed from its own keypoints of the frame before.

The caller owns the models; per frame it runs:

    tracker = HandTracker(max_hands=2)
    for i, frame in enumerate(frames):                     # RGB uint8 (H, W, 3)
        boxes = detector(frame) if tracker.wants_detection(i) else None   # (M, 4) x0 y0 x1 y1 px
        rois = tracker.rois_to_run(i, boxes)               # [Roi]: the tracked hands, then new ones
        crops = crop(frame, rois)                          # (N, 224, 224, 3), handkp.core.roi
        hands = tracker.update([predictor.predict(c) for c in crops])   # [TrackedHand] by id

- **Detection** is wanted while fewer than ``max_hands`` hands are tracked, on every
  ``detect_every``-th frame (counted from its last run; 1 = every such frame, as MediaPipe; the
  default 2 about halves the detector's share of a CPU's frame time for a hand found a frame later:
  the multihand stage weighs both, params.yaml multihand.detect_every), and
  on the frame after a duplicate freed a place (below); never while ``max_hands`` are tracked.
  A box overlapping a tracked hand's box as a detector frames it (its keypoints' extent
  ``DETECTOR_BOX_SCALE`` x as large, ``detector_box``; IoU >= ``iou_threshold``: MediaPipe compares
  the two in one framing too) is that hand, not a new one; the others (in the detector's order,
  best first) fill the free places. (Against the keypoints' own, tighter extent, a detection of a
  tracked hand can fall below the threshold, take the free place and hide the new hand behind it.)
- **Following**: a tracked hand's crop comes from its last keypoints (``roi_from_keypoints``),
  turned so the hand points up (``upright``, MediaPipe's choice for a model trained on such crops)
  or not turned.
- **Observations**: each crop's prediction with ``found`` and presence >= ``presence_threshold``,
  mapped back to frame px.
- **Duplicates** (MediaPipe's rule): two observations are one hand when most of their keypoints
  coincide and their keypoint boxes overlap: at least ``duplicate_fraction`` of the 21 keypoints
  lie within ``duplicate_distance`` palm sizes (the larger palm of the two) of the other's same
  keypoint, and the boxes' IoU is at least ``duplicate_iou``. Two hands side by side, touching,
  are two (their keypoints do not coincide). A new hand's observation (from a detector box's crop)
  is also one with a tracked hand's when their keypoint boxes overlap by IoU >= ``new_hand_iou``,
  whatever the keypoints: MediaPipe drops a detection that overlaps a tracked hand's box, and this
  applies the rule to what the crop showed (a loose box of the tracked hand, read turned or
  mirrored, or a neighbour's crop reading the tracked hand); two tracked hands that cross are
  never merged this way. The more present one stays (on a tie: the tracked hand's, whose crops
  come first). When a duplicate is dropped and a tracked hand is left
  without an observation (the classic failure: its crop returned the neighbour's keypoints), its
  place is free and the detector runs again on the next frame, whatever ``detect_every`` says.
- **Assignment** (motion-consistent, so crossing hands keep their ids even where a crop shows the
  other hand): observations go to tracks by palm centre, against where each track's palm centre
  is expected now (its last one moved at its last speed); the most pairs within ``max_jump``
  palm sizes, then the smallest total distance, searched exhaustively (at most MAX_HANDS hands).
- **Lifecycle**: a track without an observation ends (its presence dropped, or it left) and is
  kept as lost for ``lost_s`` seconds (ByteTrack's lost tracks; it takes no place and gets no
  crop). An observation without a track takes back the id of a lost hand expected near it (the
  assignment's rule against the lost hands: where each was expected now, within ``max_jump`` palm
  sizes), so a hand missed for a few frames keeps its id; otherwise it starts a new track with a
  fresh id (ids count up from 0 and are never given to another hand; ``lost_s`` 0: every hand
  found again is new, as MediaPipe). A detection whose crop shows no hand starts nothing.
- **Output**: keypoints smoothed by each track's own One Euro filter (``smoothing``; None: raw);
  its next crop always comes from the raw keypoints, so smoothing never makes the crop lag.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import permutations

import numpy as np

from ..core.errors import HandkpError
from ..core.geometry import box_iou, keypoint_box
from ..core.keypoints import IMAGE_SIZE
from ..core.roi import (
    PALM_KEYPOINTS,
    Roi,
    detector_box,
    palm_size,
    roi_from_box,
    roi_from_keypoints,
    to_frame,
)
from ..runtime import Prediction
from .filters import OneEuroFilter, OneEuroSettings

MAX_HANDS = 6  # the assignment tries every ordering: 6! = 720 at most
DEFAULT_SMOOTHING = OneEuroSettings()


class TrackerError(HandkpError):
    """The tracker used out of order: ``update`` without ``rois_to_run``, or a prediction count
    that is not the ROI count."""


@dataclass(frozen=True)
class TrackedHand:
    """id: the track's, stable while the hand is followed; box: (4,) float32 x0, y0, x1, y1 frame
    px, the extent of ``keypoints``; keypoints: (21, 2) float32 frame px, smoothed; scores: (21,)
    float32, the model's; presence: the model's, in [0, 1]."""

    id: int
    box: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    presence: float


@dataclass(frozen=True)
class _Observation:
    """One hand the model saw in a crop: keypoints (21, 2) frame px, raw."""

    keypoints: np.ndarray
    scores: np.ndarray
    presence: float
    centre: np.ndarray  # (2,) the palm keypoints' mean, px
    palm: float  # palm_size, px
    new: bool  # from a detector box's crop (not a tracked hand's)


@dataclass
class _Track:
    hand: TrackedHand
    seen: _Observation  # the last observation (raw): the next crop comes from it
    time: float  # s, when seen
    velocity: np.ndarray  # (2,) px/s of the palm centre
    smoother: OneEuroFilter | None


def best_assignment(cost: np.ndarray, max_cost: float) -> list[tuple[int, int]]:
    """(row, column) pairs of a (R, C) cost matrix, each row and column in one pair at most, no
    pair above ``max_cost``: as many pairs as possible, then the smallest total cost. Exhaustive
    over the orderings (for the few hands of a tracker)."""
    rows, cols = cost.shape
    if rows > cols:
        return [(r, c) for c, r in best_assignment(cost.T, max_cost)]
    best, best_key = [], (0, 0.0)
    for order in permutations(range(cols), rows):
        pairs = [(r, c) for r, c in enumerate(order) if cost[r, c] <= max_cost]
        key = (len(pairs), -sum(cost[r, c] for r, c in pairs))
        if key > best_key:
            best, best_key = pairs, key
    return best


class HandTracker:
    """Tracks up to ``max_hands`` hands with stable ids (the module's docstring: the per-frame
    calls and the rules). ``crop_size``: the side of the crops the predictions' keypoints are in;
    ``fps``: turns frame indices into seconds when ``rois_to_run`` gets no timestamp; ``upright``:
    a followed hand's crop is turned so that the hand points up (False: not turned);
    ``presence_threshold``: a crop's hand counts when the model's presence reaches it (the default
    is ``multihand.presence_threshold``, chosen from the multihand stage's sweep on dev hands);
    ``duplicate_distance`` (palm sizes), ``duplicate_fraction`` and ``duplicate_iou``: when two
    observations are one hand (MediaPipe's hand deduplication: within 0.2 × the larger hand's
    palm, 10 of the 21 keypoints, IoU above 0.2; the default fraction here, half, asks for 11);
    ``new_hand_iou``: a new hand's keypoint box overlapping a tracked hand's this much is that hand
    (the default 0.3: on the multihand stage's clips of dev hands it halved the detector run's false
    hands at presence threshold 0.3, and more at 0.2, with no hand more missed; 1.0: it merges
    only identical boxes); ``lost_s``: how long an ended track's id can be taken back (s)."""

    def __init__(
        self,
        max_hands: int = 2,
        detect_every: int = 2,
        presence_threshold: float = 0.2,
        iou_threshold: float = 0.5,
        max_jump: float = 1.5,
        duplicate_distance: float = 0.2,
        duplicate_fraction: float = 0.5,
        duplicate_iou: float = 0.2,
        new_hand_iou: float = 0.3,
        smoothing: OneEuroSettings | None = DEFAULT_SMOOTHING,
        crop_size: int = IMAGE_SIZE,
        fps: float = 30.0,
        upright: bool = True,
        lost_s: float = 0.5,
    ):
        if not 1 <= max_hands <= MAX_HANDS:
            raise ValueError(f"max_hands must be 1 … {MAX_HANDS}, got {max_hands}")
        if detect_every < 1 or fps <= 0 or not lost_s >= 0:
            raise ValueError(f"detect_every must be >= 1, fps > 0 and lost_s >= 0, got {detect_every}, {fps}, {lost_s}")
        duplicates = (duplicate_distance, duplicate_fraction, duplicate_iou, new_hand_iou)
        if not (
            duplicate_distance >= 0
            and 0 < duplicate_fraction <= 1
            and 0 <= duplicate_iou <= 1
            and 0 < new_hand_iou <= 1
        ):
            raise ValueError(
                "expected duplicate_distance >= 0, duplicate_fraction in (0, 1], duplicate_iou in [0, 1] and "
                f"new_hand_iou in (0, 1], got {', '.join(map(str, duplicates))}"
            )
        self.max_hands, self.detect_every = max_hands, detect_every
        self.presence_threshold, self.iou_threshold = presence_threshold, iou_threshold
        self.max_jump, self.duplicate_distance = max_jump, duplicate_distance
        self.duplicate_fraction, self.duplicate_iou = duplicate_fraction, duplicate_iou
        self.new_hand_iou = new_hand_iou
        self.smoothing, self.crop_size, self.fps, self.upright = smoothing, crop_size, fps, upright
        self.lost_s = lost_s
        self.reset()

    def reset(self) -> None:
        """Forget every hand: the next frame starts with a detection and ids from 0 again (a new
        tracker's state; for images that are not frames of one video, as MediaPipe's static image mode)."""
        self._tracks: list[_Track] = []
        self._lost: list[_Track] = []  # ended tracks whose ids can still be taken back (lost_s)
        self._next_id = 0
        self._last_detection: int | None = None
        self._place_freed = False  # a duplicate left a tracked hand without an observation
        self._pending: list[Roi] | None = None
        self._time = 0.0

    def wants_detection(self, frame_index: int) -> bool:
        """Whether to run the detector on this frame: fewer than max_hands tracked, and
        ``detect_every`` frames since its last run (or it never ran), or a duplicate freed a place
        on the frame before."""
        if len(self._tracks) >= self.max_hands:
            return False
        return (
            self._place_freed or self._last_detection is None or frame_index - self._last_detection >= self.detect_every
        )

    def rois_to_run(
        self, frame_index: int, detections: np.ndarray | None = None, timestamp: float | None = None
    ) -> list[Roi]:
        """The crops for the keypoint model on this frame: one per tracked hand (by id), then one
        per new detection box (M, 4: x0, y0, x1, y1 frame px) that no tracked hand overlaps, while
        places are free. ``detections``: None when the detector did not run. ``timestamp``: s
        (default frame_index / fps). Call ``update`` with the predictions next."""
        self._time = frame_index / self.fps if timestamp is None else timestamp
        rois = [roi_from_keypoints(t.seen.keypoints, upright=self.upright) for t in self._tracks]
        if detections is not None:
            self._last_detection = frame_index
            taken = [detector_box(t.seen.keypoints) for t in self._tracks]
            for box in np.asarray(detections, dtype=np.float64).reshape(-1, 4):
                if len(rois) >= self.max_hands:
                    break
                real = box[2] > box[0] and box[3] > box[1]  # an empty box is no hand
                if real and all(box_iou(box, other) < self.iou_threshold for other in taken):
                    rois.append(roi_from_box(*box))
                    taken.append(box)
        self._pending = rois
        return rois

    def update(self, predictions: list[Prediction]) -> list[TrackedHand]:
        """The model's predictions, one per ROI of the last ``rois_to_run`` and in its order
        (keypoints in crop px) -> the hands tracked on this frame, by id."""
        if self._pending is None:
            raise TrackerError("HandTracker.update needs rois_to_run first, once per frame")
        rois, self._pending = self._pending, None
        if len(predictions) != len(rois):
            raise TrackerError(f"{len(predictions)} predictions for {len(rois)} ROIs")
        tracked = len(self._tracks)  # the first ROIs are the tracked hands', the rest detector boxes'
        observed = [
            o for k, (roi, p) in enumerate(zip(rois, predictions)) if (o := self._observe(roi, p, k >= tracked))
        ]
        seen = self._distinct(observed)
        pairs = best_assignment(self._motion_costs(self._tracks, seen), self.max_jump)
        kept = [self._follow(self._tracks[r], seen[c]) for r, c in sorted(pairs)]
        matched = {c for _, c in pairs}
        new = [o for c, o in enumerate(seen) if c not in matched]
        self._lost = [t for t in self._lost if self._time - t.time <= self.lost_s]
        back = best_assignment(self._motion_costs(self._lost, new), self.max_jump)
        revived = [self._follow(self._lost[r], new[c]) for r, c in back]
        back_rows, back_cols, kept_rows = {r for r, _ in back}, {c for _, c in back}, {r for r, _ in pairs}
        started = [self._start(o) for c, o in enumerate(new) if c not in back_cols]
        ended = [t for r, t in enumerate(self._tracks) if r not in kept_rows]
        self._lost = ([t for r, t in enumerate(self._lost) if r not in back_rows] + ended)[-MAX_HANDS:]
        self._place_freed = len(seen) < len(observed) and len(kept) < len(self._tracks)
        self._tracks = sorted(kept + revived + started, key=lambda t: t.hand.id)
        return [t.hand for t in self._tracks]

    def _observe(self, roi: Roi, prediction: Prediction, new: bool) -> _Observation | None:
        if not (prediction.found and prediction.presence >= self.presence_threshold):
            return None
        keypoints = to_frame(roi, prediction.keypoints, self.crop_size)
        if not np.isfinite(keypoints).all() or (palm := palm_size(keypoints)) <= 1.0:
            return None
        centre = keypoints[list(PALM_KEYPOINTS)].mean(0)
        scores = np.asarray(prediction.scores, dtype=np.float32)
        return _Observation(keypoints, scores, float(prediction.presence), centre, palm, new)

    def _distinct(self, seen: list[_Observation]) -> list[_Observation]:
        """The observations less their duplicates (the same hand seen in two crops: ``_same_hand``)."""
        kept: list[_Observation] = []
        for o in sorted(seen, key=lambda o: -o.presence):  # stable: tracked hands' crops first on ties
            if not any(self._same_hand(o, k) for k in kept):
                kept.append(o)
        return kept

    def _same_hand(self, a: _Observation, b: _Observation) -> bool:
        """MediaPipe's duplicate rule (the module's docstring): enough keypoints within
        ``duplicate_distance`` × the larger palm of their counterparts, and keypoint boxes that
        overlap by IoU >= ``duplicate_iou``; or a new hand and a tracked one whose keypoint boxes
        overlap by IoU >= ``new_hand_iou``."""
        overlap = box_iou(keypoint_box(a.keypoints), keypoint_box(b.keypoints))
        if a.new != b.new and overlap >= self.new_hand_iou:
            return True
        near = np.linalg.norm(a.keypoints - b.keypoints, axis=1) <= self.duplicate_distance * max(a.palm, b.palm)
        return bool(near.mean() >= self.duplicate_fraction and overlap >= self.duplicate_iou)

    def _motion_costs(self, tracks: list[_Track], seen: list[_Observation]) -> np.ndarray:
        """(tracks, observations): palm-centre distance from where each track is expected now, in
        the track's palm sizes."""
        cost = np.empty((len(tracks), len(seen)))
        for r, t in enumerate(tracks):
            expected = t.seen.centre + t.velocity * (self._time - t.time)
            for c, o in enumerate(seen):
                cost[r, c] = np.linalg.norm(o.centre - expected) / t.seen.palm
        return cost

    def _follow(self, track: _Track, o: _Observation) -> _Track:
        dt = self._time - track.time
        velocity = (o.centre - track.seen.centre) / dt if dt > 0 else track.velocity
        return _Track(self._hand(track.hand.id, o, track.smoother), o, self._time, velocity, track.smoother)

    def _start(self, o: _Observation) -> _Track:
        smoother = OneEuroFilter(**asdict(self.smoothing)) if self.smoothing is not None else None
        track = _Track(self._hand(self._next_id, o, smoother), o, self._time, np.zeros(2), smoother)
        self._next_id += 1
        return track

    def _hand(self, hand_id: int, o: _Observation, smoother: OneEuroFilter | None) -> TrackedHand:
        keypoints = o.keypoints if smoother is None else smoother(o.keypoints, self._time).astype(np.float32)
        return TrackedHand(hand_id, keypoint_box(keypoints, dtype=np.float32), keypoints, o.scores, o.presence)
