"""yolo_map: Ultralytics' own validation of the YOLO baseline on the val split (box and pose
precision, recall, mAP50, mAP50-95) -> reports/metrics/yolo_map.json."""

from handkp.core.config import run_stage
from handkp.yolo.validate import run_yolo_map


def main() -> None:
    run_stage("yolo_map", run_yolo_map)


if __name__ == "__main__":
    main()
