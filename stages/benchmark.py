"""benchmark: batch-1 latency of the heatmap model's deployed artefact and the YOLO baseline's on
the same target (deploy.target) -> reports/metrics/latency.json.

onnxruntime / tensorrt: measured here with handkp.benchmark.measure_latency on val images
(model-only and end-to-end). jetson: trtexec's own performance summary from the engine build
(reports/metrics/engine.json), model-only."""
import json
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handkp.benchmark import device_description, latency_from_trtexec, measure_latency  # noqa: E402
from handkp.config import load_params  # noqa: E402
from handkp.deploy import artefact_path, load_deployed  # noqa: E402
from handkp.export import split_images  # noqa: E402
from handkp.runtime import ModelLoadError  # noqa: E402

ENGINE_DIR = Path("models/engine")
ENGINE_METRICS = Path("reports/metrics/engine.json")
OUT = Path("reports/metrics/latency.json")

if __name__ == "__main__":
    params = load_params()
    cfg, deploy = params["benchmark"], params["deploy"]
    target, threads = deploy["target"], int(cfg["threads"])
    result, notes = {"target": target, "device": None, "threads": threads}, []
    images = None
    for name in ("heatmap", "yolo"):
        if not artefact_path(ENGINE_DIR, name, target).is_file():
            if name == "heatmap":
                sys.exit(f"benchmark: no {artefact_path(ENGINE_DIR, name, target)}; run the engine stage first")
            notes.append(f"{name}: no {target} artefact (models/yolo.onnx was not exported), not measured")
            print(f"note: {notes[-1]}")
            continue
        if target == "jetson":
            built = json.loads(ENGINE_METRICS.read_text())
            result[name] = latency_from_trtexec(built[name])
            result["device"] = built.get("device", deploy["jetson"]["host"])
            continue
        if images is None:
            images = split_images(pl.read_parquet("data/prepared/keypoints.parquet"), Path("data/raw"), "val", int(cfg["images"]))
        try:
            predictor = load_deployed(ENGINE_DIR, name, target, deploy["device"], threads=threads)
        except ModelLoadError as err:
            sys.exit(f"benchmark: the {target} artefact of {name} cannot run here: {err}")
        result["device"] = device_description(predictor)
        result[name] = measure_latency(predictor, images, int(cfg["warmup"]), int(cfg["iterations"]))
        print(name, json.dumps(result[name]))
    if target == "jetson":
        notes.append("jetson: model-only latency from trtexec's performance summary on the device; end-to-end not measured")
    if notes:
        result["notes"] = notes
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
