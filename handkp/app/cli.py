"""``python -m handkp live``: the command line of the real-time app (``add_arguments``, ``main``).

    python -m handkp live --source 0 --model models/heatmap.onnx
    python -m handkp live --source clip.mp4 --model models/heatmap.onnx --headless --save out.mp4 --json out.jsonl

The app's modules: ``sources`` (camera, file, stream, folder), ``capture`` (the capture thread),
``loop`` (``run_live``: model, drawing, outputs, summary), ``overlay`` (skeleton, score bars, HUD),
``outputs`` (window, video, JSON lines), ``tracking`` (several hands: options, pipeline), ``errors``
(exit codes). The frames go through a pipeline of ``handkp.track``: ``SingleHandPipeline`` (the
runtime API's ``Predictor.predict`` on the whole frame) or ``MultiHandPipeline`` (several hands);
drawing is ``handkp.viz``. Nothing here imports torch, polars or dvc: a Jetson needs numpy, OpenCV
and its TensorRT bindings only (the torch backend imports torch when it is asked for).

Exit codes (``handkp.app.errors.EXIT_*``, listed in ``--help``): 0 done (end of a file/folder, or
stopped by the user: q/Esc, Ctrl-C, SIGTERM, ``--max-frames``); 1 unexpected error; 2 bad command
line; 3 source cannot be opened; 4 model cannot be loaded (missing or corrupt file, model/backend
mismatch, backend not installed); 5 source failed mid-stream (a camera or stream gone for longer
than ``--retry-s``, a file unreadable or truncated partway); 6 a window was asked for but none can
be opened; 7 an output file cannot be written; 130 Ctrl-C before the first frame.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
from pathlib import Path

from handkp.core.errors import ModelLoadError
from handkp.runtime import BACKENDS, Predictor, load_predictor
from handkp.runtime.openvino import PRECISIONS

from .errors import EXIT_CODES_HELP, DisplayError, LiveError, ModelError, OutputError, SourceError, UsageError
from .loop import LiveOptions, run_live
from .outputs import VIDEO_FOURCC, check_output, display_problem
from .overlay import LOW_SCORE_STYLES
from .sources import VideoSource, open_source
from .tracking import add_tracking_arguments, build_pipeline, chosen_detector, number

DESCRIPTION = """\
Hand keypoints in real time: frames from a camera, a video file, a stream URL or an image folder
through a model, shown with the 21-point skeleton, the keypoint scores (bars, bottom left; one hand) and an
FPS / latency readout. q or Esc in the window (or Ctrl-C) stops; a summary is printed at the end.

several hands:
  with a detector (--detector; default detector.onnx beside --model, as release/ ships it, else
  models/detector.onnx, when either exists) the app tracks up to --max-hands hands (default 2),
  MediaPipe-style: the detector runs on the whole frame while fewer hands are tracked (every
  --detect-every frames), each hand gets a square crop (from the detector's box, then from its own
  keypoints of the frame before, turned so the hand points up unless --no-upright), the keypoint
  model runs once per frame on all the crops, a crop whose presence is below --presence-threshold
  ends its hand, and each hand keeps an id (also when it is found again within --lost-s seconds
  where it was heading), drawn in its own colour with its box, keypoints
  smoothed by a One Euro filter (--no-smoothing, --min-cutoff, --beta). The two models take
  turns on the same cores, so ONNX Runtime's threads do not spin-wait between runs (a model
  alone keeps ONNX Runtime's default, spinning). The images of a folder are separate pictures: each
  is processed on its own (detector on every image, ids from 0), unless --sequence says they are the
  frames of one video. Without a detector (none found, --detector none, or a YOLO --model): one
  hand, the whole frame, as before (the app says which on stderr). On still images --refine runs
  the keypoint model a second time, on a crop placed from each hand's first-pass keypoints (the
  detector's box, or the whole image in single-hand mode, only places the first).

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
  --json out.jsonl: one line per processed frame:
    frame       index in the source
    time_s      source time: index/FPS for files and folders, seconds since start for cameras
    timestamp   unix time when read
    image       the image file (folder sources only)
    hands       [{id, box, keypoints, scores, presence}], by id; [] when no hand:
                  id         int, stable while the hand is tracked, never reused (single-hand mode: 0)
                  box        [x0, y0, x1, y1] px in the frame: the extent of its keypoints
                  keypoints  [[x, y]] x 21 px in the frame (tracking: smoothed unless --no-smoothing)
                  scores     21 keypoint scores (the model's heatmap peaks)
                  presence   how sure the model is that the hand is there, 0-1
    found       whether hands is not empty
    keypoints   the first hand's (the lowest id) [[x, y]] x 21, null when no hand
    scores      the first hand's 21 scores (0 when no hand)
    detected    with a detector only: whether it ran on this frame
    latency_ms  the frame's processing time: pre-processing + model + decode (tracking: + the
                detector when it ran, the crops and the tracker)
"""  # noqa: E501  (the --help text, printed as written)

EPILOG = (
    EXIT_CODES_HELP
    + """

examples:
  python -m handkp live --source 0 --model models/heatmap.onnx
  python -m handkp live --source clip.mp4 --model models/heatmap.onnx --headless --save out.mp4 --json out.jsonl
  python -m handkp live --source clip.mp4 --model models/heatmap.onnx --realtime
  unzip -q data/raw.zip 'hand-keypoints/val/images/*' -d data/val   # the val images as files
  python -m handkp live --source data/val/hand-keypoints/val/images --model models/heatmap/best.pt --headless --json val.jsonl
  python -m handkp live --source rtsp://camera.local/stream --model model.engine --headless --json out.jsonl
  python -m handkp live --source 0 --model models/heatmap.onnx --backend openvino --precision bf16
  python -m handkp live --source 0 --model models/heatmap.onnx --detector models/detector.onnx --max-hands 2
  python -m handkp live --source clip.mp4 --model models/heatmap.onnx --detector none   # one hand, whole frame
"""  # noqa: E501  (example command lines, printed as written)
)


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
    parser.add_argument(
        "--source",
        required=True,
        help="camera index (0), /dev/videoN, video file, image folder, image file, rtsp:// or http(s):// "
        "URL, or a GStreamer pipeline ending in appsink (e.g. a Jetson CSI camera)",
    )
    parser.add_argument(
        "--model",
        required=True,
        type=Path,
        help="an ONNX file, a TensorRT engine, an OpenVINO IR (.xml) or a .pt checkpoint",
    )
    parser.add_argument(
        "--backend",
        default="auto",
        choices=("auto", *BACKENDS),
        help="default auto: from the model's suffix (.onnx onnxruntime, .engine/.trt tensorrt, .xml openvino, "
        ".pt torch); openvino also runs an .onnx file",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="the openvino backend's precision: fp32, bf16 (CPUs with bfloat16) or int8 (an INT8 IR); "
        "default: the file's own (fp32, or what the IR was built for)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="auto | cpu | cuda[:N]; onnxruntime uses its CUDA provider with --device cuda "
        "(onnxruntime-gpu); torch picks CUDA when available with auto; openvino runs on the CPU (default auto)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads of the model (and of the detector): ONNX Runtime's intra-op threads, "
        "OpenVINO's inference threads, or torch's with the torch backend (default 0: the backend's own choice)",
    )
    parser.add_argument(
        "--flip-test",
        action="store_true",
        help="the heatmap model: average the heatmaps of its input (the frame, or each hand's crop) and of "
        "its mirror image; more accurate keypoints for two network passes (MMPose's flip test)",
    )
    parser.add_argument(
        "--refine",
        action="store_true",
        help="still images (an image folder, not --sequence): each hand's keypoints from a second pass on a crop "
        "placed upright round its first-pass keypoints (MediaPipe's landmarks -> ROI -> landmarks; twice the "
        "model's calls). On a video the tracker already places each hand's crop from its keypoints",
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="no window (over SSH, in scripts and tests); progress lines go to stderr",
    )
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="files and folders: play at native FPS and drop frames like a camera (default: every frame)",
    )
    parser.add_argument(
        "--fps",
        type=number(0, open_low=True),
        default=30.0,
        help="frame rate of an image folder with --realtime, and of --save when the source reports none (default 30)",
    )
    parser.add_argument(
        "--min-score",
        type=float,
        default=0.3,
        help="keypoints scoring below this are drawn faint (or hidden, --low-score hide); default 0.3",
    )
    parser.add_argument(
        "--low-score",
        choices=LOW_SCORE_STYLES,
        default="faint",
        help="how to draw keypoints below --min-score (default faint)",
    )
    parser.add_argument("--save", type=Path, help="write the annotated video (.mp4, .avi, .mkv)")
    parser.add_argument(
        "--fourcc", help="the --save codec, 4 characters (default from the suffix: mp4v for .mp4, MJPG for .avi/.mkv)"
    )
    parser.add_argument("--json", dest="json_path", type=Path, help="write one JSON line per processed frame")
    parser.add_argument(
        "--retry-s",
        type=number(0),
        default=10.0,
        help="how long to keep trying a camera or stream that cannot be opened or drops out (default 10 s)",
    )
    parser.add_argument(
        "--size",
        type=_frame_size,
        metavar="WxH",
        help="capture size to ask a camera for, e.g. 1280x720 (default: the camera's own)",
    )
    parser.add_argument(
        "--max-frames", type=number(1, integer=True), help="stop after this many frames read from the source"
    )
    parser.add_argument("--no-hud", dest="hud", action="store_false", help="no FPS / latency text on the frames")
    parser.add_argument(
        "--log-every",
        type=number(0),
        default=5.0,
        help="headless: a progress line on stderr every this many seconds (0: none; default 5)",
    )
    add_tracking_arguments(parser)


def main(args: argparse.Namespace) -> int:
    """``python -m handkp live``: returns the exit code (EXIT_*)."""
    try:
        if args.fourcc is not None and len(args.fourcc) != 4:
            raise OutputError(f"--fourcc {args.fourcc}: a codec is 4 characters (e.g. mp4v, MJPG, avc1)")
        for path, flag in ((args.save, "--save"), (args.json_path, "--json")):
            check_output(path, flag)
        if args.save is not None and args.fourcc is None and args.save.suffix.lower() not in VIDEO_FOURCC:
            raise OutputError(f"--save {args.save}: use a .mp4, .avi or .mkv file (or give --fourcc)")
        if not args.headless:
            problem = display_problem()
            if problem:
                raise DisplayError(f"cannot open a window: {problem}")
        source = open_source(args.source)
        if args.refine and (not source.unrelated or args.sequence):
            raise UsageError(
                f"--refine is for still images (an image folder or file, without --sequence), not {source.name}"
                f"{' with --sequence' if args.sequence else ''}: on a video's frames the tracker already places "
                "each hand's crop from its keypoints of the frame before"
            )
        if args.size is not None:
            if not isinstance(source, VideoSource) or not source.live:
                raise SourceError(f"--size applies to cameras and streams, not to {source.name}")
            source.size = args.size
        if not source.live:
            source.open()  # a file that is not a video fails here, before the model loads
        try:
            predictor = _load_model(args, spinning=chosen_detector(args, "heatmap")[0] is None)
            pipeline = build_pipeline(args, predictor)
        except BaseException:
            source.close()
            raise
        options = LiveOptions(
            headless=args.headless,
            realtime=args.realtime,
            fps=args.fps,
            min_score=args.min_score,
            low_score=args.low_score,
            save=args.save,
            fourcc=args.fourcc,
            json_path=args.json_path,
            retry_s=args.retry_s,
            max_frames=args.max_frames,
            hud=args.hud,
            log_every_s=args.log_every,
            sequence=args.sequence,
        )
        previous = _stop_on_sigterm()
        try:
            summary = run_live(pipeline, source, options)
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


def _load_model(args: argparse.Namespace, spinning: bool) -> Predictor:
    """The --model predictor; ``spinning`` False where a detector will take turns with it (ONNX
    Runtime: ``load_predictor``), as for a keypoint model beside a detector file."""
    try:
        predictor = load_predictor(
            args.model,
            backend=args.backend,
            device=args.device,
            threads=args.threads,
            precision=args.precision,
            flip_test=args.flip_test,
            spinning=spinning,
        )
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
