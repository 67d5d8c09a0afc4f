"""The multi-hand detector: every anchor above the threshold decoded from a YOLO-pose output, NMS,
boxes and keypoints mapped back through the letterbox; with a stand-in backend (a callable) and
with a stand-in ONNX file through ONNX Runtime."""

import numpy as np
import pytest
from standin_models import standin_yolo_onnx, yolo_raw

from handkp.core.errors import ModelLoadError
from handkp.core.geometry import box_iou as iou_one_to_many
from handkp.core.keypoints import NUM_KEYPOINTS
from handkp.runtime.decoders import YOLO_PAD_RGB, decode_detections, nms, pose_candidates
from handkp.runtime.predictor import Letterbox, letterbox
from handkp.track.detector import YoloHandDetector

S = 224
FRAME_W, FRAME_H = 448, 224  # letterboxed to 224: scale 0.5, 56 px of grey above and below
BOX = Letterbox(0.5, 0.0, 56.0)


def to_net(x0, y0, x1, y1):
    """A frame box -> (cx, cy, w, h) px of the network input (the letterbox forwards)."""
    a = np.array([x0, y0, x1, y1]) * 0.5 + [0, 56, 0, 56]
    return ((a[0] + a[2]) / 2, (a[1] + a[3]) / 2, a[2] - a[0], a[3] - a[1])


def test_all_hands_above_the_threshold_come_back_in_frame_px_best_first():
    hand_a, hand_b = (100, 40, 180, 160), (300, 60, 360, 200)
    ax, ay, aw, ah = to_net(*hand_a)
    kp_b = np.tile([to_net(*hand_b)[0], to_net(*hand_b)[1], 0.8], (NUM_KEYPOINTS, 1))
    kp_b[3] = [160.0, 100.0, 0.5]
    raw = yolo_raw(
        [
            (ax, ay, aw, ah),
            (ax + 2, ay + 1, aw, ah - 2),
            (ax - 3, ay, aw + 4, ah),
            to_net(*hand_b),
            to_net(20, 20, 60, 60),
            (50, 50, 0, 30),
        ],  # a weak one, a zero-width one
        [0.7, 0.9, 0.8, 0.6, 0.1, 0.95],
        anchors=20,
    )
    raw[0, 5:, 3] = kp_b.reshape(-1)  # hand B's keypoints
    found = decode_detections(raw, BOX, (FRAME_W, FRAME_H), conf_threshold=0.25, iou_threshold=0.5)
    assert len(found) == 2  # hand A's three overlapping boxes are one hand; the weak and the empty ones are none
    np.testing.assert_allclose(found.scores, [0.9, 0.6])
    np.testing.assert_allclose(
        found.boxes[0], [104, 44, 184, 160], atol=1e-4
    )  # the best of A's: 2, 1, -2 network px off
    np.testing.assert_allclose(found.boxes[1], hand_b, atol=1e-4)
    assert found.keypoints.shape == (2, NUM_KEYPOINTS, 3)
    np.testing.assert_allclose(found.keypoints[1, 3], [(160 - 0) / 0.5, (100 - 56) / 0.5, 0.5], atol=1e-4)
    assert found.boxes.dtype == np.float32 and found.scores.dtype == np.float32


def test_threshold_max_detections_and_clipping_to_the_frame():
    raw = yolo_raw(
        [to_net(10, 10, 50, 50), to_net(100, 10, 150, 60), to_net(200, 10, 260, 70), to_net(400, 150, 470, 250)],
        [0.5, 0.4, 0.3, 0.6],
    )
    assert len(decode_detections(raw, BOX, (FRAME_W, FRAME_H), conf_threshold=0.45)) == 2
    found = decode_detections(raw, BOX, (FRAME_W, FRAME_H), conf_threshold=0.0, max_detections=3)
    np.testing.assert_allclose(found.scores, [0.6, 0.5, 0.4])
    np.testing.assert_allclose(found.boxes[0], [400, 150, FRAME_W, FRAME_H], atol=1e-4)  # clipped to the frame
    empty = decode_detections(np.zeros((1, 68, 0), np.float32), BOX, (FRAME_W, FRAME_H))
    assert len(empty) == 0 and empty.boxes.shape == (0, 4)


def test_the_nms_free_layout_is_read_too():
    rows = np.zeros((1, 3, 6 + 3 * NUM_KEYPOINTS), np.float32)
    rows[0, 0, :6] = [10, 66, 50, 106, 0.9, 0]  # x0 y0 x1 y1 score class, network px
    rows[0, 1, :6] = [12, 66, 52, 106, 0.8, 0]  # the same hand
    rows[0, 2, :6] = [150, 70, 200, 120, 0.7, 0]
    boxes, scores, kpts = pose_candidates(rows)
    assert boxes.shape == (3, 4) and kpts.shape == (3, NUM_KEYPOINTS, 3)
    found = decode_detections(rows, BOX, (FRAME_W, FRAME_H))
    np.testing.assert_allclose(found.boxes, [[20, 20, 100, 100], [300, 28, 400, 128]], atol=1e-4)


def test_nms_on_known_overlaps():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.9])
    assert iou_one_to_many(boxes[0], boxes[1:3]) == pytest.approx([0.5, 1 / 3])
    assert nms(boxes, scores, 0.5).tolist() == [0, 1, 2, 3]  # IoU 0.5 is not above 0.5; the tie goes to the first
    assert nms(boxes, scores, 0.49).tolist() == [0, 2, 3]
    assert nms(boxes, scores, 0.3).tolist() == [0, 3]
    assert nms(boxes, scores, 0.3, max_detections=1).tolist() == [0]
    assert nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []


def test_nms_keeps_no_overlapping_pair_and_drops_only_what_a_better_box_covers():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 200, (200, 2))
    boxes = np.hstack([xy, xy + rng.uniform(10, 60, (200, 2))])
    scores = rng.uniform(0, 1, 200)
    keep = nms(boxes, scores, 0.4, max_detections=1000)
    assert (np.diff(scores[keep]) <= 0).all()  # best first
    for i in keep:
        assert (iou_one_to_many(boxes[i], boxes[[k for k in keep if k != i]]) <= 0.4).all()
    for j in set(range(200)) - set(keep.tolist()):
        better = [k for k in keep if scores[k] >= scores[j]]
        assert (iou_one_to_many(boxes[j], boxes[better]) > 0.4).any()


def test_the_detector_letterboxes_with_yolo_grey_and_maps_back():
    """A stand-in backend (a callable) sees what the runtime's YOLO path feeds the network."""
    frame = np.random.default_rng(1).integers(0, 256, (FRAME_H, FRAME_W, 3), dtype=np.uint8)
    seen = []

    def standin_backend(x):
        seen.append(x)
        return yolo_raw([to_net(100, 40, 180, 160), to_net(300, 60, 360, 200)], [0.5, 0.8], anchors=10)

    detector = YoloHandDetector("standin.onnx", run=standin_backend, input_size=S)
    boxes = detector(frame)
    (x,) = seen
    assert x.shape == (1, 3, S, S) and x.dtype == np.float32
    expected, _ = letterbox(frame, S, YOLO_PAD_RGB)
    np.testing.assert_allclose(x[0], np.moveaxis(expected, -1, 0) / 255.0, atol=1e-6)
    assert np.allclose(x[0, :, :56], 114 / 255) and np.allclose(x[0, :, -56:], 114 / 255)
    np.testing.assert_allclose(boxes, [[300, 60, 360, 200], [100, 40, 180, 160]], atol=1e-4)
    with pytest.raises(ValueError, match="RGB uint8"):
        detector(frame.astype(np.float32))


def test_a_rectangular_export_gets_the_frame_letterboxed_to_its_height_and_width(tmp_path):
    """An export at (height, width) (``detector.frame_size``'s aspect): the frame fills the width,
    the grey bands only what the aspects differ by, and the boxes come back in frame px."""
    h, w = 128, 224  # a 448×224 frame: scale 0.5 -> 224×112, 8 px of grey above and below
    net = lambda x0, y0, x1, y1: (  # noqa: E731  a frame box -> (cx, cy, w, h) px of this input
        (x0 + x1) / 4,
        (y0 + y1) / 4 + 8,
        (x1 - x0) / 2,
        (y1 - y0) / 2,
    )
    path = standin_yolo_onnx(
        tmp_path / "standin_rect.onnx",
        yolo_raw([net(100, 40, 180, 160), net(300, 60, 360, 200)], [0.8, 0.5], anchors=10),
        input_size=(h, w),
    )
    detector = YoloHandDetector(path, conf_threshold=0.25, threads=1)
    assert detector.input_size == (h, w)
    frame = np.random.default_rng(2).integers(0, 256, (FRAME_H, FRAME_W, 3), dtype=np.uint8)
    x, box = detector.predictor.preprocess(frame)
    assert x.shape == (1, 3, h, w) and box == Letterbox(0.5, 0.0, 8.0)
    assert np.allclose(x[0, :, :8], 114 / 255) and np.allclose(x[0, :, -8:], 114 / 255)
    assert not np.allclose(x[0, :, 8], 114 / 255)  # the frame starts right below the band
    np.testing.assert_allclose(detector(frame), [[100, 40, 180, 160], [300, 60, 360, 200]], atol=1e-3)
    # a portrait frame in the same input: it fills the height, grey left and right
    _, portrait = detector.predictor.preprocess(np.zeros((256, 128, 3), np.uint8))
    assert portrait == Letterbox(0.5, (w - 64) // 2, 0.0)


def test_a_yolo_pose_file_through_onnx_runtime(tmp_path):
    path = standin_yolo_onnx(
        tmp_path / "standin_yolo.onnx",
        yolo_raw(
            [to_net(100, 40, 180, 160), to_net(104, 40, 184, 160), to_net(300, 60, 360, 200)],
            [0.9, 0.85, 0.3],
            anchors=30,
        ),
    )
    detector = YoloHandDetector(path, conf_threshold=0.25, threads=1)
    assert detector.input_size == S
    found = detector.detect(np.zeros((FRAME_H, FRAME_W, 3), np.uint8))
    np.testing.assert_allclose(found.boxes, [[100, 40, 180, 160], [300, 60, 360, 200]], atol=1e-3)
    np.testing.assert_allclose(found.scores, [0.9, 0.3], atol=1e-6)
    assert (
        len(YoloHandDetector(path, conf_threshold=0.5, threads=1).detect(np.zeros((FRAME_H, FRAME_W, 3), np.uint8)))
        == 1
    )
    with pytest.raises(ModelLoadError, match="not found"):
        YoloHandDetector(tmp_path / "missing.onnx")
    people = standin_yolo_onnx(
        tmp_path / "coco_pose.onnx", np.zeros((1, 4 + 1 + 51, 30), np.float32), kpt_shape="[17, 3]"
    )
    with pytest.raises(ModelLoadError, match="not a hand model"):
        YoloHandDetector(people)
