"""engine: the deployable artefacts for deploy.target -> models/engine/ (heatmap + YOLO baseline,
each with a sidecar .json) and reports/metrics/engine.json (sizes; trtexec's performance summary
for engines built by trtexec). All or nothing: a failure leaves no models/engine/."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handkp.config import load_params  # noqa: E402
from handkp.deploy import DeployError, build_artefacts  # noqa: E402
from handkp.remote import RemoteError  # noqa: E402

MODELS = {"heatmap": Path("models/heatmap.onnx"), "yolo": Path("models/yolo.onnx")}
OUT = Path("models/engine")
METRICS = Path("reports/metrics/engine.json")

if __name__ == "__main__":
    cfg = load_params()["deploy"]
    target = cfg["target"]
    files = {}
    for name, path in MODELS.items():
        if path.is_file():
            files[name] = path
        elif name == "yolo":
            print(f"note: {path} not found (no YOLO export yet): the YOLO baseline gets no {target} artefact")
        else:
            sys.exit(f"engine stage: {path} not found; run the export stage first")
    try:
        summary = build_artefacts(target, files, OUT, cfg)
    except (DeployError, RemoteError, ValueError) as err:
        sys.exit(f"engine stage failed (deploy.target={target}); no {OUT}/ was written:\n{err}")
    METRICS.parent.mkdir(parents=True, exist_ok=True)
    METRICS.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
