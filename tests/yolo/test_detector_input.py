"""The hand detector's input shape (``detector`` params): the sweep's sizes on the frame's long
side, the short side at the frame's aspect rounded up to YOLO's stride, checked params."""

import pytest

from handkp.core.errors import HandkpError
from handkp.core.images import input_label
from handkp.yolo.export import detector_input, detector_sizes


@pytest.mark.parametrize(
    "size, frame_size, expected",
    [
        (416, [640, 480], (320, 416)),  # 312 rounded up to 320
        (512, [640, 480], (384, 512)),  # exactly 3:4
        (224, [640, 480], (192, 224)),  # 168 -> 192
        (416, [480, 640], (416, 320)),  # a portrait frame: the height is the long side
        (416, [1280, 720], (256, 416)),  # 234 -> 256
        (416, [500, 500], 416),  # a square frame: a square input
        (416, None, 416),  # no frame size: square
        (64, [640, 100], (32, 64)),  # never below the stride
    ],
)
def test_the_input_keeps_the_frames_aspect_on_the_strides_grid(size, frame_size, expected):
    assert detector_input(size, frame_size) == expected
    h, w = (expected, expected) if isinstance(expected, int) else expected
    assert h % 32 == 0 and w % 32 == 0 and max(h, w) == size


def test_the_input_as_the_report_writes_it():
    assert input_label((320, 416)) == "416×320" and input_label(416) == "416" and input_label((416, 416)) == "416"


@pytest.mark.parametrize(
    "cfg, problem",
    [
        ({"imgsz": 416, "sweep": [320, 400], "frame_size": None}, "multiples of 32"),
        ({"imgsz": 416, "sweep": [320, 512], "frame_size": None}, "hold imgsz 416"),
        ({"imgsz": 416, "sweep": [416], "frame_size": [640]}, "frame_size must be null or"),
        ({"imgsz": 416, "sweep": [416], "frame_size": [640, 0]}, "frame_size must be null or"),
    ],
)
def test_bad_detector_params_name_the_problem(cfg, problem):
    with pytest.raises(HandkpError, match=problem):
        detector_sizes(cfg)


def test_good_detector_params_give_the_sizes_in_order():
    assert detector_sizes({"imgsz": 416, "sweep": [512, 224, 416], "frame_size": [640, 480]}) == [224, 416, 512]
