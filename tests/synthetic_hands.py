"""Synthetic hands, a synthetic detector and a synthetic keypoint model for the tracking tests."""

from __future__ import annotations

import math

import numpy as np

from handkp.core.keypoints import IMAGE_SIZE, NUM_KEYPOINTS
from handkp.core.roi import PALM_KEYPOINTS, Roi, to_crop
from handkp.runtime import Prediction

# An upright open hand, wrist at the origin, palm length 1 (the middle MCP at (0, -1)), y down.
UPRIGHT_HAND = np.array(
    [
        (0.0, 0.0),
        (-0.35, -0.2),
        (-0.6, -0.45),
        (-0.8, -0.7),
        (-0.95, -0.9),
        (-0.35, -0.95),
        (-0.4, -1.45),
        (-0.42, -1.75),
        (-0.44, -2.0),
        (0.0, -1.0),
        (0.0, -1.55),
        (0.0, -1.9),
        (0.0, -2.15),
        (0.3, -0.95),
        (0.33, -1.45),
        (0.35, -1.75),
        (0.37, -1.98),
        (0.55, -0.85),
        (0.62, -1.2),
        (0.66, -1.42),
        (0.7, -1.62),
    ]
)


def hand(wrist_x: float, wrist_y: float, palm_px: float = 60.0, turn: float = 0.0) -> np.ndarray:
    """(21, 2) float64 frame px: the upright hand, scaled, turned by ``turn`` rad (R(turn), y down:
    +π/2 points the fingers right) and moved to the wrist position."""
    c, s = math.cos(turn), math.sin(turn)
    return UPRIGHT_HAND @ (palm_px * np.array([[c, -s], [s, c]])).T + np.array([wrist_x, wrist_y])


def boxes_of(hands: list[np.ndarray]) -> np.ndarray:
    """(M, 4) a detector's boxes: each hand's keypoint extent, 10 % larger."""
    out = []
    for kp in hands:
        lo, hi = kp.min(0), kp.max(0)
        pad = (hi - lo) * 0.05
        out.append(np.concatenate([lo - pad, hi + pad]))
    return np.array(out).reshape(-1, 4)


def no_hand(presence: float = 0.05) -> Prediction:
    """What the heatmap model returns for a crop without a hand: found, but a low presence."""
    return Prediction(
        np.full((NUM_KEYPOINTS, 2), IMAGE_SIZE / 2, np.float32),
        np.full(NUM_KEYPOINTS, presence, np.float32),
        True,
        presence,
    )


def model_on(roi: Roi, hands: list[np.ndarray], confused: bool = False) -> Prediction:
    """A perfect keypoint model on the ROI's crop: of the hands whose palm centre is in the crop,
    the most centred one (its keypoints' mean nearest the crop's centre; ``confused``: the least
    centred), its keypoints exact in crop px."""
    inside = []
    for kp in hands:
        in_crop = to_crop(roi, kp)
        palm_centre = in_crop[list(PALM_KEYPOINTS)].mean(0)
        if ((palm_centre >= 0) & (palm_centre < IMAGE_SIZE)).all():
            inside.append((float(np.linalg.norm(in_crop.mean(0) - IMAGE_SIZE / 2)), kp))
    if not inside:
        return no_hand()
    _, kp = max(inside, key=lambda d: d[0]) if confused else min(inside, key=lambda d: d[0])
    return Prediction(to_crop(roi, kp), np.ones(NUM_KEYPOINTS, np.float32), True, 1.0)
