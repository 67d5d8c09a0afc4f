"""On-the-fly augmentation: one random affine warp (rotation, scale, translation, horizontal
mirror) applied to the image and its keypoints, then colour jitter and blur.

Keypoints are continuous px (pixel i spans [i, i+1)); OpenCV's warp maps pixel centres, so
points go through the warp as ``M @ (p - 0.5) + 0.5``. A mirrored hand keeps every keypoint's
identity (no index swap).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

BORDER_RGB = (0, 0, 0)  # what the warp brings in from outside the image; the runtime's letterbox pads with it too


@dataclass(frozen=True)
class AugmentConfig:
    """rotation_deg: ± max rotation; scale: (min, max) zoom; translate: ± max shift as a
    fraction of the side; flip: mirror probability; colour: jitter strength in [0, 1];
    blur: probability of a Gaussian blur."""

    rotation_deg: float = 30.0
    scale: tuple[float, float] = (0.75, 1.25)
    translate: float = 0.1
    flip: float = 0.5
    colour: float = 0.3
    blur: float = 0.1


def random_affine(cfg: AugmentConfig, size: int, rng: np.random.Generator) -> np.ndarray:
    """A 2×3 matrix mapping source pixel centres to destination pixel centres."""
    angle = rng.uniform(-cfg.rotation_deg, cfg.rotation_deg)
    scale = rng.uniform(*cfg.scale)
    centre = ((size - 1) / 2, (size - 1) / 2)
    m = cv2.getRotationMatrix2D(centre, angle, scale)
    m[:, 2] += rng.uniform(-cfg.translate, cfg.translate, size=2) * size
    if rng.random() < cfg.flip:
        mirror = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        m = mirror[:2] @ np.vstack([m, [0.0, 0.0, 1.0]])
    return m


def warp_keypoints(keypoints: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(K, 2) continuous px through a pixel-centre affine ``m`` (2×3)."""
    centres = keypoints - 0.5
    return (centres @ m[:, :2].T + m[:, 2]) + 0.5


def colour_jitter(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast and saturation, each by up to ±strength."""
    img = image.astype(np.float32)
    img *= 1 + rng.uniform(-strength, strength)  # brightness
    mean = img.mean()
    img = (img - mean) * (1 + rng.uniform(-strength, strength)) + mean  # contrast
    grey = img.mean(axis=2, keepdims=True)
    img = (img - grey) * (1 + rng.uniform(-strength, strength)) + grey  # saturation
    return np.clip(img, 0, 255).astype(np.uint8)


def augment(image: np.ndarray, keypoints: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 (S, S, 3) and keypoints (K, 2) px -> augmented copies (same shapes)."""
    size = image.shape[0]
    m = random_affine(cfg, size, rng)
    out = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=BORDER_RGB)
    kp = warp_keypoints(keypoints, m)
    if cfg.colour > 0:
        out = colour_jitter(out, cfg.colour, rng)
    if rng.random() < cfg.blur:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    return out, kp.astype(np.float32)
