"""Image conventions shared by training, evaluation and every runtime."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

# Files read as images wherever a folder of images is listed (the dataset, the live app).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})

# What the training warp brings in from outside the image; the heatmap runtime's letterbox pads
# with it too, so the network sees the borders it was trained with.
BORDER_RGB = (0, 0, 0)


def read_rgb(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3); ValueError naming the file when it cannot be decoded."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path}: cannot decode image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def decode_rgb(data: bytes, name: str) -> np.ndarray:
    """An encoded image's bytes (JPEG, PNG, ...) -> RGB uint8 (H, W, 3), the same pixels as
    ``read_rgb`` on the file; ValueError naming ``name`` when they cannot be decoded."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{name}: cannot decode image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def check_rgb(image: np.ndarray, what: str = "image") -> None:
    """ValueError unless ``image`` is RGB uint8 (H, W, 3) (``what``: the word the message uses)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 {what} (H, W, 3), got {image.dtype} {image.shape}")


InputSize = int | tuple[int, int]  # a square input's side, or a rectangular input's (height, width)


def input_hw(size: InputSize) -> tuple[int, int]:
    """(height, width) of an input size: a side ``S`` is (S, S)."""
    if np.ndim(size) == 0:
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def input_label(size: InputSize) -> str:
    """``416×320`` (width × height) for a rectangular input, ``416`` for a square one."""
    h, w = input_hw(size)
    return str(w) if h == w else f"{w}×{h}"


def fixed_input_size(dims) -> InputSize | None:
    """The input size of a model input's (N, 3, H, W) dims: ``H`` when square, (H, W) when not;
    None when either is not a fixed number."""
    h, w = dims[-2], dims[-1]
    if not (isinstance(h, int) and isinstance(w, int)):
        return None
    return h if h == w else (h, w)
