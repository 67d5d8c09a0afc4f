"""yolo_export: models/yolo/best.pt -> models/yolo.onnx (fixed 1x3xSxS input, S = yolo.imgsz),
with Ultralytics' metadata (task: pose) by which handkp.runtime recognises it."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handkp.config import load_params  # noqa: E402
from handkp.yolo import YoloError, export_onnx  # noqa: E402

if __name__ == "__main__":
    cfg = load_params()["yolo"]
    try:
        out = export_onnx(Path("models/yolo/best.pt"), Path("models/yolo.onnx"), cfg["imgsz"])
    except YoloError as err:
        sys.exit(f"yolo_export failed: {err}")
    print(f"wrote {out}")
