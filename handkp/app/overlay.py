"""Drawing on the live frames: the skeleton (``handkp.viz.draw_skeleton``), a bar per keypoint
score and the HUD text."""
from __future__ import annotations

import cv2
import numpy as np

from handkp.core.keypoints import NUM_KEYPOINTS
from handkp.runtime import Prediction
from handkp.viz.skeleton import draw_skeleton, hex_to_rgb

LOW_SCORE_STYLES = ("faint", "hide")
FAINT_ALPHA = 0.35  # low-confidence keypoints and their edges, blended into the frame
LOW_SCORE_GREY = (150, 150, 150)


def annotate(bgr: np.ndarray, pred: Prediction, *, color: str, min_score: float = 0.3,
             low_score: str = "faint", hud: list[str] | None = None) -> np.ndarray:
    """A copy of a BGR frame with the skeleton (``draw_skeleton``; keypoints scoring below
    ``min_score`` faint or hidden), a bar per keypoint score (bottom left; grey below
    ``min_score``, the tick marks ``min_score``) and ``hud`` text lines (top left)."""
    h, w = bgr.shape[:2]
    f = max(1.0, min(h, w) / 320.0)
    thickness, radius = max(1, round(2 * f)), max(2, round(3 * f))
    bgr_color = hex_to_rgb(color)[::-1]  # draw_skeleton draws in the image's channel order
    out = bgr
    if pred.found:
        if low_score == "faint" and min_score > 0 and np.any(pred.scores < min_score):
            out = draw_skeleton(out, pred.keypoints, None, bgr_color, thickness=thickness, radius=radius, alpha=FAINT_ALPHA)
        out = draw_skeleton(out, pred.keypoints, pred.scores, bgr_color, min_score=min_score,
                            thickness=thickness, radius=radius)
    else:
        out = out.copy()
    _draw_score_bars(out, pred, bgr_color, min_score, f)
    if hud:
        _draw_text(out, hud)
    return out


def _draw_score_bars(img: np.ndarray, pred: Prediction, color: tuple[int, int, int], min_score: float, f: float) -> None:
    h, w = img.shape[:2]
    bar_w, gap, top_h, margin = max(2, round(3 * f)), 1, max(16, round(32 * f)), max(3, round(4 * f))
    width = NUM_KEYPOINTS * (bar_w + gap) - gap
    x0, y1 = margin, h - margin
    y0 = y1 - top_h
    if x0 + width + margin > w or y0 - margin < 0:
        return  # too small a frame for the bars
    roi = img[y0 - 2:y1 + 2, x0 - 2:x0 + width + 2]
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
