"""Multi-hand tracking on top of the runtime (MediaPipe's two-stage design): a detector's boxes
start hands, the keypoint model follows each in its own rotated crop. numpy and OpenCV only.

Modules: ``roi`` (the rotated square crop: ``Roi``, ``roi_from_box``, ``roi_from_keypoints``,
``crop``, ``to_crop``/``to_frame``), ``filters`` (the One Euro filter) and ``tracker``
(``HandTracker``: ids, detection scheduling, smoothing; its docstring shows the per-frame calls).
"""
from .filters import OneEuroFilter, OneEuroSettings
from .roi import (
           Roi,
           crop,
           palm_size,
           roi_from_box,
           roi_from_keypoints,
           to_crop,
           to_frame,
)
from .tracker import HandTracker, TrackedHand, TrackerError

__all__ = ["HandTracker", "OneEuroFilter", "OneEuroSettings", "Roi", "TrackedHand", "TrackerError", "crop",
           "palm_size", "roi_from_box", "roi_from_keypoints", "to_crop", "to_frame"]
