"""Training samples like the tracker's crops: a hand's region of interest as the tracker places
it (``handkp.core.roi``), another hand pasted beside the hand, and a grid to look at samples.

Everything here is deterministic: ``handkp.data.augment`` draws the random parts from the
sample's ``rng`` and passes them in. Conventions as in ``handkp.core.roi``: keypoints (21, 2)
continuous px, warp matrices on pixel centres; visibility (21,) bool (False: unlabelled, its
coordinates meaningless).

The other hand is cut out of its own image with a soft mask drawn from its keypoints (the palm's
polygon filled, every bone a thick line, widths relative to its palm size, the edge feathered),
moved onto the target image with one similarity warp (scale, turn, shift) and blended in, in
front of the target hand or behind it (where the target's own mask covers it).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.geometry import similarity, warp_points
from ..core.keypoints import FINGER_OF, SKELETON
from ..core.roi import PALM_KEYPOINTS, Roi, detector_box, palm_size, roi_from_box

# The hand's outline drawn from its keypoints, in palm sizes (``palm_size``): a finger is about a
# fifth of the palm's length wide; the feather (Gaussian sigma of the mask's edge) softens the
# seam and hides where the drawn outline misses the true one.
FINGER_WIDTH = 0.22
FEATHER = 0.05
# The palm's polygon: the wrist, the thumb's CMC (the ball of the thumb) and the four finger MCPs.
PALM_OUTLINE = (0, 1, 5, 9, 13, 17)
# Keypoint colours of the preview grid, by finger (RGB).
FINGER_RGB = {
    "palm": (255, 255, 255),
    "thumb": (230, 159, 0),
    "index": (86, 180, 233),
    "middle": (0, 158, 115),
    "ring": (240, 228, 66),
    "pinky": (204, 121, 167),
}
MIN_PALM_PX = 1.0  # a smaller palm is a labelling slip, not a hand to crop or paste by its palm


def has_palm(keypoints: np.ndarray, visible: np.ndarray) -> bool:
    """Whether a hand's palm can place a ROI, scale a pasted hand or be pasted: every palm
    keypoint (``PALM_KEYPOINTS``) labelled (visible (21,) bool) and a ``palm_size`` of at least
    ``MIN_PALM_PX`` (keypoints (21, 2) px)."""
    return bool(np.asarray(visible, dtype=bool)[list(PALM_KEYPOINTS)].all()) and palm_size(keypoints) >= MIN_PALM_PX


def detector_roi(keypoints: np.ndarray, visible: np.ndarray) -> Roi:
    """The tracker's ROI of a new hand: a detector-like box (``detector_box`` of the labelled
    keypoints) through ``roi_from_box`` (square, angle 0: the hand keeps its own rotation in the crop)."""
    return roi_from_box(*detector_box(keypoints, visible))


def hand_mask(keypoints: np.ndarray, visible: np.ndarray, palm: float, size: int) -> np.ndarray:
    """(size, size) float32 in [0, 1]: a hand's soft silhouette from its keypoints (21, 2) px of
    that image: the labelled palm outline filled, each bone between two labelled keypoints a line
    ``FINGER_WIDTH`` x ``palm`` px wide, the edge blurred by ``FEATHER`` x ``palm`` px."""
    shift = 4  # OpenCV's fixed-point bits: sub-pixel drawing
    points = np.round((np.asarray(keypoints, dtype=np.float64) - 0.5) * (1 << shift)).astype(np.int32)
    corners = points.tolist()
    labelled = np.asarray(visible, dtype=bool)
    mask = np.zeros((size, size), np.uint8)
    outline = points[[k for k in PALM_OUTLINE if labelled[k]]]
    if len(outline) >= 3:
        cv2.fillConvexPoly(mask, cv2.convexHull(outline), 255, cv2.LINE_AA, shift)
    width = max(1, round(FINGER_WIDTH * palm))
    for a, b in SKELETON:
        if labelled[a] and labelled[b]:
            cv2.line(mask, corners[a], corners[b], 255, width, cv2.LINE_AA, shift)
    return cv2.GaussianBlur(mask.astype(np.float32) * np.float32(1 / 255), (0, 0), max(FEATHER * palm, 0.5))


def paste_hand(
    image: np.ndarray,
    keypoints: np.ndarray,
    visible: np.ndarray,
    other: tuple[np.ndarray, np.ndarray, np.ndarray],
    scale: float,
    offset: tuple[float, float],
    angle: float,
    behind: bool,
) -> np.ndarray:
    """``image`` (S, S, 3) uint8 with another hand blended in. ``keypoints`` (21, 2) px and
    ``visible`` (21,) bool: the image's own hand; ``other``: (image (S, S, 3) uint8, keypoints
    (21, 2) px, visible (21,) bool) of the other hand; both with a palm (``has_palm``). The
    other hand is turned by ``angle`` (radians) about its palm centre (the palm keypoints'
    mean), scaled so that its palm size is ``scale`` x the hand's, and its palm centre put at
    the hand's palm centre + ``offset`` (px); ``behind``: it lies behind the hand (hidden where
    the hand's own mask covers it), else in front of it. The hand's keypoints stay as they are
    (the pasted hand is scenery)."""
    other_image, other_kp, other_visible = other
    size = image.shape[0]
    palm = palm_size(keypoints)
    centre = np.asarray(keypoints, dtype=np.float64)[list(PALM_KEYPOINTS)].mean(0)
    other_centre = np.asarray(other_kp, dtype=np.float64)[list(PALM_KEYPOINTS)].mean(0)
    m = similarity(scale * palm / palm_size(other_kp), angle, other_centre, centre + offset, pixel_centres=True)
    moved = cv2.warpAffine(other_image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = hand_mask(warp_points(m, other_kp), other_visible, scale * palm, size)
    if behind:
        alpha *= 1.0 - hand_mask(keypoints, visible, palm, size)
    return cv2.blendLinear(image, moved, 1.0 - alpha, alpha)


def sample_grid(
    images: list[np.ndarray], keypoints: list[np.ndarray | None], visible: list[np.ndarray], columns: int = 8
) -> np.ndarray:
    """An RGB uint8 grid (rows x S, columns x S, 3) of training samples, row by row, each
    labelled keypoint a dot coloured by finger (``FINGER_RGB``): images (S, S, 3) uint8,
    keypoints (21, 2) px or None (a hand-free sample: no dots), visible (21,) bool. E.g.
    ``sample_grid(*zip(*(dataset.augmented(i) for i in range(32))))``."""
    if not images or columns < 1:
        raise ValueError(f"sample_grid needs at least one image and columns >= 1, got {len(images)}, {columns}")
    size = images[0].shape[0]
    rows = -(-len(images) // columns)
    grid = np.zeros((rows * size, columns * size, 3), np.uint8)
    for n, (image, kp, vis) in enumerate(zip(images, keypoints, visible)):
        tile = np.ascontiguousarray(image, dtype=np.uint8).copy()
        if kp is not None:
            for k in np.flatnonzero(vis):
                x, y = (np.round((kp[k] - 0.5) * 16)).astype(int)
                cv2.circle(tile, (int(x), int(y)), 3 * 16, FINGER_RGB[FINGER_OF[k]], -1, cv2.LINE_AA, 4)
        r, c = divmod(n, columns)
        grid[r * size : (r + 1) * size, c * size : (c + 1) * size] = tile
    return grid
