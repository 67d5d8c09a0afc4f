"""Several hands in the live app: the tracking options (``add_tracking_arguments``), the pipeline
they build (``build_pipeline``: a ``MultiHandPipeline`` of a ``YoloHandDetector``, a ``HandTracker``
and the keypoint model, or without a detector a ``SingleHandPipeline``, ``handkp.track``), and a
frame's first hand (``first_hand``: the per-frame fields of the JSON lines)."""

from __future__ import annotations

import argparse
import inspect
import math
from pathlib import Path

import numpy as np

from handkp.core.errors import ModelLoadError
from handkp.core.keypoints import NUM_KEYPOINTS
from handkp.core.paths import DETECTOR_ONNX
from handkp.runtime import Prediction, Predictor
from handkp.runtime.decoders import MAX_DETECTIONS, YOLO_CONF_THRESHOLD
from handkp.track import (
    HandTracker,
    MultiHandPipeline,
    OneEuroSettings,
    SingleHandPipeline,
    TrackedHand,
    YoloHandDetector,
)
from handkp.track.detector import DETECTOR_FILE
from handkp.track.tracker import MAX_HANDS

from .errors import ModelError, log

NO_DETECTOR = "none"
_TRACKER = inspect.signature(HandTracker.__init__).parameters
DEFAULT_MAX_HANDS = _TRACKER["max_hands"].default
DEFAULT_DETECT_EVERY = _TRACKER["detect_every"].default
DEFAULT_PRESENCE = _TRACKER["presence_threshold"].default
DEFAULT_LOST_S = _TRACKER["lost_s"].default
_SMOOTHING = OneEuroSettings()


def number(low: float, high: float = math.inf, integer: bool = False, open_low: bool = False):
    """An argparse type: a finite number (``integer``: an int) >= ``low`` (> with ``open_low``) and
    <= ``high``, else an error naming the bounds and the text."""

    def parse(text: str):
        v = int(text) if integer else float(text)
        if not (math.isfinite(v) and (v > low if open_low else v >= low) and v <= high):
            bound = f"> {low}" if open_low else f">= {low}"
            raise argparse.ArgumentTypeError(
                f"expected a number {bound}{'' if high == math.inf else f' and <= {high}'}, got {text}"
            )
        return v

    parse.__name__ = "integer" if integer else "number"  # argparse's "invalid integer value: 'x'"
    return parse


def add_tracking_arguments(parser: argparse.ArgumentParser) -> None:
    """``--max-hands``, ``--detector``, ``--detector-conf``, ``--detect-every``,
    ``--presence-threshold``, ``--lost-s``, ``--sequence``, ``--no-upright``, ``--no-smoothing``, ``--min-cutoff``,
    ``--beta``."""
    g = parser.add_argument_group("several hands (a detector finds hands, the model follows each in its own crop)")
    g.add_argument(
        "--detector",
        metavar="PATH",
        help=f"a YOLO-pose ONNX export that finds the hands (default, when --model is not a YOLO model: "
        f"{DETECTOR_FILE} beside the --model file, as release/ ships it, else {DETECTOR_ONNX}, "
        f"when either exists; '{NO_DETECTOR}': one hand, the whole frame, no tracking)",
    )
    g.add_argument(
        "--max-hands",
        type=number(1, MAX_HANDS, integer=True),
        metavar="N",
        help=f"how many hands to track, 1 to {MAX_HANDS} (default {DEFAULT_MAX_HANDS})",
    )
    g.add_argument(
        "--detector-conf",
        type=number(0, 1),
        default=YOLO_CONF_THRESHOLD,
        metavar="P",
        help=f"the detector's confidence threshold (default {YOLO_CONF_THRESHOLD})",
    )
    g.add_argument(
        "--detect-every",
        type=number(1, integer=True),
        metavar="N",
        help="while fewer than --max-hands are tracked, run the detector every N processed frames "
        f"(default {DEFAULT_DETECT_EVERY}; 1: every frame, as MediaPipe); never while all are tracked",
    )
    g.add_argument(
        "--presence-threshold",
        type=number(0, 1),
        metavar="P",
        help="a crop whose presence (the heatmap model: the mean of its 21 peaks) is below this holds no "
        f"hand: a new hand is not started, a tracked one ends (default {DEFAULT_PRESENCE})",
    )
    g.add_argument(
        "--lost-s",
        type=number(0),
        metavar="S",
        help="a hand lost for up to S seconds and found again where it was heading keeps its id "
        f"(default {DEFAULT_LOST_S:g}; 0: every hand found again gets a new id, as MediaPipe)",
    )
    g.add_argument(
        "--sequence",
        action="store_true",
        help="an image folder holds the frames of one video: track and smooth across its images "
        "(default: each image on its own, as MediaPipe's static image mode)",
    )
    g.add_argument(
        "--no-upright",
        action="store_true",
        help="crops not turned: a followed hand's crop keeps the frame's orientation (default: turned so "
        "the hand points up, MediaPipe's choice for a keypoint model trained on such crops)",
    )
    g.add_argument(
        "--no-smoothing", action="store_true", help="no One Euro filter on the tracked keypoints (default: on)"
    )
    g.add_argument(
        "--min-cutoff",
        type=number(0, open_low=True),
        metavar="HZ",
        help="One Euro filter: the cutoff of a still hand, Hz; lower: less jitter, more lag "
        f"(default {_SMOOTHING.min_cutoff:g})",
    )
    g.add_argument(
        "--beta",
        type=number(0),
        metavar="B",
        help=f"One Euro filter: how fast the cutoff rises with speed, Hz per px/s; higher: less lag on fast moves "
        f"(default {_SMOOTHING.beta:g})",
    )


def chosen_detector(args: argparse.Namespace, model_kind: str) -> tuple[Path | None, str]:
    """(the detector file or None, why none) for a model of ``model_kind`` (``Predictor.kind``)."""
    if args.detector is not None:
        if args.detector.strip().lower() == NO_DETECTOR:
            return None, f"--detector {NO_DETECTOR}"
        return Path(args.detector), ""
    if model_kind == "yolo":
        return None, "the YOLO model finds its hand in the whole frame itself; --detector PATH to track several"
    beside = Path(args.model).parent / DETECTOR_FILE
    for path in (beside, DETECTOR_ONNX):  # the pipeline's export, relative to the working folder
        if path.is_file():
            return path, ""
    return None, f"neither {beside} nor {DETECTOR_ONNX} found; --detector PATH to track several hands"


def build_pipeline(args: argparse.Namespace, predictor: Predictor) -> MultiHandPipeline | SingleHandPipeline:
    """The tracking pipeline the options ask for, or without a detector the single-hand one (one
    hand, the whole frame, as the app always did); says which on stderr. ``--refine``: the
    single-hand predictor refined (``Predictor.refined``), or the tracking pipeline's ``refine``.
    ModelError when the detector cannot be loaded, or --refine asks a YOLO model to refine."""
    path, why = chosen_detector(args, predictor.kind)
    if path is None:
        given = [
            flag
            for flag, v in (
                ("--max-hands", args.max_hands),
                ("--detect-every", args.detect_every),
                ("--presence-threshold", args.presence_threshold),
                ("--lost-s", args.lost_s),
                ("--sequence", args.sequence or None),
                ("--no-upright", args.no_upright or None),
                ("--no-smoothing", args.no_smoothing or None),
                ("--min-cutoff", args.min_cutoff),
                ("--beta", args.beta),
            )
            if v is not None
        ]
        try:
            single = predictor.refined() if args.refine else predictor
        except ModelLoadError as err:
            raise ModelError(f"{args.model}: {err}") from err
        log(
            f"no detector ({why}): one hand, the whole frame (single-hand mode)"
            + (", refined on the hand's crop" if args.refine else "")
            + (f"; {', '.join(given)} ignored" if given else "")
        )
        return SingleHandPipeline(single)
    max_hands = args.max_hands or DEFAULT_MAX_HANDS
    try:
        detector = YoloHandDetector(
            path,
            conf_threshold=args.detector_conf,
            max_detections=max(MAX_DETECTIONS, 2 * max_hands),
            threads=args.threads,
            device=args.device,
        )
    except ModelLoadError as err:
        raise ModelError(str(err)) from err
    except ImportError as err:
        raise ModelError(f"{path}: the detector needs onnxruntime, not available here ({err})") from err
    smoothing = (
        None
        if args.no_smoothing
        else OneEuroSettings(
            min_cutoff=_SMOOTHING.min_cutoff if args.min_cutoff is None else args.min_cutoff,
            beta=_SMOOTHING.beta if args.beta is None else args.beta,
        )
    )
    every = args.detect_every or DEFAULT_DETECT_EVERY
    presence = DEFAULT_PRESENCE if args.presence_threshold is None else args.presence_threshold
    lost_s = DEFAULT_LOST_S if args.lost_s is None else args.lost_s
    tracker = HandTracker(
        max_hands=max_hands,
        detect_every=every,
        presence_threshold=presence,
        smoothing=smoothing,
        crop_size=predictor.input_size,
        fps=args.fps,
        upright=not args.no_upright,
        lost_s=lost_s,
    )
    smooth = "off" if smoothing is None else f"min cutoff {smoothing.min_cutoff:g} Hz, beta {smoothing.beta:g}"
    log(
        f"tracking up to {max_hands} hands: detector {path} (conf >= {args.detector_conf:g}, "
        f"every {every} frames while fewer are tracked), presence >= {presence:g}, lost ids back within {lost_s:g} s, "
        f"crops {'not turned' if args.no_upright else 'upright'}, smoothing {smooth}"
        + (", each hand refined on a crop placed from its first-pass keypoints" if args.refine else "")
    )
    return MultiHandPipeline(predictor, detector, tracker, refine=args.refine)


def first_hand(hands: list[TrackedHand]) -> Prediction:
    """The first hand (the lowest id) as a Prediction; not found (NaN keypoints) without hands."""
    if not hands:
        return Prediction(
            np.full((NUM_KEYPOINTS, 2), np.nan, np.float32), np.zeros(NUM_KEYPOINTS, np.float32), False, 0.0
        )
    h = hands[0]
    return Prediction(h.keypoints, h.scores, True, h.presence)
