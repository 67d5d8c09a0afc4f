"""The report's figures (matplotlib, PNG under reports/figures/): PCK curves, PCK@5px per
keypoint, latency, the qualitative panel (hands drawn by `handkp.viz.skeleton.draw_skeleton` on
images from the image cache) and the training curves. Every figure is always written: a
placeholder saying what is missing stands in where its inputs are absent. The PNGs carry no
timestamps, so the same inputs give the same bytes."""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import polars as pl

from handkp.core.io import atomic_path
from handkp.core.keypoints import FINGER_OF, KEYPOINT_NAMES, NUM_KEYPOINTS
from handkp.core.metrics import THRESHOLDS_PX
from handkp.data.cache import CacheError, ImageCache
from handkp.viz.colors import GROUND_TRUTH_COLOR, MODEL_COLORS
from handkp.viz.skeleton import draw_skeleton

from .data import ModelData, ReportData, ReportPaths
from .format import MISSING, TABLE_NAMES, fmt_fps, fmt_ms, fmt_pck, num
from .qualitative import per_image_errors, pick_qualitative

DISPLAY_SCALE = 2  # qualitative panels are drawn at 2x the 224 px image for legible lines
DPI = 100
FIGURE_FILES = {
    "pck_curves": "pck_curves.png",
    "per_keypoint": "per_keypoint_pck5.png",
    "latency": "latency.png",
    "qualitative": "qualitative.png",
    "training": "training_curves.png",
}
FIGURE_TITLES = {
    "pck_curves": "PCK against threshold, 0-15 px",
    "per_keypoint": "PCK@5px per keypoint",
    "latency": "Latency: p50 bars, p90-p99 whiskers",
    "qualitative": "The same val images, each model side by side",
    "training": "Training curves",
}


def _figure(w: float, h: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=DPI, layout="constrained")


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:  # tmp keeps the .png suffix: matplotlib picks the format from it
        fig.savefig(tmp, dpi=DPI, metadata={"Software": None}, facecolor="white")
    return path


def _placeholder(path: Path, title: str, message: str) -> Path:
    fig = _figure(6.4, 4.0)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=11, color="0.35")
    return _save(fig, path)


def _label(m: ModelData) -> str:
    return TABLE_NAMES.get(m.name, m.name)


def _color(name: str) -> str:
    return MODEL_COLORS.get(name, "0.3")


def figure_pck_curves(data: ReportData, path: Path) -> Path:
    models = [m for m in data.models.values() if m.pck_curve is not None]
    if not models:
        return _placeholder(
            path, FIGURE_TITLES["pck_curves"], "No PCK curves yet (reports/eval/<model>/pck_curve.csv)."
        )
    fig = _figure(7.5, 5.0)
    ax = fig.add_subplot()
    for m in models:
        thr, pck = m.pck_curve
        auc = num(m.metrics, "auc_0_15px")
        label = f"{_label(m)} (AUC {fmt_pck(auc)})" if auc is not None else _label(m)
        ax.plot(thr, pck, color=_color(m.name), lw=2.2, label=label)
        pts = [t for t in THRESHOLDS_PX if np.any(np.isclose(thr, t))]
        ax.plot(pts, np.interp(pts, thr, pck), "o", color=_color(m.name), ms=5)
    for t in THRESHOLDS_PX:
        ax.axvline(t, color="0.85", lw=0.8, zorder=0)
    ax.set_xlim(0, 15)
    ax.set_ylim(0, 1.0)
    ax.set_xticks(range(0, 16))
    ax.set_xlabel("threshold (px, 224×224 image)")
    ax.set_ylabel("PCK (fraction of visible keypoints within threshold)")
    ax.set_title("PCK against threshold on val")
    ax.grid(axis="y", color="0.9")
    ax.legend(loc="lower right", fontsize=11)
    return _save(fig, path)


def figure_per_keypoint(data: ReportData, path: Path) -> Path:
    models = [m for m in data.models.values() if m.per_keypoint]
    if not models:
        return _placeholder(
            path, FIGURE_TITLES["per_keypoint"], "No per-keypoint results yet (reports/eval/<model>/per_keypoint.csv)."
        )
    fig = _figure(14.0, 5.5)
    ax = fig.add_subplot()
    x = np.arange(NUM_KEYPOINTS)
    width = 0.8 / len(models)
    for k, m in enumerate(models):
        values = np.full(NUM_KEYPOINTS, np.nan)
        for row in m.per_keypoint:
            i = int(row["keypoint"])
            if 0 <= i < NUM_KEYPOINTS and row.get("pck_5px", "") != "":
                values[i] = float(row["pck_5px"])
        ax.bar(x - 0.4 + width * (k + 0.5), values, width, color=_color(m.name), label=_label(m))
    # Finger bands: shaded alternately, named above the bars.
    start = 0
    band = 0
    for i in range(1, NUM_KEYPOINTS + 1):
        if i == NUM_KEYPOINTS or FINGER_OF[i] != FINGER_OF[start]:
            if band % 2 == 0:
                ax.axvspan(start - 0.5, i - 0.5, color="0.93", zorder=0)
            ax.text(
                (start + i - 1) / 2, 1.04, FINGER_OF[start], ha="center", va="bottom", fontsize=11, fontweight="bold"
            )
            start = i
            band += 1
    ax.set_xlim(-0.5, NUM_KEYPOINTS - 0.5)
    ax.set_ylim(0, 1.12)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xticks(x, [f"{i} {n}" for i, n in enumerate(KEYPOINT_NAMES)], rotation=55, ha="right", fontsize=9)
    ax.set_ylabel("PCK@5px")
    ax.set_title("PCK@5px per keypoint on val")
    ax.grid(axis="y", color="0.85")
    fig.legend(loc="outside upper right", fontsize=10, ncols=len(models))
    return _save(fig, path)


def figure_latency(data: ReportData, path: Path) -> Path:
    models = [m for m in data.models.values() if m.latency is not None]
    if not models:
        return _placeholder(path, FIGURE_TITLES["latency"], "No latency measured yet (reports/benchmark/latency.json).")
    fig = _figure(8.0, 5.0)
    ax = fig.add_subplot()
    parts = (("model", "model-only"), ("e2e", "end-to-end"))
    width = 0.8 / len(models)
    top = 0.0
    for k, m in enumerate(models):
        for g, (part, _) in enumerate(parts):
            xc = g - 0.4 + width * (k + 0.5)
            p50 = num(m.latency, f"{part}_p50_ms")
            p90 = num(m.latency, f"{part}_p90_ms")
            p99 = num(m.latency, f"{part}_p99_ms")
            fps = num(m.latency, f"{part}_fps")
            if p50 is None:
                continue
            ax.bar(xc, p50, width * 0.9, color=_color(m.name), label=_label(m) if g == 0 else None)
            hi = p50
            if p90 is not None and p99 is not None:
                ax.vlines(xc, p90, p99, color="black", lw=1.5)
                ax.hlines([p90, p99], xc - width * 0.15, xc + width * 0.15, color="black", lw=1.5)
                hi = max(hi, p99)
            text = f"{fmt_ms(p50)} ms" + (f"\n{fmt_fps(fps)} FPS" if fps is not None else "")
            ax.text(xc, hi, text, ha="center", va="bottom", fontsize=9)
            top = max(top, hi)
    ax.set_xticks(range(len(parts)), [label for _, label in parts], fontsize=11)
    ax.set_ylim(0, top * 1.25 if top > 0 else 1)
    ax.set_ylabel("latency per frame (ms)")
    lat = data.latency or {}
    ax.set_title(
        f"Latency on {lat.get('target', MISSING)} ({lat.get('device', MISSING)}): p50 bars, p90–p99 whiskers",
        fontsize=11,
    )
    ax.grid(axis="y", color="0.9")
    ax.legend(loc="upper left", fontsize=10)
    return _save(fig, path)


def _keypoint_array(df: pl.DataFrame, image: str, with_scores: bool) -> tuple[np.ndarray, np.ndarray | None]:
    kp = np.full((NUM_KEYPOINTS, 2), np.nan)
    sc = np.full(NUM_KEYPOINTS, np.nan) if with_scores else None
    rows = df.filter(pl.col("image") == image)
    for r in rows.iter_rows(named=True):
        i = int(r["keypoint"])
        if not 0 <= i < NUM_KEYPOINTS:
            continue
        if "visibility" in r and r["visibility"] is not None and r["visibility"] <= 0:
            continue
        kp[i] = (r["x"], r["y"])
        if sc is not None:
            sc[i] = r.get("score", 1.0) if r.get("score") is not None else 1.0
    return kp, sc


def _open_cache(folder: Path) -> ImageCache | None:
    try:
        return ImageCache(folder)
    except CacheError:  # no cache: every panel is drawn on grey, as for an unreadable image
        return None


def _read_image(cache: ImageCache | None, image: str) -> np.ndarray:
    if cache is not None:
        try:
            return cache.read(image)
        except CacheError:  # not in the cache, or the cache file is unreadable
            pass
    return np.full((224, 224, 3), 200, np.uint8)  # the image still gets its panel, on grey


def figure_qualitative(data: ReportData, path: Path) -> Path:
    models = [m for m in data.models.values() if m.predictions is not None]
    if not models or data.ground_truth is None:
        return _placeholder(
            path,
            FIGURE_TITLES["qualitative"],
            "No predictions yet (reports/predictions/<model>_val.parquet) or no ground truth.",
        )
    errors = {m.name: per_image_errors(data.ground_truth, m.predictions) for m in models}
    rows = pick_qualitative(errors)
    if not rows:
        return _placeholder(
            path, FIGURE_TITLES["qualitative"], "No val images shared by the predictions and the ground truth."
        )
    gt_val = data.ground_truth.filter(pl.col("split") == "val")
    panel = 3.2
    fig = _figure(max(panel * len(models) + 0.6, 4.6), max(panel * len(rows) + 0.5, 3.6))
    axes = fig.subplots(len(rows), len(models), squeeze=False)
    cache = _open_cache(data.paths.images)
    for r, (label, image) in enumerate(rows):
        rgb = _read_image(cache, image)
        h, w = rgb.shape[:2]
        big = cv2.resize(rgb, (w * DISPLAY_SCALE, h * DISPLAY_SCALE), interpolation=cv2.INTER_LINEAR)
        gt_kp, _ = _keypoint_array(gt_val, image, with_scores=False)
        base = draw_skeleton(big, gt_kp * DISPLAY_SCALE, None, GROUND_TRUTH_COLOR, thickness=2, radius=2, alpha=0.55)
        for c, m in enumerate(models):
            ax = axes[r, c]
            kp, _ = _keypoint_array(m.predictions, image, with_scores=True)
            err = errors[m.name][image]
            if math.isfinite(err):
                shown = draw_skeleton(base, kp * DISPLAY_SCALE, None, _color(m.name), thickness=3, radius=4)
                title = f"{_label(m)}: {err:.2f} px mean error"
            else:
                shown = base
                title = f"{_label(m)}: missed (no hand found)"
            ax.imshow(shown)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, color=_color(m.name), fontsize=10, fontweight="bold")
            if c == 0:
                ax.set_ylabel(f"{label}\n{Path(image).name}", fontsize=9)
    fig.suptitle("Val predictions (colour) over the label (faint white)", fontsize=11)
    return _save(fig, path)


def _is_loss(name: str) -> bool:
    return "loss" in name.lower()


def _is_pck(name: str) -> bool:
    return "pck" in name.lower()


_LINESTYLES = ("-", "--", ":", "-.")


def figure_training(data: ReportData, path: Path) -> Path:
    models = list(data.models.values())
    if not any(m.training for m in models):
        return _placeholder(
            path, FIGURE_TITLES["training"], "No training logs yet (reports/train/<model>/plots/metrics/*.tsv)."
        )
    has_pck = any(_is_pck(n) for m in models for n in m.training)
    ncols = len(models) + (1 if has_pck else 0)
    fig = _figure(4.6 * ncols, 4.2)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for k, m in enumerate(models):
        ax = axes[k]
        losses = [n for n in m.training if _is_loss(n)]
        if not losses:
            ax.text(0.5, 0.5, "no loss logged", ha="center", va="center", transform=ax.transAxes, color="0.4")
        positive = True
        for j, n in enumerate(losses):
            steps, values = m.training[n]
            positive &= bool(np.all(values > 0))
            ax.plot(steps, values, color=_color(m.name), ls=_LINESTYLES[j % len(_LINESTYLES)], lw=1.8, label=n)
        if losses and positive:
            lo = min(float(np.min(m.training[n][1])) for n in losses)
            hi = max(float(np.max(m.training[n][1])) for n in losses)
            if hi / lo > 10:
                ax.set_yscale("log")
        ax.set_title(f"{_label(m)} loss", color=_color(m.name), fontweight="bold")
        ax.set_xlabel("epoch (dvclive step)")
        ax.set_ylabel("loss")
        ax.grid(color="0.9")
        if losses:
            ax.legend(fontsize=8)
    if has_pck:
        ax = axes[-1]
        for m in models:
            for j, n in enumerate(x for x in m.training if _is_pck(x)):
                steps, values = m.training[n]
                ax.plot(
                    steps,
                    values,
                    color=_color(m.name),
                    ls=_LINESTYLES[j % len(_LINESTYLES)],
                    lw=1.8,
                    label=f"{_label(m)} {n}",
                )
        ax.set_title("dev PCK")
        ax.set_xlabel("epoch (dvclive step)")
        ax.set_ylabel("PCK")
        ax.set_ylim(0, 1)
        ax.grid(color="0.9")
        ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


FIGURE_MAKERS = {
    "pck_curves": figure_pck_curves,
    "per_keypoint": figure_per_keypoint,
    "latency": figure_latency,
    "qualitative": figure_qualitative,
    "training": figure_training,
}


def make_figures(data: ReportData) -> dict[str, Path]:
    """Write every figure (a placeholder where its inputs are missing, so the outs always exist)."""
    return {key: FIGURE_MAKERS[key](data, data.paths.figures / FIGURE_FILES[key]) for key in FIGURE_FILES}


def figure_links(paths: ReportPaths) -> dict[str, str]:
    """Links to the figure files as the README writes them (relative to the README's folder)."""
    rel = os.path.relpath(paths.figures.resolve(), paths.readme.resolve().parent)
    return {key: Path(rel, name).as_posix() for key, name in FIGURE_FILES.items()}
