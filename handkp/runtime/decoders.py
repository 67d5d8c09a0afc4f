"""The task part of a predictor: how an image becomes the network's input and how the network's
raw output becomes keypoints. One object per kind of model.

    HeatmapDecoder(codec)            our network: RGB pixels in, (N, 21, S, S) heatmaps out
    YoloPoseDecoder(conf_threshold)  an Ultralytics pose export: pixels / 255 in, detections out

Each has ``kind``, ``pad_value`` (the letterbox bands), ``to_input(rgb)`` and
``decode(raw, box) -> Prediction`` for one image's raw output (batch of 1). The YOLO decoder also
gives every hand of an image (``detections -> Detections``: the anchors at or above its threshold,
class-agnostic greedy NMS, ``nms``, with ``handkp.core.geometry.box_iou``), what ``Predictor.detect`` returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.codec import HeatmapCodec
from ..core.geometry import box_iou
from ..core.images import BORDER_RGB
from ..core.keypoints import NUM_KEYPOINTS
from .predictor import Letterbox, Prediction

YOLO_PAD_RGB = (114, 114, 114)  # Ultralytics' letterbox grey
YOLO_KPT_DIMS = 3  # x, y, visibility
YOLO_CONF_THRESHOLD = 0.25  # Ultralytics' default detection threshold
NMS_IOU_THRESHOLD = 0.5  # a box overlapping a better one by more than this is the same hand
MAX_DETECTIONS = 10


@dataclass(frozen=True)
class Detections:
    """boxes (M, 4) float32 x0, y0, x1, y1 image px; scores (M,) float32 (the best class score);
    keypoints (M, K, 3) float32: x, y image px and the visibility probability. Best first."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def rgb_to_nchw(rgb: np.ndarray) -> np.ndarray:
    """(…, H, W, 3) uint8 RGB -> (…, 3, H, W) float32 pixel values 0–255: the heatmap network's
    input (it normalises them itself, see ``handkp.model.network.PixelStemConv``)."""
    return np.moveaxis(rgb, -1, -3).astype(np.float32, order="C")


def yolo_input(rgb: np.ndarray) -> np.ndarray:
    """(…, H, W, 3) uint8 RGB -> (…, 3, H, W) float32 in [0, 1] (Ultralytics' input)."""
    x = rgb_to_nchw(rgb)
    return np.divide(x, 255.0, out=x)


@dataclass(frozen=True)
class HeatmapDecoder:
    """Our heatmap network: the codec decodes (1, 21, S, S) heatmaps to sub-pixel keypoints."""

    codec: HeatmapCodec
    kind: str = "heatmap"
    pad_value: tuple[int, int, int] = BORDER_RGB  # the borders the network saw in training

    @staticmethod
    def to_input(rgb: np.ndarray) -> np.ndarray:
        return rgb_to_nchw(rgb)

    def decode(self, raw: np.ndarray, box: Letterbox) -> Prediction:
        kp, scores = self.codec.decode(raw[:1])
        return Prediction(box.to_image(kp[0]), scores[0], True, presence_of(scores[0]))


@dataclass(frozen=True)
class YoloPoseDecoder:
    """An Ultralytics pose export: the most confident detection at or above ``conf_threshold``
    (``decode``), or every one (``detections``: NMS at ``iou_threshold``, ``max_detections`` at most)."""

    conf_threshold: float = YOLO_CONF_THRESHOLD
    iou_threshold: float = NMS_IOU_THRESHOLD
    max_detections: int = MAX_DETECTIONS
    kind: str = "yolo"
    pad_value: tuple[int, int, int] = YOLO_PAD_RGB

    def __post_init__(self):
        if not (0 <= self.iou_threshold <= 1 and self.max_detections >= 1):
            raise ValueError(
                f"iou_threshold must be in [0, 1] and max_detections >= 1, got {self.iou_threshold}, "
                f"{self.max_detections}"
            )

    @staticmethod
    def to_input(rgb: np.ndarray) -> np.ndarray:
        return yolo_input(rgb)

    def decode(self, raw: np.ndarray, box: Letterbox) -> Prediction:
        """The most confident detection of one image's raw output (see ``best_detection``); found
        only at or above ``conf_threshold`` (else NaN keypoints, zero scores)."""
        conf, k = best_detection(raw[:1])
        if k is None or not conf >= self.conf_threshold:
            return Prediction(
                np.full((NUM_KEYPOINTS, 2), np.nan, np.float32), np.zeros(NUM_KEYPOINTS, np.float32), False, conf
            )
        return Prediction(box.to_image(np.ascontiguousarray(k[:, :2])), k[:, 2].astype(np.float32), True, conf)

    def detections(self, raw: np.ndarray, box: Letterbox, image_size: tuple[int, int]) -> Detections:
        """Every hand of one image's raw output (``decode_detections`` at this decoder's settings)."""
        return decode_detections(raw, box, image_size, self.conf_threshold, self.iou_threshold, self.max_detections)


def presence_of(scores: np.ndarray) -> float:
    """The heatmap model's presence score: the mean of the keypoints' heatmap peaks (K,). Trained
    with hand-free images (all-zero targets), so a frame without a hand scores near 0."""
    return float(np.clip(np.mean(scores), 0.0, 1.0))


def pose_candidates(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every anchor of one image's raw YOLO-pose output -> (boxes (A, 4) x0, y0, x1, y1, scores
    (A,), keypoints (A, K, 3): x, y, visibility probability), all px of the network input.

    raw: ``(1, 4 + nc + 3K, A)`` as Ultralytics exports it (per anchor: box cx, cy, w, h, the
    ``nc`` class scores, then K × (x, y, visibility)), or the NMS-free layout ``(1, N, 6 + 3K)``
    (x0, y0, x1, y1, score, class, keypoints). With several classes the score is the best class score."""
    a = np.asarray(raw, dtype=np.float32)
    if a.ndim == 3:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"expected a YOLO-pose output (1, C, A), got shape {np.shape(raw)}")
    nk = YOLO_KPT_DIMS * NUM_KEYPOINTS
    if a.shape[1] == 6 + nk and a.shape[0] != 6 + nk:  # NMS-free: one row per detection
        boxes, scores, kpts = a[:, :4], a[:, 4], a[:, 6:]
    elif a.shape[0] >= 5 + nk:  # one column per anchor
        nc = a.shape[0] - 4 - nk
        cx, cy, w, h = a[:4]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        scores, kpts = a[4 : 4 + nc].max(axis=0), a[4 + nc :].T
    else:
        raise ValueError(
            f"output shape {np.shape(raw)} does not hold {NUM_KEYPOINTS} keypoints × {YOLO_KPT_DIMS} values"
        )
    return boxes, scores, kpts.reshape(-1, NUM_KEYPOINTS, YOLO_KPT_DIMS)


def best_detection(raw: np.ndarray) -> tuple[float, np.ndarray | None]:
    """(confidence, keypoints (K, 3): x px, y px, visibility probability) of the most confident
    detection in one image's raw YOLO-pose output (the layouts of ``pose_candidates``); (0.0, None)
    without any detection."""
    _, scores, kpts = pose_candidates(raw)
    if not scores.size:
        return 0.0, None
    best = int(np.argmax(scores))
    return float(scores[best]), kpts[best]


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float = NMS_IOU_THRESHOLD,
    max_detections: int = MAX_DETECTIONS,
) -> np.ndarray:
    """Greedy class-agnostic non-maximum suppression: indices of the kept boxes, best first. The
    best box stays and every other overlapping it by IoU > ``iou_threshold`` goes, then the best of
    the rest, until ``max_detections`` are kept (ties: the earlier box first)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    boxes = np.asarray(boxes, dtype=np.float64)
    keep: list[int] = []
    while order.size and len(keep) < max_detections:
        best, order = order[0], order[1:]
        keep.append(int(best))
        order = order[box_iou(boxes[best], boxes[order]) <= iou_threshold]
    return np.array(keep, dtype=np.int64)


def decode_detections(
    raw: np.ndarray,
    box: Letterbox,
    image_size: tuple[int, int],
    conf_threshold: float = YOLO_CONF_THRESHOLD,
    iou_threshold: float = NMS_IOU_THRESHOLD,
    max_detections: int = MAX_DETECTIONS,
) -> Detections:
    """One image's raw YOLO-pose output -> its hands (``Detections``) in image px: the anchors
    scoring at least ``conf_threshold`` with a box of positive size, NMS, then back through the
    letterbox ``box``; boxes clipped to the image (``image_size`` = width, height), a box left empty dropped."""
    boxes, scores, kpts = pose_candidates(raw)
    ok = (scores >= conf_threshold) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, scores, kpts = boxes[ok], scores[ok], kpts[ok]
    keep = nms(boxes, scores, iou_threshold, max_detections)
    boxes, scores, kpts = boxes[keep], scores[keep], kpts[keep].copy()
    w, h = image_size
    boxes = box.to_image(boxes.reshape(-1, 2, 2)).reshape(-1, 4)
    boxes = np.clip(boxes, 0, np.array([w, h, w, h], dtype=np.float32))
    kpts[..., :2] = box.to_image(kpts[..., :2])
    real = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return Detections(boxes[real].astype(np.float32), scores[real].astype(np.float32), kpts[real].astype(np.float32))
