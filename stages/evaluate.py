"""evaluate: the trained heatmap model on the val split through the runtime API
-> reports/metrics/heatmap.json, reports/predictions/heatmap_val.parquet, reports/eval/heatmap/."""
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handkp.config import load_params  # noqa: E402
from handkp.evaluate import evaluate_model  # noqa: E402
from handkp.runtime import load_predictor  # noqa: E402

if __name__ == "__main__":
    cfg = load_params()["evaluate"]
    predictor = load_predictor("models/heatmap/best.pt", backend="torch", device=cfg["device"])
    table = pl.read_parquet("data/prepared/keypoints.parquet")
    metrics = evaluate_model(predictor, table, Path("data/raw"), "val", "heatmap", Path("reports"), cfg["batch_size"])
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
