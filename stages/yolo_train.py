"""yolo_train: the Ultralytics YOLO-pose baseline on data/yolo/dataset.yaml -> models/yolo/best.pt,
per-epoch curves in reports/train/yolo/ (dvclive). Ultralytics' runs folder is temporary."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handkp.config import load_params  # noqa: E402
from handkp.yolo import YoloError, train_yolo  # noqa: E402

if __name__ == "__main__":
    params = load_params()
    try:
        last = train_yolo(params["yolo"], params["seed"], Path("data/yolo/dataset.yaml"), Path("models/yolo"), Path("reports/train/yolo"))
    except YoloError as err:
        sys.exit(f"yolo_train failed: {err}")
    for group in ("train", "val"):
        print(f"last epoch, {group}:", {k: round(v, 4) for k, v in last.get(group, {}).items()})
