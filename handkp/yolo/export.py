"""ONNX export of the YOLO-pose baseline."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..core.paths import YOLO_DIR, YOLO_ONNX
from .ultralytics import YoloError, configure_ultralytics


def export_onnx(weights: Path, out_file: Path, imgsz: int) -> Path:
    """``weights`` (an Ultralytics .pt) -> ONNX with a fixed 1×3×imgsz×imgsz input, Ultralytics'
    metadata kept (``task: pose``: how handkp.runtime recognises a YOLO file). The export runs in
    a temporary folder (Ultralytics writes next to the weights) without onnxslim (simplify off),
    so nothing is installed or downloaded."""
    configure_ultralytics()
    import onnx
    from ultralytics import YOLO

    out_file = Path(out_file)
    with tempfile.TemporaryDirectory(prefix="handkp-yolo-export-") as work:
        local = Path(work) / "yolo.pt"
        shutil.copyfile(weights, local)
        exported = Path(
            YOLO(str(local), task="pose").export(
                format="onnx", imgsz=int(imgsz), batch=1, dynamic=False, simplify=False, device="cpu"
            )
        )
        meta = {p.key: p.value for p in onnx.load(str(exported), load_external_data=False).metadata_props}
        if meta.get("task") != "pose":
            raise YoloError(f"{exported}: exported without Ultralytics' task=pose metadata ({sorted(meta)})")
        out_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(exported), out_file)
    return out_file


def run_yolo_export(params: dict) -> Path:
    """The yolo_export stage: models/yolo/best.pt -> models/yolo.onnx (fixed 1×3×S×S, S = yolo.imgsz)."""
    out = export_onnx(YOLO_DIR / "best.pt", YOLO_ONNX, params["yolo"]["imgsz"])
    print(f"wrote {out}")
    return out
