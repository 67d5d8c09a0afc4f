"""Augmentation for the conditions users meet, one set of operations for training and for the
robustness stage (which applies each one alone, at a fixed strength, to val images).

Geometry: one affine warp (rotation, scale, translation, mirror) applied to the image and its
keypoints. Keypoints are continuous px (pixel i spans [i, i+1)); OpenCV's warp maps pixel
centres, so points go through the warp as ``M @ (p - 0.5) + 0.5``. A mirrored hand keeps every
keypoint's identity (no index swap). Photometry and sensor: colour jitter, low light, gamma,
Gaussian blur, motion blur, sensor noise, JPEG artefacts. Occlusion: a rectangle of noise or
colour over part of the hand (the keypoints under it keep their labels). Every operation takes
its randomness from the ``rng`` it is given, so a sample is a function of its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..core.images import BORDER_RGB


@dataclass(frozen=True)
class AugmentConfig:
    """Geometry: rotation_deg ± max rotation; scale (min, max) zoom (0.5: half the side);
    translate ± max shift as a fraction of the side; flip mirror probability.
    Photometry (each a probability unless said): colour jitter strength in [0, 1]; gamma
    (range in ``gamma_range``); low_light (brightness × ``low_light_range``); blur (Gaussian);
    motion_blur; noise (Gaussian sensor noise, σ in ``noise_sigma`` grey levels); jpeg (quality in
    ``jpeg_quality``); occlusion (a rectangle covering ``occlusion_area`` of the hand box)."""

    rotation_deg: float = 30.0
    scale: tuple[float, float] = (0.75, 1.25)
    translate: float = 0.1
    flip: float = 0.5
    colour: float = 0.3
    blur: float = 0.1
    gamma: float = 0.0
    gamma_range: tuple[float, float] = (0.5, 2.0)
    low_light: float = 0.0
    low_light_range: tuple[float, float] = (0.2, 0.6)
    motion_blur: float = 0.0
    noise: float = 0.0
    noise_sigma: tuple[float, float] = (3.0, 20.0)
    jpeg: float = 0.0
    jpeg_quality: tuple[int, int] = (15, 75)
    occlusion: float = 0.0
    occlusion_area: tuple[float, float] = (0.1, 0.35)

    @classmethod
    def from_params(cls, section: dict) -> "AugmentConfig":
        """From ``train.augment`` (lists become tuples; unknown keys are refused by the dataclass)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in section.items()})


# ---- geometry ---------------------------------------------------------------------------------
def affine(
    size: int, angle_deg: float = 0.0, scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0), mirror: bool = False
) -> np.ndarray:
    """A 2×3 matrix mapping source pixel centres to destination pixel centres: rotation by
    ``angle_deg`` (counter-clockwise) and zoom about the image centre, a shift in px, then an
    optional horizontal mirror."""
    centre = ((size - 1) / 2, (size - 1) / 2)
    m = cv2.getRotationMatrix2D(centre, angle_deg, scale)
    m[:, 2] += shift
    if mirror:
        flip = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        m = flip[:2] @ np.vstack([m, [0.0, 0.0, 1.0]])
    return m


def random_affine(cfg: AugmentConfig, size: int, rng: np.random.Generator) -> np.ndarray:
    """The training warp: rotation, scale, translation and mirror drawn from ``cfg``."""
    angle = rng.uniform(-cfg.rotation_deg, cfg.rotation_deg)
    scale = rng.uniform(*cfg.scale)
    shift = rng.uniform(-cfg.translate, cfg.translate, size=2) * size
    return affine(size, angle, scale, (shift[0], shift[1]), bool(rng.random() < cfg.flip))


def warp_keypoints(keypoints: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(K, 2) continuous px through a pixel-centre affine ``m`` (2×3)."""
    centres = keypoints - 0.5
    return (centres @ m[:, :2].T + m[:, 2]) + 0.5


def warp(image: np.ndarray, keypoints: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image (S, S, 3) and keypoints (K, 2) px through the affine ``m``; outside is BORDER_RGB."""
    size = image.shape[0]
    out = cv2.warpAffine(
        image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=BORDER_RGB
    )
    return out, warp_keypoints(keypoints, m).astype(np.float32)


# ---- photometry and sensor --------------------------------------------------------------------
def colour_jitter(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast and saturation, each by up to ±strength."""
    img = image.astype(np.float32)
    img *= 1 + rng.uniform(-strength, strength)  # brightness
    mean = img.mean()
    img = (img - mean) * (1 + rng.uniform(-strength, strength)) + mean  # contrast
    grey = img.mean(axis=2, keepdims=True)
    img = (img - grey) * (1 + rng.uniform(-strength, strength)) + grey  # saturation
    return np.clip(img, 0, 255).astype(np.uint8)


def _lut(image: np.ndarray, table: np.ndarray) -> np.ndarray:
    return cv2.LUT(image, np.clip(table, 0, 255).astype(np.uint8))


def adjust_gamma(image: np.ndarray, gamma: float) -> np.ndarray:
    """out = 255 · (in / 255)^gamma: gamma > 1 darkens the mid-tones, < 1 brightens them."""
    return _lut(image, 255.0 * (np.arange(256) / 255.0) ** gamma)


def dim(image: np.ndarray, factor: float) -> np.ndarray:
    """Low light: every pixel value × ``factor`` (< 1)."""
    return _lut(image, np.arange(256) * factor)


def motion_blur(image: np.ndarray, length: int, angle_deg: float) -> np.ndarray:
    """A linear motion blur of ``length`` px (odd) along ``angle_deg``."""
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle_deg, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    return cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6), borderType=cv2.BORDER_REFLECT)


def sensor_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise of std ``sigma`` grey levels, independent per pixel and channel."""
    noise = rng.standard_normal(image.shape, dtype=np.float32) * sigma
    return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def jpeg_artefacts(image: np.ndarray, quality: int) -> np.ndarray:
    """The image after a JPEG round trip at ``quality`` (0–100)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) if ok else image


def hand_box(keypoints: np.ndarray, size: int) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) px: the keypoints' bounding box clipped to the image."""
    lo = np.clip(keypoints.min(axis=0), 0, size)
    hi = np.clip(keypoints.max(axis=0), 0, size)
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def occlude(image: np.ndarray, keypoints: np.ndarray, area: float, rng: np.random.Generator) -> np.ndarray:
    """A rectangle covering ``area`` of the hand box (aspect 0.5–2), centred inside the box,
    filled with a flat random colour or with noise."""
    size = image.shape[0]
    x0, y0, x1, y1 = hand_box(keypoints, size)
    bw, bh = max(x1 - x0, 8.0), max(y1 - y0, 8.0)
    aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
    w = min(size, np.sqrt(area * bw * bh * aspect))
    h = min(size, area * bw * bh / max(w, 1.0))
    cx, cy = rng.uniform(x0, x0 + bw), rng.uniform(y0, y0 + bh)
    xa, ya = int(np.clip(cx - w / 2, 0, size - 1)), int(np.clip(cy - h / 2, 0, size - 1))
    xb, yb = int(np.clip(cx + w / 2, xa + 1, size)), int(np.clip(cy + h / 2, ya + 1, size))
    out = image.copy()
    if rng.random() < 0.5:
        out[ya:yb, xa:xb] = rng.integers(0, 256, size=3, dtype=np.uint8)
    else:
        out[ya:yb, xa:xb] = rng.integers(0, 256, size=(yb - ya, xb - xa, 3), dtype=np.uint8)
    return out


# ---- the training augmentation ----------------------------------------------------------------
def happens(probability: float, rng: np.random.Generator) -> bool:
    """True with ``probability``; draws from ``rng`` only when the operation is switched on, so
    switching one off leaves every other operation's randomness as it was."""
    return probability > 0 and rng.random() < probability


def augment(
    image: np.ndarray, keypoints: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 (S, S, 3) and keypoints (K, 2) px -> augmented copies (same shapes): the warp,
    then occlusion, then the photometric and sensor operations in the order a camera applies
    them (scene light, optics, sensor, compression)."""
    out, kp = warp(image, keypoints, random_affine(cfg, image.shape[0], rng))
    if happens(cfg.occlusion, rng):
        out = occlude(out, kp, rng.uniform(*cfg.occlusion_area), rng)
    if cfg.colour > 0:
        out = colour_jitter(out, cfg.colour, rng)
    if happens(cfg.low_light, rng):
        out = dim(out, rng.uniform(*cfg.low_light_range))
    if happens(cfg.gamma, rng):
        out = adjust_gamma(out, float(np.exp(rng.uniform(*np.log(cfg.gamma_range)))))
    if happens(cfg.blur, rng):
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    if happens(cfg.motion_blur, rng):
        out = motion_blur(out, int(rng.choice([5, 7, 9, 11])), rng.uniform(0, 180))
    if happens(cfg.noise, rng):
        out = sensor_noise(out, rng.uniform(*cfg.noise_sigma), rng)
    if happens(cfg.jpeg, rng):
        out = jpeg_artefacts(out, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    return out, kp


# ---- the robustness conditions ----------------------------------------------------------------
def perturb(
    condition: str, image: np.ndarray, keypoints: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One named condition of ``CONDITIONS`` at its fixed strength (random parts, such as the
    occluder's place or the noise, from ``rng``); keypoints transformed exactly with the image."""
    size = image.shape[0]
    kind, value = CONDITIONS[condition]
    if kind == "rotate":
        return warp(image, keypoints, affine(size, angle_deg=value))
    if kind == "scale":
        return warp(image, keypoints, affine(size, scale=value))
    if kind == "shift":
        return warp(image, keypoints, affine(size, scale=0.75, shift=(value * size, value * size)))
    if kind == "mirror":
        return warp(image, keypoints, affine(size, mirror=True))
    ops = {
        "low_light": lambda: dim(image, value),
        "gamma": lambda: adjust_gamma(image, value),
        "noise": lambda: sensor_noise(image, value, rng),
        "motion_blur": lambda: motion_blur(image, int(value), 30.0),
        "jpeg": lambda: jpeg_artefacts(image, int(value)),
        "occlusion": lambda: occlude(image, keypoints, value, rng),
        "none": lambda: image,
    }
    return ops[kind](), keypoints.astype(np.float32)


# name -> (operation, strength): each applied alone to val images by the robustness stage.
CONDITIONS: dict[str, tuple[str, float]] = {
    "clean": ("none", 0.0),
    "rotation_45": ("rotate", 45.0),
    "rotation_90": ("rotate", 90.0),
    "rotation_180": ("rotate", 180.0),
    "half_size": ("scale", 0.5),
    "shifted": ("shift", 0.15),
    "mirrored": ("mirror", 0.0),
    "low_light": ("low_light", 0.3),
    "gamma_2": ("gamma", 2.0),
    "noise_15": ("noise", 15.0),
    "motion_blur_9": ("motion_blur", 9.0),
    "jpeg_20": ("jpeg", 20.0),
    "occlusion_25": ("occlusion", 0.25),
}
