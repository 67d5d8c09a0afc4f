"""prepare: validate every image and label (bad ones are listed in reports/data_quality.json
and left out), then write the keypoint table with its dev slice -> data/prepared/keypoints.parquet."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handkp.config import load_params  # noqa: E402
from handkp.dataset import DataError, check_quality, keypoint_table, validate_dataset  # noqa: E402
from handkp.fetch import DATASET_DIR  # noqa: E402

if __name__ == "__main__":
    params = load_params()
    data = params["data"]
    raw = Path("data/raw")
    samples, report = validate_dataset(raw, raw / DATASET_DIR, data["image_size"], data["max_hands"])
    Path("reports").mkdir(exist_ok=True)
    Path("reports/data_quality.json").write_text(json.dumps(report, indent=2) + "\n")
    for bad in report["bad"]:
        print(f"left out {bad['path']}: {bad['reason']}")
    try:
        check_quality(report, raw / DATASET_DIR, data["max_bad_fraction"])
    except DataError as err:
        sys.exit(f"prepare failed: {err}")
    Path("data/prepared").mkdir(parents=True, exist_ok=True)
    keypoint_table(samples, data["dev_fraction"], params["seed"]).write_parquet("data/prepared/keypoints.parquet")
    print(f"kept {report['kept']} of {report['checked']} images; {report['bad_count']} left out (see reports/data_quality.json)")
