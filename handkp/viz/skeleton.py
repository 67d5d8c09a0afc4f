"""Drawing a hand on an image: `draw_skeleton` is the one place that does it (OpenCV, so it works
on video frames too); the report's figures and the live app both use it. Needs numpy and OpenCV
only (no matplotlib, no polars)."""

from __future__ import annotations

import numpy as np

from handkp.core.keypoints import NUM_KEYPOINTS, SKELETON

from .colors import HEATMAP_COLOR


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return (int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16))


_SHIFT = 4  # OpenCV fixed-point bits: sub-pixel drawing


def _cv_point(xy: np.ndarray) -> tuple[int, int]:
    # Keypoints are continuous coordinates where the image spans [0, W); OpenCV's integer
    # coordinates are pixel centres, i.e. continuous (i + 0.5).
    p = np.round((xy - 0.5) * (1 << _SHIFT)).astype(np.int64)
    return int(p[0]), int(p[1])


def draw_skeleton(
    rgb: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray | None = None,
    color: tuple[int, int, int] | str = HEATMAP_COLOR,
    *,
    min_score: float = 0.0,
    thickness: int = 2,
    radius: int = 3,
    alpha: float = 1.0,
) -> np.ndarray:
    """Draw the hand skeleton (`handkp.core.keypoints.SKELETON`) on a copy of an RGB uint8 image.

    keypoints: (21, 2) px in the image's own pixel frame (continuous, image spans [0, W));
    scores: (21,) or None; a keypoint with a score below `min_score`, or NaN coordinates, is
    skipped with its edges. colour: RGB tuple (0-255) or "#rrggbb". alpha < 1 blends the drawing
    into the image (faint ground truth). Returns the new image; the input is left untouched.
    """
    img = np.ascontiguousarray(rgb, dtype=np.uint8).copy()
    import cv2

    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    if kp.shape[0] != NUM_KEYPOINTS:
        raise ValueError(f"expected ({NUM_KEYPOINTS}, 2) keypoints, got {kp.shape}")
    ok = np.all(np.isfinite(kp), axis=1)
    if scores is not None:
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        ok &= np.isfinite(s) & (s >= min_score)
    rgb_color = hex_to_rgb(color) if isinstance(color, str) else tuple(int(c) for c in color)
    overlay = img.copy() if alpha < 1.0 else img
    for a, b in SKELETON:
        if ok[a] and ok[b]:
            cv2.line(overlay, _cv_point(kp[a]), _cv_point(kp[b]), rgb_color, thickness, cv2.LINE_AA, _SHIFT)
    outline = (0, 0, 0) if sum(rgb_color) > 3 * 60 else (255, 255, 255)
    for i in np.flatnonzero(ok):
        c = _cv_point(kp[i])
        cv2.circle(overlay, c, (radius + 1) << _SHIFT, outline, -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(overlay, c, radius << _SHIFT, rgb_color, -1, cv2.LINE_AA, _SHIFT)
    if alpha < 1.0:
        img = cv2.addWeighted(overlay, float(alpha), img, 1.0 - float(alpha), 0.0)
    return img
