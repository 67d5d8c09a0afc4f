"""Pictures of the heatmap targets, to check by eye what the network is trained towards."""

from __future__ import annotations

import cv2
import numpy as np

from ..core.codec import HeatmapCodec
from ..core.io import atomic_path
from ..core.paths import FIGURES, IMAGE_CACHE, PREPARED_TABLE


def target_panel(image: np.ndarray, keypoints: np.ndarray, codec: HeatmapCodec, zoom: int = 2) -> np.ndarray:
    """RGB uint8 (S, S, 3) + keypoints (K, 3) px/visibility -> (zoom·S, 2·zoom·S, 3): the image
    with its keypoints | the maximum over the K target heatmaps, blended over the image."""
    heatmaps, _ = codec.encode(keypoints[:, :2], keypoints[:, 2] > 0)
    size = image.shape[0] * zoom
    big = cv2.resize(image, (size, size), interpolation=cv2.INTER_NEAREST)
    left = big.copy()
    for x, y, v in keypoints:
        if v > 0:
            cv2.circle(left, (round(x * zoom), round(y * zoom)), 3, (255, 64, 64), -1, cv2.LINE_AA)
    heat = cv2.resize(heatmaps.max(axis=0), (size, size), interpolation=cv2.INTER_NEAREST)
    colour = cv2.cvtColor(cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
    right = cv2.addWeighted(big, 0.35, colour, 0.65, 0)
    return np.hstack([left, right])


def target_sheet(images: list[np.ndarray], keypoints: np.ndarray, codec: HeatmapCodec) -> np.ndarray:
    """Panels of several images stacked vertically, with a caption naming the heatmap geometry."""
    sheet = np.vstack([target_panel(im, kp, codec) for im, kp in zip(images, keypoints)])
    caption = np.full((28, sheet.shape[1], 3), 255, np.uint8)
    text = (
        f"targets: {codec.heatmap_size}x{codec.heatmap_size} heatmaps, "
        f"stride {codec.stride:g} px, sigma {codec.sigma:g} cells"
    )
    cv2.putText(caption, text, (8, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([caption, sheet])


def run_targets(params: dict, n_images: int = 4) -> None:
    """The targets stage: the heatmap targets of a few train images -> reports/figures/targets.png."""
    import polars as pl

    from ..core.codec import codec_for_model
    from .cache import ImageCache
    from .dataset import split_arrays

    codec = codec_for_model(params["model"], params["codec"], params["data"]["image_size"])
    images, keypoints = split_arrays(pl.read_parquet(PREPARED_TABLE), "train")
    step = max(1, len(images) // n_images)
    picked = list(range(0, len(images), step))[:n_images]
    cache = ImageCache(IMAGE_CACHE)
    sheet = target_sheet([cache.read(images[i]) for i in picked], keypoints[picked], codec)
    with atomic_path(FIGURES / "targets.png") as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
