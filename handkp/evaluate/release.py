"""The released model: ``release/heatmap.onnx`` (the exported, parity-checked file, committed to
git so a fresh clone can run it) and ``release/manifest.json``: its sha256, the params it was
trained with, its val metrics recomputed from the released file itself, its robustness metrics,
and the training run's figures (epochs, images seen, wall time, images/s, hardware, commit)."""
from __future__ import annotations

import json
import shutil
import subprocess

import polars as pl

from ..core.errors import HandkpError
from ..core.io import atomic_path, sha256_file, write_json
from ..core.metrics import compute_metrics
from ..core.paths import HEATMAP_ONNX, IMAGE_CACHE, PREPARED_TABLE, RELEASE_MANIFEST, RELEASE_ONNX, TRAIN_LOGS, TRAIN_STATE_COPY
from ..data.cache import ImageCache
from ..runtime import load_predictor
from .evaluation import predict_images, rounded
from .robustness import ROBUSTNESS


class ReleaseError(HandkpError):
    """The release cannot be assembled (a missing input, or inputs of different models)."""


def _git_commit() -> str | None:
    done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def _read_json(path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _series(name: str) -> list[float]:
    """One dvclive series of the heatmap training (``train/epoch_seconds``), in epoch order."""
    path = TRAIN_LOGS / "heatmap" / "plots" / "metrics" / f"{name}.tsv"
    if not path.is_file():
        return []
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    col = rows[0].index(name.rsplit("/", 1)[-1])
    return [float(r[col]) for r in rows[1:] if len(r) > col and r[col]]


def training_summary(train_images: int) -> dict:
    """The training run's figures from its dvclive logs (and, for the hardware, from the state
    copy's manifest under release/ when the run wrote one)."""
    seconds, speeds = _series("train/epoch_seconds"), _series("train/images_per_s")
    copy = _read_json(TRAIN_STATE_COPY.with_suffix(".json")) or {}
    return {"epochs": len(speeds), "images_seen": len(speeds) * train_images,
            "train_hours": round(sum(seconds) / 3600, 3) if seconds else None,
            "images_per_s_median": round(sorted(speeds)[len(speeds) // 2], 2) if speeds else None,
            "hardware": copy.get("hardware"), "torch": copy.get("torch"), "best_epoch": copy.get("best_epoch"),
            "fingerprint": copy.get("fingerprint")}


def run_release(params: dict) -> dict:
    """The release stage: copies models/heatmap.onnx to release/, evaluates the copy on val
    through ONNX Runtime and writes the manifest."""
    if not HEATMAP_ONNX.is_file():
        raise ReleaseError(f"{HEATMAP_ONNX} not found; run the export stage first")
    sha = sha256_file(HEATMAP_ONNX)
    robustness = _read_json(ROBUSTNESS)
    if robustness is not None and robustness.get("files", {}).get("heatmap") != sha:
        raise ReleaseError(f"{ROBUSTNESS} was measured on another {HEATMAP_ONNX}; run dvc repro robustness")
    with atomic_path(RELEASE_ONNX) as tmp:
        shutil.copyfile(HEATMAP_ONNX, tmp)
    predictor = load_predictor(RELEASE_ONNX, "onnxruntime", "cpu", int(params["benchmark"]["threads"]))
    table = pl.read_parquet(PREPARED_TABLE)
    gt = table.filter(pl.col("split") == "val")
    names = gt["image"].unique().sort().to_list()
    metrics, _, _ = compute_metrics(gt, predict_images(predictor, names, ImageCache(IMAGE_CACHE), int(params["evaluate"]["batch_size"])))
    training = training_summary(len(table.filter(pl.col("split") == "train")["image"].unique()))
    manifest = {
        "file": RELEASE_ONNX.name, "sha256": sha256_file(RELEASE_ONNX), "bytes": RELEASE_ONNX.stat().st_size,
        "input": "RGB pixels 0-255, (1, 3, 224, 224) float32; output (1, 21, 56, 56) heatmaps (see the ONNX metadata)",
        "params": {k: params[k] for k in ("seed", "model", "codec", "train")},
        "val": rounded(metrics),
        "robustness": None if robustness is None else {"images": robustness["images"], "heatmap": robustness["models"]["heatmap"],
                                                       "presence": robustness["presence"].get("heatmap")},
        "training": training,
        "commit": _git_commit(),
    }
    write_json(RELEASE_MANIFEST, manifest)
    print(f"released {RELEASE_ONNX} (sha256 {manifest['sha256'][:12]}…): val PCK@1/3/5/7/10 "
          + " / ".join(f"{metrics[f'pck_{t}px']:.3f}" for t in (1, 3, 5, 7, 10)))
    return manifest
