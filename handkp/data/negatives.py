"""Hand-free images for training (all-zero heatmap targets), so that the heatmap peaks can serve
as a presence score: a frame without a hand should give no confident peak.

The dataset has one hand per image on a plain background, so a hand-free image is cut from the
background around the hand: the largest square outside the hand's box (enlarged), resized to
the full side. When the hand fills the frame, a synthetic background stands in: a smooth colour
gradient with sensor noise and a few flat shapes (edges and blobs, but no hand).
"""

from __future__ import annotations

import cv2
import numpy as np

from .augment import hand_box

MARGIN = 0.15  # the hand's box is enlarged by this fraction of its side on every edge
MIN_CROP_PX = 24  # smaller background squares give a synthetic background instead


def background_crop(image: np.ndarray, keypoints: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """The largest square of ``image`` outside the hand's enlarged box, at a random place along
    its strip, resized to the image side; None when no square of ``MIN_CROP_PX`` fits."""
    size = image.shape[0]
    x0, y0, x1, y1 = hand_box(keypoints, size)
    mx, my = MARGIN * (x1 - x0), MARGIN * (y1 - y0)
    x0, y0 = int(max(0, x0 - mx)), int(max(0, y0 - my))
    x1, y1 = int(min(size, np.ceil(x1 + mx))), int(min(size, np.ceil(y1 + my)))
    strips = [(0, 0, x0, size), (x1, 0, size, size), (0, 0, size, y0), (0, y1, size, size)]  # (xa, ya, xb, yb)
    best = max(strips, key=lambda s: min(s[2] - s[0], s[3] - s[1]))
    xa, ya, xb, yb = best
    side = min(xb - xa, yb - ya)
    if side < MIN_CROP_PX:
        return None
    ox = xa + int(rng.integers(0, xb - xa - side + 1))
    oy = ya + int(rng.integers(0, yb - ya - side + 1))
    return cv2.resize(image[oy : oy + side, ox : ox + side], (size, size), interpolation=cv2.INTER_LINEAR)


def synthetic_background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth two-colour gradient at a random angle, a few flat rectangles and ellipses, noise."""
    c0, c1 = rng.integers(0, 256, size=(2, 3)).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    t = np.clip((np.cos(angle) * xx + np.sin(angle) * yy + 1) / 2, 0, 1)[..., None]
    img = (c0 * (1 - t) + c1 * t).astype(np.uint8)
    for _ in range(int(rng.integers(0, 4))):
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        p = rng.integers(0, size, size=4)
        if rng.random() < 0.5:
            cv2.rectangle(img, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), colour, -1)
        else:
            axes = (int(rng.integers(4, size // 3)), int(rng.integers(4, size // 3)))
            cv2.ellipse(img, (int(p[0]), int(p[1])), axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
    noise = rng.standard_normal(img.shape, dtype=np.float32) * rng.uniform(0, 8)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def hand_free_image(image: np.ndarray, keypoints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A hand-free RGB uint8 image of ``image``'s size: its background when there is room, else
    a synthetic one (keypoints (K, 2) px locate the hand to avoid)."""
    crop = background_crop(image, keypoints, rng)
    return crop if crop is not None else synthetic_background(image.shape[0], rng)
