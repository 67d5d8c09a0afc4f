"""Augmentation for the conditions users meet, one set of operations for training and for the
robustness stage (which applies each one alone, at a fixed strength, to val images).

Geometry: one affine warp (rotation, scale, translation, mirror) applied to the image and its
keypoints. Keypoints are continuous px (pixel i spans [i, i+1)); OpenCV's warp maps pixel
centres, so points go through the warp as ``M @ (p - 0.5) + 0.5``. A mirrored hand keeps every
keypoint's identity (no index swap). Photometry and sensor: colour jitter, low light, gamma,
Gaussian blur, motion blur, low resolution (a small hand's few pixels, enlarged to the crop as
the tracker enlarges a far hand's ROI), sensor noise, JPEG artefacts. Occlusion: a rectangle of noise or
colour over part of the hand (the keypoints under it keep their labels). Every operation takes
its randomness from the ``rng`` it is given, so a sample is a function of its seed.

Like the tracker's crops (``handkp.data.crops``): instead of the whole-image warp, a sample can
be the crop of a ROI of its hand as the tracker places it (from a detector-like box, or from the
hand's keypoints, turned upright), jittered as tracking leaves it (the hand moved since the frame
the ROI came from); and another hand of the split can be pasted beside, over or behind the hand
before the geometry, so that crops show neighbours (the targets stay the centred hand's).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from ..core.geometry import keypoint_box
from ..core.images import BORDER_RGB
from ..core.roi import Roi, palm_size, roi_from_keypoints
from .crops import detector_roi, has_palm, paste_hand

# Draws another hand for ``augment`` from the sample's rng, its palm at least the given size
# (px) where the split has such hands: (image (S, S, 3) uint8, keypoints (21, 2) px, visible
# (21,) bool) of a hand with a palm (``has_palm``), or None when there is none.
Donor = Callable[[np.random.Generator, float], tuple[np.ndarray, np.ndarray, np.ndarray] | None]
OTHER_HAND_BEHIND = 0.5  # the pasted hand lies behind the hand (else in front of it)
# A pasted hand is enlarged by at most this much where the split has hands large enough: more
# would make it blurrier than the hand, a cue that tells the two apart.
OTHER_HAND_MAX_ZOOM = 1.25


@dataclass(frozen=True)
class AugmentConfig:
    """Geometry: rotation_deg ± max rotation; scale (min, max) zoom (0.5: half the side);
    translate ± max shift as a fraction of the side; flip mirror probability.
    Photometry (each a probability unless said): colour jitter strength in [0, 1]; gamma
    (range in ``gamma_range``); low_light (brightness × ``low_light_range``); blur (Gaussian);
    motion_blur; noise (Gaussian sensor noise, σ in ``noise_sigma`` grey levels); jpeg (quality in
    ``jpeg_quality``); occlusion (a rectangle covering ``occlusion_area`` of the hand box);
    low_resolution (the sample seen at a side drawn log-uniform in ``low_resolution_side`` px, its
    noise and JPEG at that side, then enlarged back: a hand far from the camera, whose tracker ROI
    spans that many frame px).
    Tracker-like crops (``random_crop``): crop, probability of a ROI crop in place of the
    whole-image warp; crop_from_box, of such a ROI coming from a detector-like box (else from
    the keypoints, upright); crop_shift ± centre shift, fraction of the ROI's side; crop_scale
    (min, max) factor on the side (log-uniform); crop_angle_deg ± turn. Other hands
    (``random_paste``): other_hand, probability; other_hand_scale (min, max) its palm size / the
    hand's (log-uniform); other_hand_distance (min, max) palm centre to palm centre, in hand
    sizes (the longer side of the hand's labelled keypoints' extent)."""

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
    low_resolution: float = 0.0
    low_resolution_side: tuple[int, int] = (40, 160)
    crop: float = 0.0
    crop_from_box: float = 0.3
    crop_shift: float = 0.15
    crop_scale: tuple[float, float] = (0.8, 1.25)
    crop_angle_deg: float = 20.0
    other_hand: float = 0.0
    other_hand_scale: tuple[float, float] = (0.7, 1.4)
    other_hand_distance: tuple[float, float] = (0.3, 1.0)

    def __post_init__(self) -> None:
        for key in ("crop", "crop_from_box", "other_hand", "low_resolution"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"train.augment.{key} = {getattr(self, key)}: expected a probability in [0, 1]")
        for key in ("crop_scale", "other_hand_scale", "other_hand_distance", "low_resolution_side"):
            low, high = getattr(self, key)
            if not 0.0 <= low <= high or (key != "other_hand_distance" and low == 0.0):
                raise ValueError(f"train.augment.{key} = {getattr(self, key)}: expected [low, high], 0 < low <= high")
        if self.crop_shift < 0 or self.crop_angle_deg < 0:
            raise ValueError(
                f"train.augment.crop_shift = {self.crop_shift}, crop_angle_deg = {self.crop_angle_deg}: "
                "expected amplitudes >= 0"
            )

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
    return mirrored(m, size) if mirror else m


def mirrored(m: np.ndarray, size: int) -> np.ndarray:
    """The warp ``m`` (2×3) followed by a horizontal mirror of its ``size`` × ``size`` output."""
    flip = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0]])
    return flip @ np.vstack([m, [0.0, 0.0, 1.0]])


def log_uniform(bounds: tuple[float, float], rng: np.random.Generator) -> float:
    """A factor drawn uniformly in log between ``bounds`` (low, high > 0)."""
    return float(np.exp(rng.uniform(*np.log(bounds))))


def random_affine(cfg: AugmentConfig, size: int, rng: np.random.Generator) -> np.ndarray:
    """The training warp: rotation, scale, translation and mirror drawn from ``cfg``."""
    angle = rng.uniform(-cfg.rotation_deg, cfg.rotation_deg)
    scale = rng.uniform(*cfg.scale)
    shift = rng.uniform(-cfg.translate, cfg.translate, size=2) * size
    return affine(size, angle, scale, (shift[0], shift[1]), bool(rng.random() < cfg.flip))


def random_roi(cfg: AugmentConfig, keypoints: np.ndarray, visible: np.ndarray, rng: np.random.Generator) -> Roi:
    """A tracker's ROI of the hand (keypoints (21, 2) px, visible (21,) bool): with probability
    ``crop_from_box`` (always when the hand has no usable palm, ``has_palm``) a new hand's, from a
    detector-like box (angle 0), else a followed hand's, from its keypoints (upright); then
    jittered as tracking leaves it: the centre shifted by ± ``crop_shift`` × the side along x
    and y, the side × a factor in ``crop_scale``, the angle turned by ± ``crop_angle_deg``."""
    from_box = happens(cfg.crop_from_box, rng) or not has_palm(keypoints, visible)
    roi = detector_roi(keypoints, visible) if from_box else roi_from_keypoints(keypoints)
    dx, dy = rng.uniform(-cfg.crop_shift, cfg.crop_shift, size=2) * roi.size
    factor = log_uniform(cfg.crop_scale, rng)
    turn = math.radians(rng.uniform(-cfg.crop_angle_deg, cfg.crop_angle_deg))
    return Roi(roi.cx + float(dx), roi.cy + float(dy), roi.size * factor, roi.angle + turn)


def random_crop(
    cfg: AugmentConfig, keypoints: np.ndarray, visible: np.ndarray, size: int, rng: np.random.Generator
) -> np.ndarray:
    """The tracker-like warp (2×3, pixel centres): the ``size`` crop of ``random_roi``, mirrored
    with probability ``flip``."""
    m = random_roi(cfg, keypoints, visible, rng).matrix(size)
    return mirrored(m, size) if rng.random() < cfg.flip else m


def random_paste(
    cfg: AugmentConfig,
    image: np.ndarray,
    keypoints: np.ndarray,
    visible: np.ndarray,
    donor: Donor,
    rng: np.random.Generator,
) -> np.ndarray:
    """``image`` with another hand from ``donor`` pasted (``paste_hand``; the image as it was when
    the donor has none): its palm ``other_hand_scale`` × the hand's (``has_palm``), turned by
    any angle, its palm centre ``other_hand_distance`` hand sizes from the hand's in any
    direction, behind the hand with probability ``OTHER_HAND_BEHIND``, else in front of it."""
    scale = log_uniform(cfg.other_hand_scale, rng)
    other = donor(rng, scale * palm_size(keypoints) / OTHER_HAND_MAX_ZOOM)
    if other is None:
        return image
    box = keypoint_box(keypoints, visible)
    distance = rng.uniform(*cfg.other_hand_distance) * float(max(box[2] - box[0], box[3] - box[1]))
    direction, angle = rng.uniform(-math.pi, math.pi, size=2)
    offset = (distance * math.cos(direction), distance * math.sin(direction))
    return paste_hand(image, keypoints, visible, other, scale, offset, float(angle), rng.random() < OTHER_HAND_BEHIND)


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


def resized(image: np.ndarray, side: int) -> np.ndarray:
    """The square ``image`` at ``side`` × ``side`` px: averaged down (``INTER_AREA``), enlarged
    bilinearly; the same array where it already has that side. Continuous px scale with the image
    (pixel i spans [i, i + 1) at either side), so a round trip leaves the keypoints where they were."""
    if image.shape[0] == side:
        return image
    flags = cv2.INTER_AREA if side < image.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(image, (side, side), interpolation=flags)


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
    image: np.ndarray,
    keypoints: np.ndarray,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    visible: np.ndarray | None = None,
    donor: Donor | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 (S, S, 3) and keypoints (K, 2) px -> augmented copies (same shapes): another
    hand pasted in (``other_hand``, from ``donor``; a hand without a palm, ``has_palm``, gets none),
    the warp (a tracker-like crop with probability ``crop``, else the whole-image warp), then
    occlusion, then the photometric and sensor operations in the order a camera applies them
    (scene light, optics, sensor, compression), with ``low_resolution`` the sensor's and the
    compression's at the low side, the result enlarged back last, as the tracker's crop does.
    ``visible`` (K,) bool: the labelled keypoints (None: all). Switched off (probability 0), the
    new operations draw nothing from ``rng``."""
    labelled = np.ones(len(keypoints), dtype=bool) if visible is None else np.asarray(visible, dtype=bool)
    if donor is not None and happens(cfg.other_hand, rng) and has_palm(keypoints, labelled):
        image = random_paste(cfg, image, keypoints, labelled, donor, rng)
    size = image.shape[0]
    m = random_crop(cfg, keypoints, labelled, size, rng) if happens(cfg.crop, rng) else random_affine(cfg, size, rng)
    out, kp = warp(image, keypoints, m)
    if happens(cfg.occlusion, rng):
        out = occlude(out, kp, rng.uniform(*cfg.occlusion_area), rng)
    if cfg.colour > 0:
        out = colour_jitter(out, cfg.colour, rng)
    if happens(cfg.low_light, rng):
        out = dim(out, rng.uniform(*cfg.low_light_range))
    if happens(cfg.gamma, rng):
        out = adjust_gamma(out, log_uniform(cfg.gamma_range, rng))
    if happens(cfg.blur, rng):
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.5))
    if happens(cfg.motion_blur, rng):
        out = motion_blur(out, int(rng.choice([5, 7, 9, 11])), rng.uniform(0, 180))
    if happens(cfg.low_resolution, rng):
        out = resized(out, round(log_uniform(cfg.low_resolution_side, rng)))
    if happens(cfg.noise, rng):
        out = sensor_noise(out, rng.uniform(*cfg.noise_sigma), rng)
    if happens(cfg.jpeg, rng):
        out = jpeg_artefacts(out, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    return resized(out, size), kp


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
