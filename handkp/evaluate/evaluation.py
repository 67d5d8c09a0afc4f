"""One evaluator for every model: a predictor over a split -> predictions table -> metrics files.

metrics = evaluate_model(predictor, table, ImageCache("data/images"), "val", "heatmap", Path("reports"))
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import polars as pl
from tqdm import tqdm

from ..core.device import resolve_device
from ..core.errors import ModelLoadError
from ..core.images import read_rgb
from ..core.io import write_json
from ..core.keypoints import NUM_KEYPOINTS
from ..core.metrics import compute_metrics
from ..core.paths import ENGINE_DIR, HEATMAP_CHECKPOINT, IMAGE_CACHE, PREPARED_TABLE, REPORTS, YOLO_ONNX
from ..data.cache import ImageCache
from ..runtime import Predictor, load_predictor

PREDICTION_SCHEMA = {"image": pl.String, "keypoint": pl.Int8, "x": pl.Float32, "y": pl.Float32, "score": pl.Float32}


def image_reader(source: ImageCache | Mapping[str, np.ndarray] | str | Path) -> Callable[[str], np.ndarray]:
    """name -> RGB uint8 image, from the image cache, a dict of images, or a folder the names are
    relative to."""
    if isinstance(source, ImageCache):
        return source.read
    if isinstance(source, Mapping):
        return source.__getitem__
    return lambda name: read_rgb(Path(source) / name)


def predict_images(
    predictor: Predictor,
    images: list[str],
    source: ImageCache | Mapping[str, np.ndarray] | str | Path,
    batch_size: int = 16,
) -> pl.DataFrame:
    """Predictions ``image, keypoint, x, y, score`` (px) for each image; an image where the
    model found no hand gets no rows."""
    read = image_reader(source)
    cols = {k: [] for k in PREDICTION_SCHEMA}
    with tqdm(total=len(images), desc=f"predict ({predictor.kind}, {predictor.backend})", unit="img") as bar:
        for start in range(0, len(images), batch_size):
            names = images[start : start + batch_size]
            for name, p in zip(names, predictor.predict_batch([read(n) for n in names])):
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
    write_json(reports_dir / "metrics" / f"{name}.json", rounded(metrics))
    pred.sort(["image", "keypoint"]).write_parquet(reports_dir / "predictions" / f"{name}_val.parquet")
    curve.with_columns(pl.col("pck").round(6)).write_csv(reports_dir / "eval" / name / "pck_curve.csv")
    per_kp.with_columns(pl.col(pl.Float64).round(6)).write_csv(reports_dir / "eval" / name / "per_keypoint.csv")
    return metrics


def write_not_evaluated(name: str, reason: str, reports_dir: Path) -> None:
    """The evaluation files of a model that cannot run here (a Jetson engine on this machine):
    metrics saying so, an empty predictions table, a note in the eval folder."""
    reports_dir = Path(reports_dir)
    (reports_dir / "predictions").mkdir(parents=True, exist_ok=True)
    (reports_dir / "eval" / name).mkdir(parents=True, exist_ok=True)
    write_json(reports_dir / "metrics" / f"{name}.json", {"evaluated": False, "reason": reason})
    pl.DataFrame(schema=PREDICTION_SCHEMA).write_parquet(reports_dir / "predictions" / f"{name}_val.parquet")
    (reports_dir / "eval" / name / "NOT_EVALUATED.txt").write_text(reason + "\n")


def evaluate_model(
    predictor: Predictor,
    table: pl.DataFrame,
    source: ImageCache | str | Path,
    split: str,
    name: str,
    reports_dir: Path,
    batch_size: int = 16,
) -> dict:
    """Predicts every image of ``split`` and writes the evaluation files; returns the metrics."""
    gt = table.filter(pl.col("split") == split)
    images = gt["image"].unique().sort().to_list()
    pred = predict_images(predictor, images, source, batch_size)
    return write_evaluation(gt, pred, name, reports_dir)


def rounded(metrics: dict, digits: int = 6) -> dict:
    """Floats rounded for the metrics files (NaN and inf kept as they are)."""
    return {k: (round(v, digits) if isinstance(v, float) and np.isfinite(v) else v) for k, v in metrics.items()}


def split_metrics(
    predictor: Predictor,
    gt: pl.DataFrame,
    source: ImageCache | Mapping[str, np.ndarray] | str | Path,
    batch_size: int = 16,
) -> dict:
    """The rounded metrics of ``predictor`` on the images of ``gt`` (one split's keypoint rows),
    nothing written."""
    names = gt["image"].unique().sort().to_list()
    metrics, _, _ = compute_metrics(gt, predict_images(predictor, names, source, batch_size))
    return rounded(metrics)


# The ways the live app can run the heatmap model on a still image: key -> load_predictor options.
VAL_PASSES = {"val": {}, "val_flip_test": {"flip_test": True}, "val_refine": {"refine": True}}


def val_passes(onnx: Path, gt: pl.DataFrame, cache: ImageCache, threads: int, batch_size: int) -> dict[str, dict]:
    """A heatmap ONNX file's rounded metrics on the images of ``gt`` through ONNX Runtime, once per
    ``VAL_PASSES`` entry: ``val`` (one pass), ``val_flip_test`` (each image and its mirror image),
    ``val_refine`` (the whole image, then the hand's upright crop placed from those keypoints)."""
    return {
        key: split_metrics(load_predictor(onnx, "onnxruntime", "cpu", threads, **options), gt, cache, batch_size)
        for key, options in VAL_PASSES.items()
    }


def _evaluate_on_val(predictor: Predictor, name: str, batch_size: int) -> dict:
    table = pl.read_parquet(PREPARED_TABLE)
    metrics = evaluate_model(predictor, table, ImageCache(IMAGE_CACHE), "val", name, REPORTS, batch_size)
    print(name, {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
    return metrics


def run_evaluate(params: dict) -> dict:
    """The evaluate stage: the trained heatmap checkpoint on val through the torch backend."""
    cfg = params["evaluate"]
    return _evaluate_on_val(load_predictor(HEATMAP_CHECKPOINT, "torch", cfg["device"]), "heatmap", cfg["batch_size"])


def run_yolo_evaluate(params: dict) -> dict:
    """The yolo_evaluate stage: the YOLO export on val through ONNX Runtime, detections below
    ``evaluate.yolo_conf_threshold`` counting as missed hands."""
    device = resolve_device(params["evaluate"]["device"])
    predictor = load_predictor(
        YOLO_ONNX, "onnxruntime", device, conf_threshold=float(params["evaluate"]["yolo_conf_threshold"])
    )
    return _evaluate_on_val(predictor, "yolo", params["evaluate"]["batch_size"])


def run_evaluate_deployed(params: dict) -> dict | None:
    """The evaluate_deployed stage: the heatmap model through its deployed artefact
    (``deploy.target``). A Jetson engine runs on the Jetson only: unless it loads here, the files
    say it was not evaluated."""
    from ..deploy.artefacts import load_deployed

    target = params["deploy"]["target"]
    name = f"heatmap_{target}"
    try:
        predictor = load_deployed(ENGINE_DIR, "heatmap", target, params["deploy"]["device"])
    except ModelLoadError as err:
        if target != "jetson":
            raise ModelLoadError(f"the {target} artefact cannot run here: {err}") from err
        reason = f"the Jetson engine cannot run on this machine ({err}); on-device evaluation is not implemented"
        print(f"note: {name} not evaluated: {reason}")
        write_not_evaluated(name, reason, REPORTS)
        return None
    return _evaluate_on_val(predictor, name, params["evaluate"]["batch_size"])
