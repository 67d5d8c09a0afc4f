"""yolo_data: the Ultralytics dataset over the validated data in data/raw/hand-keypoints/
-> data/yolo/{dataset.yaml,train.txt,val.txt}. Train = the heatmap model's train images (the
train split minus the dev slice); val.txt, Ultralytics' per-epoch validation that picks best.pt,
= the dev slice (as for the heatmap model), so the val split is seen only by yolo_evaluate.
Bad samples of reports/data_quality.json are left out of both lists."""
import json
import sys
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handkp.yolo import YoloError, read_image_lists, write_dataset_yaml  # noqa: E402

if __name__ == "__main__":
    table = pl.read_parquet("data/prepared/keypoints.parquet")
    report = json.loads(Path("reports/data_quality.json").read_text())
    try:
        path = write_dataset_yaml(table, report, Path("data/raw"), Path("data/yolo"))
    except YoloError as err:
        sys.exit(f"yolo_data failed: {err}")
    counts = {split: len(images) for split, images in read_image_lists(path).items()}
    print(f"{path}: {counts['train']} train, {counts['val']} validation (dev) images ({report.get('bad_count', 0)} bad samples left out)")
