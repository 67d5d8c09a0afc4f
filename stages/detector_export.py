"""detector_export: models/yolo/best.pt -> models/detector.onnx at detector.imgsz, and
models/detector_sizes/yolo_<S>.onnx at each detector.sweep size."""

from handkp.core.config import run_stage
from handkp.yolo.export import run_detector_export


def main() -> None:
    run_stage("detector_export", run_detector_export)


if __name__ == "__main__":
    main()
