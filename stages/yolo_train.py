"""yolo_train: The Ultralytics YOLO-pose baseline -> models/yolo/best.pt, curves in reports/train/yolo/."""

from handkp.core.config import run_stage
from handkp.yolo.train import run_yolo_train


def main() -> None:
    run_stage("yolo_train", run_yolo_train)


if __name__ == "__main__":
    main()
