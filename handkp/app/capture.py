"""The capture thread: ``Capture`` reads a source in its own thread and hands ``Frame``s to the loop,
either the newest one only (frames the model had no time for are dropped and counted) or every
one through a short queue; it ends with an ``End`` (end of file, source lost, --max-frames,
stopped)."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from .errors import SourceError, log
from .sources import FrameSource, open_with_retry

_TRUNCATION_TOLERANCE = 0.05  # a file may end this fraction of its declared frame count early


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

    def __init__(
        self,
        source: FrameSource,
        *,
        latest: bool,
        pace_fps: float | None = None,
        retry_s: float = 10.0,
        max_frames: int | None = None,
        queue_size: int = 4,
        time_fps: float | None = None,
    ):
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
                    log(f"{src.name}: {why} after {self.read_count} frames; reconnecting for up to {self.retry_s:g} s")
                    try:
                        open_with_retry(src, self.retry_s, self._stop)
                    except SourceError as err:
                        if self._stop.is_set():
                            return End("stopped")
                        return End(
                            "lost",
                            f"{src.name}: lost after {self.read_count} frames and not back within "
                            f"{self.retry_s:g} s (--retry-s): {err}",
                        )
                    continue
                if error:
                    return End("lost", f"{src.name}: read failed after {self.read_count} frames ({error})")
                declared = src.frame_count
                if declared and self.read_count < declared * (1 - _TRUNCATION_TOLERANCE) - 1:
                    return End(
                        "lost",
                        f"{src.name}: ended after {self.read_count} of the {declared} frames its "
                        "header declares (a truncated or corrupt file)",
                    )
                return End("eof")
            image, name = item
            t = time.perf_counter()
            index = self.read_count
            time_s = index / self._fps if (not src.live and self._fps) else t - t_start
            self.read_count += 1
            if not self._put(Frame(index, t, time.time(), time_s, image, name)):
                return End("stopped")
