"""The released models: ``release/heatmap.onnx`` (the exported, parity-checked file, committed to
git so a fresh clone can run it), ``release/detector.onnx`` beside it (the YOLO baseline's export,
the hand detector the live app pairs with it to track several hands) and ``release/manifest.json``:
each file's sha256, the params it was trained with and its val metrics recomputed from the
released file itself (the heatmap model's also with the flip test); its robustness metrics, the
pair's multi-hand benchmark, and the training run's figures (epochs, images seen, wall time,
images/s, hardware, commit), the detector's from the YOLO run's record (``yolo.state_copy``), with
Ultralytics' box and pose mAP of its weights on val (the yolo_map stage)."""

from __future__ import annotations

import json
import shutil
import subprocess

import polars as pl

from ..core.errors import HandkpError
from ..core.images import input_hw
from ..core.io import atomic_path, sha256_file, write_json
from ..core.metrics import THRESHOLDS_PX
from ..core.paths import (
    DETECTOR_ONNX,
    HEATMAP_ONNX,
    IMAGE_CACHE,
    MULTIHAND,
    PREPARED_TABLE,
    RELEASE_DETECTOR,
    RELEASE_MANIFEST,
    RELEASE_ONNX,
    ROBUSTNESS,
    TRAIN_LOGS,
    TRAIN_STATE_COPY,
    YOLO_DATA,
    YOLO_MAP,
)
from ..data.cache import ImageCache
from ..evaluate.evaluation import split_metrics, val_passes
from ..runtime import load_predictor
from ..yolo.run_state import read_record


class ReleaseError(HandkpError):
    """The release cannot be assembled (a missing input, or inputs of different models)."""


def _git_commit() -> str | None:
    done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def pck_line(metrics: dict) -> str:
    """``PCK@1/3/5/7/10 a / b / c / d / e`` of a val record, for the stages' console lines."""
    return (
        "PCK@"
        + "/".join(map(str, THRESHOLDS_PX))
        + " "
        + " / ".join(f"{metrics[f'pck_{t}px']:.3f}" for t in THRESHOLDS_PX)
    )


def _read_json(path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _series(name: str) -> list[float]:
    """One dvclive series of the heatmap training (``train/epoch_seconds``), in epoch order."""
    path = TRAIN_LOGS / "heatmap" / "plots" / "metrics" / f"{name}.tsv"
    if not path.is_file():
        return []
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    col = rows[0].index(name.rsplit("/", 1)[-1])
    return [float(r[col]) for r in rows[1:] if len(r) > col and r[col]]


def training_summary() -> dict:
    """The training run's figures from its dvclive logs and, for the images seen (as the run
    counted them: whole batches) and the hardware, from the state copy's manifest under release/
    when the run wrote one (else None)."""
    seconds, speeds = _series("train/epoch_seconds"), _series("train/images_per_s")
    copy = _read_json(TRAIN_STATE_COPY.with_suffix(".json")) or {}
    return {
        "epochs": len(speeds),
        "images_seen": copy.get("images_seen"),
        "train_hours": round(sum(seconds) / 3600, 3) if seconds else None,
        "images_per_s_median": round(sorted(speeds)[len(speeds) // 2], 2) if speeds else None,
        "hardware": copy.get("hardware"),
        "torch": copy.get("torch"),
        "best_epoch": copy.get("best_epoch"),
        "fingerprint": copy.get("fingerprint"),
        # a run warm-started from another's weights: the training behind them too (never only this run's)
        "warm_start": copy.get("warm_start"),
        "total_train_hours": copy.get("total_train_hours"),
        "total_images_seen": copy.get("total_images_seen"),
    }


def detector_training_summary(state_copy: str | None) -> dict | None:
    """The YOLO run's figures from its record in ``state_copy`` (``yolo.state_copy``; None: no
    record, no summary): epochs done of planned, train images seen (epochs x the images of
    data/yolo/train.txt, as Ultralytics counts an epoch), training hours (images / the epoch's
    img/s), wall hours (the dev validation of each epoch included), the median img/s, hardware,
    best epoch, Ultralytics version and commit."""
    record = read_record(state_copy)
    if record is None:
        return None
    history = record.get("history", [])
    images = len((YOLO_DATA / "train.txt").read_text().splitlines())
    speeds = sorted(h["images_per_s"] for h in history if h.get("images_per_s"))
    return {
        "epochs": record.get("epochs_done"),
        "epochs_planned": record.get("epochs"),
        "finished": record.get("finished"),
        "images_seen": images * len(history),
        "train_hours": round(sum(images / h["images_per_s"] for h in history if h.get("images_per_s")) / 3600, 3),
        "wall_hours": round(sum(h.get("wall_s", 0.0) for h in history) / 3600, 3),
        "images_per_s_median": speeds[len(speeds) // 2] if speeds else None,
        "hardware": record.get("hardware"),
        "best_epoch": record.get("best_epoch"),
        "ultralytics": record.get("ultralytics"),
        "fingerprint": record.get("fingerprint"),
        "commit": record.get("commit"),
    }


def _released(source, dest) -> str:
    """Copies ``source`` to ``dest`` (atomically); the copy's sha256."""
    with atomic_path(dest) as tmp:
        shutil.copyfile(source, tmp)
    return sha256_file(dest)


def _checked_inputs() -> tuple[dict | None, dict | None]:
    """(robustness.json, multihand.json) when present; ReleaseError when either was measured on
    other files than the ones about to be released."""
    for path, stage in ((HEATMAP_ONNX, "export"), (DETECTOR_ONNX, "detector_export")):
        if not path.is_file():
            raise ReleaseError(f"{path} not found; run dvc repro {stage} first")
    files = {"heatmap": sha256_file(HEATMAP_ONNX), "detector": sha256_file(DETECTOR_ONNX)}
    robustness, multihand = _read_json(ROBUSTNESS), _read_json(MULTIHAND)
    if robustness is not None and robustness.get("files", {}).get("heatmap") != files["heatmap"]:
        raise ReleaseError(f"{ROBUSTNESS} was measured on another {HEATMAP_ONNX}; run dvc repro robustness")
    if multihand is not None and multihand.get("files") != files:
        raise ReleaseError(
            f"{MULTIHAND} was measured on another {HEATMAP_ONNX} or {DETECTOR_ONNX}; run dvc repro multihand"
        )
    return robustness, multihand


def run_release(params: dict) -> dict:
    """The release stage: copies models/heatmap.onnx and models/detector.onnx to release/
    (heatmap.onnx, detector.onnx), evaluates each copy on val through ONNX Runtime and writes the
    manifest."""
    robustness, multihand = _checked_inputs()
    threads, batch_size = int(params["runtime"]["threads"]), int(params["evaluate"]["batch_size"])
    conf = float(params["evaluate"]["yolo_conf_threshold"])
    table = pl.read_parquet(PREPARED_TABLE)
    gt, cache = table.filter(pl.col("split") == "val"), ImageCache(IMAGE_CACHE)
    sha = _released(HEATMAP_ONNX, RELEASE_ONNX)
    passes = val_passes(RELEASE_ONNX, gt, cache, threads, batch_size)
    metrics, flip_tested, refined = passes["val"], passes["val_flip_test"], passes["val_refine"]
    detector_sha = _released(DETECTOR_ONNX, RELEASE_DETECTOR)
    detector = load_predictor(RELEASE_DETECTOR, "onnxruntime", "cpu", threads, conf_threshold=conf)
    detector_input = input_hw(detector.input_size)  # (height, width): detector.frame_size's aspect
    detector_val = split_metrics(detector, gt, cache, batch_size)
    training = training_summary()
    manifest = {
        "file": RELEASE_ONNX.name,
        "sha256": sha,
        "bytes": RELEASE_ONNX.stat().st_size,
        "input": "RGB pixels 0-255, (1, 3, 224, 224) float32; output (1, 21, 56, 56) heatmaps (see the ONNX metadata)",
        "params": {k: params[k] for k in ("seed", "model", "codec", "train")},
        "val": metrics,
        "val_flip_test": flip_tested,  # --flip-test: each image and its mirror image, two network passes
        "val_refine": refined,  # --refine: the whole image, then the hand's upright crop from those keypoints
        "robustness": None
        if robustness is None
        else {
            "images": robustness["images"],
            "heatmap": robustness["models"]["heatmap"],
            "presence": robustness["presence"].get("heatmap"),
        },
        "training": training,
        "detector": {
            "file": RELEASE_DETECTOR.name,
            "sha256": detector_sha,
            "bytes": RELEASE_DETECTOR.stat().st_size,
            "input": f"RGB pixels / 255, (1, 3, {', '.join(map(str, detector_input))}) float32, letterboxed; "
            "Ultralytics YOLO-pose output (see the ONNX metadata)",
            "params": {"yolo": params["yolo"], "detector": params["detector"]},
            "training": detector_training_summary(params["yolo"].get("state_copy")),
            "val": {
                **detector_val,
                "conf_threshold": conf,
            },  # as a one-hand keypoint model; missed_images: no box found
            "val_map": _read_json(YOLO_MAP),  # Ultralytics' box and pose mAP of the trained weights, at yolo.imgsz
        },
        "multihand": None
        if multihand is None
        else {
            "settings": multihand["settings"],
            "overall": multihand["overall"],
            # the same clips with the labels' boxes in the detector's place
            "label_boxes": multihand.get("label_boxes", {}).get("overall"),
            "detector_sweep": multihand.get("detector_sweep"),
        },
        "commit": _git_commit(),
    }
    write_json(RELEASE_MANIFEST, manifest)
    for label, m in (("", metrics), (", with the flip test", flip_tested), (", with the refine pass", refined)):
        print(f"released {RELEASE_ONNX} (sha256 {sha[:12]}…): val{label} {pck_line(m)}")
    print(
        f"released {RELEASE_DETECTOR} (sha256 {detector_sha[:12]}…): no hand found in "
        f"{detector_val['missed_images']} of {detector_val['n_images']} val images at confidence >= {conf:g}"
    )
    return manifest
