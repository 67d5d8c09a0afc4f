"""The live loop: ``run_live`` takes frames from the capture thread through the model to the
window, the saved video and the JSON lines, and returns the run's ``Summary``; ``LiveOptions`` are
its settings. The model is a pipeline of ``handkp.track`` (``process(rgb, t)`` -> the frame's hands,
``reset()``): a ``SingleHandPipeline`` (one hand, the whole frame) or a ``MultiHandPipeline``
(several hands, tracked: a detector, crops, the keypoint model, the tracker).

Two ways to hand frames to the model:

- *latest frame* (cameras and stream URLs always; files and folders with ``realtime=True``): the
  model always takes the newest frame; frames it had no time for are dropped (and counted), so a
  slow model lowers the frame rate instead of building up latency. A file is paced at its native
  FPS (a folder at ``fps``), as if a camera were playing it.
- *every frame* (files and folders by default): the capture thread reads ahead into a short queue
  and waits for the model; nothing is dropped, so a saved video and the JSON lines cover every
  frame of the file.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from handkp.track import MultiHandPipeline, SingleHandPipeline
from handkp.viz.colors import MODEL_COLORS

from .capture import Capture, End
from .errors import EXIT_OK, EXIT_SOURCE_LOST, DisplayError, OutputError, log
from .outputs import WINDOW_NAME, VideoOut, Window, check_output, display_problem, hand_records, prediction_record
from .overlay import LOW_SCORE_STYLES, annotate, annotate_hands
from .sources import FrameSource, open_with_retry
from .tracking import first_hand


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
    sequence: bool = False  # an image folder holds one video's frames: track across them
    window_name: str = WINDOW_NAME


@dataclass
class Summary:
    """What a run did. ``frames``: read from the source; ``processed``: through the model;
    ``dropped``: read but never processed (skipped to keep up with a live source, or read ahead
    when stopped); ``found``: processed frames with a hand; ``detections``: frames the detector
    ran on (tracking only). Latency: pre-processing + model + decode of one frame (tracking: the
    detector, crops, model, decode and tracker); frame age: from the frame being read to its
    annotated result (latest-frame mode only: in every-frame mode it includes the read-ahead queue)."""

    source: str
    mode: str  # "latest" | "every"
    end: str  # "eof" | "stopped" | "max_frames" | "lost"
    message: str = ""
    frames: int = 0
    processed: int = 0
    dropped: int = 0
    skipped: int = 0
    found: int = 0
    detections: int = 0
    tracking: bool = False
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
        how = {
            "eof": "end of the source",
            "stopped": "stopped by the user",
            "max_frames": "--max-frames reached",
            "lost": "the source failed",
        }[self.end]
        mode = "latest frame (drops to keep up)" if self.mode == "latest" else "every frame"
        lines = [f"handkp live: {how} - {self.source}, {mode}"]
        if self.message and self.end == "lost":
            lines.append(f"  error: {self.message}")
        extra = f", {self.skipped} unreadable images left out" if self.skipped else ""
        lines.append(
            f"  frames: {self.frames} read, {self.processed} processed, {self.dropped} dropped{extra}; "
            f"hand found in {self.found}" + (f", detector run on {self.detections}" if self.tracking else "")
        )
        if self.processed:
            lines.append(
                f"  speed: {self.mean_fps:.1f} FPS mean over {self.elapsed_s:.1f} s; latency p50 "
                f"{self.latency_p50_ms:.1f} ms, p99 {self.latency_p99_ms:.1f} ms ("
                + (
                    "detector + crops + model + decode + tracker)"
                    if self.tracking
                    else "pre-processing + model + decode)"
                )
            )
            if self.age_p50_ms is not None:
                lines.append(
                    f"  frame age: p50 {self.age_p50_ms:.1f} ms, p99 {self.age_p99_ms:.1f} ms (read -> annotated)"
                )
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


def _hud(
    meter: _Meter,
    dropped: int,
    index: int,
    pipeline: SingleHandPipeline | MultiHandPipeline,
    tracking: bool,
    n_hands: int,
) -> list[str]:
    name = f"{pipeline.predictor.kind} / {pipeline.predictor.backend}"
    if tracking:
        status = [f"hands {n_hands}/{pipeline.max_hands}" + ("  (detector ran)" if pipeline.detected else "")]
        name += " + detector"
    else:
        status = [] if n_hands else ["no hand"]
    return [f"{meter.fps:.1f} FPS  {meter.latency_ms:.1f} ms", f"frame {index}  dropped {dropped}", *status, name]


def run_live(
    pipeline: SingleHandPipeline | MultiHandPipeline,
    source: FrameSource,
    options: LiveOptions | None = None,
    window: Window | None = None,
) -> Summary:
    """Runs the app until the source ends, fails or the user stops it; returns the summary.
    ``pipeline``: a SingleHandPipeline (no detector: one hand, the whole frame, drawn in the model's
    colour with its score bars) or a MultiHandPipeline (a detector: tracking, each hand drawn in its
    id's colour, ``detected`` in the JSON lines).

    Opens ``source`` (a live one retried for ``options.retry_s`` s) unless it is already open.
    Raises SourceError (cannot open), OutputError or DisplayError; a failure mid-stream is a
    summary with ``end == "lost"`` (exit code 5), so outputs written so far are kept and closed."""
    opt = options or LiveOptions()
    if opt.low_score not in LOW_SCORE_STYLES:
        raise ValueError(f"low_score must be one of {LOW_SCORE_STYLES}")
    check_output(opt.save, "--save")
    check_output(opt.json_path, "--json")
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
    capture = Capture(
        source, latest=latest, pace_fps=pace, retry_s=opt.retry_s, max_frames=opt.max_frames, time_fps=native_fps
    )
    tracking = pipeline.detector is not None
    separate = tracking and source.unrelated and not opt.sequence
    if separate:
        log(
            f"{source.name}: each image on its own (the detector on every image, no tracking or smoothing across "
            "images, ids from 0 in each); --sequence if the images are the frames of one video"
        )
    summary = Summary(source=source.name, mode="latest" if latest else "every", end="eof", tracking=tracking)
    color = MODEL_COLORS.get(pipeline.predictor.kind, MODEL_COLORS["heatmap"])
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
            rgb = cv2.cvtColor(item.image, cv2.COLOR_BGR2RGB)
            if separate:
                pipeline.reset()
            hands = pipeline.process(rgb, item.time_s)
            pred = first_hand(hands)
            summary.detections += int(pipeline.detected)
            t1 = time.perf_counter()
            latencies.append(t1 - t0)
            ages.append(t1 - item.t_capture)
            meter.tick(t1, t1 - t0)
            summary.processed += 1
            summary.found += int(pred.found)
            if jsonl is not None:
                record = {**prediction_record(item, pred, 1000 * (t1 - t0)), "hands": hand_records(hands)}
                if tracking:
                    record["detected"] = pipeline.detected
                jsonl.write(json.dumps(record) + "\n")
                summary.json_lines += 1
            if video is not None or window is not None:
                hud = (
                    _hud(meter, item.index + 1 - summary.processed, item.index, pipeline, tracking, len(hands))
                    if opt.hud
                    else None
                )
                if tracking:
                    annotated = annotate_hands(
                        item.image, hands, min_score=opt.min_score, low_score=opt.low_score, hud=hud
                    )
                else:
                    annotated = annotate(
                        item.image, pred, color=color, min_score=opt.min_score, low_score=opt.low_score, hud=hud
                    )
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
                log(
                    f"{capture.read_count} frames read, {summary.processed} processed, {meter.fps:.1f} FPS, "
                    f"latency {meter.latency_ms:.1f} ms"
                )
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
