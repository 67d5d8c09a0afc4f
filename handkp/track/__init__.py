"""Multi-hand tracking on top of the runtime (MediaPipe's two-stage design): a detector's boxes
start hands, the keypoint model follows each in its own rotated crop. numpy and OpenCV only.

Modules: ``filters`` (the One Euro filter), ``tracker``
(``HandTracker``: ids, detection scheduling, smoothing; its docstring shows the per-frame calls),
``detector`` (``YoloHandDetector``: every hand a YOLO-pose ONNX export sees in a frame, through the
runtime's ``Predictor.detect``) and ``pipeline`` (one ``process(frame, t)`` call per frame:
``MultiHandPipeline``, detector, tracker and the keypoint model on the batched crops;
``SingleHandPipeline``, the keypoint model on the whole frame, one hand). The rotated square crop
(``Roi``, ``roi_from_box``, ``roi_from_keypoints``, ``crop``, ``to_crop``/``to_frame``) is
``handkp.core.roi``, re-exported here: training cuts crops like the tracker's with it too.
"""

from ..core.roi import (
    Roi,
    crop,
    palm_size,
    roi_from_box,
    roi_from_keypoints,
    to_crop,
    to_frame,
)
from .detector import YoloHandDetector
from .filters import OneEuroFilter, OneEuroSettings
from .pipeline import MultiHandPipeline, SingleHandPipeline
from .tracker import HandTracker, TrackedHand, TrackerError

__all__ = [
    "HandTracker",
    "MultiHandPipeline",
    "OneEuroFilter",
    "OneEuroSettings",
    "Roi",
    "SingleHandPipeline",
    "TrackedHand",
    "TrackerError",
    "YoloHandDetector",
    "crop",
    "palm_size",
    "roi_from_box",
    "roi_from_keypoints",
    "to_crop",
    "to_frame",
]
