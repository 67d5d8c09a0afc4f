"""ONNX exports of the YOLO-pose baseline: at the heatmap model's input size for the comparison on
val (``yolo_export``), and at the hand detector's own input size for frames, with the sizes the
``multihand`` stage weighs against each other (``detector_export``)."""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

from ..core.errors import HandkpError
from ..core.images import InputSize, input_hw, input_label
from ..core.paths import DETECTOR_ONNX, DETECTOR_SIZES, YOLO_DIR, YOLO_ONNX, sized_detector
from .ultralytics import YoloError, configure_ultralytics

STRIDE = 32  # YOLO's largest stride: an input's sides are multiples of it
EXPORT_TIME_KEYS = ("date",)  # Ultralytics stamps the export time: left out (same weights, same bytes)


def export_onnx(weights: Path, out_file: Path, imgsz: InputSize) -> Path:
    """``weights`` (an Ultralytics .pt) -> ONNX with a fixed 1×3×imgsz×imgsz input (``imgsz`` a
    side, or (height, width) for a rectangular input), Ultralytics' metadata kept (``task: pose``:
    how handkp.runtime recognises a YOLO file) but for the export time (``EXPORT_TIME_KEYS``), so
    exporting the same weights again writes the same file. The export runs in a temporary folder
    (Ultralytics writes next to the weights) without onnxslim (simplify off), so nothing is
    installed or downloaded."""
    configure_ultralytics()
    import onnx
    from ultralytics import YOLO

    out_file = Path(out_file)
    with tempfile.TemporaryDirectory(prefix="handkp-yolo-export-") as work:
        local = Path(work) / "yolo.pt"
        shutil.copyfile(weights, local)
        exported = Path(
            YOLO(str(local), task="pose").export(
                format="onnx", imgsz=list(input_hw(imgsz)), batch=1, dynamic=False, simplify=False, device="cpu"
            )
        )
        model = onnx.load(str(exported))
        meta = {p.key: p.value for p in model.metadata_props}
        if meta.get("task") != "pose":
            raise YoloError(f"{exported}: exported without Ultralytics' task=pose metadata ({sorted(meta)})")
        kept = [p for p in model.metadata_props if p.key not in EXPORT_TIME_KEYS]
        del model.metadata_props[:]
        model.metadata_props.extend(kept)
        out_file.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(out_file))
    return out_file


def run_yolo_export(params: dict) -> Path:
    """The yolo_export stage: models/yolo/best.pt -> models/yolo.onnx (fixed 1×3×S×S, S = yolo.imgsz)."""
    out = export_onnx(YOLO_DIR / "best.pt", YOLO_ONNX, params["yolo"]["imgsz"])
    print(f"wrote {out}")
    return out


def detector_sizes(cfg: dict) -> list[int]:
    """The ``detector`` section's input sizes, checked: ``sweep`` (px, each a multiple of 32, the
    YOLO stride) holding ``imgsz``, in increasing order; ``frame_size`` null or (width, height) > 0."""
    sizes = sorted({int(s) for s in cfg["sweep"]})
    imgsz = int(cfg["imgsz"])
    bad = [s for s in sizes if s < STRIDE or s % STRIDE]
    if bad or imgsz not in sizes:
        raise HandkpError(
            f"params.yaml detector: sweep {cfg['sweep']} must be multiples of {STRIDE} (YOLO's stride) and hold "
            f"imgsz {imgsz}" + (f"; not multiples of {STRIDE}: {bad}" if bad else "")
        )
    frame = cfg.get("frame_size")
    if frame is not None and not (len(frame) == 2 and all(int(v) > 0 for v in frame)):
        raise HandkpError(f"params.yaml detector: frame_size must be null or [width, height] in px, got {frame}")
    return sizes


def detector_input(size: int, frame_size) -> InputSize:
    """The detector's input at ``size``: ``size`` px on the frame's long side and the short side at
    the frame's aspect (``frame_size``: width, height), rounded up to YOLO's stride, as (height,
    width); ``size`` (square) without a frame size or for a square frame. A 640×480 frame at 416 px:
    (320, 416), a quarter less input than 416×416 for the same hand scale."""
    if frame_size is None:
        return int(size)
    w, h = (int(v) for v in frame_size)
    short = min(int(size), STRIDE * math.ceil(size * min(w, h) / max(w, h) / STRIDE))
    hw = (short, int(size)) if w >= h else (int(size), short)
    return hw[0] if hw[0] == hw[1] else hw


def sweep_inputs(cfg: dict) -> list[InputSize]:
    """Every input the ``multihand`` stage weighs (``detector`` section): each sweep size square and
    shaped for ``frame_size`` (``detector_input``; once where the two are one), in increasing size."""
    inputs = []
    for size in detector_sizes(cfg):
        for shape in (size, detector_input(size, cfg.get("frame_size"))):
            if shape not in inputs:
                inputs.append(shape)
    return inputs


def chosen_input(cfg: dict) -> InputSize:
    """The input of the hand detector in use (models/detector.onnx): ``imgsz`` shaped for ``frame_size``."""
    return detector_input(int(cfg["imgsz"]), cfg.get("frame_size"))


def run_detector_export(params: dict) -> Path:
    """The detector_export stage: models/yolo/best.pt at each input of ``sweep_inputs`` (each
    ``detector.sweep`` size square and shaped for ``detector.frame_size``) -> models/detector_sizes/
    (``sized_detector``), and at ``chosen_input`` -> models/detector.onnx (the hand detector of the
    multihand stage, the live app and release/detector.onnx)."""
    cfg = params["detector"]
    inputs = sweep_inputs(cfg)
    for shape in inputs:
        export_onnx(YOLO_DIR / "best.pt", sized_detector(shape), shape)
    shutil.copyfile(sized_detector(chosen_input(cfg)), DETECTOR_ONNX)
    print(
        f"wrote {DETECTOR_ONNX} ({input_label(chosen_input(cfg))} px) and {DETECTOR_SIZES}/ "
        f"({', '.join(input_label(shape) for shape in inputs)} px)"
    )
    return DETECTOR_ONNX
