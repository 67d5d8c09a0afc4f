"""Hands per frame, end to end, one call per frame: ``MultiHandPipeline`` runs a detector, the
``HandTracker`` and the keypoint model together (several hands); ``SingleHandPipeline`` runs the
keypoint model on the whole frame (one hand, no detector). Both have ``process`` and ``reset``.

    pipeline = MultiHandPipeline(load_predictor("models/heatmap.onnx"),
                                 YoloHandDetector("models/detector.onnx"), HandTracker(max_hands=2))
    # pipeline = SingleHandPipeline(load_predictor("models/heatmap.onnx"))
    for frame, t in frames:                      # RGB uint8 (H, W, 3), seconds
        hands = pipeline.process(frame, t)       # [TrackedHand], by id, keypoints in frame px

Per frame (``MultiHandPipeline``): the detector only when the tracker wants it
(``HandTracker.wants_detection``), the tracker's ROIs (``rois_to_run``), every ROI cropped with one
warp each (``roi.crop``), the keypoint model ONCE on the stacked crops, decoded per crop in crop px
(``Predictor.predict_crops``: the crop is the network's input, no letterbox; a fixed-batch backend
splits the batch itself), and the tracker maps them back to frame px (``roi.to_frame``), keeps the
ids and smooths. With ``refine`` (still images: each a fresh start, so every crop is placed from a
detector's box) each hand's crop is placed again from its first-pass keypoints and the model runs
once more on those crops (``Predictor.refine_pass``): two batched model calls per frame."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..core.geometry import keypoint_box
from ..core.images import check_rgb
from ..core.roi import Roi, crop, to_crop, to_frame
from ..runtime import Prediction, Predictor
from .tracker import HandTracker, TrackedHand

Detector = Callable[[np.ndarray], np.ndarray]  # RGB frame -> (M, 4) boxes x0, y0, x1, y1 px, best first


class MultiHandPipeline:
    """``keypoint_predictor``: a ``Predictor`` (the heatmap model; its input size is the crops'
    side, the tracker's ``crop_size``); ``detector``: any callable RGB frame -> (M, 4) boxes
    (``YoloHandDetector``, or a stand-in); ``tracker``: a ``HandTracker``, used by this pipeline
    only. Frames are counted by ``process`` calls (``detect_every`` counts processed frames).
    ``refine``: a second pass on each hand the first found (presence >= the tracker's
    ``presence_threshold``), in a crop placed from its first-pass keypoints (turned upright as the
    tracker's are); its keypoints, scores and presence are the hand's. Off by default: on a video
    the tracker already places each followed hand's crop from its keypoints (of the frame before);
    a still image has no frame before, so the detector's box crop is only a first pass.

    After each ``process``: ``detected`` (whether the detector ran on that frame) and ``rois``
    (the crops of the first pass)."""

    def __init__(self, keypoint_predictor: Predictor, detector: Detector, tracker: HandTracker, refine: bool = False):
        if tracker.crop_size != keypoint_predictor.input_size:
            raise ValueError(
                f"the tracker's crop_size {tracker.crop_size} is not the keypoint model's input size "
                f"{keypoint_predictor.input_size}"
            )
        self.predictor, self.detector, self.tracker, self.refine = keypoint_predictor, detector, tracker, refine
        self.frame_index = 0
        self.detected = False
        self.rois: list[Roi] = []

    def reset(self) -> None:
        """The next ``process`` call starts afresh: no hand tracked, frames counted from 0."""
        self.tracker.reset()
        self.frame_index = 0

    @property
    def max_hands(self) -> int:
        return self.tracker.max_hands

    def process(self, frame_rgb: np.ndarray, t: float | None = None) -> list[TrackedHand]:
        """The hands tracked in an RGB uint8 (H, W, 3) frame at time ``t`` s (None: the frame
        count / the tracker's fps), by id."""
        check_rgb(frame_rgb, "frame")
        i = self.frame_index
        self.frame_index += 1
        self.detected = self.tracker.wants_detection(i)
        boxes = np.asarray(self.detector(frame_rgb), dtype=np.float64).reshape(-1, 4) if self.detected else None
        self.rois = self.tracker.rois_to_run(i, boxes, t)
        crops = crop(frame_rgb, self.rois, self.tracker.crop_size)
        predictions = self.predictor.predict_crops(crops)
        return self.tracker.update(self._refined(frame_rgb, predictions) if self.refine else predictions)

    def _refined(self, frame_rgb: np.ndarray, predictions: list[Prediction]) -> list[Prediction]:
        """The refine pass on the hands of the first pass (crop px of ``rois``), back in those crop
        px for the tracker; a crop without a hand keeps its prediction (the tracker drops it)."""
        size, threshold = self.tracker.crop_size, self.tracker.presence_threshold
        todo = [i for i, p in enumerate(predictions) if p.found and p.presence >= threshold]
        in_frame = [
            replace(predictions[i], keypoints=to_frame(self.rois[i], predictions[i].keypoints, size)) for i in todo
        ]
        refined = self.predictor.refine_pass([frame_rgb] * len(todo), in_frame, upright=self.tracker.upright)
        out = list(predictions)
        for i, p in zip(todo, refined):
            out[i] = replace(p, keypoints=to_crop(self.rois[i], p.keypoints, size))
        return out


class SingleHandPipeline:
    """One hand, the whole frame: the keypoint model on each frame letterboxed to its input
    (``Predictor.predict``), no detector and no tracking (each frame on its own). A found hand is
    hand 0, as it came (no smoothing); none found: no hand. ``predictor``: any ``Predictor``
    (the heatmap model or YOLO). As ``MultiHandPipeline``: ``process``, ``reset``, ``predictor``,
    ``detector`` (None) and ``detected`` (always False)."""

    detector = None
    detected = False

    def __init__(self, predictor: Predictor):
        self.predictor = predictor

    def reset(self) -> None:
        """Nothing to forget: no frame depends on the one before."""

    def process(self, frame_rgb: np.ndarray, t: float | None = None) -> list[TrackedHand]:
        """The hand in an RGB uint8 (H, W, 3) frame (``t`` is not needed): [hand 0] or []."""
        pred = self.predictor.predict(frame_rgb)
        if not pred.found:
            return []
        kp = np.asarray(pred.keypoints, dtype=np.float32)
        return [
            TrackedHand(
                0,
                keypoint_box(kp, dtype=np.float32),
                kp,
                np.asarray(pred.scores, dtype=np.float32),
                float(pred.presence),
            )
        ]
