"""The release stage on the tiny fixture's pipeline run: release/ holds the exported heatmap model
and, beside it, the YOLO export as the live app's detector, each the file the manifest describes,
with val metrics recomputed from the released file equal to what the evaluation stages measured on
the same file (and the heatmap model's with the flip test); the manifest carries the multi-hand
benchmark of the pair; and the live app run on the released model picks the released detector."""

from __future__ import annotations

import json
import subprocess
import sys

import polars as pl
import pytest
import yaml
from conftest import SESSION_ENV

from handkp.core.io import sha256_file
from handkp.data.cache import ImageCache
from handkp.evaluate.evaluation import split_metrics
from handkp.runtime import load_predictor
from handkp.track.detector import YoloHandDetector

HEADLINE = ("pck_1px", "pck_5px", "pck_10px", "auc_0_15px", "missed_images", "n_images")


def read(path):
    return json.loads(path.read_text())


def test_release_ships_both_files_its_manifest_describes(pipeline_run):
    release, manifest = pipeline_run / "release", read(pipeline_run / "release" / "manifest.json")
    assert (release / "heatmap.onnx").read_bytes() == (pipeline_run / "models" / "heatmap.onnx").read_bytes()
    assert (release / "detector.onnx").read_bytes() == (pipeline_run / "models" / "detector.onnx").read_bytes()
    assert manifest["sha256"] == sha256_file(release / "heatmap.onnx")
    detector = manifest["detector"]
    assert detector["file"] == "detector.onnx" and detector["sha256"] == sha256_file(release / "detector.onnx")
    # the fixture's yolo.epochs, detector.imgsz and evaluate.yolo_conf_threshold; the input shaped for
    # detector.frame_size 640×480: 224 px wide, 168 rounded up to 192 high
    assert detector["params"]["yolo"]["epochs"] == 1 and detector["val"]["conf_threshold"] == 0.0
    assert detector["params"]["detector"]["imgsz"] == 224 and "(1, 3, 192, 224)" in detector["input"]
    # the YOLO run's budget, from the record the fixture's run wrote at yolo.state_copy
    training = detector["training"]
    train_images = len((pipeline_run / "data" / "yolo" / "train.txt").read_text().splitlines())
    assert training["epochs"] == training["epochs_planned"] == 1 and training["finished"] is True
    assert training["images_seen"] == train_images
    # hours from the record's per-epoch img/s and wall seconds (rounded to 3 places: a 58-image
    # epoch may round to 0.0 on a fast machine, so the test recomputes them rather than asking > 0)
    record = read(pipeline_run / "release" / "yolo_run" / "state.json")
    (epoch,) = record["history"]
    assert epoch["images_per_s"] > 0 and epoch["wall_s"] > 0
    assert training["train_hours"] == round(train_images / epoch["images_per_s"] / 3600, 3)
    assert training["wall_hours"] == round(epoch["wall_s"] / 3600, 3) >= training["train_hours"]

    # recomputed from the released files through ONNX Runtime: what the stages measured on the same files
    deployed, yolo = (
        read(pipeline_run / "reports/metrics/heatmap_onnxruntime.json"),
        read(pipeline_run / "reports/metrics/yolo.json"),
    )
    # the released detector at its own input (224×192, detector.frame_size's aspect), through the
    # same evaluator on the same val images; yolo.json scores the 224×224 comparison file
    val = pl.read_parquet(pipeline_run / "data/prepared/keypoints.parquet").filter(pl.col("split") == "val")
    released_detector = load_predictor(
        pipeline_run / "release" / "detector.onnx", "onnxruntime", "cpu", 1, conf_threshold=0.0
    )
    detector_val = split_metrics(released_detector, val, ImageCache(pipeline_run / "data/images"), 16)
    assert detector_val["n_images"] == yolo["n_images"]
    for key in HEADLINE:
        assert manifest["val"][key] == pytest.approx(deployed[key], abs=1e-6), key
        assert detector["val"][key] == pytest.approx(detector_val[key], abs=1e-6), key
    flip_tested = manifest["val_flip_test"]  # the same file, each image and its mirror image
    assert flip_tested["n_images"] == deployed["n_images"] and flip_tested["missed_images"] == 0
    assert flip_tested["epe_mean_px"] != manifest["val"]["epe_mean_px"]
    multihand = read(pipeline_run / "reports/metrics/multihand.json")
    assert manifest["multihand"] == {
        "settings": multihand["settings"],
        "overall": multihand["overall"],
        "label_boxes": multihand["label_boxes"]["overall"],
        "detector_sweep": multihand["detector_sweep"],
    }


def test_multihand_weighs_the_detector_sizes_and_runs_the_chosen_one(pipeline_run):
    """One line per detector.sweep size (the fixture's 160 and 224 px), square and shaped for
    detector.frame_size (640×480: 160×128, 224×192); the line of detector.imgsz at the frames'
    shape (224×192) is the stage's own detector run, the file released as the detector; one line per
    multihand.presence_sweep threshold on the dev hands' clips."""
    multihand = read(pipeline_run / "reports/metrics/multihand.json")
    sweep = {tuple(row["input"]): row for row in multihand["detector_sweep"]}
    assert list(sweep) == [(160, 160), (128, 160), (224, 224), (192, 224)]
    assert [row["imgsz"] for row in multihand["detector_sweep"]] == [160, 160, 224, 224]
    assert multihand["settings"]["detector_imgsz"] == 224 and multihand["settings"]["detector_input"] == [192, 224]
    overall, two = multihand["overall"], multihand["by_hands"].get("2", {})
    chosen = sweep[(192, 224)]
    assert chosen["missed_rate"] == overall["missed_rate"] and chosen["fps"] == overall["fps"]
    assert chosen["missed_rate_2_hands"] == two.get("missed_rate")
    assert all(row["fps"] > 0 for row in sweep.values())
    # the clips of two hands again, with the live app's default of up to two hands
    assert multihand["settings"]["app_default_max_hands"] == 2 and multihand["settings"]["max_hands"] == 3
    has_two = "2" in multihand["by_hands"]
    assert all((row["fps_2_hands_app_default"] is not None) == has_two for row in sweep.values())
    assert multihand["files"]["detector"] == sha256_file(pipeline_run / "release" / "detector.onnx")
    # the presence threshold weighed on the dev hands' clips: one line per multihand.presence_sweep threshold
    thresholds = yaml.safe_load((pipeline_run / "params.yaml").read_text())["multihand"]["presence_sweep"]
    by_presence = multihand["presence_sweep"]
    assert [row["presence_threshold"] for row in by_presence] == thresholds and len(thresholds) > 1
    assert all(set(row) == {"presence_threshold", "label_boxes", "detector"} for row in by_presence)
    assert all(0.0 <= row[run]["missed_rate"] <= 1.0 for row in by_presence for run in ("label_boxes", "detector"))
    # Ultralytics' exports, each file at the input its name says
    sized = pipeline_run / "models" / "detector_sizes"
    names = {"yolo_160.onnx": 160, "yolo_160x128.onnx": (128, 160)}
    names |= {"yolo_224.onnx": 224, "yolo_224x192.onnx": (192, 224)}
    assert sorted(p.name for p in sized.iterdir()) == sorted(names)
    for name, shape in names.items():
        assert YoloHandDetector(sized / name, threads=1).input_size == shape
    assert (sized / "yolo_224x192.onnx").read_bytes() == (pipeline_run / "models" / "detector.onnx").read_bytes()


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
