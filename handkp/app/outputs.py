"""Where the results go: the window (``Window``; ``display_problem`` tells why none can open), the
annotated video (``VideoOut``, ``--save``) and the JSON lines (``prediction_record`` and
``hand_records``, ``--json``)."""

from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from handkp.runtime import Prediction
from handkp.track import TrackedHand

from .capture import Frame
from .errors import DisplayError, OutputError

VIDEO_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
WINDOW_NAME = "handkp live"
QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q or Esc


def display_problem() -> str | None:
    """Why no window can be opened here, or None when one probably can."""
    info = cv2.getBuildInformation()
    gui = re.search(r"^\s*GUI:\s*(\S+)", info, re.MULTILINE)
    if gui and gui.group(1).upper() == "NONE" or not hasattr(cv2, "imshow"):
        return (
            "this OpenCV build has no GUI support (opencv-python-headless, or a build without GTK/Qt), "
            "so no window can be opened. Run with --headless (and --save out.mp4 / --json out.jsonl), or "
            "install a GUI build: pip uninstall opencv-python-headless && pip install opencv-python"
        )
    if sys.platform.startswith("linux"):
        display, wayland = os.environ.get("DISPLAY", ""), os.environ.get("WAYLAND_DISPLAY", "")
        hint = (
            "Run with --headless (and --save out.mp4 / --json out.jsonl), or on the device's own screen "
            "(export DISPLAY=:0 with a desktop session running there), or over ssh -X"
        )
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
        for address in (f"\0/tmp/.X11-unix/X{num}", f"/tmp/.X11-unix/X{num}"):
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
                raise DisplayError(
                    f"cannot open a window ({str(err).strip()}); run with --headless, or install opencv-python"
                ) from err
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
            raise OutputError(
                f"{path}: cannot tell the video codec from the suffix '{self.path.suffix}'; "
                f"use one of {', '.join(VIDEO_FOURCC)} or --fourcc XXXX"
            )
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
                raise OutputError(
                    f"{self.path}: cannot write a video ({self.fourcc}, {w}x{h}); try another suffix "
                    "(.mp4, .avi) or --fourcc"
                )
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


def check_output(path: Path | None, flag: str) -> None:
    """Raises OutputError when ``path`` (given with ``flag``) cannot be written; None passes."""
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
    record: dict[str, Any] = {
        "frame": frame.index,
        "time_s": round(frame.time_s, 6),
        "timestamp": round(frame.timestamp, 6),
    }
    if frame.name is not None:
        record["image"] = frame.name
    record["found"] = bool(pred.found)
    kp = np.asarray(pred.keypoints, dtype=np.float64)
    record["keypoints"] = [[_finite(x), _finite(y)] for x, y in kp] if pred.found else None
    record["scores"] = [_finite(s) for s in np.asarray(pred.scores, dtype=np.float64)]
    record["latency_ms"] = round(latency_ms, 3)
    return record


def hand_records(hands: list[TrackedHand]) -> list[dict]:
    """A frame's ``hands`` field: per hand ``id``, ``box`` ([x0, y0, x1, y1] px: its keypoints'
    extent), ``keypoints`` ([[x, y]] × 21 px in the frame), ``scores`` (21) and ``presence``."""
    return [
        {
            "id": int(h.id),
            "box": [_finite(v) for v in np.asarray(h.box, dtype=np.float64)],
            "keypoints": [[_finite(x), _finite(y)] for x, y in np.asarray(h.keypoints, dtype=np.float64)],
            "scores": [_finite(s) for s in np.asarray(h.scores, dtype=np.float64)],
            "presence": _finite(float(h.presence)),
        }
        for h in hands
    ]


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None
