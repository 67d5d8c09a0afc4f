"""INT8 for the CPU, evaluated on val like every other model.

quantize stage: ONNX Runtime's static quantisation of the heatmap model (``handkp.deploy.quantize``),
checked against the fp32 file (``handkp.deploy.parity``) -> models/heatmap.int8.onnx.
openvino_int8 stage: NNCF's INT8 IRs of both trained models, the heatmap model and the YOLO
baseline, for OpenVINO (``handkp.deploy.openvino``) -> models/openvino_int8/{heatmap,yolo}.xml.
Both are calibrated on the same seeded pick of ``quantize.calibration_images`` train images, and
the speed stage times these very files."""

from __future__ import annotations

import polars as pl

from ..core.io import write_json
from ..core.paths import (
    HEATMAP_INT8_ONNX,
    HEATMAP_ONNX,
    IMAGE_CACHE,
    INT8_PARITY,
    OPENVINO_INT8_DIR,
    PREPARED_TABLE,
    REPORTS,
    YOLO_ONNX,
)
from ..data.cache import ImageCache
from ..deploy.parity import compare_predictors
from ..deploy.quantize import quantize_int8
from ..runtime import load_predictor
from .evaluation import evaluate_model, rounded

OPENVINO_INT8_NAMES = {
    "heatmap": "heatmap_openvino_int8",
    "yolo": "yolo_openvino_int8",
}  # -> reports/metrics/<name>.json


def run_quantize(params: dict) -> dict:
    """The quantize stage: INT8 static quantisation of models/heatmap.onnx for the CPU target,
    calibrated on ``quantize.calibration_images`` train images (a seeded pick); its parity with
    the fp32 file on val images and its PCK on val."""
    cfg, threads = params["quantize"], params["runtime"]["threads"]
    cache = ImageCache(IMAGE_CACHE)
    fp32 = load_predictor(HEATMAP_ONNX, "onnxruntime", "cpu", threads)
    calibration = [
        fp32.preprocess(image)[0] for image in cache.pick("train", cfg["calibration_images"], seed=params["seed"])
    ]
    quantize_int8(HEATMAP_ONNX, HEATMAP_INT8_ONNX, calibration)
    int8 = load_predictor(HEATMAP_INT8_ONNX, "onnxruntime", "cpu", threads)
    parity = compare_predictors(fp32, int8, cache.pick("val", cfg["parity_images"]))
    write_json(INT8_PARITY, rounded(parity))
    metrics = evaluate_model(
        int8, pl.read_parquet(PREPARED_TABLE), cache, "val", "heatmap_int8", REPORTS, params["evaluate"]["batch_size"]
    )
    print("int8 parity:", {k: parity[k] for k in ("keypoint_mean_diff_px", "keypoint_max_diff_px_confident")})
    print("int8 val:", {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
    return metrics


def run_openvino_int8(params: dict) -> dict:
    """The openvino_int8 stage: NNCF INT8 IRs of models/heatmap.onnx and models/yolo.onnx
    (``handkp.deploy.artefacts``, each with its sidecar; all or nothing), calibrated on
    ``quantize.calibration_images`` train images (the quantize stage's seeded pick, each
    pre-processed by its model's own decoder), then each evaluated on val through OpenVINO at
    int8 -> reports/metrics/{heatmap,yolo}_openvino_int8.json (+ predictions and eval files)."""
    from ..deploy.artefacts import build_artefacts

    cache = ImageCache(IMAGE_CACHE)
    calibration = cache.pick("train", params["quantize"]["calibration_images"], seed=params["seed"])
    cfg = {"openvino": {"precision": "int8"}}
    summary = build_artefacts(
        "openvino", {"heatmap": HEATMAP_ONNX, "yolo": YOLO_ONNX}, OPENVINO_INT8_DIR, cfg, calibration
    )
    table, threads = pl.read_parquet(PREPARED_TABLE), params["runtime"]["threads"]
    results = {}
    for model, name in OPENVINO_INT8_NAMES.items():
        predictor = load_predictor(
            OPENVINO_INT8_DIR / f"{model}.xml",
            "openvino",
            "cpu",
            threads,
            conf_threshold=float(params["evaluate"]["yolo_conf_threshold"]),
            precision="int8",
        )
        results[model] = evaluate_model(predictor, table, cache, "val", name, REPORTS, params["evaluate"]["batch_size"])
        print(
            f"{name} ({summary[model].get('size_mb')} MB) val:",
            {k: round(v, 4) if isinstance(v, float) else v for k, v in results[model].items()},
        )
    return results
