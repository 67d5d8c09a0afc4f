"""Rotated square regions of interest: where in a frame the keypoint model looks for one hand.

Conventions (the project's, ``docs/architecture.md``): points are continuous px, x right, y down,
pixel i spanning [i, i + 1); an OpenCV warp matrix maps pixel *centres* (index i is the point
i + 0.5), so a point goes through a warp matrix ``m`` (2×3) as ``m @ (p - 0.5) + 0.5``.

A ``Roi`` is a square of side ``size`` px centred at (cx, cy) in the frame, turned by ``angle``
(radians): the rotation that makes the hand upright. Its crop (S × S px) is the frame rotated by
``angle`` about the centre (positive: clockwise on screen, y being down) and scaled by S / size, so
continuous frame px p land at ``q = (S / size) · R(angle) · (p - centre) + S / 2`` with
R(a) = [[cos a, -sin a], [sin a, cos a]]: the ROI's centre at the crop's centre, its sides on the
crop's borders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .geometry import keypoint_box, rotation, similarity, warp_points
from .images import BORDER_RGB, check_rgb
from .keypoints import IMAGE_SIZE

# The palm: the wrist and the four finger MCPs (MediaPipe's stable landmarks; no fingertips),
# which move little as the fingers bend. The hand's axis runs from the wrist to the middle MCP.
PALM_KEYPOINTS = (0, 5, 9, 13, 17)
WRIST, MIDDLE_MCP = 0, 9

# Defaults measured on the training labels (data/prepared/keypoints.parquet, 22k hands): the
# whole hand spans a median 2.0 × the palm's extent and its centre lies 0.48 palm extents beyond
# the palm's centre towards the fingers. A side of 3.5 palm extents, shifted 0.5, holds 99 % of
# the labelled hands whole, the hand spanning a median 57 % of the crop (the dataset's own framing:
# 48 %). A detector's box (the hand's, ~1.2 × its keypoints' extent) enlarged 1.6 frames it alike.
PALM_SCALE = 3.5
PALM_SHIFT = 0.5
BOX_SCALE = 1.6
DETECTOR_BOX_SCALE = 1.2  # a detector's box / the hand's keypoint extent (``detector_box``)


@dataclass(frozen=True)
class Roi:
    """cx, cy: the centre, frame px; size: the side, frame px (> 0); angle: radians, the rotation
    that makes the hand upright in the crop (0: the hand already points up, towards -y)."""

    cx: float
    cy: float
    size: float
    angle: float

    def matrix(self, out_size: int = IMAGE_SIZE) -> np.ndarray:
        """(2, 3) float64 affine for ``cv2.warpAffine``: frame pixel (index) -> crop pixel (index)
        of an ``out_size`` × ``out_size`` crop. Continuous points: ``to_crop`` / ``to_frame``."""
        # q = (S / size) R(angle) (p - c) + S/2 on continuous px, as a warp matrix on pixel indices.
        return similarity(out_size / self.size, self.angle, (self.cx, self.cy), out_size / 2, pixel_centres=True)


def to_crop(roi: Roi, points: np.ndarray, out_size: int = IMAGE_SIZE) -> np.ndarray:
    """(…, 2) frame px -> (…, 2) float32 px in the ROI's ``out_size`` crop."""
    return warp_points(roi.matrix(out_size), points).astype(np.float32)


def to_frame(roi: Roi, points: np.ndarray, out_size: int = IMAGE_SIZE) -> np.ndarray:
    """(…, 2) px in the ROI's ``out_size`` crop (e.g. the model's keypoints) -> (…, 2) float32
    frame px: the exact inverse of ``to_crop``. NaN stays NaN."""
    return warp_points(cv2.invertAffineTransform(roi.matrix(out_size)), points).astype(np.float32)


def crop(frame: np.ndarray, rois: list[Roi], out_size: int = IMAGE_SIZE) -> np.ndarray:
    """(N, S, S, 3) uint8: each ROI of an RGB uint8 (H, W, 3) frame, upright, S = ``out_size``;
    what lies outside the frame is ``BORDER_RGB``. One ``cv2.warpAffine`` (bilinear) per ROI."""
    check_rgb(frame, "frame")
    out = np.empty((len(rois), out_size, out_size, 3), dtype=np.uint8)
    for i, roi in enumerate(rois):
        out[i] = cv2.warpAffine(
            frame,
            roi.matrix(out_size),
            (out_size, out_size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=BORDER_RGB,
        )
    return out


def roi_from_box(x0: float, y0: float, x1: float, y1: float, scale: float = BOX_SCALE) -> Roi:
    """The square about a detector's box (x0, y0, x1, y1 frame px, x0 < x1, y0 < y1), its side the
    box's longer side × ``scale``; angle 0 (a box says nothing of the hand's rotation)."""
    side = max(x1 - x0, y1 - y0) * scale
    if not (math.isfinite(side) and side > 0 and x1 > x0 and y1 > y0):
        raise ValueError(f"expected a box x0 < x1, y0 < y1 and scale > 0, got {(x0, y0, x1, y1)}, scale {scale}")
    return Roi((x0 + x1) / 2, (y0 + y1) / 2, side, 0.0)


def detector_box(keypoints: np.ndarray, visible: np.ndarray | None = None) -> np.ndarray:
    """(4,) float64 x0, y0, x1, y1: a hand's box as a detector frames it, the extent of its
    (visible) keypoints (21, 2) px ``DETECTOR_BOX_SCALE`` x as large about its centre (what the
    multihand stage's label boxes stand in with, and where training's new-hand crops are placed)."""
    box = keypoint_box(keypoints, visible).astype(np.float64)
    centre, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) * DETECTOR_BOX_SCALE / 2
    return np.concatenate([centre - half, centre + half])


def _upright_palm(keypoints: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(angle, palm, rotation): the angle that turns the wrist -> middle-MCP axis up (-y), the palm
    keypoints so turned about the wrist (5, 2) and that rotation R(angle) (2, 2)."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.shape != (21, 2) or not np.isfinite(kp[list(PALM_KEYPOINTS)]).all():
        raise ValueError(f"expected keypoints (21, 2) with finite palm keypoints, got shape {kp.shape}")
    dx, dy = kp[MIDDLE_MCP] - kp[WRIST]
    angle = math.remainder(-math.pi / 2 - math.atan2(dy, dx), 2 * math.pi)
    turn = rotation(angle)
    return angle, (kp[list(PALM_KEYPOINTS)] - kp[WRIST]) @ turn.T, turn


def palm_size(keypoints: np.ndarray) -> float:
    """px: the longer side of the palm keypoints' extent with the hand upright (a hand's scale
    that does not change as the fingers bend or the hand turns in the image plane)."""
    _, palm, _ = _upright_palm(keypoints)
    return float((palm.max(0) - palm.min(0)).max())


def roi_from_keypoints(
    keypoints: np.ndarray, scale: float = PALM_SCALE, shift: float = PALM_SHIFT, upright: bool = True
) -> Roi:
    """The ROI of a hand from its keypoints (21, 2) frame px (MediaPipe's landmarks-to-ROI): turned
    so that the wrist -> middle-MCP axis points up in the crop (``upright``; else the same square,
    not turned: angle 0); the side ``scale`` × the palm's extent (``palm_size``); the centre the
    palm's centre moved ``shift`` × that extent towards the fingers. Only the palm keypoints
    (``PALM_KEYPOINTS``) count, so a bent finger moves nothing."""
    angle, palm, turn = _upright_palm(keypoints)
    lo, hi = palm.min(0), palm.max(0)
    extent = float((hi - lo).max())
    if not (extent > 0 and scale > 0):
        raise ValueError(f"a palm of extent {extent} px with scale {scale}: no ROI")
    centre_upright = (lo + hi) / 2 - np.array([0.0, shift * extent])
    cx, cy = np.asarray(keypoints, dtype=np.float64)[WRIST] + centre_upright @ turn  # R^T back to the frame
    return Roi(float(cx), float(cy), extent * scale, angle if upright else 0.0)
