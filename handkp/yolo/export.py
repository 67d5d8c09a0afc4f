"""ONNX exports of the YOLO-pose baseline: at the heatmap model's input size for the comparison on
val (``yolo_export``), and at the hand detector's own input size for frames, with the sizes the
``multihand`` stage weighs against each other (``detector_export``)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..core.errors import HandkpError
from ..core.paths import DETECTOR_ONNX, DETECTOR_SIZES, YOLO_DIR, YOLO_ONNX, sized_detector
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


def detector_sizes(cfg: dict) -> list[int]:
    """The ``detector`` section's input sizes, checked: ``sweep`` (px, each a multiple of 32, the
    YOLO stride) holding ``imgsz``, in increasing order."""
    sizes = sorted({int(s) for s in cfg["sweep"]})
    imgsz = int(cfg["imgsz"])
    bad = [s for s in sizes if s < 32 or s % 32]
    if bad or imgsz not in sizes:
        raise HandkpError(
            f"params.yaml detector: sweep {cfg['sweep']} must be multiples of 32 (YOLO's stride) and hold "
            f"imgsz {imgsz}" + (f"; not multiples of 32: {bad}" if bad else "")
        )
    return sizes


def run_detector_export(params: dict) -> Path:
    """The detector_export stage: models/yolo/best.pt at each ``detector.sweep`` size ->
    models/detector_sizes/yolo_<S>.onnx, and at ``detector.imgsz`` -> models/detector.onnx (the
    hand detector of the multihand stage, the live app and release/detector.onnx)."""
    cfg = params["detector"]
    for size in detector_sizes(cfg):
        export_onnx(YOLO_DIR / "best.pt", sized_detector(size), size)
    shutil.copyfile(sized_detector(cfg["imgsz"]), DETECTOR_ONNX)
    print(f"wrote {DETECTOR_ONNX} ({cfg['imgsz']} px) and {DETECTOR_SIZES}/ ({', '.join(map(str, cfg['sweep']))} px)")
    return DETECTOR_ONNX
