"""Robustness: both shipped models on val images under each condition users meet, one at a time
(``handkp.data.augment.CONDITIONS``: rotation, a hand at half the size, a shifted hand, mirror,
low light, gamma, sensor noise, motion blur, JPEG artefacts, partial occlusion), with the labels
moved exactly with the image; and how well the presence score tells hands from hand-free images.

    result = robustness_table(predictors, pixels, keypoints, names, seed)
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ..core.io import sha256_file, write_json
from ..core.metrics import compute_metrics
from ..core.paths import HEATMAP_ONNX, IMAGE_CACHE, PREPARED_TABLE, ROBUSTNESS, YOLO_ONNX
from ..data.augment import CONDITIONS, perturb
from ..data.cache import CacheError, ImageCache
from ..data.dataset import split_arrays
from ..data.negatives import hand_free_image
from ..runtime import Predictor, load_predictor
from .evaluation import predict_images, rounded

REPORTED = ("pck_1px", "pck_3px", "pck_5px", "pck_7px", "pck_10px", "auc_0_15px", "epe_mean_px", "missed_images")


def perturbed_split(
    condition: str, pixels: np.ndarray, keypoints: np.ndarray, names: list[str], seed: int
) -> tuple[dict[str, np.ndarray], pl.DataFrame]:
    """The images under ``condition`` (name -> RGB) and their ground truth (``image, keypoint, x,
    y, visibility``); a keypoint moved outside the image is not visible. Seeded per image."""
    index = list(CONDITIONS).index(condition)
    images, rows = {}, []
    size = pixels.shape[1]
    for i, name in enumerate(names):
        image, kp = perturb(
            condition, np.asarray(pixels[i]), keypoints[i, :, :2], np.random.default_rng([seed, index, i])
        )
        inside = (kp >= 0).all(axis=1) & (kp < size).all(axis=1)
        visible = np.where((keypoints[i, :, 2] > 0) & inside, 2, 0)
        images[name] = image
        rows.append(
            pl.DataFrame(
                {
                    "image": [name] * len(kp),
                    "keypoint": np.arange(len(kp), dtype=np.int8),
                    "x": kp[:, 0],
                    "y": kp[:, 1],
                    "visibility": visible.astype(np.int8),
                }
            )
        )
    return images, pl.concat(rows)


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random negative
    (ties count half)."""
    scores = np.concatenate([positive, negative])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # average ranks of ties
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    n_pos, n_neg = len(positive), len(negative)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def presence_separation(
    predictor: Predictor, pixels: np.ndarray, keypoints: np.ndarray, seed: int, threshold: float
) -> dict:
    """Presence scores on the hand images and on hand-free images cut from the same scenes: the
    share of each at or above ``threshold`` and the threshold-free AUROC."""
    hands = np.array([p.presence for p in predictor.predict_batch([np.asarray(x) for x in pixels])])
    free_images = [
        hand_free_image(np.asarray(x), k[:, :2], np.random.default_rng([seed, 999, i]))
        for i, (x, k) in enumerate(zip(pixels, keypoints))
    ]
    free = np.array([p.presence for p in predictor.predict_batch(free_images)])
    return {
        "threshold": threshold,
        "n_hand": len(hands),
        "n_hand_free": len(free),
        "hands_found": float(np.mean(hands >= threshold)),
        "hand_free_flagged": float(np.mean(free >= threshold)),
        "auroc": auroc(hands, free),
        "presence_hand_median": float(np.median(hands)),
        "presence_hand_free_median": float(np.median(free)),
    }


def robustness_table(
    predictors: dict[str, Predictor],
    pixels: np.ndarray,
    keypoints: np.ndarray,
    names: list[str],
    seed: int,
    batch_size: int = 32,
) -> dict[str, dict[str, dict]]:
    """{model: {condition: metrics}} for every condition of ``CONDITIONS``."""
    out: dict[str, dict[str, dict]] = {name: {} for name in predictors}
    for condition in CONDITIONS:
        images, gt = perturbed_split(condition, pixels, keypoints, names, seed)
        for name, predictor in predictors.items():
            metrics, _, _ = compute_metrics(gt, predict_images(predictor, names, images, batch_size))
            out[name][condition] = {k: metrics[k] for k in REPORTED}
            print(f"{condition:14s} {name:8s} PCK@5 {metrics['pck_5px']:.3f}  PCK@10 {metrics['pck_10px']:.3f}")
    return out


def robustness_sample(params: dict) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The stage's val images: ``robustness.images`` of them, a pick seeded by ``seed`` (names,
    (N, H, W, 3) uint8 pixels, (N, 21, 3) keypoints); CacheError when the image cache and the
    keypoint table disagree."""
    names_all, pixels_all = ImageCache(IMAGE_CACHE).split("val")
    table_names, keypoints_all = split_arrays(pl.read_parquet(PREPARED_TABLE), "val")
    if table_names != names_all:
        raise CacheError(f"{IMAGE_CACHE}: the val cache does not match {PREPARED_TABLE}; run dvc repro prepare")
    size = min(int(params["robustness"]["images"]), len(names_all))
    pick = np.sort(np.random.default_rng(int(params["seed"])).choice(len(names_all), size=size, replace=False))
    return [names_all[i] for i in pick], pixels_all[pick], keypoints_all[pick]


def run_robustness(params: dict) -> dict:
    """The robustness stage: ``robustness_sample``'s val images under every condition, through the
    shipped ONNX files -> reports/metrics/robustness.json."""
    cfg, seed = params["robustness"], int(params["seed"])
    names, pixels, keypoints = robustness_sample(params)
    threads, conf = int(params["runtime"]["threads"]), float(params["evaluate"]["yolo_conf_threshold"])
    predictors = {"heatmap": load_predictor(HEATMAP_ONNX, "onnxruntime", "cpu", threads)}
    thresholds = {
        "heatmap": float(cfg["presence_threshold"]),
        "yolo": conf,
    }  # YOLO: a hand is a detection at its threshold
    if YOLO_ONNX.is_file():
        predictors["yolo"] = load_predictor(YOLO_ONNX, "onnxruntime", "cpu", threads, conf_threshold=conf)
    files = {"heatmap": HEATMAP_ONNX, "yolo": YOLO_ONNX}
    result = {
        "images": len(names),
        "seed": seed,
        "files": {m: sha256_file(files[m]) for m in predictors},
        "conditions": {c: {"operation": op, "strength": v} for c, (op, v) in CONDITIONS.items()},
        "models": {
            m: {c: rounded(v) for c, v in rows.items()}
            for m, rows in robustness_table(predictors, pixels, keypoints, names, seed, int(cfg["batch_size"])).items()
        },
        "presence": {
            m: rounded(presence_separation(p, pixels, keypoints, seed, thresholds[m])) for m, p in predictors.items()
        },
    }
    write_json(ROBUSTNESS, result)
    return result
