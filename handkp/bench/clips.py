"""Synthetic videos with several hands, for the ``multihand`` benchmark: real hands of val images
(never train) pasted with a soft edge onto a larger frame, each scaled, turned and moving on a
smooth path, with the labels moved by the very affine that moves the pixels.

    clips = make_clips(pixels, keypoints, names, seed, n_clips=12, frames=60)
    rgb = clips[0].frame(5)                  # (480, 640, 3) uint8, rendered on demand
    truth = clips[0].truth[5]                # [FrameHand]: identity, keypoints frame px, scale, affine

- **Hands per clip**: clip c holds ``c % (max_hands + 1)`` hands (so every count from 0 to
  ``max_hands`` is met, clip 0 none at all); each hand enters and leaves at a seeded frame, so
  clips also have hand-free frames at their start or end.
- **A hand**: its source image warped by ``affine`` (source px -> frame px, continuous:
  ``p' = s R(θ) (p - c) + position``) where s (the hand's scale, 0.4–1.2), θ and the position
  change smoothly over the clip; its soft mask: the keypoints' box (labelled ones) × 1.3 plus a
  margin, feathered. Hand k of n keeps to the k-th of n columns of the frame, mostly.
- **Background**: per clip, a crop of another val image's area outside its hand's box, enlarged to
  the frame and blurred, or (``gradient_share`` of clips, and where that area is too small) a
  linear colour gradient. Seeded: ``np.random.default_rng([seed, clip])``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..core.geometry import keypoint_box, map_points, pixel_matrix, similarity

BOX_MARGIN = 1.3  # the mask's box: the keypoints' box, this much larger ...
MASK_PAD_PX = 8.0  # ... plus this many source px each side ...
FEATHER_PX = 4.0  # ... with an edge blurred over this many source px (Gaussian sigma)
SCALE_RANGE = (0.4, 1.2)
MIN_STRIP_PX = 40  # a background strip narrower than this: a gradient instead
BACKGROUND_BLUR = 9.0  # px, Gaussian sigma of the enlarged background crop


@dataclass(frozen=True)
class FrameHand:
    """One true hand in one frame: identity (its index in the clip's ``sources``); keypoints (21,
    2) float64 frame px; visible (21,): labelled and inside the frame; scale: frame px per source
    px; affine (2, 3): source px -> frame px, continuous points."""

    identity: int
    keypoints: np.ndarray
    visible: np.ndarray
    scale: float
    affine: np.ndarray

    def box(self) -> np.ndarray:
        """(4,) x0, y0, x1, y1 of the visible keypoints (all of them where none is visible)."""
        return keypoint_box(self.keypoints, self.visible)


@dataclass
class Clip:
    """A synthetic video: ``frame(i)`` renders frame i (RGB uint8, frame_size = width, height);
    ``truth[i]`` its hands; ``sources`` the val image of each identity; ``images`` / ``masks``
    the source pixels and soft masks (None for a truth-only clip, as tests build)."""

    index: int
    frame_size: tuple[int, int]
    background: np.ndarray | None
    sources: list[str]
    truth: list[list[FrameHand]]
    images: list[np.ndarray] | None = None
    masks: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.truth)

    def frame(self, i: int) -> np.ndarray:
        out = self.background.astype(np.float32)
        w, h = self.frame_size
        for hand in self.truth[i]:
            m = pixel_matrix(hand.affine)
            rgb = cv2.warpAffine(
                self.images[hand.identity], m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            ).astype(np.float32)
            alpha = cv2.warpAffine(
                self.masks[hand.identity],
                m,
                (w, h),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=0.0,
            )[..., None]
            out = out * (1 - alpha) + rgb * alpha
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def soft_mask(box: np.ndarray, side: int) -> np.ndarray:
    """(side, side) float32 in [0, 1]: the box enlarged (BOX_MARGIN, MASK_PAD_PX), kept 2 ×
    FEATHER_PX inside the image, feathered (Gaussian, FEATHER_PX)."""
    cx, cy = (box[:2] + box[2:]) / 2
    hw, hh = (box[2:] - box[:2]) * BOX_MARGIN / 2 + MASK_PAD_PX
    mask = np.zeros((side, side), np.float32)
    edge = int(round(2 * FEATHER_PX))  # kept off the image's border, so the edge fades there too
    x0, y0 = max(edge, int(round(cx - hw))), max(edge, int(round(cy - hh)))
    x1, y1 = min(side - edge, int(round(cx + hw))), min(side - edge, int(round(cy + hh)))
    mask[y0:y1, x0:x1] = 1.0
    return cv2.GaussianBlur(mask, (0, 0), FEATHER_PX)


def make_background(
    image: np.ndarray, kp: np.ndarray, frame_size: tuple[int, int], gradient: bool, rng: np.random.Generator
) -> np.ndarray:
    """(H, W, 3) uint8: the largest strip of ``image`` outside its hand's box, enlarged and
    blurred; a random two-colour linear gradient when ``gradient`` or the strip is too small."""
    w, h = frame_size
    side = image.shape[0]
    x0, y0, x1, y1 = np.clip(np.round(keypoint_box(kp[:, :2], kp[:, 2] > 0) + [-8, -8, 8, 8]), 0, side).astype(int)
    strips = [image[:, :x0], image[:, x1:], image[:y0], image[y1:]]
    best = max(strips, key=lambda s: min(s.shape[:2]) * max(s.shape[:2]))
    if gradient or min(best.shape[:2]) < MIN_STRIP_PX:
        a, b = rng.uniform(20, 235, 3), rng.uniform(20, 235, 3)
        angle = rng.uniform(0, 2 * math.pi)
        xs, ys = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
        t = xs * math.cos(angle) + ys * math.sin(angle)
        t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
        return np.clip(a + (b - a) * t[..., None], 0, 255).astype(np.uint8)
    big = cv2.resize(np.ascontiguousarray(best), (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(big, (0, 0), BACKGROUND_BLUR)


def _smooth(rng: np.random.Generator, frames: int, amplitude: float) -> np.ndarray:
    """(frames,) a smooth wave: amplitude × sin(2π f t + φ), 0.3–1 cycles over the clip."""
    t = np.arange(frames) / max(frames, 1)
    return amplitude * np.sin(2 * math.pi * rng.uniform(0.3, 1.0) * t + rng.uniform(0, 2 * math.pi))


def hand_path(
    rng: np.random.Generator, k: int, n: int, frames: int, frame_size: tuple[int, int], half_extent: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: positions (frames, 2) frame px, scales (frames,), angles (frames,) rad of hand
    k of n. The hand keeps to column k of n; its centre stays ``half_extent × scale`` inside."""
    w, h = frame_size
    lo, hi = SCALE_RANGE
    s0 = rng.uniform(lo + 0.15, hi - 0.15)
    scales = np.clip(s0 + _smooth(rng, frames, min(s0 - lo, hi - s0)), lo, hi)
    angles = rng.uniform(-math.pi / 4, math.pi / 4) + _smooth(rng, frames, rng.uniform(0, math.pi / 4))
    column = w / n
    cx = (k + 0.5) * column + rng.uniform(-0.1, 0.1) * column + _smooth(rng, frames, 0.3 * column)
    cy = h * rng.uniform(0.35, 0.65) + _smooth(rng, frames, 0.25 * h)
    r = half_extent * scales
    cx = np.clip(cx, np.minimum(r, w / 2), np.maximum(w - r, w / 2))
    cy = np.clip(cy, np.minimum(r, h / 2), np.maximum(h - r, h / 2))
    return np.stack([cx, cy], 1), scales, angles


def make_clips(
    pixels: np.ndarray,
    keypoints: np.ndarray,
    names: list[str],
    seed: int,
    n_clips: int,
    frames: int,
    frame_size: tuple[int, int] = (640, 480),
    max_hands: int = 3,
    gradient_share: float = 0.5,
) -> list[Clip]:
    """``n_clips`` synthetic clips of ``frames`` frames from val images ``pixels`` (N, S, S, 3)
    uint8 with ``keypoints`` (N, 21, 3) x px, y px, visibility and ``names`` (the module's
    docstring: hands, paths, backgrounds). Each clip draws its own images; a clip never uses
    one image twice (hands and background)."""
    if len(pixels) < max_hands + 1:
        raise ValueError(
            f"need at least {max_hands + 1} images for {max_hands} hands and a background, got {len(pixels)}"
        )
    w, h = frame_size
    side = pixels.shape[1]
    usable = np.flatnonzero((keypoints[:, :, 2] > 0).sum(1) >= 10)  # hands with most keypoints labelled
    if len(usable) < max_hands + 1:
        usable = np.arange(len(pixels))
    clips = []
    for c in range(n_clips):
        rng = np.random.default_rng([seed, c])
        n = c % (max_hands + 1)
        pick = rng.choice(usable, size=n + 1, replace=False)
        background = make_background(
            np.asarray(pixels[pick[-1]]), keypoints[pick[-1]], frame_size, bool(rng.random() < gradient_share), rng
        )
        images, masks, sources = [], [], []
        truth: list[list[FrameHand]] = [[] for _ in range(frames)]
        for k, src in enumerate(pick[:-1]):
            kp = keypoints[src].astype(np.float64)
            box = keypoint_box(kp[:, :2], kp[:, 2] > 0)  # of the labelled keypoints
            centre = (box[:2] + box[2:]) / 2
            half = float(np.hypot(*(box[2:] - box[:2]))) / 2 * BOX_MARGIN
            images.append(np.ascontiguousarray(pixels[src]))
            masks.append(soft_mask(box, side))
            sources.append(names[src])
            positions, scales, angles = hand_path(rng, k, n, frames, frame_size, half)
            start = int(rng.integers(0, max(frames // 4, 1)))
            end = frames - int(rng.integers(0, max(frames // 4, 1)))
            for i in range(start, end):
                affine = similarity(float(scales[i]), float(angles[i]), centre, positions[i])
                xy = map_points(affine, kp[:, :2])
                inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
                truth[i].append(FrameHand(k, xy, (kp[:, 2] > 0) & inside, float(scales[i]), affine))
        clips.append(Clip(c, (w, h), background, sources, truth, images, masks))
    return clips
