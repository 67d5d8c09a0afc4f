"""One evaluator for every model: a predictor over a split -> predictions table -> metrics files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
from tqdm import tqdm

from .dataset import read_rgb
from .keypoints import NUM_KEYPOINTS
from .metrics import compute_metrics
from .runtime import Predictor

PREDICTION_SCHEMA = {"image": pl.String, "keypoint": pl.Int8, "x": pl.Float32, "y": pl.Float32, "score": pl.Float32}


def predict_images(predictor: Predictor, images: list[str], raw_root: Path, batch_size: int = 16) -> pl.DataFrame:
    """Predictions ``image, keypoint, x, y, score`` (px) for each image; an image where the
    model found no hand gets no rows."""
    cols = {k: [] for k in PREDICTION_SCHEMA}
    with tqdm(total=len(images), desc=f"predict ({predictor.kind}, {predictor.backend})", unit="img") as bar:
        for start in range(0, len(images), batch_size):
            names = images[start:start + batch_size]
            for name, p in zip(names, predictor.predict_batch([read_rgb(Path(raw_root) / n) for n in names])):
                if p.found:
                    cols["image"] += [name] * NUM_KEYPOINTS
                    cols["keypoint"] += list(range(NUM_KEYPOINTS))
                    cols["x"] += p.keypoints[:, 0].tolist()
                    cols["y"] += p.keypoints[:, 1].tolist()
                    cols["score"] += p.scores.tolist()
            bar.update(len(names))
    return pl.DataFrame(cols, schema=PREDICTION_SCHEMA)


def write_evaluation(gt: pl.DataFrame, pred: pl.DataFrame, name: str, reports_dir: Path) -> dict:
    """Writes ``metrics/<name>.json``, ``predictions/<name>_val.parquet`` and
    ``eval/<name>/{pck_curve,per_keypoint}.csv`` under ``reports_dir``; returns the metrics."""
    reports_dir = Path(reports_dir)
    metrics, curve, per_kp = compute_metrics(gt, pred)
    for sub in ("metrics", "predictions", f"eval/{name}"):
        (reports_dir / sub).mkdir(parents=True, exist_ok=True)
    (reports_dir / "metrics" / f"{name}.json").write_text(json.dumps(_rounded(metrics), indent=2) + "\n")
    pred.sort(["image", "keypoint"]).write_parquet(reports_dir / "predictions" / f"{name}_val.parquet")
    curve.with_columns(pl.col("pck").round(6)).write_csv(reports_dir / "eval" / name / "pck_curve.csv")
    per_kp.with_columns(pl.col(pl.Float64).round(6)).write_csv(reports_dir / "eval" / name / "per_keypoint.csv")
    return metrics


def evaluate_model(predictor: Predictor, table: pl.DataFrame, raw_root: Path, split: str, name: str, reports_dir: Path, batch_size: int = 16) -> dict:
    """Predicts every image of ``split`` and writes the evaluation files; returns the metrics."""
    gt = table.filter(pl.col("split") == split)
    images = gt["image"].unique().sort().to_list()
    pred = predict_images(predictor, images, raw_root, batch_size)
    return write_evaluation(gt, pred, name, reports_dir)


def _rounded(metrics: dict) -> dict:
    return {k: (round(v, 6) if isinstance(v, float) and np.isfinite(v) else v) for k, v in metrics.items()}
