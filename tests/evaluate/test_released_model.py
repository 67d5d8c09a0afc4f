"""The released models as a fresh clone gets them (release/heatmap.onnx, release/detector.onnx and
release/manifest.json, committed): the files are the ones the manifest describes and the model came
from the whole schedule, it loads through the runtime and finds the hands of the tiny fixture's val
images, and the quick start's live command runs on them, tracking with the released detector or,
with --detector none, on the whole image. Skipped until the release stage has written the files,
which it does when the release training run has ended."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, SESSION_ENV

from handkp.core.images import read_rgb
from handkp.core.io import sha256_file
from handkp.core.keypoints import IMAGE_SIZE
from handkp.data.dataset import parse_label
from handkp.runtime import load_predictor

MODEL, DETECTOR, MANIFEST = (REPO / "release" / name for name in ("heatmap.onnx", "detector.onnx", "manifest.json"))
MIN_PCK_10PX = 0.5  # on the fixture's val images; a file of random weights gets ~0.02, the release run's dev slice ~0.9

pytestmark = pytest.mark.skipif(
    not MODEL.is_file(),
    reason="no released model yet: the release stage writes "
    "release/heatmap.onnx when the release training run has ended",
)


def fixture_val(tiny_dataset):
    """(image paths, keypoints (N, 21, 3) px) of the tiny fixture's val split."""
    val = tiny_dataset / "hand-keypoints" / "val"
    images = sorted((val / "images").glob("*.jpg"))
    labels = [parse_label((val / "labels" / f"{p.stem}.txt").read_text(), IMAGE_SIZE, 1)[0] for p in images]
    return images, np.stack(labels)


def test_the_files_are_the_ones_the_manifest_describes():
    manifest = json.loads(MANIFEST.read_text())
    assert manifest["file"] == MODEL.name and manifest["sha256"] == sha256_file(MODEL)
    assert {"params", "val", "val_flip_test", "robustness", "training", "detector", "multihand", "commit"} <= set(
        manifest
    )
    assert (
        manifest["training"]["epochs"] == manifest["params"]["train"]["epochs"]
    )  # the whole schedule, not a run cut short
    detector = manifest["detector"]
    assert detector["file"] == DETECTOR.name and detector["sha256"] == sha256_file(DETECTOR)


def test_it_finds_the_hands_of_the_fixtures_val_images(tiny_dataset):
    images, truth = fixture_val(tiny_dataset)
    predictor = load_predictor(MODEL, "onnxruntime", "cpu", 2)
    errors = []
    for path, kp in zip(images, truth):
        pred = predictor.predict(read_rgb(path))
        visible = kp[:, 2] > 0
        errors.append(np.linalg.norm(np.asarray(pred.keypoints) - kp[:, :2], axis=1)[visible])
    assert np.mean(np.concatenate(errors) <= 10) >= MIN_PCK_10PX


def quick_start_live(folder, cwd, *extra) -> tuple[list[dict], str]:
    """The quick start's live command on an image folder, run where a fresh clone has no
    models/yolo.onnx: (its JSON lines, its stderr)."""
    out = cwd / f"live{len(extra)}.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "handkp",
            "live",
            "--source",
            str(folder),
            "--model",
            str(MODEL),
            "--headless",
            "--json",
            str(out),
            *extra,
        ],
        cwd=cwd,
        env=SESSION_ENV,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in out.read_text().splitlines()], done.stderr


def pck_10px(records: list[dict], truth: np.ndarray) -> float:
    """PCK@10 px of the records' first hands against the labels, over the images with a hand."""
    errors = [
        np.linalg.norm(np.asarray(r["keypoints"]) - kp[:, :2], axis=1)[kp[:, 2] > 0]
        for r, kp in zip(records, truth)
        if r["found"]
    ]
    return float(np.mean(np.concatenate(errors) <= 10))


def test_the_quick_start_live_command_runs_on_a_folder(tiny_dataset, tmp_path):
    images, truth = fixture_val(tiny_dataset)
    records, err = quick_start_live(images[0].parent, tmp_path)
    assert f"detector {DETECTOR}" in err  # the one beside the model: several hands, tracked
    assert [r["image"] for r in records] == [p.name for p in images]
    # how often the detector finds the hand is its val figure in the manifest; where it does, the
    # keypoints from the hand's crop are mapped back onto the hand
    assert any(r["found"] for r in records) and pck_10px(records, truth) >= MIN_PCK_10PX
    records, err = quick_start_live(images[0].parent, tmp_path, "--detector", "none")
    assert "single-hand mode" in err
    assert [r["image"] for r in records] == [p.name for p in images]
    assert all(r["found"] for r in records) and pck_10px(records, truth) >= MIN_PCK_10PX
