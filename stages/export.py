"""export: models/heatmap/best.pt -> models/heatmap.onnx (simplified, handkp metadata), checked
against PyTorch on val images -> reports/metrics/export.json. Exits non-zero, leaving no ONNX
file, when parity is worse than export.tolerance_heatmap / export.tolerance_px."""
import json
import os
import sys
import tempfile
from pathlib import Path

import polars as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handkp.config import load_params  # noqa: E402
from handkp.export import ParityError, check_parity, compare_predictors, export_onnx, onnx_summary, split_images  # noqa: E402
from handkp.runtime import load_predictor  # noqa: E402

CHECKPOINT = Path("models/heatmap/best.pt")
ONNX = Path("models/heatmap.onnx")
METRICS = Path("reports/metrics/export.json")

if __name__ == "__main__":
    cfg = load_params()["export"]
    torch.set_num_threads(int(cfg.get("torch_threads", 1)))  # the PyTorch reference of the parity check
    images = split_images(pl.read_parquet("data/prepared/keypoints.parquet"), Path("data/raw"), "val", int(cfg["parity_images"]))
    ONNX.parent.mkdir(parents=True, exist_ok=True)
    METRICS.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=ONNX.parent) as tmp:
        candidate = export_onnx(CHECKPOINT, Path(tmp) / ONNX.name, opset=int(cfg["opset"]),
                                dynamic_batch=bool(cfg["dynamic_batch"]), simplify=bool(cfg["simplify"]))
        metrics = compare_predictors(load_predictor(CHECKPOINT, "torch", "cpu"), load_predictor(candidate, "onnxruntime", "cpu"),
                                     images, min_score=float(cfg["parity_min_score"]))
        metrics.update(onnx_summary(candidate))
        METRICS.write_text(json.dumps(metrics, indent=2) + "\n")
        print(json.dumps(metrics, indent=2))
        try:
            check_parity(metrics, float(cfg["tolerance_heatmap"]), float(cfg["tolerance_px"]))
        except ParityError as err:
            sys.exit(f"export failed: {err}. {ONNX} was not written; see {METRICS}.")
        os.replace(candidate, ONNX)
    print(f"wrote {ONNX} ({metrics['onnx_size_mb']:.1f} MB, opset {metrics['opset']})")
