"""The released models as a fresh clone gets them (release/heatmap.onnx, release/detector.onnx and
release/manifest.json, committed): the files are the ones the manifest describes and the model came
from the whole schedule, it loads through the runtime and finds the hands of the tiny fixture's val
images, and the quick start's live command runs on them, tracking with the released detector or,
with --detector none, on the whole image, and tracks both hands of a 640×480 video of two small
hands (two fixture val hands 60–110 px across, built with the multihand benchmark's clip pieces,
scored with its matcher). Skipped until the release stage has written the files, which it does
when the release training run has ended."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import REPO, SESSION_ENV

from handkp.bench.clips import Clip, FrameHand, make_background, soft_mask
from handkp.core.geometry import keypoint_box, map_points, similarity
from handkp.core.images import read_rgb
from handkp.core.io import sha256_file
from handkp.core.keypoints import IMAGE_SIZE
from handkp.data.dataset import parse_label
from handkp.evaluate.multihand import ClipRun, score
from handkp.runtime import load_predictor
from handkp.track import TrackedHand

MODEL, DETECTOR, MANIFEST = (REPO / "release" / name for name in ("heatmap.onnx", "detector.onnx", "manifest.json"))
MIN_PCK_10PX = 0.5  # on the fixture's val images; a file of random weights gets ~0.02, the release run's dev slice ~0.9
VIDEO_SIZE, VIDEO_FRAMES, VIDEO_FPS = (640, 480), 60, 30.0
HAND_PX = (60.0, 110.0)  # the two-hand video's hands, px across (their labelled keypoints' box, longer side)
MAX_MISSED_RATE = 0.05  # of the video's hands (per hand per frame): both tracked, a frame's slip aside

pytestmark = pytest.mark.skipif(
    not MODEL.is_file(),
    reason="no released model yet: the release stage writes "
    "release/heatmap.onnx when the release training run has ended",
)
REPORT_VAL_IMAGES = REPO / "tests" / "fixtures" / "report" / "raw" / "hand-keypoints" / "val" / "images"


def released_detector_finished() -> bool:
    """Whether the manifest says the released detector comes from a finished YOLO run."""
    if not MANIFEST.is_file():
        return False
    training = json.loads(MANIFEST.read_text())["detector"].get("training") or {}
    return bool(training.get("finished"))


finished_detector = pytest.mark.skipif(
    not released_detector_finished(),
    reason="the released detector is not from a finished YOLO run yet (release/manifest.json: "
    "detector.training.finished); the release stage writes it when the YOLO run has ended",
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


@finished_detector
def test_the_quick_start_default_finds_a_hand_in_each_report_fixture_image(tmp_path):
    records, err = quick_start_live(REPORT_VAL_IMAGES, tmp_path)
    assert f"detector {DETECTOR}" in err
    assert [r["image"] for r in records] == sorted(p.name for p in REPORT_VAL_IMAGES.glob("*.jpg"))
    assert len(records) == 4 and all(r["found"] for r in records)


def two_small_hands_video(tiny_dataset, path) -> Clip:
    """A 640×480, 60-frame clip at 30 fps written to ``path`` (mp4v, as a camera file would be
    compressed): the first two fixture val hands with all keypoints labelled, pasted with the
    multihand benchmark's soft mask onto the blurred background of the third, one growing from 60
    to 110 px across while the other shrinks from 110 to 60, each circling in its half of the
    frame and turning a little. The clip holds the truth (``Clip.truth``)."""
    images, truth = fixture_val(tiny_dataset)
    a, b, back = [i for i, kp in enumerate(truth) if (kp[:, 2] > 0).all()][:3]
    pixels = {i: read_rgb(images[i]) for i in (a, b, back)}
    (w, h), t = VIDEO_SIZE, np.linspace(0.0, 1.0, VIDEO_FRAMES)
    lo, hi = HAND_PX
    hands: list[list[FrameHand]] = [[] for _ in t]
    masks = []
    for k, (src, across) in enumerate(((a, lo + (hi - lo) * t), (b, hi - (hi - lo) * t))):
        kp = truth[src].astype(np.float64)
        box = keypoint_box(kp[:, :2])
        masks.append(soft_mask(box, IMAGE_SIZE))
        phase = 2 * np.pi * (t + 0.5 * k)
        for i in range(VIDEO_FRAMES):
            scale = float(across[i] / max(box[2] - box[0], box[3] - box[1]))
            position = np.array([w * (0.25 + 0.5 * k) + 0.1 * w * np.cos(phase[i]), h / 2 + 0.2 * h * np.sin(phase[i])])
            affine = similarity(scale, 0.3 * np.sin(phase[i]), (box[:2] + box[2:]) / 2, position)
            hands[i].append(FrameHand(k, map_points(affine, kp[:, :2]), kp[:, 2] > 0, scale, affine))
    background = make_background(pixels[back], truth[back], VIDEO_SIZE, False, np.random.default_rng(0))
    names = [images[a].name, images[b].name]
    clip = Clip(0, VIDEO_SIZE, background, names, hands, [pixels[a], pixels[b]], masks)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, VIDEO_SIZE)
    if not writer.isOpened():
        pytest.skip(f"this OpenCV cannot write {path.suffix} (mp4v)")
    for i in range(len(clip)):
        writer.write(cv2.cvtColor(clip.frame(i), cv2.COLOR_RGB2BGR))
    writer.release()
    return clip


@finished_detector
def test_the_quick_start_live_command_tracks_two_small_hands_in_a_video(tiny_dataset, tmp_path):
    clip = two_small_hands_video(tiny_dataset, tmp_path / "two_hands.mp4")
    records, err = quick_start_live(tmp_path / "two_hands.mp4", tmp_path)
    assert f"detector {DETECTOR}" in err
    assert len(records) == len(clip)
    run = ClipRun(
        hands=[
            [
                TrackedHand(
                    h["id"], np.asarray(h["box"]), np.asarray(h["keypoints"]), np.asarray(h["scores"]), h["presence"]
                )
                for h in r["hands"]
            ]
            for r in records
        ]
    )
    figures = score([clip], [run])["overall"]
    assert figures["hands"] == 2 * len(clip)
    assert figures["missed_rate"] <= MAX_MISSED_RATE, figures
    assert figures["id_switches"] == 0 and figures["false_hands"] == 0, figures
