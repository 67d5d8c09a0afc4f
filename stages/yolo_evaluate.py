"""yolo_evaluate: the YOLO baseline on the val split through the runtime API and the same
evaluator as the heatmap model -> reports/metrics/yolo.json, reports/predictions/yolo_val.parquet,
reports/eval/yolo/. An image without a detection counts its visible keypoints as misses."""
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import handkp.yolo  # noqa: E402
from handkp.config import load_params  # noqa: E402
from handkp.evaluate import evaluate_model  # noqa: E402
from handkp.runtime import load_predictor  # noqa: E402

if __name__ == "__main__":
    params = load_params()
    cfg = params["yolo"]
    handkp.yolo.CONF_THRESHOLD = float(cfg["conf_threshold"])  # read by decode_pose_output
    device = params["evaluate"]["device"]  # auto: CUDA when ONNX Runtime has it, else CPU
    predictor = load_predictor("models/yolo.onnx", "onnxruntime", device="cuda" if device == "auto" else device)
    table = pl.read_parquet("data/prepared/keypoints.parquet")
    metrics = evaluate_model(predictor, table, Path("data/raw"), "val", "yolo", Path("reports"), params["evaluate"]["batch_size"])
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
