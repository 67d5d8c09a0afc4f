"""Hands in a whole frame: a YOLO-pose ONNX export as the tracker's detector, every hand it sees
(the runtime's ``YoloPoseDecoder`` keeps only the best one).

    detector = YoloHandDetector("models/yolo.onnx", conf_threshold=0.25)
    boxes = detector(rgb)              # (M, 4) float32 x0, y0, x1, y1 frame px, best first
    found = detector.detect(rgb)       # Detections: boxes, scores (M,), keypoints (M, 21, 3)

Per frame: the frame letterboxed to the network's input the way the runtime does it
(``handkp.runtime.predictor.letterbox`` with YOLO's grey pad, ``yolo_input``), one ONNX Runtime
call (``OnnxRuntimeBackend``), every anchor at or above ``conf_threshold`` decoded
(``handkp.runtime.decoders.pose_candidates``), class-agnostic greedy NMS (``nms``), and the boxes and keypoints mapped back
to frame px through the letterbox, boxes clipped to the frame."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..core.errors import ModelLoadError
from ..core.keypoints import IMAGE_SIZE, NUM_KEYPOINTS
from ..runtime.backends import OnnxRuntimeBackend
from ..runtime.decoders import YOLO_CONF_THRESHOLD, YOLO_KPT_DIMS, YOLO_PAD_RGB, pose_candidates, yolo_input
from ..runtime.model_file import decoder_from_metadata
from ..runtime.predictor import Letterbox, letterbox

# The file name of a detector shipped beside a keypoint model (the release stage writes
# release/detector.onnx beside release/heatmap.onnx); the live app pairs the two.
DETECTOR_FILE = "detector.onnx"
NMS_IOU_THRESHOLD = 0.5  # a box overlapping a better one by more than this is the same hand
MAX_DETECTIONS = 10


@dataclass(frozen=True)
class Detections:
    """boxes (M, 4) float32 x0, y0, x1, y1 frame px; scores (M,) float32 (the best class score);
    keypoints (M, K, 3) float32: x, y frame px and the visibility probability. Best first."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(n,) intersection over union of one box (4,) with boxes (n, 4), x0, y0, x1, y1."""
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = NMS_IOU_THRESHOLD,
        max_detections: int = MAX_DETECTIONS) -> np.ndarray:
    """Greedy class-agnostic non-maximum suppression: indices of the kept boxes, best first. The
    best box stays and every other overlapping it by IoU > ``iou_threshold`` goes, then the best of
    the rest, until ``max_detections`` are kept (ties: the earlier box first)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    boxes = np.asarray(boxes, dtype=np.float64)
    keep: list[int] = []
    while order.size and len(keep) < max_detections:
        best, order = order[0], order[1:]
        keep.append(int(best))
        order = order[iou_one_to_many(boxes[best], boxes[order]) <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def decode_detections(raw: np.ndarray, box: Letterbox, frame_size: tuple[int, int],
                      conf_threshold: float = YOLO_CONF_THRESHOLD, iou_threshold: float = NMS_IOU_THRESHOLD,
                      max_detections: int = MAX_DETECTIONS) -> Detections:
    """One image's raw output -> its hands (``Detections``) in frame px: the anchors scoring at
    least ``conf_threshold`` with a box of positive size, NMS, then back through the letterbox
    ``box``; boxes clipped to the frame (``frame_size`` = width, height), a box left empty dropped."""
    boxes, scores, kpts = pose_candidates(raw)
    ok = (scores >= conf_threshold) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, scores, kpts = boxes[ok], scores[ok], kpts[ok]
    keep = nms(boxes, scores, iou_threshold, max_detections)
    boxes, scores, kpts = boxes[keep], scores[keep], kpts[keep].copy()
    w, h = frame_size
    boxes = box.to_image(boxes.reshape(-1, 2, 2)).reshape(-1, 4)
    boxes = np.clip(boxes, 0, np.array([w, h, w, h], dtype=np.float32))
    kpts[..., :2] = box.to_image(kpts[..., :2])
    real = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return Detections(boxes[real].astype(np.float32), scores[real].astype(np.float32), kpts[real].astype(np.float32))


class YoloHandDetector:
    """Every hand in a frame from an Ultralytics YOLO-pose ONNX export (ONNX Runtime).

    ``threads``: ONNX Runtime's intra-op threads (0: its own choice); ``device``: ``cpu`` or
    ``cuda[:N]`` (with onnxruntime-gpu). ``run``: instead of loading ``path``, any callable
    (1, 3, S, S) float32 -> the raw output (a stand-in backend), S = ``input_size`` (default 224).
    Raises ModelLoadError for a missing or unloadable file, or one that is not a YOLO-pose export."""

    def __init__(self, path: str | Path, conf_threshold: float = YOLO_CONF_THRESHOLD,
                 iou_threshold: float = NMS_IOU_THRESHOLD, max_detections: int = MAX_DETECTIONS, threads: int = 0,
                 device: str = "cpu", run: Callable[[np.ndarray], np.ndarray] | None = None, input_size: int | None = None):
        if not (0 <= iou_threshold <= 1 and max_detections >= 1):
            raise ValueError(f"iou_threshold must be in [0, 1] and max_detections >= 1, got {iou_threshold}, {max_detections}")
        self.path = Path(path)
        self.conf_threshold, self.iou_threshold, self.max_detections = conf_threshold, iou_threshold, max_detections
        if run is None:
            if not self.path.is_file():
                raise ModelLoadError(f"{self.path}: detector file not found")
            backend = OnnxRuntimeBackend(self.path, device, threads)
            meta = backend.metadata()
            decoder, size = decoder_from_metadata(meta, backend.input_side, self.path)
            if decoder.kind != "yolo":
                raise ModelLoadError(f"{self.path}: a {decoder.kind} model, not a detector; give a YOLO-pose export (--detector)")
            kpt_shape = meta.get("kpt_shape", "").replace(" ", "")
            if kpt_shape and kpt_shape != f"[{NUM_KEYPOINTS},{YOLO_KPT_DIMS}]":
                raise ModelLoadError(f"{self.path}: a pose model of keypoints {kpt_shape}, not a hand model "
                                     f"[{NUM_KEYPOINTS}, {YOLO_KPT_DIMS}]")
            run, input_size = backend, input_size or size
        self.run, self.input_size = run, input_size or IMAGE_SIZE

    def detect(self, rgb: np.ndarray) -> Detections:
        """The hands of an RGB uint8 (H, W, 3) frame, best first."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {rgb.dtype} {rgb.shape}")
        boxed, box = letterbox(rgb, self.input_size, YOLO_PAD_RGB)
        raw = self.run(yolo_input(boxed)[None])
        return decode_detections(raw[:1], box, (rgb.shape[1], rgb.shape[0]), self.conf_threshold,
                                 self.iou_threshold, self.max_detections)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """(M, 4) float32 boxes x0, y0, x1, y1 frame px, best first: what ``HandTracker`` takes."""
        return self.detect(rgb).boxes
