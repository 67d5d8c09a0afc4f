"""Drawing on the live frames: the skeleton (``handkp.viz.draw_skeleton``), a bar per keypoint
score and the HUD text (``annotate``: one hand); several tracked hands, each in its id's colour with
its box and a label (``annotate_hands``)."""

from __future__ import annotations

import cv2
import numpy as np

from handkp.core.keypoints import NUM_KEYPOINTS
from handkp.runtime import Prediction
from handkp.track import TrackedHand
from handkp.viz.skeleton import draw_skeleton, hex_to_rgb

LOW_SCORE_STYLES = ("faint", "hide")
FAINT_ALPHA = 0.35  # low-confidence keypoints and their edges, blended into the frame
LOW_SCORE_GREY = (150, 150, 150)
# One colour per hand id (id modulo the list): Okabe-Ito, colour-blind safe, as handkp.viz.colors.
HAND_COLORS = ("#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#F0E442", "#D55E00", "#0072B2")


def hand_color(hand_id: int) -> str:
    """The "#rrggbb" colour a tracked hand is drawn in."""
    return HAND_COLORS[hand_id % len(HAND_COLORS)]


def _sizes(img: np.ndarray) -> tuple[float, int, int]:
    f = max(1.0, min(img.shape[:2]) / 320.0)
    return f, max(1, round(2 * f)), max(2, round(3 * f))


def _draw_hand(
    img: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    bgr_color: tuple[int, int, int],
    min_score: float,
    low_score: str,
    thickness: int,
    radius: int,
) -> np.ndarray:
    """A new image with the skeleton; keypoints below ``min_score`` faint or hidden."""
    if low_score == "faint" and min_score > 0 and np.any(scores < min_score):
        img = draw_skeleton(img, keypoints, None, bgr_color, thickness=thickness, radius=radius, alpha=FAINT_ALPHA)
    return draw_skeleton(img, keypoints, scores, bgr_color, min_score=min_score, thickness=thickness, radius=radius)


def annotate(
    bgr: np.ndarray,
    pred: Prediction,
    *,
    color: str,
    min_score: float = 0.3,
    low_score: str = "faint",
    hud: list[str] | None = None,
) -> np.ndarray:
    """A copy of a BGR frame with the skeleton (``draw_skeleton``; keypoints scoring below
    ``min_score`` faint or hidden), a bar per keypoint score (bottom left; grey below
    ``min_score``, the tick marks ``min_score``) and ``hud`` text lines (top left)."""
    f, thickness, radius = _sizes(bgr)
    bgr_color = hex_to_rgb(color)[::-1]  # draw_skeleton draws in the image's channel order
    if pred.found:
        out = _draw_hand(bgr, pred.keypoints, pred.scores, bgr_color, min_score, low_score, thickness, radius)
    else:
        out = bgr.copy()
    _draw_score_bars(out, pred, bgr_color, min_score, f)
    if hud:
        _draw_text(out, hud)
    return out


def annotate_hands(
    bgr: np.ndarray,
    hands: list[TrackedHand],
    *,
    min_score: float = 0.3,
    low_score: str = "faint",
    hud: list[str] | None = None,
) -> np.ndarray:
    """A copy of a BGR frame with each tracked hand in its id's colour (``hand_color``): the
    skeleton (as ``annotate``), its box and a label ``#id presence`` above the box; ``hud`` text
    lines top left. No hands: the frame and the HUD only."""
    f, thickness, radius = _sizes(bgr)
    out = bgr.copy()
    for hand in hands:
        bgr_color = hex_to_rgb(hand_color(hand.id))[::-1]
        out = _draw_hand(out, hand.keypoints, hand.scores, bgr_color, min_score, low_score, thickness, radius)
        x0, y0, x1, y1 = (int(round(v)) for v in np.nan_to_num(hand.box))
        cv2.rectangle(out, (x0, y0), (x1, y1), bgr_color, max(1, thickness // 2), cv2.LINE_AA)
        scale = 0.4 * f
        label = f"#{hand.id} {hand.presence:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y0 - base - 2 if y0 - th - base - 2 >= 0 else y1 + th + 2
        cv2.putText(out, label, (x0, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, label, (x0, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, bgr_color, 1, cv2.LINE_AA)
    if hud:
        _draw_text(out, hud)
    return out


def _draw_score_bars(
    img: np.ndarray, pred: Prediction, color: tuple[int, int, int], min_score: float, f: float
) -> None:
    h, w = img.shape[:2]
    bar_w, gap, top_h, margin = max(2, round(3 * f)), 1, max(16, round(32 * f)), max(3, round(4 * f))
    width = NUM_KEYPOINTS * (bar_w + gap) - gap
    x0, y1 = margin, h - margin
    y0 = y1 - top_h
    if x0 + width + margin > w or y0 - margin < 0:
        return  # too small a frame for the bars
    roi = img[y0 - 2 : y1 + 2, x0 - 2 : x0 + width + 2]
    roi[:] = (roi.astype(np.uint16) // 3).astype(np.uint8)  # darkened backdrop
    if not pred.found:
        return
    scores = np.clip(np.nan_to_num(pred.scores.astype(np.float64), nan=0.0), 0.0, 1.0)
    for i, s in enumerate(scores):
        x = x0 + i * (bar_w + gap)
        top = y1 - max(1, round(s * top_h))
        cv2.rectangle(img, (x, top), (x + bar_w - 1, y1 - 1), color if s >= min_score else LOW_SCORE_GREY, -1)
    if 0 < min_score <= 1:
        ty = y1 - round(min_score * top_h)
        cv2.line(img, (x0 - 2, ty), (x0 + width + 1, ty), (255, 255, 255), 1)


def _draw_text(img: np.ndarray, lines: list[str]) -> None:
    """White text with a black outline, top left; a line too wide for the frame is left out."""
    h, w = img.shape[:2]
    scale = max(0.35, 0.5 * min(h, w) / 480)
    thick = max(1, round(2 * scale))
    margin = max(3, round(8 * scale))
    y = margin
    for line in lines:
        (tw, th), base = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        if tw + 2 * margin > w:
            continue
        y += th
        cv2.putText(img, line, (margin, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(img, line, (margin, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
        y += base + max(2, round(4 * scale))
