"""The release stage on the tiny fixture's pipeline run: release/ holds the exported heatmap model
and, beside it, the YOLO export as the live app's detector, each the file the manifest describes,
with val metrics recomputed from the released file equal to what the evaluation stages measured on
the same file (and the heatmap model's with the flip test); the manifest carries the multi-hand
benchmark of the pair; and the live app run on the released model picks the released detector."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import SESSION_ENV

from handkp.core.io import sha256_file

HEADLINE = ("pck_1px", "pck_5px", "pck_10px", "auc_0_15px", "missed_images", "n_images")


def read(path):
    return json.loads(path.read_text())


def test_release_ships_both_files_its_manifest_describes(pipeline_run):
    release, manifest = pipeline_run / "release", read(pipeline_run / "release" / "manifest.json")
    assert (release / "heatmap.onnx").read_bytes() == (pipeline_run / "models" / "heatmap.onnx").read_bytes()
    assert (release / "detector.onnx").read_bytes() == (pipeline_run / "models" / "yolo.onnx").read_bytes()
    assert manifest["sha256"] == sha256_file(release / "heatmap.onnx")
    detector = manifest["detector"]
    assert detector["file"] == "detector.onnx" and detector["sha256"] == sha256_file(release / "detector.onnx")
    # the fixture's yolo.epochs and evaluate.yolo_conf_threshold
    assert detector["params"]["epochs"] == 1 and detector["val"]["conf_threshold"] == 0.0

    # recomputed from the released files through ONNX Runtime: what the stages measured on the same files
    deployed, yolo = (
        read(pipeline_run / "reports/metrics/heatmap_onnxruntime.json"),
        read(pipeline_run / "reports/metrics/yolo.json"),
    )
    for key in HEADLINE:
        assert manifest["val"][key] == pytest.approx(deployed[key], abs=1e-6), key
        assert detector["val"][key] == pytest.approx(yolo[key], abs=1e-6), key
    flip_tested = manifest["val_flip_test"]  # the same file, each image and its mirror image
    assert flip_tested["n_images"] == deployed["n_images"] and flip_tested["missed_images"] == 0
    assert flip_tested["epe_mean_px"] != manifest["val"]["epe_mean_px"]
    multihand = read(pipeline_run / "reports/metrics/multihand.json")
    assert manifest["multihand"] == {"settings": multihand["settings"], "overall": multihand["overall"]}


def test_the_live_app_on_the_released_model_tracks_with_the_released_detector(pipeline_run, tiny_dataset, tmp_path):
    folder = tiny_dataset / "hand-keypoints" / "val" / "images"
    out = tmp_path / "live.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "handkp",
            "live",
            "--source",
            str(folder),
            "--model",
            str(pipeline_run / "release" / "heatmap.onnx"),
            "--headless",
            "--json",
            str(out),
        ],
        cwd=tmp_path,
        env=SESSION_ENV,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert f"tracking up to 2 hands: detector {pipeline_run / 'release' / 'detector.onnx'}" in done.stderr
    assert len(out.read_text().splitlines()) == len(list(folder.glob("*.jpg")))
