"""The real-time app: a camera, a video file, a stream URL or an image folder through any model file
and backend, with the 21-point skeleton, the keypoint scores and a live FPS / latency readout.

    python -m handkp live --source 0 --model models/heatmap.onnx
    python -m handkp live --source clip.mp4 --model models/heatmap.onnx --headless --save out.mp4 --json out.jsonl

Capture runs in its own thread. Two ways to hand frames to the model:

- *latest frame* (cameras and stream URLs always; files and folders with ``realtime=True``): the
  model always takes the newest frame; frames it had no time for are dropped (and counted), so a
  slow model lowers the frame rate instead of building up latency. A file is paced at its native
  FPS (a folder at ``fps``), as if a camera were playing it.
- *every frame* (files and folders by default): the capture thread reads ahead into a short queue
  and waits for the model; nothing is dropped, so a saved video and the JSON lines cover every
  frame of the file.

Pre-processing, inference and decode are the runtime API's (``Predictor.predict``); drawing is
``handkp.report.draw_skeleton``. Nothing here imports torch, polars or dvc: a Jetson needs numpy,
OpenCV and its TensorRT bindings only (the torch backend imports torch when it is asked for).

Exit codes (``EXIT_*``): 0 done (end of a file/folder, or stopped by the user: q/Esc, Ctrl-C,
SIGTERM, ``--max-frames``); 1 unexpected error; 2 bad command line; 3 source cannot be opened;
4 model cannot be loaded (missing or corrupt file, model/backend mismatch, backend not installed);
5 source failed mid-stream (a camera or stream gone for longer than ``--retry-s``, a file unreadable
or truncated partway); 6 a window was asked for but none can be opened; 7 an output file cannot be
written; 130 Ctrl-C before the first frame.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from .keypoints import NUM_KEYPOINTS
from .report import MODEL_COLORS, draw_skeleton, hex_to_rgb
from .runtime import BACKENDS, ModelLoadError, Prediction, Predictor, load_predictor

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SOURCE = 3
EXIT_MODEL = 4
EXIT_SOURCE_LOST = 5
EXIT_DISPLAY = 6
EXIT_OUTPUT = 7

EXIT_CODES_HELP = """\
exit codes:
  0  done: the end of a file or folder, or stopped by the user (q/Esc in the window, Ctrl-C,
     SIGTERM, --max-frames reached)
  1  unexpected error (a traceback follows)
  2  bad command line
  3  the source cannot be opened: no such file or folder, not a readable video, a folder
     without images, a camera or URL still unavailable after --retry-s seconds
  4  the model cannot be loaded: missing or corrupt file, model/backend mismatch, backend
     not installed
  5  the source failed mid-stream: a camera or stream gone for longer than --retry-s, a file
     unreadable or truncated partway (the summary is still printed, outputs are kept)
  6  a window was asked for but cannot be opened (OpenCV without GUI support, or no
     display): use --headless
  7  an output file (--save, --json) cannot be written
  130 interrupted (Ctrl-C) before the first frame (while loading the model or waiting for a camera)"""

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
LOW_SCORE_STYLES = ("faint", "hide")
FAINT_ALPHA = 0.35  # low-confidence keypoints and their edges, blended into the frame
LOW_SCORE_GREY = (150, 150, 150)
WINDOW_NAME = "handkp live"
QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q or Esc
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_LINUX_CAMERA_API = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
_TRUNCATION_TOLERANCE = 0.05  # a file may end this fraction of its declared frame count early


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class LiveError(RuntimeError):
    """An error the app reports with a message and an exit code (no traceback)."""

    exit_code = EXIT_ERROR


class SourceError(LiveError):
    """The source cannot be opened."""

    exit_code = EXIT_SOURCE


class DisplayError(LiveError):
    """A window was asked for but cannot be opened."""

    exit_code = EXIT_DISPLAY


class OutputError(LiveError):
    """An output file cannot be written."""

    exit_code = EXIT_OUTPUT


class ModelError(LiveError):
    """The model cannot be loaded (wraps runtime.ModelLoadError and a missing backend package)."""

    exit_code = EXIT_MODEL


# --------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------


class FrameSource:
    """A source of BGR uint8 frames. ``live``: a camera or stream (frames keep coming, the app
    takes the newest; a failure is retried); otherwise finite (a file or folder)."""

    name: str = "source"
    live: bool = False
    fps: float | None = None  # native frame rate, when the source knows it
    frame_count: int | None = None  # declared number of frames (finite sources)

    def open(self) -> None:
        """Raises SourceError when the source cannot be opened."""

    @property
    def is_open(self) -> bool:
        return False

    def read(self) -> tuple[np.ndarray, str | None] | None:
        """The next frame (BGR uint8) and its name (an image file's, else None); None at the end
        (or, for a live source, when no frame came: lost). May raise: the source failed."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    @property
    def skipped(self) -> int:
        """Items of the source that could not be decoded and were left out (image folders)."""
        return 0


class VideoSource(FrameSource):
    """A ``cv2.VideoCapture``: camera index, video file, URL or GStreamer pipeline.

    ``opener``: a callable returning a capture-like object (``isOpened``, ``read``, ``get``,
    ``release``), instead of ``cv2.VideoCapture(target, api)``; tests use it to inject failures."""

    def __init__(self, target: int | str, name: str, live: bool, api: int = cv2.CAP_ANY,
                 opener: Callable[[], Any] | None = None, params: list[int] | None = None):
        self.target, self.name, self.live, self.api = target, name, live, api
        self.opener, self.params = opener, params or []
        self.cap = None
        self.size: tuple[int, int] | None = None  # (width, height) to ask a camera for

    @property
    def is_open(self) -> bool:
        return self.cap is not None

    def open(self) -> None:
        self.close()
        try:
            if self.opener is not None:
                cap = self.opener()
            elif self.params:
                cap = cv2.VideoCapture(self.target, self.api, self.params)
            else:
                cap = cv2.VideoCapture(self.target, self.api)
        except Exception as err:  # a custom opener, or OpenCV refusing the arguments
            raise SourceError(f"{self.name}: cannot open ({type(err).__name__}: {err})") from err
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            what = "camera" if self.live else "video (not a video file, or a format OpenCV cannot read)"
            raise SourceError(f"{self.name}: cannot open this {what}")
        self.cap = cap
        if self.size is not None and self.live:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if math.isfinite(fps) and 1.0 <= fps <= 1000.0 else None
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0
        self.frame_count = int(count) if not self.live and math.isfinite(count) and count > 0 else None

    def read(self) -> tuple[np.ndarray, str | None] | None:
        if self.cap is None:
            return None
        ok, frame = self.cap.read()
        if not ok or frame is None:
            return None
        if frame.ndim == 2:  # some cameras deliver grey frames
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        return frame, None

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class FolderSource(FrameSource):
    """The image files of a folder in name order (or one image file); an image that cannot be
    decoded is reported and left out. Decoded exactly like ``handkp.dataset.read_rgb``
    (``cv2.imread``), so predictions match the evaluator's."""

    def __init__(self, files: list[Path], name: str, root: Path):
        self.files, self.name, self.root = files, name, root
        self.frame_count = len(files)
        self._next = 0
        self._skipped = 0
        self._open = False

    def open(self) -> None:
        self._next, self._skipped, self._open = 0, 0, True

    @property
    def is_open(self) -> bool:
        return self._open

    def close(self) -> None:
        self._open = False

    def read(self) -> tuple[np.ndarray, str | None] | None:
        while self._next < len(self.files):
            path = self.files[self._next]
            self._next += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return image, path.relative_to(self.root).as_posix()
            self._skipped += 1
            _log(f"warning: {path}: cannot decode this image; left out")
        return None

    @property
    def skipped(self) -> int:
        return self._skipped


def open_source(spec: str) -> FrameSource:
    """A source from the ``--source`` text, checked but not opened: a camera index (``0``), a
    ``/dev/video*`` device, a URL (``rtsp://…``, ``http://…``), a GStreamer pipeline ending in
    ``appsink``, an image folder, an image file or a video file. Raises SourceError for a path
    that does not exist or a folder without images."""
    spec = str(spec).strip()
    if re.fullmatch(r"\d+", spec):  # V4L2 on Linux (a Jetson's USB cameras too), the platform's default elsewhere
        return VideoSource(int(spec), f"camera {spec}", live=True, api=_LINUX_CAMERA_API)
    if _URL.match(spec) and not spec.lower().startswith("file://"):
        return VideoSource(spec, _redact_url(spec), live=True, api=cv2.CAP_FFMPEG, params=_stream_timeouts())
    if "!" in spec and "appsink" in spec:
        return VideoSource(spec, "GStreamer pipeline", live=True, api=cv2.CAP_GSTREAMER)
    if spec.lower().startswith("file://"):
        spec = spec[len("file://"):]
    path = Path(spec).expanduser()
    if spec.startswith("/dev/video"):
        if not path.exists():
            raise SourceError(f"{spec}: no such camera device")
        return VideoSource(spec, f"camera {spec}", live=True, api=_LINUX_CAMERA_API)
    if not path.exists():
        raise SourceError(f"{spec}: no such file or folder (a camera is a number, e.g. --source 0)")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise SourceError(f"{spec}: a folder without image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return FolderSource(files, f"folder {path}", path)
    if not os.access(path, os.R_OK):
        raise SourceError(f"{spec}: not readable (permissions)")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return FolderSource([path], f"image {path}", path.parent)
    return VideoSource(str(path), f"video {path}", live=False)


def _stream_timeouts(ms: int = 5000) -> list[int]:
    """FFmpeg open/read timeouts for a URL, so a stalled stream counts as lost instead of hanging."""
    keys = [getattr(cv2, k, None) for k in ("CAP_PROP_OPEN_TIMEOUT_MSEC", "CAP_PROP_READ_TIMEOUT_MSEC")]
    return [v for k in keys if k is not None for v in (k, ms)]


def _redact_url(url: str) -> str:
    """A URL without its password, for messages."""
    return re.sub(r"(://[^/:@]+):[^/@]*@", r"\1:***@", url)


class _quiet_opencv:
    """Silences OpenCV's log while a source is retried."""

    def __enter__(self):
        logging = getattr(getattr(cv2, "utils", None), "logging", None)
        self.logging = logging
        if logging is not None:
            self.level = logging.getLogLevel()
            logging.setLogLevel(logging.LOG_LEVEL_SILENT)

    def __exit__(self, *exc):
        if self.logging is not None:
            self.logging.setLogLevel(self.level)


def open_with_retry(source: FrameSource, retry_s: float, stop: threading.Event | None = None) -> None:
    """Opens the source; a live source is retried for ``retry_s`` seconds. Raises SourceError."""
    deadline = time.monotonic() + max(0.0, retry_s)
    announced = False
    while True:
        try:
            if announced:  # OpenCV's own warnings once, not on every retry
                with _quiet_opencv():
                    source.open()
                _log(f"{source.name}: opened")
            else:
                source.open()
            return
        except SourceError as err:
            if not source.live or time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                if source.live and retry_s > 0:
                    raise SourceError(f"{err} (retried for {retry_s:g} s; --retry-s sets how long)") from err
                raise
            if not announced:
                _log(f"{err}; retrying for up to {retry_s:g} s")
                announced = True
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


# --------------------------------------------------------------------------------------------
# Capture thread
# --------------------------------------------------------------------------------------------


@dataclass
class Frame:
    index: int  # position in the source: every frame read counts, processed or not
    t_capture: float  # time.perf_counter() when read
    timestamp: float  # time.time() when read
    time_s: float  # source time: index / fps for files and folders, seconds since start for live sources
    image: np.ndarray  # BGR uint8
    name: str | None = None  # the image file (folder sources)


@dataclass
class End:
    reason: str  # "eof" | "lost" | "max_frames" | "stopped"
    message: str = ""


class Capture:
    """Reads a source in its own thread.

    ``latest=True``: one slot holding the newest frame; a frame replaced before the consumer took
    it is dropped (counted). ``latest=False``: a bounded queue the reader waits on; nothing is
    dropped. ``pace_fps``: read frames no faster than this: on the file's own clock in latest mode
    (a file played like a camera), never faster than it in every-frame mode (shown in a window).
    A live source that stops delivering is reopened for ``retry_s`` seconds before giving up."""

    def __init__(self, source: FrameSource, *, latest: bool, pace_fps: float | None = None,
                 retry_s: float = 10.0, max_frames: int | None = None, queue_size: int = 4,
                 time_fps: float | None = None):
        self.source, self.latest, self.pace_fps = source, latest, pace_fps
        self.retry_s, self.max_frames = retry_s, max_frames
        self.queue_size = 1 if latest else max(1, queue_size)
        self.read_count = 0
        self._pending: deque[Frame] = deque()
        self._end: End | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="handkp-capture", daemon=True)
        self._fps = source.fps or time_fps or pace_fps or 0.0  # source time of a finite source: index / fps

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def get(self, timeout: float) -> Frame | End | None:
        """The next frame, the End once every frame was taken, or None after ``timeout`` s."""
        with self._cond:
            if not self._pending and self._end is None:
                self._cond.wait(timeout)
            if self._pending:
                frame = self._pending.popleft()
                self._cond.notify_all()
                return frame
            return self._end

    def _put(self, frame: Frame) -> bool:
        with self._cond:
            if self.latest:
                if self._pending:
                    self._pending.clear()  # dropped: counted as read but never processed
            else:
                while len(self._pending) >= self.queue_size and not self._stop.is_set():
                    self._cond.wait(0.1)
                if self._stop.is_set():
                    return False
            self._pending.append(frame)
            self._cond.notify_all()
        return True

    def _finish(self, end: End) -> None:
        with self._cond:
            self._end = end
            self._cond.notify_all()

    def _run(self) -> None:
        try:
            self._finish(self._loop())
        except BaseException as err:  # never leave the consumer waiting
            self._finish(End("lost", f"{self.source.name}: capture failed ({type(err).__name__}: {err})"))

    def _loop(self) -> End:
        src = self.source
        t_start = time.perf_counter()
        t_next = t_start
        while True:
            if self._stop.is_set():
                return End("stopped")
            if self.max_frames is not None and self.read_count >= self.max_frames:
                return End("max_frames", f"--max-frames {self.max_frames} reached")
            if self.pace_fps:
                wait = t_next - time.perf_counter()
                if wait > 0 and self._stop.wait(wait):
                    return End("stopped")
                if self.latest:  # the file's clock: frame i at i / fps
                    t_next = t_start + (self.read_count + 1) / self.pace_fps
                else:  # no faster than native, and no catching up after a slow stretch
                    t_next = max(t_next, time.perf_counter()) + 1 / self.pace_fps
            error = ""
            try:
                item = src.read()
            except Exception as err:
                item, error = None, f"{type(err).__name__}: {err}"
            if item is None:
                if src.live:
                    why = f"read failed ({error})" if error else "no frame"
                    _log(f"{src.name}: {why} after {self.read_count} frames; reconnecting for up to {self.retry_s:g} s")
                    try:
                        open_with_retry(src, self.retry_s, self._stop)
                    except SourceError as err:
                        if self._stop.is_set():
                            return End("stopped")
                        return End("lost", f"{src.name}: lost after {self.read_count} frames and not back within "
                                           f"{self.retry_s:g} s (--retry-s): {err}")
                    continue
                if error:
                    return End("lost", f"{src.name}: read failed after {self.read_count} frames ({error})")
                declared = src.frame_count
                if declared and self.read_count < declared * (1 - _TRUNCATION_TOLERANCE) - 1:
                    return End("lost", f"{src.name}: ended after {self.read_count} of the {declared} frames its "
                                       "header declares (a truncated or corrupt file)")
                return End("eof")
            image, name = item
            t = time.perf_counter()
            index = self.read_count
            time_s = index / self._fps if (not src.live and self._fps) else t - t_start
            self.read_count += 1
            if not self._put(Frame(index, t, time.time(), time_s, image, name)):
                return End("stopped")


# --------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------


def annotate(bgr: np.ndarray, pred: Prediction, *, color: str, min_score: float = 0.3,
             low_score: str = "faint", hud: list[str] | None = None) -> np.ndarray:
    """A copy of a BGR frame with the skeleton (``draw_skeleton``; keypoints scoring below
    ``min_score`` faint or hidden), a bar per keypoint score (bottom left; grey below
    ``min_score``, the tick marks ``min_score``) and ``hud`` text lines (top left)."""
    h, w = bgr.shape[:2]
    f = max(1.0, min(h, w) / 320.0)
    thickness, radius = max(1, round(2 * f)), max(2, round(3 * f))
    bgr_color = hex_to_rgb(color)[::-1]  # draw_skeleton draws in the image's channel order
    out = bgr
    if pred.found:
        if low_score == "faint" and min_score > 0 and np.any(pred.scores < min_score):
            out = draw_skeleton(out, pred.keypoints, None, bgr_color, thickness=thickness, radius=radius, alpha=FAINT_ALPHA)
        out = draw_skeleton(out, pred.keypoints, pred.scores, bgr_color, min_score=min_score,
                            thickness=thickness, radius=radius)
    else:
        out = out.copy()
    _draw_score_bars(out, pred, bgr_color, min_score, f)
    if hud:
        _draw_text(out, hud)
    return out


def _draw_score_bars(img: np.ndarray, pred: Prediction, color: tuple[int, int, int], min_score: float, f: float) -> None:
    h, w = img.shape[:2]
    bar_w, gap, top_h, margin = max(2, round(3 * f)), 1, max(16, round(32 * f)), max(3, round(4 * f))
    width = NUM_KEYPOINTS * (bar_w + gap) - gap
    x0, y1 = margin, h - margin
    y0 = y1 - top_h
    if x0 + width + margin > w or y0 - margin < 0:
        return  # too small a frame for the bars
    roi = img[y0 - 2:y1 + 2, x0 - 2:x0 + width + 2]
    roi[:] = (roi.astype(np.uint16) // 3).astype(np.uint8)  # darkened backdrop
    if not pred.found:
        return
    scores = np.clip(np.nan_to_num(pred.scores.astype(np.float64), nan=0.0), 0.0, 1.0)
    for i, s in enumerate(scores):
        x = x0 + i * (bar_w + gap)
        top = y1 - max(1, round(s * top_h))
        cv2.rectangle(img, (x, top), (x + bar_w - 1, y1 - 1), color if s >= min_score else LOW_SCORE_GREY, -1)
    if 0 < min_score <= 1:
        ty = y1 - round(min_score * top_h)
        cv2.line(img, (x0 - 2, ty), (x0 + width + 1, ty), (255, 255, 255), 1)


def _draw_text(img: np.ndarray, lines: list[str]) -> None:
    """White text with a black outline, top left; a line too wide for the frame is left out."""
    h, w = img.shape[:2]
    scale = max(0.35, 0.5 * min(h, w) / 480)
    thick = max(1, round(2 * scale))
    margin = max(3, round(8 * scale))
    y = margin
    for line in lines:
        (tw, th), base = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        if tw + 2 * margin > w:
            continue
        y += th
        cv2.putText(img, line, (margin, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(img, line, (margin, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
        y += base + max(2, round(4 * scale))


# --------------------------------------------------------------------------------------------
# Display and outputs
# --------------------------------------------------------------------------------------------


def display_problem() -> str | None:
    """Why no window can be opened here, or None when one probably can."""
    info = cv2.getBuildInformation()
    gui = re.search(r"^\s*GUI:\s*(\S+)", info, re.MULTILINE)
    if gui and gui.group(1).upper() == "NONE" or not hasattr(cv2, "imshow"):
        return ("this OpenCV build has no GUI support (opencv-python-headless, or a build without GTK/Qt), "
                "so no window can be opened. Run with --headless (and --save out.mp4 / --json out.jsonl), or "
                "install a GUI build: pip uninstall opencv-python-headless && pip install opencv-python")
    if sys.platform.startswith("linux"):
        display, wayland = os.environ.get("DISPLAY", ""), os.environ.get("WAYLAND_DISPLAY", "")
        hint = ("Run with --headless (and --save out.mp4 / --json out.jsonl), or on the device's own screen "
                "(export DISPLAY=:0 with a desktop session running there), or over ssh -X")
        if not display and not wayland:
            return f"no display (DISPLAY is not set, e.g. an SSH session), so no window can be opened. {hint}"
        if display and not wayland and not _x_display_reachable(display):
            # OpenCV's Qt/GTK would abort the whole process here rather than raise
            return f"DISPLAY={display} but no X server answers there, so no window can be opened. {hint}"
    return None


def _x_display_reachable(display: str, timeout_s: float = 1.0) -> bool:
    """Whether an X server listens at ``DISPLAY`` (``:0``, ``unix:0``, ``host:10.0``)."""
    import socket

    m = re.fullmatch(r"(?P<host>[^:]*):(?P<num>\d+)(?:\.\d+)?", display.strip())
    if not m:
        return True  # a form we do not know (e.g. a launchd path): let OpenCV try
    host, num = m.group("host"), int(m.group("num"))
    if host.startswith("/"):
        return True
    if host in ("", "unix"):
        for address in ("\0/tmp/.X11-unix/X%d" % num, "/tmp/.X11-unix/X%d" % num):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout_s)
                try:
                    sock.connect(address)
                    return True
                except OSError:
                    continue
        return False
    try:
        with socket.create_connection((host, 6000 + num), timeout=timeout_s):
            return True
    except OSError:
        return False


class Window:
    """An OpenCV window; ``show`` returns False once the user quits (q, Esc, or closes it)."""

    def __init__(self, name: str = WINDOW_NAME):
        self.name = name
        self.opened = False

    def show(self, bgr: np.ndarray) -> bool:
        if not self.opened:
            try:
                cv2.namedWindow(self.name, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
                h, w = bgr.shape[:2]
                k = max(1, math.ceil(480 / max(h, w)))
                cv2.resizeWindow(self.name, w * k, h * k)
            except cv2.error as err:
                raise DisplayError(f"cannot open a window ({str(err).strip()}); "
                                   "run with --headless, or install opencv-python") from err
            self.opened = True
        cv2.imshow(self.name, bgr)
        return self.poll()

    def poll(self) -> bool:
        if not self.opened:
            return True
        key = cv2.waitKey(1) & 0xFF
        if key in QUIT_KEYS:
            return False
        try:
            return cv2.getWindowProperty(self.name, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            return False

    def close(self) -> None:
        if self.opened:
            try:
                cv2.destroyWindow(self.name)
                cv2.waitKey(1)
            except cv2.error:
                pass
            self.opened = False


class VideoOut:
    """``--save``: a cv2.VideoWriter opened at the first frame (its size); later frames of
    another size (an image folder) are resized to it."""

    def __init__(self, path: Path, fps: float, fourcc: str | None = None):
        self.path, self.fps = Path(path), fps
        code = fourcc or VIDEO_FOURCC.get(self.path.suffix.lower())
        if not code or len(code) != 4:
            raise OutputError(f"{path}: cannot tell the video codec from the suffix '{self.path.suffix}'; "
                              f"use one of {', '.join(VIDEO_FOURCC)} or --fourcc XXXX")
        self.fourcc = code
        self.writer = None
        self.size: tuple[int, int] | None = None
        self.written = 0

    def write(self, bgr: np.ndarray, repeat: int = 1) -> None:
        if repeat <= 0:
            return
        h, w = bgr.shape[:2]
        if self.writer is None:
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (w, h))
            if not self.writer.isOpened():
                self.writer = None
                raise OutputError(f"{self.path}: cannot write a video ({self.fourcc}, {w}x{h}); try another suffix "
                                  "(.mp4, .avi) or --fourcc")
            if self.fourcc == "MJPG":
                self.writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
            self.size = (w, h)
        if (w, h) != self.size:
            bgr = cv2.resize(bgr, self.size, interpolation=cv2.INTER_AREA)
        for _ in range(repeat):
            self.writer.write(bgr)
        self.written += repeat

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None


def _check_output(path: Path | None, flag: str) -> None:
    if path is None:
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"{flag} {path}: is a folder; give a file name")
    if not parent.is_dir():
        raise OutputError(f"{flag} {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{flag} {path}: the folder {parent} is not writable")


def prediction_record(frame: Frame, pred: Prediction, latency_ms: float) -> dict:
    """One JSON line: ``frame`` (index in the source), ``time_s`` (source time), ``timestamp``
    (unix time when read), ``image`` (folder sources), ``found``, ``keypoints`` ([[x, y]] × 21,
    px in the frame; null when not found), ``scores`` (21), ``latency_ms``."""
    record: dict[str, Any] = {"frame": frame.index, "time_s": round(frame.time_s, 6), "timestamp": round(frame.timestamp, 6)}
    if frame.name is not None:
        record["image"] = frame.name
    record["found"] = bool(pred.found)
    kp = np.asarray(pred.keypoints, dtype=np.float64)
    record["keypoints"] = [[_finite(x), _finite(y)] for x, y in kp] if pred.found else None
    record["scores"] = [_finite(s) for s in np.asarray(pred.scores, dtype=np.float64)]
    record["latency_ms"] = round(latency_ms, 3)
    return record


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


@dataclass
class LiveOptions:
    headless: bool = True
    realtime: bool = False  # files and folders: paced, newest frame only (live sources always are)
    fps: float = 30.0  # pace of a folder with realtime; output FPS when the source has none
    min_score: float = 0.3
    low_score: str = "faint"  # faint | hide
    save: Path | None = None
    fourcc: str | None = None
    json_path: Path | None = None
    retry_s: float = 10.0
    max_frames: int | None = None
    hud: bool = True
    log_every_s: float = 5.0  # headless progress lines on stderr (0: none)
    window_name: str = WINDOW_NAME


@dataclass
class Summary:
    """What a run did. ``frames``: read from the source; ``processed``: through the model;
    ``dropped``: read but never processed (skipped to keep up with a live source, or read ahead
    when stopped). Latency: pre-processing + model + decode of one frame; frame age: from the
    frame being read to its annotated result (latest-frame mode only: in every-frame mode it
    includes the read-ahead queue)."""

    source: str
    mode: str  # "latest" | "every"
    end: str  # "eof" | "stopped" | "max_frames" | "lost"
    message: str = ""
    frames: int = 0
    processed: int = 0
    dropped: int = 0
    skipped: int = 0
    found: int = 0
    elapsed_s: float = 0.0
    mean_fps: float = 0.0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    age_p50_ms: float | None = None
    age_p99_ms: float | None = None
    saved_frames: int = 0
    json_lines: int = 0
    outputs: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_SOURCE_LOST if self.end == "lost" else EXIT_OK

    def to_dict(self) -> dict:
        return {**{k: getattr(self, k) for k in self.__dataclass_fields__}, "exit_code": self.exit_code}

    def format(self) -> str:
        how = {"eof": "end of the source", "stopped": "stopped by the user", "max_frames": "--max-frames reached",
               "lost": "the source failed"}[self.end]
        mode = "latest frame (drops to keep up)" if self.mode == "latest" else "every frame"
        lines = [f"handkp live: {how} - {self.source}, {mode}"]
        if self.message and self.end == "lost":
            lines.append(f"  error: {self.message}")
        extra = f", {self.skipped} unreadable images left out" if self.skipped else ""
        lines.append(f"  frames: {self.frames} read, {self.processed} processed, {self.dropped} dropped{extra}; "
                     f"hand found in {self.found}")
        if self.processed:
            lines.append(f"  speed: {self.mean_fps:.1f} FPS mean over {self.elapsed_s:.1f} s; latency p50 "
                         f"{self.latency_p50_ms:.1f} ms, p99 {self.latency_p99_ms:.1f} ms (pre-processing + model + decode)")
            if self.age_p50_ms is not None:
                lines.append(f"  frame age: p50 {self.age_p50_ms:.1f} ms, p99 {self.age_p99_ms:.1f} ms (read -> annotated)")
        for out in self.outputs:
            lines.append(f"  wrote {out}")
        return "\n".join(lines)


class _Meter:
    """FPS over the last second and the median latency of the last frames, for the readout."""

    def __init__(self):
        self.done: deque[float] = deque()
        self.latency: deque[float] = deque(maxlen=30)

    def tick(self, t: float, latency_s: float) -> None:
        self.done.append(t)
        while self.done and t - self.done[0] > 1.0:
            self.done.popleft()
        self.latency.append(latency_s)

    @property
    def fps(self) -> float:
        if len(self.done) < 2:
            return 0.0
        span = self.done[-1] - self.done[0]
        return (len(self.done) - 1) / span if span > 0 else 0.0

    @property
    def latency_ms(self) -> float:
        return 1000 * float(np.median(self.latency)) if self.latency else 0.0


def run_live(predictor: Predictor, source: FrameSource, options: LiveOptions | None = None,
             window: Window | None = None) -> Summary:
    """Runs the app until the source ends, fails or the user stops it; returns the summary.

    Opens ``source`` (a live one retried for ``options.retry_s`` s) unless it is already open.
    Raises SourceError (cannot open), OutputError or DisplayError; a failure mid-stream is a
    summary with ``end == "lost"`` (exit code 5), so outputs written so far are kept and closed."""
    opt = options or LiveOptions()
    if opt.low_score not in LOW_SCORE_STYLES:
        raise ValueError(f"low_score must be one of {LOW_SCORE_STYLES}")
    _check_output(opt.save, "--save")
    _check_output(opt.json_path, "--json")
    if not opt.headless and window is None:
        problem = display_problem()
        if problem:
            raise DisplayError(f"cannot open a window: {problem}")
        window = Window(opt.window_name)
    if not source.is_open:
        open_with_retry(source, opt.retry_s)

    latest = source.live or opt.realtime
    native_fps = source.fps or opt.fps
    # A file is paced at its native FPS when it plays like a camera (--realtime), and when every
    # frame is shown in a window (no faster than native, slower when the model is); a headless
    # every-frame run goes as fast as the model allows.
    pace = None if source.live else native_fps if (opt.realtime or window is not None) else None
    capture = Capture(source, latest=latest, pace_fps=pace, retry_s=opt.retry_s, max_frames=opt.max_frames,
                      time_fps=native_fps)
    summary = Summary(source=source.name, mode="latest" if latest else "every", end="eof")
    color = MODEL_COLORS.get(predictor.kind, MODEL_COLORS["heatmap"])
    video = VideoOut(opt.save, native_fps, opt.fourcc) if opt.save else None
    try:
        # line-buffered: `tail -f` sees each frame, and a killed run keeps every line written
        jsonl = open(opt.json_path, "w", encoding="utf-8", buffering=1) if opt.json_path else None
    except OSError as err:
        raise OutputError(f"--json {opt.json_path}: {err.strerror or err}") from err

    latencies: list[float] = []
    ages: list[float] = []
    meter = _Meter()
    last_annotated: np.ndarray | None = None
    last_written = -1
    t_first = t_last = None
    t_log = time.perf_counter()
    capture.start()
    try:
        while True:
            item = capture.get(timeout=0.05)
            if item is None:
                if window is not None and not window.poll():
                    summary.end = "stopped"
                    break
                continue
            if isinstance(item, End):
                summary.end, summary.message = item.reason, item.message
                break
            t0 = time.perf_counter()
            if t_first is None:
                t_first = t0
            pred = predictor.predict(cv2.cvtColor(item.image, cv2.COLOR_BGR2RGB))
            t1 = time.perf_counter()
            latencies.append(t1 - t0)
            ages.append(t1 - item.t_capture)
            meter.tick(t1, t1 - t0)
            summary.processed += 1
            summary.found += int(pred.found)
            if jsonl is not None:
                jsonl.write(json.dumps(prediction_record(item, pred, 1000 * (t1 - t0))) + "\n")
                summary.json_lines += 1
            if video is not None or window is not None:
                hud = None
                if opt.hud:
                    hud = [f"{meter.fps:.1f} FPS  {meter.latency_ms:.1f} ms",
                           f"frame {item.index}  dropped {item.index + 1 - summary.processed}",
                           *([] if pred.found else ["no hand"]),
                           f"{predictor.kind} / {predictor.backend}"]
                annotated = annotate(item.image, pred, color=color, min_score=opt.min_score, low_score=opt.low_score, hud=hud)
                if video is not None:
                    if latest and last_annotated is not None:  # hold the last result over the dropped frames
                        video.write(last_annotated, item.index - last_written - 1)
                    video.write(annotated)
                    last_annotated, last_written = annotated, item.index
                if window is not None and not window.show(annotated):
                    summary.end = "stopped"
                    break
            t_last = time.perf_counter()
            if opt.headless and opt.log_every_s > 0 and t_last - t_log >= opt.log_every_s:
                t_log = t_last
                _log(f"{capture.read_count} frames read, {summary.processed} processed, {meter.fps:.1f} FPS, "
                     f"latency {meter.latency_ms:.1f} ms")
    except KeyboardInterrupt:
        summary.end = "stopped"
    finally:
        capture.stop()
        capture.join(timeout=5.0)
        summary.frames = capture.read_count
        if video is not None and latest and last_annotated is not None and summary.end in ("eof", "max_frames"):
            video.write(last_annotated, summary.frames - 1 - last_written)  # the frames dropped at the end
        if not capture.alive:  # a read stuck in the driver: leave the capture to the process exit
            source.close()
        if video is not None:
            video.close()
        if jsonl is not None:
            jsonl.close()
        if window is not None:
            window.close()

    summary.dropped = summary.frames - summary.processed
    summary.skipped = source.skipped
    if t_first is not None and t_last is not None:
        summary.elapsed_s = t_last - t_first
        if summary.elapsed_s > 0:
            summary.mean_fps = summary.processed / summary.elapsed_s
    if latencies:
        summary.latency_p50_ms, summary.latency_p99_ms = (float(v) for v in 1000 * np.percentile(latencies, [50, 99]))
        if latest:
            summary.age_p50_ms, summary.age_p99_ms = (float(v) for v in 1000 * np.percentile(ages, [50, 99]))
    if video is not None and video.written:
        summary.saved_frames = video.written
        summary.outputs.append(f"{opt.save} ({video.written} frames, {video.fps:g} FPS)")
    if jsonl is not None:
        summary.outputs.append(f"{opt.json_path} ({summary.json_lines} lines)")
    return summary


def _log(message: str) -> None:
    print(f"[live] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Command line (python -m handkp live)
# --------------------------------------------------------------------------------------------

DESCRIPTION = """\
Hand keypoints in real time: frames from a camera, a video file, a stream URL or an image folder
through a model, shown with the 21-point skeleton, the keypoint scores (bars, bottom left) and an
FPS / latency readout. q or Esc in the window (or Ctrl-C) stops; a summary is printed at the end.

how frames reach the model:
  cameras and stream URLs: capture runs in its own thread and the model always takes the newest
    frame; frames it has no time for are dropped (and counted), so a slow model lowers the frame
    rate instead of building up latency.
  video files and image folders: by default every frame is processed (the reader waits for the
    model), so --save and --json cover the whole file, however slow the model; in a window the
    file plays no faster than its native FPS (a folder: --fps), headless it runs as fast as the
    model allows (the summary's FPS is then the model's throughput). With --realtime
    the file plays at its native FPS (a folder at --fps) and is treated like a camera: newest
    frame only, dropped frames counted; --save then repeats the last result over dropped frames,
    so the saved video keeps the source's timing.

outputs:
  --save out.mp4 (mp4v) / out.avi (MJPG) / out.mkv: the annotated frames at the source's FPS
    (--fps when it reports none).
  --json out.jsonl: one line per processed frame: frame (index in the source), time_s (source
    time: index/FPS for files and folders, seconds since start for cameras), timestamp (unix
    time when read), image (folder sources), found, keypoints ([[x, y]] x 21, px in the frame,
    null when no hand was found), scores (21), latency_ms.
"""

EPILOG = EXIT_CODES_HELP + """

examples:
  python -m handkp live --source 0 --model models/heatmap.onnx
  python -m handkp live --source clip.mp4 --model models/heatmap.onnx --headless --save out.mp4 --json out.jsonl
  python -m handkp live --source clip.mp4 --model models/heatmap.onnx --realtime
  python -m handkp live --source data/raw/hand-keypoints/val/images --model models/heatmap/best.pt --headless --json val.jsonl
  python -m handkp live --source rtsp://camera.local/stream --model model.engine --headless --json out.jsonl
"""


def _positive_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return v


def _non_negative_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v) or v < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text}")
    return v


def _positive_int(text: str) -> int:
    v = int(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return v


def _frame_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 1280x720, got {text}")
    return int(m.group(1)), int(m.group(2))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``live`` command's options (``python -m handkp live --help``)."""
    parser.description = DESCRIPTION
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--source", required=True,
                        help="camera index (0), /dev/videoN, video file, image folder, image file, rtsp:// or http(s):// "
                             "URL, or a GStreamer pipeline ending in appsink (e.g. a Jetson CSI camera)")
    parser.add_argument("--model", required=True, type=Path, help="an ONNX file, a TensorRT engine or a .pt checkpoint")
    parser.add_argument("--backend", default="auto", choices=("auto", *BACKENDS),
                        help="default auto: from the model's suffix (.onnx onnxruntime, .engine/.trt tensorrt, .pt torch)")
    parser.add_argument("--device", default="auto",
                        help="auto | cpu | cuda[:N]; onnxruntime uses its CUDA provider with --device cuda "
                             "(onnxruntime-gpu); torch picks CUDA when available with auto (default auto)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads of the model: ONNX Runtime's intra-op threads, or torch's with the torch "
                             "backend (default 0: the backend's own choice)")
    parser.add_argument("--headless", action="store_true",
                        help="no window (over SSH, in scripts and tests); progress lines go to stderr")
    parser.add_argument("--realtime", action="store_true",
                        help="files and folders: play at native FPS and drop frames like a camera (default: every frame)")
    parser.add_argument("--fps", type=_positive_float, default=30.0,
                        help="frame rate of an image folder with --realtime, and of --save when the source reports none (default 30)")
    parser.add_argument("--min-score", type=float, default=0.3,
                        help="keypoints scoring below this are drawn faint (or hidden, --low-score hide); default 0.3")
    parser.add_argument("--low-score", choices=LOW_SCORE_STYLES, default="faint",
                        help="how to draw keypoints below --min-score (default faint)")
    parser.add_argument("--save", type=Path, help="write the annotated video (.mp4, .avi, .mkv)")
    parser.add_argument("--fourcc", help="the --save codec, 4 characters (default from the suffix: mp4v for .mp4, MJPG for .avi/.mkv)")
    parser.add_argument("--json", dest="json_path", type=Path, help="write one JSON line per processed frame")
    parser.add_argument("--retry-s", type=_non_negative_float, default=10.0,
                        help="how long to keep trying a camera or stream that cannot be opened or drops out (default 10 s)")
    parser.add_argument("--size", type=_frame_size, metavar="WxH",
                        help="capture size to ask a camera for, e.g. 1280x720 (default: the camera's own)")
    parser.add_argument("--max-frames", type=_positive_int, help="stop after this many frames read from the source")
    parser.add_argument("--no-hud", dest="hud", action="store_false", help="no FPS / latency text on the frames")
    parser.add_argument("--log-every", type=_non_negative_float, default=5.0,
                        help="headless: a progress line on stderr every this many seconds (0: none; default 5)")


def main(args: argparse.Namespace) -> int:
    """``python -m handkp live``: returns the exit code (EXIT_*)."""
    try:
        if args.fourcc is not None and len(args.fourcc) != 4:
            raise OutputError(f"--fourcc {args.fourcc}: a codec is 4 characters (e.g. mp4v, MJPG, avc1)")
        for path, flag in ((args.save, "--save"), (args.json_path, "--json")):
            _check_output(path, flag)
        if args.save is not None and args.fourcc is None and args.save.suffix.lower() not in VIDEO_FOURCC:
            raise OutputError(f"--save {args.save}: use a .mp4, .avi or .mkv file (or give --fourcc)")
        if not args.headless:
            problem = display_problem()
            if problem:
                raise DisplayError(f"cannot open a window: {problem}")
        source = open_source(args.source)
        if args.size is not None:
            if not isinstance(source, VideoSource) or not source.live:
                raise SourceError(f"--size applies to cameras and streams, not to {source.name}")
            source.size = args.size
        if not source.live:
            source.open()  # a file that is not a video fails here, before the model loads
        try:
            predictor = _load_model(args)
        except BaseException:
            source.close()
            raise
        options = LiveOptions(
            headless=args.headless, realtime=args.realtime, fps=args.fps, min_score=args.min_score,
            low_score=args.low_score, save=args.save, fourcc=args.fourcc, json_path=args.json_path,
            retry_s=args.retry_s, max_frames=args.max_frames, hud=args.hud, log_every_s=args.log_every,
        )
        previous = _stop_on_sigterm()
        try:
            summary = run_live(predictor, source, options)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    except LiveError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted before the first frame", file=sys.stderr)
        return 130
    print(summary.format(), flush=True)
    if summary.end == "lost":
        print(f"error: {summary.message}", file=sys.stderr)
    return summary.exit_code


def _load_model(args: argparse.Namespace) -> Predictor:
    try:
        predictor = load_predictor(args.model, backend=args.backend, device=args.device, threads=args.threads)
        if predictor.backend == "torch" and args.threads > 0:  # torch is imported already, by its backend
            import torch

            torch.set_num_threads(args.threads)
        return predictor
    except ModelLoadError as err:
        raise ModelError(str(err)) from err
    except ImportError as err:  # the backend's package is not installed here
        raise ModelError(f"{args.model}: the {args.backend} backend is not available here ({err})") from err


def _stop_on_sigterm():
    """SIGTERM (systemd, docker stop, kill) stops like Ctrl-C: outputs closed, summary printed."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, handler)
