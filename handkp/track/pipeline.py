"""Several hands per frame, end to end: ``MultiHandPipeline`` runs a detector, the ``HandTracker``
and the keypoint model together, one call per frame.

    pipeline = MultiHandPipeline(load_predictor("models/heatmap.onnx"),
                                 YoloHandDetector("models/yolo.onnx"), HandTracker(max_hands=2))
    for frame, t in frames:                      # RGB uint8 (H, W, 3), seconds
        hands = pipeline.process(frame, t)       # [TrackedHand], by id, keypoints in frame px

Per frame: the detector only when the tracker wants it (``HandTracker.wants_detection``), the
tracker's ROIs (``rois_to_run``), every ROI cropped with one warp each (``roi.crop``), the
keypoint model ONCE on the stacked crops (``Predictor.infer`` on (N, 3, S, S) from the decoder's
``to_input``; a fixed-batch backend splits the batch itself), each crop's output decoded in crop
px (``Predictor.postprocess`` with an identity letterbox: the crop is the network's input), and
the tracker maps them back to frame px (``roi.to_frame``), keeps the ids and smooths."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..runtime import Prediction, Predictor
from ..runtime.predictor import Letterbox
from .roi import Roi, crop
from .tracker import HandTracker, TrackedHand

IDENTITY = Letterbox(1.0, 0.0, 0.0)  # a crop is the network's input as it is

Detector = Callable[[np.ndarray], np.ndarray]  # RGB frame -> (M, 4) boxes x0, y0, x1, y1 px, best first


class MultiHandPipeline:
    """``keypoint_predictor``: a ``Predictor`` (the heatmap model; its input size is the crops'
    side, the tracker's ``crop_size``); ``detector``: any callable RGB frame -> (M, 4) boxes
    (``YoloHandDetector``, or a stand-in); ``tracker``: a ``HandTracker``, used by this pipeline
    only. Frames are counted by ``process`` calls (``detect_every`` counts processed frames).

    After each ``process``: ``detected`` (whether the detector ran on that frame) and ``rois``
    (the crops the model ran on)."""

    def __init__(self, keypoint_predictor: Predictor, detector: Detector, tracker: HandTracker):
        if tracker.crop_size != keypoint_predictor.input_size:
            raise ValueError(f"the tracker's crop_size {tracker.crop_size} is not the keypoint model's input size "
                             f"{keypoint_predictor.input_size}")
        self.predictor, self.detector, self.tracker = keypoint_predictor, detector, tracker
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
        if frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 or frame_rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {frame_rgb.dtype} {frame_rgb.shape}")
        i = self.frame_index
        self.frame_index += 1
        self.detected = self.tracker.wants_detection(i)
        boxes = np.asarray(self.detector(frame_rgb), dtype=np.float64).reshape(-1, 4) if self.detected else None
        self.rois = self.tracker.rois_to_run(i, boxes, t)
        crops = crop(frame_rgb, self.rois, self.tracker.crop_size)
        return self.tracker.update(self.predict_crops(crops))

    def predict_crops(self, crops: np.ndarray) -> list[Prediction]:
        """The keypoint model on (N, S, S, 3) uint8 crops in one backend call -> one Prediction
        per crop, keypoints in crop px."""
        if not len(crops):
            return []
        raw = self.predictor.infer(self.predictor.decoder.to_input(crops))
        return [self.predictor.postprocess(raw[i:i + 1], IDENTITY) for i in range(len(crops))]
