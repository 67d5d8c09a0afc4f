"""speed: latency (CPU, ONNX Runtime, batch 1), parameters and MACs of the head variants in
params `speed.variants`, the trained default (fp32 and INT8) and the YOLO baseline, in one run
-> reports/metrics/speed.json, reports/speed/variants.csv."""
import json
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handkp.benchmark import cpu_model_name  # noqa: E402
from handkp.config import load_params  # noqa: E402
from handkp.export import split_images  # noqa: E402
from handkp.speed import speed_table  # noqa: E402

if __name__ == "__main__":
    params = load_params()
    cfg, bench = params["speed"], params["benchmark"]
    files = {"default_fp32": Path("models/heatmap.onnx"), "default_int8": Path("models/heatmap.int8.onnx"), "yolo": Path("models/yolo.onnx")}
    images = split_images(pl.read_parquet("data/prepared/keypoints.parquet"), "data/raw", "val", bench["images"])
    rows = speed_table(cfg["variants"], params["model"], params["codec"], files, images, bench["threads"],
                       bench["warmup"], bench["iterations"], cfg["rounds"])
    Path("reports/speed").mkdir(parents=True, exist_ok=True)
    out = {"runtime": "onnxruntime", "device": cpu_model_name(), "threads": bench["threads"], "rows": rows}
    Path("reports/metrics/speed.json").write_text(json.dumps(out, indent=2) + "\n")
    pl.DataFrame([{"name": k, **{c: v.get(c) for c in ("kind", "backbone_tail", "head", "deconv_layers", "deconv_channels", "params_m", "macs_m",
                   "model_p50_ms", "e2e_p50_ms", "e2e_p99_ms", "e2e_p50_vs_yolo")}} for k, v in rows.items()]).write_csv("reports/speed/variants.csv")
    for name, row in rows.items():
        print(f"{name:28s} e2e p50 {row['e2e_p50_ms']:6.2f} ms  p99 {row['e2e_p99_ms']:6.2f} ms  x{row.get('e2e_p50_vs_yolo', float('nan')):.2f} of YOLO")
