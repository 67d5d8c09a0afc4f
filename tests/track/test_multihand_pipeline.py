"""MultiHandPipeline: the detector only when the tracker wants it, every crop through the keypoint
model in one batch (the real heatmap network code: a tiny random-weight ONNX export), the same
keypoints as the model on one crop at a time, mapped back to the frame."""

import numpy as np
import pytest
from standin_models import tiny_heatmap_onnx
from synthetic_hands import hand

from handkp.core.keypoints import NUM_KEYPOINTS
from handkp.runtime import Prediction, Predictor, load_predictor
from handkp.runtime.decoders import rgb_to_nchw
from handkp.track import HandTracker, MultiHandPipeline, crop, to_frame

BOXES = np.array([[60, 50, 160, 190], [330, 80, 420, 200]], np.float32)


@pytest.fixture(scope="module")
def heatmap_predictor(tmp_path_factory):
    path = tiny_heatmap_onnx(tmp_path_factory.mktemp("pipeline_model"), dynamic_batch=True)
    return load_predictor(path, backend="onnxruntime", threads=1)


class CountingDetector:
    """A STAND-IN detector: the same boxes on every frame, counting its calls."""

    def __init__(self, boxes):
        self.boxes, self.calls = boxes, 0

    def __call__(self, rgb):
        self.calls += 1
        return self.boxes


def test_one_batched_model_call_per_frame_with_the_keypoints_of_one_crop_at_a_time(heatmap_predictor):
    calls = []

    def counting_backend(x):
        calls.append(x.shape)
        return heatmap_predictor.run(x)

    model = Predictor(heatmap_predictor.decoder, "onnxruntime", counting_backend, heatmap_predictor.input_size)
    detector = CountingDetector(BOXES)
    pipeline = MultiHandPipeline(model, detector, HandTracker(max_hands=2, presence_threshold=0.0, smoothing=None))
    frame = np.random.default_rng(0).integers(0, 256, (300, 480, 3), dtype=np.uint8)

    hands = pipeline.process(frame, 0.0)
    assert calls == [(2, 3, 224, 224)] and detector.calls == 1 and pipeline.detected
    crops = crop(frame, pipeline.rois)
    one_at_a_time = [heatmap_predictor.predict(c) for c in crops]
    batched = pipeline.predictor.predict_crops(crops)
    for b, o in zip(batched, one_at_a_time):
        np.testing.assert_allclose(b.keypoints, o.keypoints, atol=1e-4)
        np.testing.assert_allclose(b.scores, o.scores, atol=1e-6)
        assert b.presence == pytest.approx(o.presence)
    assert sorted(h.id for h in hands) == [0, 1]
    in_frame = [to_frame(roi, p.keypoints) for roi, p in zip(pipeline.rois, one_at_a_time)]
    for h in hands:  # each hand is one crop's keypoints in frame px
        assert sum(np.allclose(h.keypoints, k, atol=1e-3) for k in in_frame) == 1
        np.testing.assert_allclose(h.box, [*h.keypoints.min(0), *h.keypoints.max(0)])

    calls.clear()
    pipeline.process(frame, 1 / 30)  # both tracked: no detector, the two crops from their keypoints
    assert calls == [(2, 3, 224, 224)] and detector.calls == 1 and not pipeline.detected


def fixed_hand_model(presence: list[float]) -> Predictor:
    """A STAND-IN keypoint model: in every crop an upright hand at the same place (crop px), with
    the presence ``presence[0]`` (a list, so a test can change it between frames)."""
    kp = hand(112, 170, palm_px=40).astype(np.float32)

    class Decoder:
        kind, pad_value = "stand-in", (0, 0, 0)
        to_input = staticmethod(rgb_to_nchw)

        @staticmethod
        def decode(raw, box):
            return Prediction(box.to_image(kp), np.ones(NUM_KEYPOINTS, np.float32), True, float(raw[0, 0]))

    return Predictor(Decoder(), "stand-in", lambda x: np.full((len(x), 1), presence[0], np.float32), 224)


def test_the_detector_runs_every_nth_frame_while_places_are_free():
    presence = [1.0]
    detector = CountingDetector(np.zeros((0, 4), np.float32))  # no hand yet
    pipeline = MultiHandPipeline(fixed_hand_model(presence), detector, HandTracker(max_hands=1, detect_every=3))
    frame = np.zeros((300, 480, 3), np.uint8)
    detected, ids = [], []

    def step(i):
        if i == 6:
            detector.boxes = BOXES[:1]  # a hand comes
        presence[0] = 0.0 if i == 9 else 1.0  # and leaves its crop on frame 9
        ids.append([h.id for h in pipeline.process(frame, i / 30)])
        detected.append(pipeline.detected)

    for i in range(12):
        step(i)
    assert detected == [True, False, False, True, False, False, True, False, False, False, True, False]
    assert ids == [[]] * 6 + [[0], [0], [0], [], [0], [0]]  # back where it was lost: its id again (lost_s)
    assert detector.calls == 4


def test_no_crops_no_model_call_and_sizes_must_agree():
    def no_call(x):
        raise AssertionError("the model ran without a crop")

    model = Predictor(fixed_hand_model([1.0]).decoder, "stand-in", no_call, 224)
    pipeline = MultiHandPipeline(model, CountingDetector(np.zeros((0, 4))), HandTracker())
    assert pipeline.process(np.zeros((100, 100, 3), np.uint8)) == [] and pipeline.rois == []
    with pytest.raises(ValueError, match="crop_size"):
        MultiHandPipeline(model, CountingDetector(BOXES), HandTracker(crop_size=192))
    with pytest.raises(ValueError, match="RGB uint8"):
        pipeline.process(np.zeros((100, 100), np.uint8))
