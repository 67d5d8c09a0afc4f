"""Hands in a whole frame: a YOLO-pose ONNX export as the tracker's detector, every hand it sees
(the runtime's ``YoloPoseDecoder.decode`` keeps only the best one).

    detector = YoloHandDetector("models/detector.onnx", conf_threshold=0.25)
    boxes = detector(rgb)              # (M, 4) float32 x0, y0, x1, y1 frame px, best first
    found = detector.detect(rgb)       # Detections: boxes, scores (M,), keypoints (M, 21, 3)

The file is checked to be a hand pose model and run by the runtime's ``Predictor`` (ONNX
Runtime, ``OnnxRuntimeBackend``): per frame ``Predictor.detect``, the frame letterboxed with
YOLO's grey pad, one backend call, every anchor at or above ``conf_threshold``, class-agnostic
greedy NMS and the boxes and keypoints mapped back to frame px, boxes clipped to the frame
(``handkp.runtime.decoders``: ``decode_detections``, ``nms``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..core.errors import ModelLoadError
from ..core.images import InputSize
from ..core.keypoints import IMAGE_SIZE, NUM_KEYPOINTS
from ..core.paths import RELEASE_DETECTOR
from ..runtime import Predictor
from ..runtime.backends import OnnxRuntimeBackend
from ..runtime.decoders import (
    MAX_DETECTIONS,
    NMS_IOU_THRESHOLD,
    YOLO_CONF_THRESHOLD,
    YOLO_KPT_DIMS,
    Detections,
    YoloPoseDecoder,
)
from ..runtime.model_file import decoder_from_metadata

# The file name of a detector shipped beside a keypoint model (the release stage writes
# release/detector.onnx beside release/heatmap.onnx); the live app pairs the two.
DETECTOR_FILE = RELEASE_DETECTOR.name


class YoloHandDetector:
    """Every hand in a frame from an Ultralytics YOLO-pose ONNX export (ONNX Runtime).

    ``threads``: ONNX Runtime's intra-op threads (0: its own choice), which do not spin-wait
    after a run (``spinning``: the detector takes turns with the keypoint model on the same cores;
    ``OnnxRuntimeBackend``); ``device``: ``cpu`` or ``cuda[:N]`` (with onnxruntime-gpu). ``run``:
    instead of loading ``path``, any callable (1, 3, S, S) float32 -> the raw output (a stand-in
    backend), S = ``input_size`` (default 224; a rectangular input: (height, width)).
    ``predictor``: the runtime's ``Predictor`` that runs it. Raises ModelLoadError for a missing
    or unloadable file, or one that is not a YOLO-pose export."""

    def __init__(
        self,
        path: str | Path,
        conf_threshold: float = YOLO_CONF_THRESHOLD,
        iou_threshold: float = NMS_IOU_THRESHOLD,
        max_detections: int = MAX_DETECTIONS,
        threads: int = 0,
        device: str = "cpu",
        run: Callable[[np.ndarray], np.ndarray] | None = None,
        input_size: InputSize | None = None,
        spinning: bool = False,
    ):
        self.path = Path(path)
        decoder = YoloPoseDecoder(conf_threshold, iou_threshold, max_detections)
        if run is None:
            if not self.path.is_file():
                raise ModelLoadError(f"{self.path}: detector file not found")
            backend = OnnxRuntimeBackend(self.path, device, threads, spinning)
            meta = backend.metadata()
            found, size = decoder_from_metadata(meta, backend.input_size, self.path)
            if found.kind != "yolo":
                raise ModelLoadError(
                    f"{self.path}: a {found.kind} model, not a detector; give a YOLO-pose export (--detector)"
                )
            kpt_shape = meta.get("kpt_shape", "").replace(" ", "")
            if kpt_shape and kpt_shape != f"[{NUM_KEYPOINTS},{YOLO_KPT_DIMS}]":
                raise ModelLoadError(
                    f"{self.path}: a pose model of keypoints {kpt_shape}, not a hand model "
                    f"[{NUM_KEYPOINTS}, {YOLO_KPT_DIMS}]"
                )
            run, input_size = backend, input_size or size
        self.predictor = Predictor(decoder, "onnxruntime", run, input_size or IMAGE_SIZE)

    @property
    def input_size(self) -> InputSize:
        """The export's input: a side, or (height, width) for a rectangular one."""
        return self.predictor.input_size

    def detect(self, rgb: np.ndarray) -> Detections:
        """The hands of an RGB uint8 (H, W, 3) frame, best first."""
        return self.predictor.detect(rgb)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """(M, 4) float32 boxes x0, y0, x1, y1 frame px, best first: what ``HandTracker`` takes."""
        return self.detect(rgb).boxes
