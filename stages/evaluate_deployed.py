"""evaluate_deployed: PCK of the heatmap model through its deployed artefact (models/engine/,
deploy.target) on the val split -> reports/metrics/heatmap_<target>.json (the keys of heatmap.json),
reports/predictions/heatmap_<target>_val.parquet, reports/eval/heatmap_<target>/.

A jetson engine runs on the Jetson only: unless it loads here, the files say it was not evaluated."""
import json
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handkp.config import load_params  # noqa: E402
from handkp.deploy import load_deployed  # noqa: E402
from handkp.evaluate import PREDICTION_SCHEMA, evaluate_model  # noqa: E402
from handkp.runtime import ModelLoadError  # noqa: E402

REPORTS = Path("reports")

if __name__ == "__main__":
    params = load_params()
    cfg = params["deploy"]
    target = cfg["target"]
    name = f"heatmap_{target}"
    try:
        predictor = load_deployed(Path("models/engine"), "heatmap", target, cfg["device"])
    except ModelLoadError as err:
        if target != "jetson":
            sys.exit(f"evaluate_deployed: the {target} artefact cannot run here: {err}")
        reason = f"the Jetson engine cannot run on this machine ({err}); on-device evaluation is not implemented"
        print(f"note: heatmap_{target} not evaluated: {reason}")
        for sub in ("metrics", "predictions", f"eval/{name}"):
            (REPORTS / sub).mkdir(parents=True, exist_ok=True)
        (REPORTS / "metrics" / f"{name}.json").write_text(json.dumps({"evaluated": False, "reason": reason}, indent=2) + "\n")
        pl.DataFrame(schema=PREDICTION_SCHEMA).write_parquet(REPORTS / "predictions" / f"{name}_val.parquet")
        (REPORTS / "eval" / name / "NOT_EVALUATED.txt").write_text(reason + "\n")
        sys.exit(0)
    table = pl.read_parquet("data/prepared/keypoints.parquet")
    metrics = evaluate_model(predictor, table, Path("data/raw"), "val", name, REPORTS, params["evaluate"]["batch_size"])
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
