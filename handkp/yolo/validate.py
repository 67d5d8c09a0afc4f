"""Ultralytics' own validation of the trained YOLO on the val split: box and pose precision, recall
and mAP (at IoU / OKS 0.50 and averaged over 0.50-0.95), the figures its per-epoch validation gives
on the dev slice during training, here on the val images the keypoint evaluator scores."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ..core.io import write_json
from ..core.paths import DATA_QUALITY, PREPARED_TABLE, RAW_ARCHIVE, YOLO_DATA, YOLO_DIR, YOLO_MAP
from ..data.archive import DatasetArchive
from .dataset import bad_samples, split_images, stage_view
from .ultralytics import YoloError, configure_ultralytics, ultralytics_device


def _figures(m) -> dict:
    """Precision, recall, mAP50 and mAP50-95 of one Ultralytics ``Metric`` (boxes or keypoints)."""
    figures = {"precision": m.mp, "recall": m.mr, "map50": m.map50, "map50_95": m.map}
    return {name: round(float(value), 6) for name, value in figures.items()}


def validate_on_split(
    weights: Path, data_yaml: Path, images: list[str], archive: Path, imgsz: int, batch: int, device: str
) -> dict:
    """Ultralytics' validator (its defaults: confidence >= 0.001, NMS IoU 0.7) of ``weights`` on
    ``images`` (members of the dataset ``archive``, extracted to a throw-away view), at ``imgsz``.
    Returns {"n_images", "imgsz", "box": {...}, "pose": {...}} (``_figures``)."""
    configure_ultralytics()
    from ultralytics import YOLO

    if not images:
        raise YoloError(f"no image to validate on ({data_yaml})")
    with tempfile.TemporaryDirectory(prefix="handkp-yolo-val-") as work:
        with DatasetArchive(archive) as dataset:
            view_yaml = stage_view(data_yaml, dataset, Path(work) / "data", {"train": [], "val": images})
        metrics = YOLO(str(weights), task="pose").val(
            data=str(view_yaml),
            split="val",
            imgsz=imgsz,
            batch=batch,
            device=ultralytics_device(device),
            workers=0,
            plots=False,
            save_json=False,
            project=work,
            name="val",
            verbose=False,
        )
    return {"n_images": len(images), "imgsz": imgsz, "box": _figures(metrics.box), "pose": _figures(metrics.pose)}


def run_yolo_map(params: dict) -> dict:
    """The yolo_map stage: models/yolo/best.pt on the val split at ``yolo.imgsz`` (the keypoint
    comparison's input) -> reports/metrics/yolo_map.json."""
    import polars as pl

    cfg = params["yolo"]
    images = split_images(pl.read_parquet(PREPARED_TABLE), "val", bad_samples(json.loads(DATA_QUALITY.read_text())))
    figures = validate_on_split(
        YOLO_DIR / "best.pt",
        YOLO_DATA / "dataset.yaml",
        images,
        RAW_ARCHIVE,
        int(cfg["imgsz"]),
        int(cfg["batch"]),
        cfg.get("device", "auto"),
    )
    write_json(YOLO_MAP, figures)
    box, pose = figures["box"], figures["pose"]
    print(
        f"{YOLO_MAP}: val ({figures['n_images']} images at {figures['imgsz']} px), box mAP50 {box['map50']:.3f} "
        f"mAP50-95 {box['map50_95']:.3f}; pose mAP50 {pose['map50']:.3f} mAP50-95 {pose['map50_95']:.3f}"
    )
    return figures
