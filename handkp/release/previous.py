"""The heatmap model shipped at an earlier commit, scored with today's code on today's data the
way this pipeline scores its own model: the release stage's val rows (one pass, flip test, refine
pass), the robustness stage's conditions and presence separation, and the multihand stage's val
clips with the detector and with the labels' boxes. What a new release is compared with before it
replaces the one before (a model is released only if it is better); the report sets the two side
by side.

    record = score_previous_release(params)   # params["previous_release"]: commit, path
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import polars as pl

from ..core.io import sha256_file, write_json
from ..core.paths import DETECTOR_ONNX, IMAGE_CACHE, PREPARED_TABLE, PREVIOUS_RELEASE
from ..data.cache import ImageCache
from ..evaluate.evaluation import rounded, val_passes
from ..evaluate.multihand import detector_figures, label_box_figures, split_clips
from ..evaluate.robustness import presence_separation, robustness_sample, robustness_table
from ..runtime import load_predictor
from ..track import YoloHandDetector
from .manifest import ReleaseError, pck_line


def _git(args: list[str], text: bool = True) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=text, check=False)
    except FileNotFoundError as err:
        raise ReleaseError("previous_release: git is not installed; set previous_release.commit: null") from err


def model_at(commit: str, path: str, dest: Path) -> str:
    """Writes the file ``path`` as committed at ``commit`` (of the git repository around the working
    directory) to ``dest``; the commit's full hash. ReleaseError naming the commit or the path when
    there is no such commit here (not a git checkout, a shallow clone, another repository's hash)
    or the commit holds no such file."""
    found = _git(["rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"])
    if found.returncode != 0:
        raise ReleaseError(
            f"params.yaml previous_release.commit: {commit} is not a commit of this git repository (not a git "
            "checkout, or a shallow clone: git fetch --unshallow); set it to a commit that holds the release "
            "to compare with, or to null"
        )
    full = found.stdout.strip()
    blob = _git(["cat-file", "blob", f"{full}:{path}"], text=False)
    if blob.returncode != 0:
        raise ReleaseError(f"params.yaml previous_release.path: commit {full[:12]} holds no file {path}")
    dest.write_bytes(blob.stdout)
    return full


def score_model(onnx: Path, params: dict) -> dict:
    """A heatmap ONNX file scored as the pipeline scores its own: ``val``, ``val_flip_test`` and
    ``val_refine`` (the release manifest's rows), ``robustness`` (PCK per condition on the robustness
    stage's images) and ``presence`` (its separation of hands from hand-free images), and
    ``multihand``: the val clips through models/detector.onnx (``detector``) and through the labels'
    boxes (``label_boxes``), each the multihand stage's rounded score."""
    threads, batch_size = int(params["runtime"]["threads"]), int(params["evaluate"]["batch_size"])
    conf, seed = float(params["evaluate"]["yolo_conf_threshold"]), int(params["seed"])
    table = pl.read_parquet(PREPARED_TABLE)
    record = val_passes(onnx, table.filter(pl.col("split") == "val"), ImageCache(IMAGE_CACHE), threads, batch_size)
    names, pixels, keypoints = robustness_sample(params)
    predictor = load_predictor(onnx, "onnxruntime", "cpu", threads)
    batch = int(params["robustness"]["batch_size"])
    rows = robustness_table({"previous": predictor}, pixels, keypoints, names, seed, batch)
    record["robustness"] = {condition: rounded(m) for condition, m in rows["previous"].items()}
    threshold = float(params["robustness"]["presence_threshold"])
    record["presence"] = rounded(presence_separation(predictor, pixels, keypoints, seed, threshold))
    cfg, clips = params["multihand"], split_clips(params, "val")
    tracked = load_predictor(onnx, "onnxruntime", "cpu", threads, spinning=False)  # turns with the detector
    detector = YoloHandDetector(DETECTOR_ONNX, conf_threshold=conf, threads=threads)
    record["multihand"] = {
        "detector": detector_figures(tracked, detector, clips, cfg),
        "label_boxes": label_box_figures(tracked, clips, cfg),
    }
    return record


def score_previous_release(params: dict) -> dict:
    """The ``previous_release`` section's model (``path`` at ``commit``; commit null: nothing to
    score) with ``score_model``, and what it was scored with: the commit's full hash, the file's
    sha256, models/detector.onnx's sha256 (the multi-hand runs' detector)."""
    cfg = params.get("previous_release") or {}
    commit, path = cfg.get("commit"), str(cfg.get("path", "release/heatmap.onnx"))
    if not commit:
        return {"commit": None, "path": path}
    if not DETECTOR_ONNX.is_file():
        raise ReleaseError(f"{DETECTOR_ONNX} not found; run dvc repro detector_export")
    with tempfile.TemporaryDirectory() as folder:
        onnx = Path(folder) / Path(path).name
        full = model_at(str(commit), path, onnx)
        files = {"heatmap": sha256_file(onnx), "detector": sha256_file(DETECTOR_ONNX)}
        return {"commit": full, "path": path, "files": files, **score_model(onnx, params)}


def run_previous_release(params: dict) -> dict:
    """The previous_release stage: ``score_previous_release`` -> reports/metrics/previous_release.json."""
    record = score_previous_release(params)
    write_json(PREVIOUS_RELEASE, record)
    if record["commit"] is None:
        print("previous_release.commit is null: no earlier release to score")
    else:
        for key in ("val", "val_flip_test", "val_refine"):
            print(f"{record['path']} at {record['commit'][:12]}, {key}: {pck_line(record[key])}")
        for name, figures in record["multihand"].items():
            o = figures["overall"]
            print(
                f"multihand val clips, {name}: missed {o['missed_rate']:.3f}, false {o['false_hands']}, "
                f"ID switches {o['id_switches']}, PCK@5 {o['pck_5px']}"
            )
    return record
