"""The INT8 variant of the heatmap model for the CPU: built by ``handkp.deploy.quantize``, checked
against the fp32 file (``handkp.deploy.parity``) and evaluated on val like every other model."""
from __future__ import annotations

import polars as pl

from ..core.io import write_json
from ..core.paths import HEATMAP_INT8_ONNX, HEATMAP_ONNX, IMAGE_CACHE, PREPARED_TABLE, REPORTS
from ..data.cache import ImageCache
from ..deploy.parity import compare_predictors
from ..deploy.quantize import quantize_int8
from ..runtime import load_predictor
from .evaluation import evaluate_model, rounded


INT8_PARITY = REPORTS / "deploy" / "int8_parity.json"


def run_quantize(params: dict) -> dict:
    """The quantize stage: INT8 static quantisation of models/heatmap.onnx for the CPU target,
    calibrated on ``quantize.calibration_images`` train images (a seeded pick); its parity with
    the fp32 file on val images and its PCK on val."""
    cfg, threads = params["quantize"], params["benchmark"]["threads"]
    cache = ImageCache(IMAGE_CACHE)
    fp32 = load_predictor(HEATMAP_ONNX, "onnxruntime", "cpu", threads)
    calibration = [fp32.preprocess(image)[0] for image in cache.pick("train", cfg["calibration_images"], seed=params["seed"])]
    quantize_int8(HEATMAP_ONNX, HEATMAP_INT8_ONNX, calibration)
    int8 = load_predictor(HEATMAP_INT8_ONNX, "onnxruntime", "cpu", threads)
    parity = compare_predictors(fp32, int8, cache.pick("val", cfg["parity_images"]))
    write_json(INT8_PARITY, rounded(parity))
    metrics = evaluate_model(int8, pl.read_parquet(PREPARED_TABLE), cache, "val", "heatmap_int8", REPORTS, params["evaluate"]["batch_size"])
    print("int8 parity:", {k: parity[k] for k in ("keypoint_mean_diff_px", "keypoint_max_diff_px_confident")})
    print("int8 val:", {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
    return metrics
