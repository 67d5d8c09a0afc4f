"""quantize: INT8 static quantisation of models/heatmap.onnx for the CPU target, calibrated on
train images; its parity with the fp32 file and its PCK on val
-> models/heatmap.int8.onnx, reports/metrics/{int8_parity,heatmap_int8}.json."""
import json
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handkp.config import load_params  # noqa: E402
from handkp.evaluate import evaluate_model  # noqa: E402
from handkp.export import compare_predictors, split_images  # noqa: E402
from handkp.quantize import quantize_int8  # noqa: E402
from handkp.runtime import load_predictor  # noqa: E402

if __name__ == "__main__":
    params = load_params()
    cfg = params["quantize"]
    table = pl.read_parquet("data/prepared/keypoints.parquet")
    fp32 = load_predictor("models/heatmap.onnx", "onnxruntime", "cpu", params["benchmark"]["threads"])
    train_images = split_images(table, "data/raw", "train", cfg["calibration_images"], seed=params["seed"])
    calibration = [fp32.preprocess(image)[0] for image in train_images]
    quantize_int8("models/heatmap.onnx", "models/heatmap.int8.onnx", calibration)
    int8 = load_predictor("models/heatmap.int8.onnx", "onnxruntime", "cpu", params["benchmark"]["threads"])
    parity = compare_predictors(fp32, int8, split_images(table, "data/raw", "val", cfg["parity_images"]))
    Path("reports/metrics").mkdir(parents=True, exist_ok=True)
    Path("reports/metrics/int8_parity.json").write_text(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in parity.items()}, indent=2) + "\n")
    metrics = evaluate_model(int8, table, Path("data/raw"), "val", "heatmap_int8", Path("reports"), params["evaluate"]["batch_size"])
    print("int8 parity:", {k: parity[k] for k in ("keypoint_mean_diff_px", "keypoint_max_diff_px_confident")})
    print("int8 val:", {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
