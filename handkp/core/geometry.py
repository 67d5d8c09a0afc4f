"""Plane geometry of keypoints and boxes: bounding boxes, their IoU, and the affines that move
points and pixels (the tracker's ROIs, the benchmark's clips, the detector's NMS). numpy only.

Conventions (the project's, ``docs/architecture.md``): points are continuous px, x right, y down,
pixel i spanning [i, i + 1). An *affine* (2, 3) ``[A | t]`` maps continuous points, p' = A p + t.
An OpenCV warp matrix (``cv2.warpAffine``) maps pixel *centres* (index i is the point i + 0.5),
so a point goes through a warp matrix ``m`` as ``m @ (p - 0.5) + 0.5`` (``warp_points``), and a
continuous affine becomes a warp matrix by ``pixel_matrix``. A box is x0, y0, x1, y1 px (…, 4).
R(a) = [[cos a, -sin a], [sin a, cos a]]: positive a turns clockwise on screen (y down).
"""

from __future__ import annotations

import math

import numpy as np


def keypoint_box(points: np.ndarray, visible: np.ndarray | None = None, dtype=None) -> np.ndarray:
    """(4,) x0, y0, x1, y1: the extent of points (K, 2) px; ``visible`` (K,) bool: of those
    points only (of all of them where none is visible). ``dtype``: of the result (None: the
    points' own)."""
    p = np.asarray(points)
    if visible is not None and np.any(visible):
        p = p[np.asarray(visible, dtype=bool)]
    box = np.concatenate([p.min(0), p.max(0)])
    return box if dtype is None else box.astype(dtype)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Intersection over union of boxes x0, y0, x1, y1 (…, 4), broadcast against each other: of two
    boxes (4,) a float, of one box and boxes (n, 4) an (n,) array; 0 where the union is empty."""
    a, b = np.asarray(a), np.asarray(b)
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    union = (
        (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter
    )
    return inter / np.where(union > 0, union, np.inf)


def rotation(angle: float, scale: float = 1.0) -> np.ndarray:
    """(2, 2) float64: ``scale`` · R(``angle``), angle in radians."""
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    return np.array([[cos, -sin], [sin, cos]])


def similarity(
    scale: float, angle: float, centre: np.ndarray, position: np.ndarray, pixel_centres: bool = False
) -> np.ndarray:
    """(2, 3) float64: the affine p' = scale R(angle) (p - centre) + position on continuous px
    (``centre``, ``position``: (2,) px; position may be one number for both axes).
    ``pixel_centres``: the same map as a warp matrix on pixel indices, its offset
    A (0.5 - centre) + position - 0.5 computed directly (``pixel_matrix`` of the continuous
    affine is the same map, rounded otherwise in the last bit)."""
    linear = rotation(angle, scale)
    centre = np.asarray(centre, dtype=np.float64)
    if pixel_centres:
        offset = linear @ (0.5 - centre) + position - 0.5
    else:
        offset = position - linear @ centre
    return np.hstack([linear, np.asarray(offset, dtype=np.float64)[:, None]])


def pixel_matrix(affine: np.ndarray) -> np.ndarray:
    """(2, 3) float64: a continuous-point affine (p' = A p + t) as a warp matrix on pixel indices
    (index i is the point i + 0.5): t' = t + A·(0.5, 0.5) - 0.5."""
    a = np.asarray(affine, dtype=np.float64)
    return np.hstack([a[:, :2], (a[:, 2] + a[:, :2] @ [0.5, 0.5] - 0.5)[:, None]])


def map_points(affine: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(…, 2) points through an affine (2, 3): p @ A.T + t, in the points' and the affine's
    common dtype."""
    return np.asarray(points) @ affine[:, :2].T + affine[:, 2]


def warp_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(…, 2) float64: continuous px through a warp matrix on pixel centres (2, 3), as OpenCV
    moves the pixels: ``matrix @ (p - 0.5) + 0.5``."""
    return map_points(matrix, np.asarray(points, dtype=np.float64) - 0.5) + 0.5
