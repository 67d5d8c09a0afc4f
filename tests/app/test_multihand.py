"""The live app with several hands, on a composite video: two real hands of the tiny fixture
(val images cut round their labelled box, scaled) pasted onto a larger canvas, moving, with
hand-free frames before, between and a single hand after; written with cv2.VideoWriter in a
lossless codec (FFV1).

The canvas encodes where each pixel is and which frame it belongs to (R: x, G: y, B: the frame
index), so two STAND-INs can know the truth from the pixels alone, as real models would:

- ``standin_detector``: returns the true boxes of the pasted hands of the frame it is shown (the
  real YOLO of this project is barely trained);
- ``standin_keypoint_model``: a perfect keypoint model (a ``Predictor`` with its own decoder and
  backend): from each crop's background pixels it recovers where in the frame the crop was taken
  (a similarity fitted to the encoded coordinates, RANSAC) and returns the true keypoints of the hand
  whose palm is in the crop (presence 1), or no hand (presence 0.05). A crop taken at the wrong
  place, scale, rotation or order gives wrong keypoints, so the app's whole path is checked.

The real heatmap network code (a tiny random-weight ONNX export) and a stand-in detector ONNX
file run the same video through the command line as a subprocess (wiring, not accuracy)."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from standin_models import PresenceDecoder, standin_yolo_onnx, tiny_heatmap_onnx, yolo_raw
from test_live import BLOCK_HEAVY

from handkp.__main__ import main as cli_main
from handkp.app import cli, errors, overlay, tracking
from handkp.core.geometry import rotation
from handkp.core.keypoints import IMAGE_SIZE, NUM_KEYPOINTS
from handkp.core.roi import PALM_KEYPOINTS, roi_from_keypoints
from handkp.runtime import Predictor, load_predictor
from handkp.runtime.backends import SPINNING_KEY
from handkp.runtime.decoders import YOLO_PAD_RGB
from handkp.runtime.predictor import letterbox
from handkp.track import HandTracker, MultiHandPipeline, OneEuroSettings, TrackedHand, YoloHandDetector

REPO = Path(__file__).resolve().parents[2]
W, H, FPS = 480, 360, 30.0
CODE0, CODE_STEP = 30, 6  # B = CODE0 + CODE_STEP × frame index
HANDS = {"a": ("IMG_00007296", 0.9), "b": ("IMG_00011382", 1.3)}  # fixture image, scale
# frame -> the hands in it; A's patch moves right and down, B's left and up
SCHEDULE = [()] * 2 + [("a", "b")] * 26 + [()] * 4 + [("a",)] * 4
N_FRAMES = len(SCHEDULE)
LOSSLESS_FOURCCS = ("FFV1", "HFYU", "MPNG")  # in an .avi, through OpenCV's FFmpeg


@dataclass
class Scene:
    clip: Path
    keypoints: list[dict[str, np.ndarray]]  # per frame: hand -> (21, 2) true keypoints, frame px
    boxes: list[np.ndarray]  # per frame: (M, 4) the hands' labelled boxes in frame px, A first


def canvas(index: int) -> np.ndarray:
    """The background of frame ``index``, RGB: R = ⌊x · 256 / W⌋, G = ⌊y · 256 / H⌋ (x, y the
    pixel's centre, continuous px), B = the frame's code."""
    out = np.empty((H, W, 3), np.uint8)
    out[..., 0] = np.floor((np.arange(W) + 0.5) * 256 / W)[None, :]
    out[..., 1] = np.floor((np.arange(H) + 0.5) * 256 / H)[:, None]
    out[..., 2] = CODE0 + CODE_STEP * index
    return out


def read_label(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(box cx, cy, w, h px, keypoints (21, 2) px) of a YOLO-pose label of a 224 × 224 image."""
    values = np.array(path.read_text().split()[1:], float)
    return values[:4] * IMAGE_SIZE, values[4:].reshape(NUM_KEYPOINTS, 3)[:, :2] * IMAGE_SIZE


def patch_position(name: str, index: int) -> tuple[int, int]:
    t = index - 2
    return (30 + 4 * t, 40 + 2 * t) if name == "a" else (350 - 4 * t, 200 - t)


@pytest.fixture(scope="module")
def scene(tmp_path_factory, tiny_dataset) -> Scene:
    val = tiny_dataset / "hand-keypoints" / "val"
    patches = {}
    for name, (stem, scale) in HANDS.items():
        rgb = cv2.cvtColor(cv2.imread(str(val / "images" / f"{stem}.jpg")), cv2.COLOR_BGR2RGB)
        (cx, cy, bw, bh), kp = read_label(val / "labels" / f"{stem}.txt")
        x0, y0 = max(0, round(cx - 0.65 * bw)), max(0, round(cy - 0.65 * bh))  # the box, 1.3 × as large
        x1, y1 = min(IMAGE_SIZE, round(cx + 0.65 * bw)), min(IMAGE_SIZE, round(cy + 0.65 * bh))
        size = (round((x1 - x0) * scale), round((y1 - y0) * scale))
        patch = cv2.resize(rgb[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
        k = np.array([size[0] / (x1 - x0), size[1] / (y1 - y0)])  # continuous px scale, as cv2.resize maps
        box = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
        patches[name] = (patch, (kp - [x0, y0]) * k, (box - [x0, y0, x0, y0]) * np.tile(k, 2))
    path = tmp_path_factory.mktemp("multihand") / "two_hands.avi"
    for fourcc in LOSSLESS_FOURCCS:  # the stand-ins read the pixels exactly
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS, (W, H))
        if writer.isOpened():
            break
    else:
        pytest.skip(f"this OpenCV writes none of the lossless codecs {LOSSLESS_FOURCCS}")
    keypoints, boxes = [], []
    for i, names in enumerate(SCHEDULE):
        frame, truth, frame_boxes = canvas(i), {}, []
        for name in names:
            patch, kp, box = patches[name]
            px, py = patch_position(name, i if i < 32 else 20)
            frame[py : py + patch.shape[0], px : px + patch.shape[1]] = patch
            truth[name] = kp + [px, py]
            frame_boxes.append(box + [px, py, px, py])
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        keypoints.append(truth)
        boxes.append(np.array(frame_boxes, np.float32).reshape(-1, 4))
    writer.release()
    return Scene(path, keypoints, boxes)


def frame_code(rgb: np.ndarray) -> tuple[int | None, np.ndarray]:
    """(the frame index the pixels encode, the mask of the background pixels of that frame)."""
    b = rgb[..., 2].astype(np.float64)
    code = (b - CODE0) / CODE_STEP
    valid = (b >= CODE0 - 2) & (np.abs(code - np.round(code)) * CODE_STEP <= 2)
    if valid.sum() < 100:
        return None, valid
    index = int(np.bincount(np.round(code[valid]).astype(int)).argmax())
    return index, valid & (np.round(code) == index)


def crop_to_frame(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """(2, 3) the similarity crop px -> frame px fitted to the background's encoded coordinates
    (RANSAC: the hand's own pixels that happen to carry the frame's B are outliers); None when
    the crop shows too little background."""
    v, u = np.nonzero(mask)
    src = np.stack([u + 0.5, v + 0.5], 1)
    dst = np.stack([(rgb[mask][:, 0] + 0.5) * W / 256, (rgb[mask][:, 1] + 0.5) * H / 256], 1)
    m, inliers = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=2.0, maxIters=2000, confidence=0.999
    )
    return m if m is not None and inliers.sum() >= 500 else None


def standin_keypoint_model(scene: Scene) -> Predictor:
    """STAND-IN keypoint model: the true keypoints of the hand in each crop (module docstring)."""

    def backend(x: np.ndarray) -> np.ndarray:
        out = np.zeros((len(x), 1 + 2 * NUM_KEYPOINTS), np.float32)
        for n, chw in enumerate(x):
            rgb = np.moveaxis(chw, 0, -1).round().astype(np.uint8)
            index, mask = frame_code(rgb)
            m = crop_to_frame(rgb, mask) if index is not None and mask.sum() >= 500 else None
            if m is None:
                continue
            inverse = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
            candidates = []
            for kp in scene.keypoints[index].values():
                in_crop = kp @ inverse[:, :2].T + inverse[:, 2]
                palm = in_crop[list(PALM_KEYPOINTS)].mean(0)
                if ((palm >= 0) & (palm < IMAGE_SIZE)).all():
                    candidates.append((np.linalg.norm(in_crop.mean(0) - IMAGE_SIZE / 2), in_crop))
            if candidates:
                out[n, 0], out[n, 1:] = 1.0, min(candidates, key=lambda c: c[0])[1].reshape(-1)
            else:
                out[n, 0], out[n, 1:] = 0.05, IMAGE_SIZE / 2  # no hand: a low presence
        return out

    return Predictor(PresenceDecoder(), "stand-in", backend, IMAGE_SIZE)


def standin_detector(scene: Scene):
    """STAND-IN detector: the true boxes of the frame shown (read from its pixels), A first."""

    def detect(rgb: np.ndarray) -> np.ndarray:
        index, _ = frame_code(rgb)
        return scene.boxes[index]

    return detect


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def extent(kp: np.ndarray) -> np.ndarray:
    return np.concatenate([kp.min(0), kp.max(0)])


def test_the_trackers_defaults_are_the_settings_the_multihand_stage_scores():
    """The live app runs the tracker with its defaults: they are the multihand stage's settings
    (params.yaml ``multihand``), so the README's several-hands figures are the app's."""
    scored = yaml.safe_load((REPO / "params.yaml").read_text())["multihand"]
    defaults = inspect.signature(HandTracker).parameters
    for key in ("presence_threshold", "detect_every", "upright"):
        assert defaults[key].default == scored[key], key


@pytest.mark.parametrize("smoothing", [False, True])
def test_two_hands_tracked_with_stable_ids_through_the_app(tmp_path, scene, monkeypatch, capsys, smoothing):
    """The command line (in-process, the two stand-ins in place of the model files): ids stable
    over the frames, no hand on hand-free frames, a new id for a hand that comes back (--lost-s 0:
    hand C enters 0.2 s after A left, near A's path, and would otherwise take A's id), boxes and
    keypoints where the hands were pasted, the detector run only while places are free."""
    monkeypatch.setattr(cli, "load_predictor", lambda *a, **k: standin_keypoint_model(scene))
    monkeypatch.setattr(tracking, "YoloHandDetector", lambda *a, **k: standin_detector(scene))
    out_json, out_video = tmp_path / "hands.jsonl", tmp_path / "hands.avi"
    code = cli_main(
        [
            "live",
            "--source",
            str(scene.clip),
            "--model",
            "standin-keypoints.onnx",
            "--detector",
            "standin-detector.onnx",
            "--headless",
            "--no-hud",
            "--log-every",
            "0",
            "--json",
            str(out_json),
            "--save",
            str(out_video),
            "--lost-s",
            "0",
            *([] if smoothing else ["--no-smoothing"]),
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "tracking up to 2 hands" in out.err and "lost ids back within 0 s" in out.err
    # the default cadence, the detector every 2nd frame while a place is free: the hands of frame 2 at
    # once, hand C (frames 32-35) one frame late, at 33
    assert f"frames: {N_FRAMES} read, {N_FRAMES} processed, 0 dropped; hand found in 29, detector run on 6" in out.out

    records = read_jsonl(out_json)
    assert [r["frame"] for r in records] == list(range(N_FRAMES))
    expected_ids = [[]] * 2 + [[0, 1]] * 26 + [[]] * 5 + [[2]] * 3
    assert [[h["id"] for h in r["hands"]] for r in records] == expected_ids
    assert [r["detected"] for r in records] == [True, False, True] + [False] * 26 + [True, False] * 3 + [True]
    tolerance = 8.0 if smoothing else 0.5  # px; the One Euro filter lags a hand moving 4.5 px a frame by ~5 px
    worst = 0.0
    for i, (r, truth) in enumerate(zip(records, scene.keypoints)):
        assert r["found"] is bool(r["hands"]) and len(r["hands"]) == (0 if i == 32 else len(truth))  # C: from 33
        for h, name in zip(r["hands"], truth):  # id order = A, B (the detector's order)
            assert set(h) == {"id", "box", "keypoints", "scores", "presence"} and h["presence"] == 1.0
            kp = np.array(h["keypoints"])
            assert kp.shape == (NUM_KEYPOINTS, 2) and len(h["scores"]) == NUM_KEYPOINTS
            np.testing.assert_allclose(kp, truth[name], atol=tolerance)
            worst = max(worst, float(np.abs(kp - truth[name]).max()))
            np.testing.assert_allclose(h["box"], extent(truth[name]), atol=tolerance)
            np.testing.assert_allclose(h["box"], extent(kp), atol=1e-4)
        if r["hands"]:
            assert r["keypoints"] == r["hands"][0]["keypoints"] and r["scores"] == r["hands"][0]["scores"]
        else:
            assert r["keypoints"] is None
    assert (worst > 1.0) is smoothing  # --no-smoothing: the keypoints as the model gave them

    saved = []
    cap = cv2.VideoCapture(str(out_video))
    while (frame := cap.read())[0]:
        saved.append(frame[1])
    assert len(saved) == N_FRAMES
    source = cv2.VideoCapture(str(scene.clip))
    for i in (0, 15, 30):  # drawn where the hands are, nothing drawn on a hand-free frame (--no-hud)
        source.set(cv2.CAP_PROP_POS_FRAMES, i)
        diff = np.abs(saved[i].astype(int) - source.read()[1]).max(axis=2)
        for box in scene.boxes[i]:
            x0, y0, x1, y1 = box.astype(int)
            assert (diff[y0:y1, x0:x1] > 60).mean() > 0.02
        assert (diff > 60).mean() < (0.001 if not scene.boxes[i].size else 1)


@pytest.fixture(scope="module")
def frames_folder(tmp_path_factory, scene) -> Path:
    """The clip's frames as PNG files (lossless, in frame order)."""
    folder = tmp_path_factory.mktemp("frames")
    cap = cv2.VideoCapture(str(scene.clip))
    i = 0
    while (frame := cap.read())[0]:
        cv2.imwrite(str(folder / f"frame_{i:03d}.png"), frame[1])
        i += 1
    assert i == N_FRAMES
    return folder


@pytest.mark.parametrize("sequence", [False, True])
def test_a_folders_images_are_separate_pictures_unless_sequence(
    tmp_path, scene, frames_folder, monkeypatch, capsys, sequence
):
    """An image folder: each image on its own (the detector on every image with a free place,
    ids from 0 in each, as MediaPipe's static image mode); with --sequence, tracked like the
    video: the same ids and detector runs as the clip gives (--lost-s 0 in both)."""
    monkeypatch.setattr(cli, "load_predictor", lambda *a, **k: standin_keypoint_model(scene))
    monkeypatch.setattr(tracking, "YoloHandDetector", lambda *a, **k: standin_detector(scene))
    out_json = tmp_path / "hands.jsonl"
    code = cli_main(
        [
            "live",
            "--source",
            str(frames_folder),
            "--model",
            "standin-keypoints.onnx",
            "--detector",
            "standin-detector.onnx",
            "--headless",
            "--no-hud",
            "--log-every",
            "0",
            "--json",
            str(out_json),
            "--lost-s",
            "0",
            *(["--sequence"] if sequence else []),
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert ("each image on its own" in out.err) is not sequence
    records = read_jsonl(out_json)
    if sequence:
        assert [[h["id"] for h in r["hands"]] for r in records] == [[]] * 2 + [[0, 1]] * 26 + [[]] * 5 + [[2]] * 3
        assert [r["detected"] for r in records] == [True, False, True] + [False] * 26 + [True, False] * 3 + [True]
    else:
        assert [[h["id"] for h in r["hands"]] for r in records] == [[]] * 2 + [[0, 1]] * 26 + [[]] * 4 + [[0]] * 4
        assert all(r["detected"] for r in records)
    for r, truth in zip(records, scene.keypoints):
        for h, name in zip(r["hands"], truth):
            np.testing.assert_allclose(np.array(h["keypoints"]), truth[name], atol=8.0)


@pytest.fixture(scope="module")
def real_models(tmp_path_factory, scene):
    """The tiny random-weight heatmap export, and a stand-in detector file that always reports
    the two hands where they start."""
    out = tmp_path_factory.mktemp("multihand_models")
    _, box = letterbox(np.zeros((H, W, 3), np.uint8), IMAGE_SIZE, YOLO_PAD_RGB)
    boxes = scene.boxes[2] * box.scale + [box.pad_x, box.pad_y] * 2  # frame -> network px
    cxcywh = [((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0) for x0, y0, x1, y1 in boxes]
    return tiny_heatmap_onnx(out), standin_yolo_onnx(
        out / "standin_yolo.onnx", yolo_raw(cxcywh, [0.9, 0.8], anchors=50)
    )


def test_cli_with_the_real_network_matches_the_pipeline(tmp_path, scene, real_models):
    """Subprocess, ONNX Runtime for both models, torch, polars and dvc unimportable (what a Jetson
    has): exit 0, one JSON line per frame with the hands MultiHandPipeline gives on the decoded
    frames (the real network's keypoints are meaningless)."""
    heatmap, detector = real_models
    out_json = tmp_path / "real.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # as test_live: the app with only numpy, OpenCV, onnxruntime
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCK_HEAVY,
            "live",
            "--source",
            str(scene.clip),
            "--model",
            str(heatmap),
            "--detector",
            str(detector),
            "--presence-threshold",
            "0",
            "--threads",
            "1",
            "--headless",
            "--json",
            str(out_json),
            "--save",
            str(tmp_path / "real.avi"),
            "--log-every",
            "0",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "tracking up to 2 hands" in proc.stderr and "detector + crops + model + decode + tracker" in proc.stdout
    records = read_jsonl(out_json)
    assert len(records) == N_FRAMES
    assert cv2.VideoCapture(str(tmp_path / "real.avi")).get(cv2.CAP_PROP_FRAME_COUNT) == N_FRAMES  # drawn, with the HUD

    pipeline = MultiHandPipeline(
        load_predictor(heatmap, threads=1),
        YoloHandDetector(detector, threads=1),
        HandTracker(max_hands=2, presence_threshold=0.0, smoothing=OneEuroSettings(), fps=FPS),
    )
    cap = cv2.VideoCapture(str(scene.clip))
    for i, r in enumerate(records):
        hands = pipeline.process(cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB), i / FPS)
        assert r["detected"] == pipeline.detected
        assert [h["id"] for h in r["hands"]] == [h.id for h in hands]
        for got, want in zip(r["hands"], hands):
            np.testing.assert_allclose(got["keypoints"], want.keypoints, atol=1e-3)
            np.testing.assert_allclose(got["box"], want.box, atol=1e-3)
            np.testing.assert_allclose(got["scores"], want.scores, atol=1e-6)
            assert got["presence"] == pytest.approx(want.presence, abs=1e-9)
    assert [h["id"] for h in records[0]["hands"]] == [0, 1]


def test_without_a_detector_one_hand_the_whole_frame(tmp_path, scene, real_models, monkeypatch, capsys):
    """No detector (none beside the model nor in ./models, or --detector none): today's single-hand
    mode, said so; ./models/detector.onnx is the default detector when present, a detector.onnx beside
    the model (as release/ ships it) before it; a missing one is a model error (4)."""
    heatmap, detector = real_models
    monkeypatch.chdir(tmp_path)
    base = [
        "live",
        "--source",
        str(scene.clip),
        "--model",
        str(heatmap),
        "--headless",
        "--threads",
        "1",
        "--max-frames",
        "2",
        "--log-every",
        "0",
        "--json",
        str(tmp_path / "o.jsonl"),
    ]
    assert cli_main([*base, "--beta", "0.1", "--lost-s", "1"]) == 0
    err = capsys.readouterr().err
    assert f"no detector (neither {heatmap.parent / 'detector.onnx'} nor models/detector.onnx found" in err
    assert "single-hand mode" in err and "--lost-s, --beta ignored" in err
    predictor = load_predictor(heatmap, threads=1)
    cap = cv2.VideoCapture(str(scene.clip))
    for r in read_jsonl(tmp_path / "o.jsonl"):
        expected = predictor.predict(cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB))
        assert "detected" not in r and [h["id"] for h in r["hands"]] == [0]
        np.testing.assert_allclose(r["hands"][0]["keypoints"], expected.keypoints, atol=1e-4)
        assert r["keypoints"] == r["hands"][0]["keypoints"]

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "detector.onnx").write_bytes(detector.read_bytes())
    assert cli_main(base) == 0
    err = capsys.readouterr().err
    assert "tracking up to 2 hands: detector models/detector.onnx" in err and "crops upright" in err
    assert cli_main([*base, "--no-upright"]) == 0
    assert "crops not turned" in capsys.readouterr().err
    (tmp_path / "release").mkdir()
    for name, source in (("heatmap.onnx", heatmap), ("detector.onnx", detector)):
        (tmp_path / "release" / name).write_bytes(source.read_bytes())
    released = [*base[:4], "release/heatmap.onnx", *base[5:]]
    assert cli_main(released) == 0
    assert "tracking up to 2 hands: detector release/detector.onnx" in capsys.readouterr().err
    assert cli_main([*base, "--detector", "none"]) == 0
    assert "no detector (--detector none)" in capsys.readouterr().err
    assert cli_main([*base, "--detector", str(tmp_path / "missing.onnx")]) == errors.EXIT_MODEL
    assert "detector file not found" in capsys.readouterr().err
    assert cli_main([*base, "--detector", str(heatmap)]) == errors.EXIT_MODEL
    assert "not a detector" in capsys.readouterr().err


def test_each_hand_in_its_id_colour_with_its_box():
    frame = np.full((240, 320, 3), 90, np.uint8)
    hands = []
    for hand_id, x in ((0, 40), (3, 200)):
        kp = np.stack([np.linspace(x, x + 60, NUM_KEYPOINTS), np.linspace(60, 180, NUM_KEYPOINTS)], 1).astype(
            np.float32
        )
        hands.append(
            TrackedHand(
                hand_id, np.array([x, 60, x + 60, 180], np.float32), kp, np.ones(NUM_KEYPOINTS, np.float32), 0.9
            )
        )
    out = overlay.annotate_hands(frame, hands)
    for hand_id, (x0, x1), other in ((0, (30, 110), 3), (3, (190, 270), 0)):
        region = out[40:200, x0:x1].reshape(-1, 3)
        own = np.array(overlay.hex_to_rgb(overlay.hand_color(hand_id))[::-1])
        not_own = np.array(overlay.hex_to_rgb(overlay.hand_color(other))[::-1])
        assert (np.abs(region - own).sum(1) < 30).sum() > 50
        assert (np.abs(region - not_own).sum(1) < 30).sum() == 0
    assert overlay.hand_color(0) != overlay.hand_color(1)
    assert np.array_equal(overlay.annotate_hands(frame, []), frame)


def test_refine_on_still_images_crops_each_hand_again_from_its_keypoints(
    tmp_path, scene, frames_folder, monkeypatch, capsys
):
    """--refine on an image folder (separate pictures): after the detector's box crops, one more
    batched model call on crops placed from each hand's first-pass keypoints, upright (the
    stand-in reads where each crop was taken from its pixels), and the hands' keypoints where
    they are. On a video or with --sequence it is a usage error (2)."""
    model = standin_keypoint_model(scene)
    first_backend, inputs = model.run, []
    model.run = lambda x: inputs.append(x.copy()) or first_backend(x)
    monkeypatch.setattr(cli, "load_predictor", lambda *a, **k: model)
    monkeypatch.setattr(tracking, "YoloHandDetector", lambda *a, **k: standin_detector(scene))
    out_json = tmp_path / "refined.jsonl"
    base = ["live", "--model", "standin-keypoints.onnx", "--detector", "standin-detector.onnx", "--headless"]
    options = ["--no-smoothing", "--log-every", "0", "--max-frames", "8", "--json", str(out_json), "--refine"]
    assert cli_main([*base, "--source", str(frames_folder), *options]) == 0, capsys.readouterr().err
    assert "each hand refined on a crop placed from its first-pass keypoints" in capsys.readouterr().err
    assert [len(x) for x in inputs] == [2] * 12  # frames 2-7: two hands, two calls each; none on a hand-free frame
    records = read_jsonl(out_json)
    for i, (r, truth) in enumerate(zip(records, scene.keypoints)):
        assert [h["id"] for h in r["hands"]] == list(range(len(truth)))
        for h, name in zip(r["hands"], truth):
            np.testing.assert_allclose(np.array(h["keypoints"]), truth[name], atol=0.5)
        if not truth:
            continue
        for chw in inputs[2 * (i - 2) + 1]:  # the second call: where each crop was taken
            rgb = np.moveaxis(chw, 0, -1).round().astype(np.uint8)
            m = crop_to_frame(rgb, frame_code(rgb)[1])
            centre = m @ [IMAGE_SIZE / 2, IMAGE_SIZE / 2, 1]
            roi = min(
                (roi_from_keypoints(kp) for kp in truth.values()),
                key=lambda q: np.hypot(q.cx - centre[0], q.cy - centre[1]),
            )
            np.testing.assert_allclose(centre, [roi.cx, roi.cy], atol=1.5)
            np.testing.assert_allclose(
                m[:, :2], rotation(-roi.angle, roi.size / IMAGE_SIZE), atol=0.02 * roi.size / IMAGE_SIZE
            )

    for source, extra in ((scene.clip, []), (frames_folder, ["--sequence"])):
        assert cli_main([*base, "--source", str(source), *options, *extra]) == errors.EXIT_USAGE
        assert "--refine is for still images" in capsys.readouterr().err


def test_refine_without_a_detector_refines_the_whole_image_prediction(tmp_path, frames_folder, real_models, capsys):
    """Single-hand mode with --refine: the refined predictor's keypoints (Predictor.refined); a
    YOLO --model cannot refine: a model error (4) naming the file."""
    heatmap, yolo = real_models
    out_json = tmp_path / "single.jsonl"
    base = ["live", "--source", str(frames_folder), "--headless", "--threads", "1", "--max-frames", "3", "--refine"]
    assert cli_main([*base, "--model", str(heatmap), "--detector", "none", "--json", str(out_json)]) == 0
    assert "single-hand mode), refined on the hand's crop" in capsys.readouterr().err
    refined, plain = load_predictor(heatmap, threads=1).refined(), load_predictor(heatmap, threads=1)
    records = read_jsonl(out_json)
    assert len(records) == 3
    for r, path in zip(records, sorted(frames_folder.glob("*.png"))):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        np.testing.assert_allclose(r["keypoints"], refined.predict(rgb).keypoints, atol=1e-3)
        assert not np.allclose(r["keypoints"], plain.predict(rgb).keypoints, atol=1e-2)
    assert cli_main([*base, "--model", str(yolo)]) == errors.EXIT_MODEL
    assert f"{yolo}: the refine pass" in capsys.readouterr().err


def test_refine_skips_the_crops_without_a_hand(scene):
    """MultiHandPipeline(refine=True): a detector box on the background (its crop's presence is
    below the tracker's threshold) gets no second crop; the two hands get theirs."""
    model = standin_keypoint_model(scene)
    first_backend, sizes = model.run, []
    model.run = lambda x: sizes.append(len(x)) or first_backend(x)
    detect = standin_detector(scene)
    pipeline = MultiHandPipeline(
        model,
        lambda rgb: np.vstack([detect(rgb), [[400, 20, 470, 90]]]),  # the top right corner: background
        HandTracker(max_hands=3, smoothing=None),
        refine=True,
    )
    cap = cv2.VideoCapture(str(scene.clip))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 10)
    hands = pipeline.process(cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB))
    assert sizes == [3, 2] and len(pipeline.rois) == 3
    for h, truth in zip(hands, scene.keypoints[10].values()):
        np.testing.assert_allclose(h.keypoints, truth, atol=0.5)


def test_onnx_runtime_threads_spin_only_where_one_model_runs(tmp_path, scene, real_models, monkeypatch):
    """ONNX Runtime's threads spin-wait after a run (its default) only in single-hand mode: with a
    detector, the keypoint model's session and the detector's take turns on the same cores, and
    neither spins (``OnnxRuntimeBackend``: ``spinning``)."""
    heatmap, detector = real_models
    sessions = {}

    def recording_loader(*args, **kwargs):
        predictor = load_predictor(*args, **kwargs)
        sessions["model"] = predictor.run.session
        return predictor

    def recording_detector(*args, **kwargs):
        found = YoloHandDetector(*args, **kwargs)
        sessions["detector"] = found.predictor.run.session
        return found

    monkeypatch.setattr(cli, "load_predictor", recording_loader)
    monkeypatch.setattr(tracking, "YoloHandDetector", recording_detector)
    base = ["live", "--source", str(scene.clip), "--model", str(heatmap), "--headless", "--max-frames", "1"]
    spins = {}
    for label, extra in (("tracking", ["--detector", str(detector)]), ("single", ["--detector", "none"])):
        sessions.clear()
        assert cli_main([*base, "--log-every", "0", *extra]) == 0
        spins[label] = {k: s.get_session_options().get_session_config_entry(SPINNING_KEY) for k, s in sessions.items()}
    assert spins == {"tracking": {"model": "0", "detector": "0"}, "single": {"model": "1"}}
