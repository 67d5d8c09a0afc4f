"""Where frames come from: a camera, a video file, a stream URL, a GStreamer pipeline or an image
folder (``open_source`` reads the ``--source`` text), and ``open_with_retry`` for live sources that
are not there yet."""

from __future__ import annotations

import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from handkp.core.images import IMAGE_SUFFIXES

from .errors import SourceError, log

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_LINUX_CAMERA_API = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY


class FrameSource:
    """A source of BGR uint8 frames. ``live``: a camera or stream (frames keep coming, the app
    takes the newest; a failure is retried); otherwise finite (a file or folder)."""

    name: str = "source"
    live: bool = False
    fps: float | None = None  # native frame rate, when the source knows it
    unrelated: bool = False  # frames are separate pictures (an image folder), not one video
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

    def __init__(
        self,
        target: int | str,
        name: str,
        live: bool,
        api: int = cv2.CAP_ANY,
        opener: Callable[[], Any] | None = None,
        params: list[int] | None = None,
    ):
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
    decoded is reported and left out. Decoded exactly like ``handkp.core.images.read_rgb``
    (``cv2.imread``), so predictions match the evaluator's. Its images are separate pictures
    (``unrelated``) unless the app is told they are one video's frames (``--sequence``)."""

    unrelated = True

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
            log(f"warning: {path}: cannot decode this image; left out")
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
        spec = spec[len("file://") :]
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
                log(f"{source.name}: opened")
            else:
                source.open()
            return
        except SourceError as err:
            if not source.live or time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                if source.live and retry_s > 0:
                    raise SourceError(f"{err} (retried for {retry_s:g} s; --retry-s sets how long)") from err
                raise
            if not announced:
                log(f"{err}; retrying for up to {retry_s:g} s")
                announced = True
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
