"""The real-time app (`python -m handkp live`): every frame of a file, the same keypoints as the
runtime API / evaluator, real-time dropping, the summary, and each failure's message and exit code.

A short video is built from the tiny fixture's val images; the model is a small heatmap network
with random weights, exported to ONNX (the app's path on a deployment: no torch at run time)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from handkp.__main__ import main as cli_main
from handkp.app import capture, errors, loop, outputs, overlay, sources
from handkp.core.errors import HandkpError
from handkp.core.keypoints import NUM_KEYPOINTS
from handkp.runtime import Prediction, load_predictor
from handkp.track import SingleHandPipeline

REPO = Path(__file__).resolve().parents[2]
N_FRAMES = 12
CLIP_FPS = 10.0


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, Path]:
    """A small heatmap checkpoint (random weights) and its ONNX export."""
    import torch

    from handkp.core.codec import codec_for_model
    from handkp.deploy.export import export_onnx
    from handkp.model.network import build_model

    out = tmp_path_factory.mktemp("live_model")
    cfg = {"pretrained": "none", "backbone_tail": "full", "head": "deconv", "deconv_layers": 3, "deconv_channels": 16}
    torch.manual_seed(0)
    model = build_model(cfg)
    ckpt = out / "tiny.pt"
    torch.save(
        {
            "model_config": cfg,
            "codec": codec_for_model(cfg, {"sigma": 2.0}).to_dict(),
            "state_dict": model.state_dict(),
        },
        ckpt,
    )
    return {"pt": ckpt, "onnx": export_onnx(ckpt, out / "tiny.onnx")}


@pytest.fixture(scope="module")
def predictor(model_files):
    return load_predictor(model_files["onnx"], backend="onnxruntime", threads=1)


@pytest.fixture(scope="module")
def val_images(tiny_dataset) -> list[Path]:
    images = sorted((tiny_dataset / "hand-keypoints" / "val" / "images").glob("*.jpg"))
    assert len(images) >= N_FRAMES
    return images[:N_FRAMES]


@pytest.fixture(scope="module")
def clip(tmp_path_factory, val_images) -> Path:
    """12 val images as an MJPG AVI at 10 FPS."""
    path = tmp_path_factory.mktemp("live_clip") / "clip.avi"
    first = cv2.imread(str(val_images[0]))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), CLIP_FPS, first.shape[1::-1])
    assert writer.isOpened()
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 100)
    for p in val_images:
        writer.write(cv2.imread(str(p)))
    writer.release()
    return path


def decode_all(path: Path) -> list[np.ndarray]:
    """Every frame of a video, BGR, as OpenCV decodes it."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "handkp", "live", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


class FakeCapture:
    """A cv2.VideoCapture look-alike over a list of frames; raises after ``raise_after`` reads."""

    def __init__(
        self, frames: list[np.ndarray], fps: float = 25.0, raise_after: int | None = None, opened: bool = True
    ):
        self.frames, self.fps, self.raise_after, self.opened = list(frames), fps, raise_after, opened
        self.reads = 0

    def isOpened(self) -> bool:
        return self.opened

    def get(self, prop: int) -> float:
        if prop == cv2.CAP_PROP_FPS:
            return self.fps
        if prop == cv2.CAP_PROP_FRAME_COUNT:
            return float(len(self.frames))
        return 0.0

    def read(self):
        if self.raise_after is not None and self.reads >= self.raise_after:
            raise OSError("device disconnected")
        if self.reads >= len(self.frames):
            return False, None
        self.reads += 1
        return True, self.frames[self.reads - 1].copy()

    def release(self) -> None:
        self.opened = False


class SlowPredictor:
    """Wraps a predictor, adding a fixed delay per frame (a model slower than the source)."""

    def __init__(self, inner, delay_s: float):
        self.inner, self.delay_s = inner, delay_s
        self.kind, self.backend = inner.kind, inner.backend

    def predict(self, rgb: np.ndarray) -> Prediction:
        time.sleep(self.delay_s)
        return self.inner.predict(rgb)


QUIET = loop.LiveOptions(headless=True, log_every_s=0)


# -------------------------------------------------------------------- the app on real frames


def test_cli_video_every_frame_matches_runtime_api(tmp_path, clip, model_files, predictor):
    """Headless through onnxruntime, as a subprocess: the saved video has every frame, the JSON
    lines hold the runtime API's keypoints for the decoded frames, the summary counts are right."""
    out_video, out_json = tmp_path / "annotated.avi", tmp_path / "keypoints.jsonl"
    proc = run_cli(
        [
            "--source",
            str(clip),
            "--model",
            str(model_files["onnx"]),
            "--headless",
            "--threads",
            "1",
            "--save",
            str(out_video),
            "--json",
            str(out_json),
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"frames: {N_FRAMES} read, {N_FRAMES} processed, 0 dropped" in proc.stdout
    assert "every frame" in proc.stdout and "latency p50" in proc.stdout and "p99" in proc.stdout

    frames = decode_all(clip)
    assert len(frames) == N_FRAMES
    saved = decode_all(out_video)
    assert len(saved) == N_FRAMES
    assert saved[0].shape == frames[0].shape

    records = read_jsonl(out_json)
    assert [r["frame"] for r in records] == list(range(N_FRAMES))
    assert [r["time_s"] for r in records] == pytest.approx([i / CLIP_FPS for i in range(N_FRAMES)])
    for rec, frame in zip(records, frames):
        expected = predictor.predict(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        assert rec["found"] is True
        np.testing.assert_allclose(np.array(rec["keypoints"]), expected.keypoints, rtol=0, atol=1e-4)
        np.testing.assert_allclose(np.array(rec["scores"]), expected.scores, rtol=0, atol=1e-6)
        assert rec["latency_ms"] > 0


def test_run_live_summary(clip, predictor):
    summary = loop.run_live(SingleHandPipeline(predictor), sources.open_source(str(clip)), QUIET)
    assert (summary.end, summary.mode, summary.exit_code) == ("eof", "every", 0)
    assert (summary.frames, summary.processed, summary.dropped, summary.found) == (N_FRAMES, N_FRAMES, 0, N_FRAMES)
    assert summary.mean_fps > 0 and summary.elapsed_s > 0
    assert 0 < summary.latency_p50_ms <= summary.latency_p99_ms
    assert summary.age_p50_ms is None  # frame age is reported for latest-frame runs only
    text = summary.format()
    assert f"{N_FRAMES} read, {N_FRAMES} processed, 0 dropped" in text and "FPS mean" in text


def test_image_folder_matches_evaluator(tmp_path, val_images, model_files, predictor):
    """A folder source: one line per image, named, with the evaluator's predictions."""
    from handkp.evaluate.evaluation import predict_images

    folder = tmp_path / "images"
    folder.mkdir()
    for p in val_images[:6]:
        shutil.copy(p, folder / p.name)
    (folder / "notes.txt").write_text("not an image")
    out_json = tmp_path / "folder.jsonl"
    code = cli_main(
        [
            "live",
            "--source",
            str(folder),
            "--model",
            str(model_files["onnx"]),
            "--headless",
            "--threads",
            "1",
            "--json",
            str(out_json),
            "--log-every",
            "0",
            "--detector",
            "none",
        ]
    )
    assert code == 0
    records = read_jsonl(out_json)
    names = sorted(p.name for p in val_images[:6])
    assert [r["image"] for r in records] == names
    table = predict_images(predictor, names, folder, batch_size=4)
    for rec in records:
        rows = table.filter(table["image"] == rec["image"]).sort("keypoint")
        np.testing.assert_allclose(np.array(rec["keypoints"]), rows.select("x", "y").to_numpy(), rtol=0, atol=1e-4)
        np.testing.assert_allclose(np.array(rec["scores"]), rows["score"].to_numpy(), rtol=0, atol=1e-6)


def test_realtime_drops_frames_but_keeps_the_timeline(tmp_path, val_images, predictor):
    """--realtime on a file: paced at its FPS, the newest frame only; a slow model drops frames
    (counted); the saved video still has one frame per source frame; the last frame is processed."""
    frames = [cv2.imread(str(p)) for p in val_images] * 2  # 24 frames at 100 FPS
    source = sources.VideoSource("fake.avi", "fake video", live=False, opener=lambda: FakeCapture(frames, fps=100.0))
    options = loop.LiveOptions(
        headless=True, realtime=True, log_every_s=0, save=tmp_path / "rt.avi", json_path=tmp_path / "rt.jsonl"
    )
    summary = loop.run_live(SingleHandPipeline(SlowPredictor(predictor, 0.05)), source, options)
    assert (summary.end, summary.mode) == ("eof", "latest")
    assert summary.frames == len(frames)
    assert summary.dropped > 0 and summary.processed + summary.dropped == summary.frames
    assert summary.age_p50_ms is not None
    indices = [r["frame"] for r in read_jsonl(tmp_path / "rt.jsonl")]
    assert len(indices) == summary.processed and indices == sorted(set(indices))
    assert indices[-1] == len(frames) - 1
    assert len(decode_all(tmp_path / "rt.avi")) == len(frames)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_cli_sigterm_stops_cleanly(tmp_path, val_images, model_files):
    """SIGTERM (systemd, docker stop) stops like Ctrl-C: exit 0, outputs closed, summary printed."""
    slow = tmp_path / "slow.avi"  # 12 frames at 2 FPS: 6 s when played with --realtime
    writer = cv2.VideoWriter(str(slow), cv2.VideoWriter_fourcc(*"MJPG"), 2.0, (224, 224))
    for p in val_images:
        writer.write(cv2.imread(str(p)))
    writer.release()
    out_json = tmp_path / "s.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "handkp",
            "live",
            "--source",
            str(slow),
            "--model",
            str(model_files["onnx"]),
            "--headless",
            "--realtime",
            "--threads",
            "1",
            "--json",
            str(out_json),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (out_json.is_file() and out_json.read_text().count("\n") >= 1) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.terminate()
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "stopped by the user" in stdout
    n = len(read_jsonl(out_json))
    assert 1 <= n < N_FRAMES and f"{n} processed" in stdout


def test_low_score_keypoints_faint_or_hidden(val_images):
    image = cv2.imread(str(val_images[0]))
    kp = np.stack([np.linspace(40, 180, NUM_KEYPOINTS), np.linspace(30, 120, NUM_KEYPOINTS)], axis=1).astype(np.float32)
    low = Prediction(kp, np.full(NUM_KEYPOINTS, 0.1, np.float32), True)
    high = Prediction(kp, np.full(NUM_KEYPOINTS, 0.9, np.float32), True)
    hidden = overlay.annotate(image, low, color="#0072B2", min_score=0.5, low_score="hide")
    faint = overlay.annotate(image, low, color="#0072B2", min_score=0.5, low_score="faint")
    solid = overlay.annotate(image, high, color="#0072B2", min_score=0.5, low_score="faint")
    top = slice(0, 150)  # above the score bars
    assert np.array_equal(hidden[top], image[top])
    d_faint = np.abs(faint[top].astype(int) - image[top]).sum()
    d_solid = np.abs(solid[top].astype(int) - image[top]).sum()
    assert 0 < d_faint < d_solid


# ----------------------------------------------------------------------- failures, exit codes


def test_missing_source(tmp_path, model_files, capsys):
    code = cli_main(["live", "--source", str(tmp_path / "nope.mp4"), "--model", str(model_files["onnx"]), "--headless"])
    assert code == errors.EXIT_SOURCE == 3
    assert "no such file or folder" in capsys.readouterr().err


def test_not_a_video_and_empty_folder(tmp_path, model_files, capsys):
    bogus = tmp_path / "bogus.mp4"
    bogus.write_bytes(b"\x00" * 2048)
    assert (
        cli_main(["live", "--source", str(bogus), "--model", str(model_files["onnx"]), "--headless"])
        == errors.EXIT_SOURCE
    )
    assert "cannot open this video" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert (
        cli_main(["live", "--source", str(tmp_path / "empty"), "--model", str(model_files["onnx"]), "--headless"])
        == errors.EXIT_SOURCE
    )
    assert "without image files" in capsys.readouterr().err


def test_corrupt_model_and_mismatch(tmp_path, clip, model_files, capsys):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(model_files["onnx"].read_bytes()[:4096])
    cases = [
        (["--model", str(broken)], "ONNX Runtime cannot load this model"),
        (["--model", str(tmp_path / "missing.onnx")], "model file not found"),
        (
            ["--model", str(model_files["onnx"]), "--backend", "torch"],
            "the torch backend runs a .pt",
        ),  # names the backend and the suffix it runs
    ]
    for extra, message in cases:
        code = cli_main(["live", "--source", str(clip), "--headless", *extra])
        assert code == errors.EXIT_MODEL == 4, extra
        assert message in capsys.readouterr().err


def test_cli_truncated_video_fails_mid_stream(tmp_path, clip, model_files):
    """A file cut partway: the frames before the cut are processed and kept, then exit code 5."""
    truncated = tmp_path / "truncated.avi"
    data = clip.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    out_json = tmp_path / "t.jsonl"
    proc = run_cli(
        [
            "--source",
            str(truncated),
            "--model",
            str(model_files["onnx"]),
            "--headless",
            "--threads",
            "1",
            "--json",
            str(out_json),
        ],
        tmp_path,
    )
    assert proc.returncode == errors.EXIT_SOURCE_LOST == 5, proc.stderr
    assert "truncated or corrupt" in proc.stderr
    assert "the source failed" in proc.stdout
    n = len(read_jsonl(out_json))
    assert 0 < n < N_FRAMES
    assert f"frames: {n} read, {n} processed" in proc.stdout


def test_capture_raising_mid_stream(val_images, predictor):
    frames = [cv2.imread(str(p)) for p in val_images]
    source = sources.VideoSource("fake", "fake video", live=False, opener=lambda: FakeCapture(frames, raise_after=5))
    summary = loop.run_live(SingleHandPipeline(predictor), source, QUIET)
    assert (summary.end, summary.exit_code) == ("lost", errors.EXIT_SOURCE_LOST)
    assert "device disconnected" in summary.message and "after 5 frames" in summary.message
    assert (summary.frames, summary.processed) == (5, 5)


def test_camera_lost_retries_then_exits(val_images, predictor):
    """A live source that disappears: reconnect attempts for --retry-s, then 'lost' (exit 5)."""
    frames = [cv2.imread(str(p)) for p in val_images]
    opened = []

    def opener():
        opened.append(time.monotonic())
        return FakeCapture(frames, raise_after=4) if len(opened) == 1 else FakeCapture([], opened=False)

    source = sources.VideoSource(0, "camera 0", live=True, opener=opener)
    t0 = time.monotonic()
    summary = loop.run_live(
        SingleHandPipeline(predictor), source, loop.LiveOptions(headless=True, log_every_s=0, retry_s=0.6)
    )
    assert (summary.end, summary.exit_code) == ("lost", 5)
    assert "--retry-s" in summary.message
    assert summary.frames == 4 and len(opened) >= 2
    assert time.monotonic() - t0 >= 0.6


def test_camera_reconnects(val_images, predictor):
    """A camera that drops out and comes back within --retry-s: the run goes on."""
    frames = [cv2.imread(str(p)) for p in val_images]
    source = sources.VideoSource(0, "camera 0", live=True, opener=lambda: FakeCapture(frames, raise_after=3))
    summary = loop.run_live(
        SingleHandPipeline(predictor), source, loop.LiveOptions(headless=True, log_every_s=0, retry_s=2, max_frames=7)
    )
    assert (summary.end, summary.exit_code, summary.frames, summary.mode) == ("max_frames", 0, 7, "latest")


def test_camera_that_never_opens(predictor):
    source = sources.VideoSource(0, "camera 0", live=True, opener=lambda: FakeCapture([], opened=False))
    with pytest.raises(errors.SourceError, match="retried for 0.3 s") as err:
        loop.run_live(SingleHandPipeline(predictor), source, loop.LiveOptions(headless=True, retry_s=0.3))
    assert err.value.exit_code == errors.EXIT_SOURCE
    assert isinstance(err.value, HandkpError)  # what a caller catches for every handkp error


def test_cli_camera_that_never_opens(tmp_path, model_files, monkeypatch, capsys):
    """A camera index that cannot be opened: retried for --retry-s, then exit 3."""
    calls = []

    def closed_capture(*args, **kwargs):
        calls.append(args)
        return FakeCapture([], opened=False)

    monkeypatch.setattr(cv2, "VideoCapture", closed_capture)
    t0 = time.monotonic()
    code = cli_main(["live", "--source", "3", "--model", str(model_files["onnx"]), "--headless", "--retry-s", "0.6"])
    assert code == errors.EXIT_SOURCE
    assert time.monotonic() - t0 >= 0.6 and len(calls) >= 2 and calls[0][0] == 3
    assert "camera 3: cannot open this camera (retried for 0.6 s" in capsys.readouterr().err


class FakeWindow:
    """Stands in for the OpenCV window: the user quits after ``quit_after`` frames."""

    def __init__(self, quit_after: int):
        self.quit_after, self.shown = quit_after, []

    def show(self, bgr):
        self.shown.append(bgr.shape)
        return len(self.shown) < self.quit_after

    def poll(self):
        return True

    def close(self):
        pass


def test_user_quits_the_window(clip, predictor):
    """q/Esc in the window: a clean stop (exit 0); in a window a file plays at its native FPS."""
    window = FakeWindow(quit_after=4)
    t0 = time.monotonic()
    summary = loop.run_live(
        SingleHandPipeline(predictor),
        sources.open_source(str(clip)),
        loop.LiveOptions(headless=False, log_every_s=0),
        window=window,
    )
    assert (summary.end, summary.exit_code, summary.processed) == ("stopped", 0, 4)
    assert time.monotonic() - t0 >= 3 / CLIP_FPS  # paced: frame 3 is not read before 0.3 s
    assert summary.frames >= 4 and summary.dropped == summary.frames - 4


def test_window_quit_keys(monkeypatch):
    calls = []
    monkeypatch.setattr(cv2, "namedWindow", lambda *a: calls.append("named"))
    monkeypatch.setattr(cv2, "resizeWindow", lambda *a: calls.append("resize"))
    monkeypatch.setattr(cv2, "imshow", lambda *a: calls.append("show"))
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(cv2, "destroyWindow", lambda *a: calls.append("destroy"))
    keys = iter([-1, ord("x"), 27])
    monkeypatch.setattr(cv2, "waitKey", lambda *a: next(keys, -1))
    window = outputs.Window()
    frame = np.zeros((224, 224, 3), np.uint8)
    assert window.show(frame) and window.show(frame) and not window.show(frame)  # Esc on the third
    window.close()
    assert calls[:3] == ["named", "resize", "show"] and "destroy" in calls


def test_window_without_display(tmp_path, clip, monkeypatch, capsys):
    """A window asked for where none can open: exit 6 before the model is loaded."""
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "  GUI:                           NONE\n")
    code = cli_main(["live", "--source", str(clip), "--model", str(tmp_path / "not-loaded.onnx")])
    assert code == errors.EXIT_DISPLAY == 6
    err = capsys.readouterr().err
    assert "--headless" in err and "opencv-python" in err
    monkeypatch.undo()
    if sys.platform.startswith("linux"):
        monkeypatch.delenv("DISPLAY", raising=False)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        assert "DISPLAY is not set" in outputs.display_problem()
        monkeypatch.setenv("DISPLAY", ":97")  # no X server there: refused before OpenCV could abort
        assert "no X server answers" in outputs.display_problem()


def test_folder_with_an_unreadable_image(tmp_path, val_images, predictor, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for p in val_images[:2]:
        shutil.copy(p, folder / p.name)
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    summary = loop.run_live(SingleHandPipeline(predictor), sources.open_source(str(folder)), QUIET)
    assert (summary.end, summary.exit_code, summary.frames, summary.processed, summary.skipped) == ("eof", 0, 2, 2, 1)
    assert "broken.jpg: cannot decode" in capsys.readouterr().err
    assert "1 unreadable images left out" in summary.format()


def test_record_when_no_hand_is_found(val_images):
    frame = capture.Frame(3, 0.0, 1.0, 0.3, cv2.imread(str(val_images[0])), None)
    missed = Prediction(np.full((NUM_KEYPOINTS, 2), np.nan, np.float32), np.zeros(NUM_KEYPOINTS, np.float32), False)
    record = json.loads(json.dumps(outputs.prediction_record(frame, missed, 12.5)))
    assert record["found"] is False and record["keypoints"] is None and record["scores"] == [0.0] * NUM_KEYPOINTS
    assert (record["frame"], record["time_s"]) == (3, 0.3)
    out = overlay.annotate(frame.image, missed, color="#D55E00", hud=["1.0 FPS", "no hand"])
    assert out.shape == frame.image.shape and not np.array_equal(out, frame.image)


def test_unwritable_output(tmp_path, clip, model_files, capsys):
    code = cli_main(
        [
            "live",
            "--source",
            str(clip),
            "--model",
            str(model_files["onnx"]),
            "--headless",
            "--save",
            str(tmp_path / "no" / "such" / "dir" / "out.mp4"),
        ]
    )
    assert code == errors.EXIT_OUTPUT == 7
    assert "does not exist" in capsys.readouterr().err


BLOCK_HEAVY = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "polars", "dvc", "matplotlib", "ultralytics"):
            raise ImportError(f"{name} is blocked: the live app must not need it")
sys.meta_path.insert(0, _Block())
from handkp.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_app_runs_without_torch_polars_dvc(tmp_path, clip, model_files):
    """What a Jetson has: the app (ONNX model here) runs with torch, polars and dvc unimportable."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            BLOCK_HEAVY,
            "live",
            "--source",
            str(clip),
            "--model",
            str(model_files["onnx"]),
            "--headless",
            "--threads",
            "1",
            "--max-frames",
            "3",
            "--json",
            str(tmp_path / "o.jsonl"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "3 read, 3 processed" in proc.stdout
    assert len(read_jsonl(tmp_path / "o.jsonl")) == 3
