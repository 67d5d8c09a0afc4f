"""The multihand benchmark (handkp.bench.clips, handkp.evaluate.multihand): the synthetic clips
(seeded, labels moved exactly with the pasted pixels, hand-free frames), the scoring on hand-made
predictions, and a run through MultiHandPipeline with the labels' boxes for the detector
(``LabelBoxes``, the stage's own) and a STAND-IN that knows the truth:

- ``standin_keypoint_model``: a perfect keypoint model that, instead of looking at the crop's
  pixels, reads where the pipeline cut each crop (``pipeline.rois``) and returns the true
  keypoints of the hand whose palm lies in it, in crop px (presence 1, or as the test sets it), or
  no hand (presence 0.05).
"""

from __future__ import annotations

import numpy as np
import pytest
from standin_models import PresenceDecoder

from handkp.bench.clips import Clip, FrameHand, make_clips
from handkp.core.errors import HandkpError
from handkp.core.keypoints import IMAGE_SIZE, NUM_KEYPOINTS
from handkp.core.roi import DETECTOR_BOX_SCALE, PALM_KEYPOINTS, to_crop
from handkp.evaluate import multihand
from handkp.evaluate.multihand import ClipRun, LabelBoxes, presence_sweep, presence_thresholds, run_clips, score
from handkp.runtime import Predictor
from handkp.track import HandTracker, MultiHandPipeline, TrackedHand

SIGMA = 2.0  # px, the bright dot's Gaussian in the source images


def synthetic_sources(n: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Black 224×224 images with a red Gaussian dot at keypoint 0 of random keypoints in the middle."""
    rng = np.random.default_rng(seed)
    keypoints = np.concatenate([rng.uniform(75, 150, (n, NUM_KEYPOINTS, 2)), np.full((n, NUM_KEYPOINTS, 1), 2.0)], 2)
    pixels = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    centres = np.arange(IMAGE_SIZE) + 0.5
    for i in range(n):
        x, y = keypoints[i, 0, :2]
        dot = np.exp(-((centres[None, :] - x) ** 2 + (centres[:, None] - y) ** 2) / (2 * SIGMA**2))
        pixels[i, ..., 0] = np.rint(255 * dot)
        pixels[i, ..., 2] = 40  # a dim blue square, so the hand's area shows
    return pixels, keypoints.astype(np.float32), [f"img{i}" for i in range(n)]


def test_clips_are_seeded_and_reproducible():
    pixels, keypoints, names = synthetic_sources()
    a, b = (make_clips(pixels, keypoints, names, 7, 4, 12, (320, 240)) for _ in range(2))
    other = make_clips(pixels, keypoints, names, 8, 4, 12, (320, 240))
    for ca, cb in zip(a, b):
        assert ca.sources == cb.sources and len(ca) == len(cb) == 12
        for i in (0, 5, 11):
            np.testing.assert_array_equal(ca.frame(i), cb.frame(i))
            assert [h.identity for h in ca.truth[i]] == [h.identity for h in cb.truth[i]]
            for ha, hb in zip(ca.truth[i], cb.truth[i]):
                np.testing.assert_array_equal(ha.keypoints, hb.keypoints)
    assert any(not np.array_equal(ca.frame(6), co.frame(6)) for ca, co in zip(a, other))


def test_labels_move_exactly_with_the_pasted_hand():
    """The dot at keypoint 0 of each source is found in the frame where the label says."""
    pixels, keypoints, names = synthetic_sources()
    clips = make_clips(pixels, keypoints, names, 3, 4, 20, (320, 240), max_hands=1, gradient_share=0.0)
    checked, scales = 0, []
    for clip in clips:
        for i in range(len(clip)):
            if not clip.truth[i]:
                continue
            frame = clip.frame(i).astype(np.float64)
            for hand in clip.truth[i]:
                x, y = hand.keypoints[0]
                r = int(np.ceil(4 * SIGMA * hand.scale)) + 2
                if not (r <= x < frame.shape[1] - r and r <= y < frame.shape[0] - r):
                    continue
                x0, y0 = int(x) - r, int(y) - r
                win = frame[y0 : y0 + 2 * r + 1, x0 : x0 + 2 * r + 1, 0]
                win = np.clip(win - np.median(win), 0, None)
                ys, xs = np.mgrid[y0 : y0 + 2 * r + 1, x0 : x0 + 2 * r + 1] + 0.5
                found = np.array([(win * xs).sum(), (win * ys).sum()]) / win.sum()
                assert np.linalg.norm(found - [x, y]) < 0.5, (clip.index, i, found, (x, y), hand.scale)
                checked += 1
                scales.append(hand.scale)
    assert checked > 10 and min(scales) >= 0.4 and max(scales) <= 1.2


def test_hand_counts_and_hand_free_frames():
    pixels, keypoints, names = synthetic_sources()
    clips = make_clips(pixels, keypoints, names, 1, 8, 16, (320, 240), max_hands=3)
    counts = {len(t) for clip in clips for t in clip.truth}
    assert counts == {0, 1, 2, 3}
    assert all(not t for t in clips[0].truth)  # clip 0: no hand at all
    for clip in clips:
        ids = {h.identity for t in clip.truth for h in t}
        assert ids == set(range(clip.index % 4)) and len(clip.sources) == clip.index % 4


def hand(identity: int, keypoints: np.ndarray, scale: float) -> FrameHand:
    return FrameHand(identity, keypoints.astype(np.float64), np.ones(len(keypoints), bool), scale, np.eye(2, 3))


def tracked(hand_id: int, keypoints: np.ndarray) -> TrackedHand:
    kp = np.asarray(keypoints, np.float32)
    return TrackedHand(hand_id, np.concatenate([kp.min(0), kp.max(0)]), kp, np.ones(len(kp), np.float32), 1.0)


def handmade_clip(truth: list[list[FrameHand]]) -> Clip:
    return Clip(0, (640, 480), None, ["a", "b"], truth)


def square_hand(x: float, y: float, side: float = 80.0) -> np.ndarray:
    rng = np.random.default_rng(int(x * 7 + y))
    return np.array([x, y]) + rng.uniform(0, side, (NUM_KEYPOINTS, 2))


def test_pck_is_in_the_source_images_px():
    """2 frame px off: 4 source px for a hand at scale 0.5; 1.6 frame px: 0.8 source px at scale 2."""
    small, big = square_hand(50, 50), square_hand(300, 200, 160)
    clip = handmade_clip([[hand(0, small, 0.5)], [hand(1, big, 2.0)]])
    run = ClipRun([[tracked(0, small + [2.0, 0])], [tracked(0, big + [0, 1.6])]], [0.01, 0.01])
    f = score([clip], [run])
    small_f, big_f = (score([handmade_clip([t])], [ClipRun([p], [0.01])]) for t, p in zip(clip.truth, run.hands))
    assert [small_f["overall"][f"pck_{t}px"] for t in (1, 3, 5, 10)] == [0.0, 0.0, 1.0, 1.0]
    assert [big_f["overall"][f"pck_{t}px"] for t in (1, 3, 5, 10)] == [1.0, 1.0, 1.0, 1.0]
    assert f["overall"]["pck_3px"] == 0.5 and f["overall"]["epe_median_px"] == pytest.approx(2.4)
    assert f["overall"]["fps"] == pytest.approx(100.0)


def test_missed_false_hands_and_id_switches_on_a_handmade_sequence():
    a, b, far = square_hand(50, 50), square_hand(400, 300), square_hand(500, 50)
    truth = [[hand(0, a, 1.0), hand(1, b, 1.0)] for _ in range(5)] + [[]]
    predicted = [
        [tracked(0, a), tracked(1, b)],
        [tracked(1, b + 1), tracked(0, a + 1)],  # order does not matter
        [tracked(0, a), tracked(5, far)],  # B missed, a false hand
        [tracked(0, a), tracked(2, b)],  # B now id 2: a switch
        [tracked(3, a), tracked(2, b)],  # A now id 3: a switch
        [tracked(4, far)],  # a hand on a hand-free frame
    ]
    f = score([handmade_clip(truth)], [ClipRun(predicted, [0.02] * 6)])
    o = f["overall"]
    assert (o["frames"], o["hands"], o["missed_hands"], o["false_hands"], o["id_switches"]) == (6, 10, 1, 2, 2)
    assert (o["hand_free_frames"], o["hand_free_false_positive_frames"], o["hand_free_false_positive_rate"]) == (
        1,
        1,
        1.0,
    )
    assert o["pck_1px"] == pytest.approx(
        7 / 10
    )  # both hands of frame 1 are 1.41 px off; the missed hand's keypoints miss
    assert o["pck_3px"] == pytest.approx(9 / 10)  # only the missed hand's
    assert set(f["by_hands"]) == {"0", "2"} and f["by_hands"]["0"]["false_hands"] == 1
    assert f["by_hands"]["2"]["hands"] == 10 and f["by_hands"]["0"]["pck_5px"] is None


def test_hands_are_grouped_by_their_size_in_the_frame():
    """A hand under 30 px missed in one of two frames, a 120 and a 250 px one (at most) found 4 px off:
    by_size holds only the groups with a hand, smallest first, each with its own figures."""
    small, mid, big = square_hand(50, 50, 30), square_hand(200, 200, 120), square_hand(350, 100, 250)
    truth = [[hand(0, small, 1.0), hand(1, mid, 1.0), hand(2, big, 1.0)] for _ in range(2)]
    predicted = [
        [tracked(0, small), tracked(1, mid + [4.0, 0]), tracked(2, big + [0, 4.0])],
        [tracked(1, mid + [4.0, 0]), tracked(2, big + [0, 4.0])],  # the small hand missed
    ]
    f = score([handmade_clip(truth)], [ClipRun(predicted, [0.01, 0.01])])
    by = f["by_size"]
    assert list(by) == ["<40", "80-160", ">=160"]
    assert (by["<40"]["hands"], by["<40"]["missed_hands"], by["<40"]["missed_rate"]) == (2, 1, 0.5)
    assert by["<40"]["pck_1px"] == 0.5  # the missed frame's keypoints miss
    assert by["<40"]["epe_median_px"] == pytest.approx(0, abs=1e-4)  # over the matched frame only
    for group in ("80-160", ">=160"):
        assert by[group]["missed_hands"] == 0 and (by[group]["pck_3px"], by[group]["pck_5px"]) == (0.0, 1.0)
    assert sum(g["hands"] for g in by.values()) == f["overall"]["hands"] == 6
    assert sum(g["missed_hands"] for g in by.values()) == f["overall"]["missed_hands"] == 1


def standin_keypoint_model(state: dict, presence: float = 1.0) -> Predictor:
    """STAND-IN keypoint model (the module's docstring); ``state``: pipeline and clip; ``presence``:
    a true hand's."""

    def backend(x: np.ndarray) -> np.ndarray:
        pipeline, clip = state["pipeline"], state["clip"]
        truth = clip.truth[pipeline.frame_index - 1]
        out = np.zeros((len(x), 1 + 2 * NUM_KEYPOINTS), np.float32)
        out[:, 0], out[:, 1:] = 0.05, IMAGE_SIZE / 2
        for n, roi in enumerate(pipeline.rois):
            best = None
            for t in truth:
                in_crop = to_crop(roi, t.keypoints, IMAGE_SIZE)
                palm = in_crop[list(PALM_KEYPOINTS)].mean(0)
                d = float(np.linalg.norm(palm - IMAGE_SIZE / 2))
                if ((palm >= 0) & (palm < IMAGE_SIZE)).all() and (best is None or d < best[0]):
                    best = (d, in_crop)
            if best is not None:
                out[n, 0], out[n, 1:] = presence, best[1].reshape(-1)
        return out

    return Predictor(PresenceDecoder(), "stand-in", backend, IMAGE_SIZE)


def test_run_clips_with_standins_is_perfect_on_an_easy_clip():
    pixels, keypoints, names = synthetic_sources()
    clips = make_clips(pixels, keypoints, names, 5, 3, 24, (640, 480), max_hands=2)
    for clip in clips[1:]:  # one hand, then two
        state = {"clip": clip}

        def factory(clip, state=state):  # state bound now (B023), though the factory runs in this iteration
            tracker = HandTracker(max_hands=2, detect_every=1, smoothing=None)  # a hand found on its first frame
            state["pipeline"] = MultiHandPipeline(standin_keypoint_model(state), LabelBoxes(clip), tracker)
            return state["pipeline"]

        runs = run_clips(factory, [clip])
        o = score([clip], runs)["overall"]
        assert o["hands"] > 0 and o["pck_1px"] == 1.0, o
        assert (o["missed_hands"], o["false_hands"], o["id_switches"]) == (0, 0, 0), o
        assert o["hand_free_false_positive_frames"] == 0 and o["fps"] > 0
        assert len(runs[0].hands) == len(clip) == len(runs[0].seconds)


def test_label_boxes_follow_the_frame_run_clips_is_on():
    pixels, keypoints, names = synthetic_sources()
    clip = make_clips(pixels, keypoints, names, 5, 3, 24, (640, 480), max_hands=2)[2]
    boxes = LabelBoxes(clip)
    seen = []

    class Recording:
        detector = boxes

        def process(self, frame, t):
            seen.append((boxes.frame, boxes(frame)))
            return []

    run_clips(lambda c: Recording(), [clip])
    assert [f for f, _ in seen] == list(range(len(clip)))
    for i, found in seen:
        assert len(found) == len(clip.truth[i])
        for box, hand in zip(found, clip.truth[i]):
            b = hand.box()
            assert np.allclose((box[:2] + box[2:]) / 2, (b[:2] + b[2:]) / 2, atol=1e-3)
            assert np.allclose(box[2:] - box[:2], (b[2:] - b[:2]) * DETECTOR_BOX_SCALE, atol=1e-3)


def test_presence_sweep_keeps_a_faint_hand_below_its_presence_and_drops_it_above(monkeypatch):
    """Hands the model sees faintly (presence 0.4): every one kept at threshold 0.3, every one
    missed at 0.5, with the label boxes and with a detector (here the label boxes again), each
    threshold on a fresh tracker; thresholds outside [0, 1] are refused."""
    pixels, keypoints, names = synthetic_sources()
    clip = make_clips(pixels, keypoints, names, 5, 3, 24, (640, 480), max_hands=2)[2]  # two hands
    state = {"clip": clip}
    real_factory = multihand.pipeline_factory

    def recording_factory(predictor, cfg):  # the stand-in reads the crops of the pipeline that runs
        make = real_factory(predictor, cfg)

        def recorded(detector):
            state["pipeline"] = make(detector)
            return state["pipeline"]

        return recorded

    monkeypatch.setattr(multihand, "pipeline_factory", recording_factory)
    cfg = {"max_hands": 2, "detect_every": 1, "presence_threshold": 0.9, "upright": True, "presence_sweep": [0.3, 0.5]}
    rows = presence_sweep(
        standin_keypoint_model(state, presence=0.4), LabelBoxes(clip), [clip], cfg, presence_thresholds(cfg)
    )
    assert [row["presence_threshold"] for row in rows] == [0.3, 0.5]
    for row in rows:
        assert row["label_boxes"] == row["detector"]
        assert set(row["label_boxes"]) == set(multihand.PRESENCE_SWEEP_FIGURES)
    kept, dropped = rows[0]["label_boxes"], rows[1]["label_boxes"]
    assert (kept["missed_rate"], kept["false_hands"], kept["id_switches"], kept["pck_5px"]) == (0.0, 0, 0, 1.0)
    assert (dropped["missed_rate"], dropped["false_hands"], dropped["pck_5px"]) == (1.0, 0, 0.0)
    with pytest.raises(HandkpError, match=r"multihand.presence_sweep.*\[0, 1\]"):
        presence_thresholds({"presence_sweep": [0.3, 1.5]})
    assert presence_thresholds({}) == []
