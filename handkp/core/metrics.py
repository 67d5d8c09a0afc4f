"""PCK, the PCK curve and its AUC, end-point errors and per-keypoint tables, computed from a
ground-truth table and a predictions table (both in px of the 224×224 image).

PCK@X px is the fraction of visible ground-truth keypoints whose prediction lies within X px.
A keypoint without a prediction (its image had no detection) is a miss at every threshold and
is left out of the end-point errors, which are over predicted keypoints only.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .keypoints import KEYPOINT_NAMES

THRESHOLDS_PX = (1, 3, 5, 7, 10)
CURVE_MAX_PX = 15.0
CURVE_STEP_PX = 0.25


def keypoint_errors(gt: pl.DataFrame, pred: pl.DataFrame) -> pl.DataFrame:
    """Visible ground-truth keypoints joined with their predictions: ``image, keypoint,
    error_px`` (null where the image has no prediction)."""
    visible = gt.filter(pl.col("visibility") > 0).select("image", "keypoint", "x", "y")
    p = pred.select(
        "image", pl.col("keypoint").cast(visible["keypoint"].dtype), pl.col("x").alias("px"), pl.col("y").alias("py")
    )
    return visible.join(p, on=["image", "keypoint"], how="left").select(
        "image",
        "keypoint",
        (((pl.col("px") - pl.col("x")) ** 2 + (pl.col("py") - pl.col("y")) ** 2).sqrt()).alias("error_px"),
    )


def pck(errors: np.ndarray, threshold_px: float) -> float:
    """Fraction of errors within the threshold; NaN (no prediction) counts as a miss."""
    if errors.size == 0:
        return float("nan")
    return float(np.mean(np.nan_to_num(errors, nan=np.inf) <= threshold_px))


def compute_metrics(
    gt: pl.DataFrame, pred: pl.DataFrame, thresholds=THRESHOLDS_PX
) -> tuple[dict, pl.DataFrame, pl.DataFrame]:
    """Returns (flat metrics dict, PCK curve table ``threshold_px, pck``, per-keypoint table).

    gt: ``image, keypoint, x, y, visibility`` of the evaluated split; pred: ``image, keypoint, x, y, score``.
    """
    errs = keypoint_errors(gt, pred)
    e = errs["error_px"].fill_null(np.nan).to_numpy().astype(np.float64)
    predicted = e[~np.isnan(e)]
    metrics = {f"pck_{t}px": pck(e, t) for t in thresholds}
    curve_t = np.arange(0.0, CURVE_MAX_PX + CURVE_STEP_PX / 2, CURVE_STEP_PX)
    curve = np.array([pck(e, t) for t in curve_t])
    metrics["auc_0_15px"] = float(np.trapezoid(curve, curve_t) / CURVE_MAX_PX)
    metrics["epe_mean_px"] = float(predicted.mean()) if predicted.size else float("nan")
    metrics["epe_median_px"] = float(np.median(predicted)) if predicted.size else float("nan")
    images = gt["image"].unique()
    metrics["n_images"] = int(images.len())
    metrics["n_keypoints"] = int(e.size)
    metrics["missed_images"] = int((~images.is_in(pred["image"].unique().implode())).sum())
    curve_table = pl.DataFrame({"threshold_px": curve_t, "pck": curve})
    per_kp = []
    for k, name in enumerate(KEYPOINT_NAMES):
        ek = errs.filter(pl.col("keypoint") == k)["error_px"].fill_null(np.nan).to_numpy().astype(np.float64)
        row = {"keypoint": k, "name": name, **{f"pck_{t}px": pck(ek, t) for t in thresholds}}
        row["epe_mean_px"] = float(np.nanmean(ek)) if np.isfinite(ek).any() else float("nan")
        per_kp.append(row)
    return metrics, curve_table, pl.DataFrame(per_kp)
