"""yolo_export: models/yolo/best.pt -> models/yolo.onnx (Ultralytics' metadata task=pose)."""

from handkp.core.config import run_stage
from handkp.yolo.export import run_yolo_export


def main() -> None:
    run_stage("yolo_export", run_yolo_export)


if __name__ == "__main__":
    main()
