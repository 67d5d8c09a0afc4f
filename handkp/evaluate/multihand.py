"""Several hands in larger frames: ``MultiHandPipeline`` (the YOLO-pose detector, the tracker
and the heatmap model) on synthetic clips of val hands (``handkp.bench.clips``), scored
against the labels moved with each hand.

    clips = make_clips(pixels, keypoints, names, seed, n_clips=12, frames=60)
    runs = run_clips(lambda clip: MultiHandPipeline(predictor, detector, HandTracker(...)), clips)
    figures = score(clips, runs)             # {"overall": {...}, "by_hands": {"0": {...}, ...}, "by_size": {...}}

The stage runs the clips with the YOLO detector at its input (``detector.imgsz`` shaped for
``detector.frame_size``), with ``LabelBoxes`` in its place (top-down pose evaluation's ground-truth
boxes), so that what the detector misses and what the tracker and the keypoint model miss read
apart, and with the detector at each size of ``detector.sweep``, square and shaped for the frames
(``detector_sweep``: missed hands against FPS, what the input is chosen from). The stage's tracker
takes up to ``multihand.max_hands`` (3) hands, so in a frame with two it runs the detector on
every frame for a third; each sweep input also runs the clips of two hands with the live app's
default, up to two hands (``HandTracker``'s ``max_hands``), where the detector rests while both
are tracked: what a user with two hands in view gets. Last, the tracker's presence threshold is
weighed on clips of the dev hands (``presence_sweep``: hands missed against false hands and ID
switches at each of ``multihand.presence_sweep``, with ``LabelBoxes`` and with the detector; what
``multihand.presence_threshold`` is chosen from, on hands the val figures never see).

Per frame the predicted hands are matched to the true ones (``match_frame``: at most one each,
the most pairs, then the smallest mean keypoint distance in the true hand's sizes; a pair needs
that distance <= ``MATCH_DISTANCE`` or box IoU >= ``MATCH_IOU``). Then:

- **PCK@t** of every visible keypoint of every true hand, the error measured in the source
  image's px (frame px / the hand's scale), so it reads like the 224×224 val figures; a missed
  hand's keypoints count as misses. ``epe_median_px``: over matched hands only.
- **missed hands**: true hands matched to no prediction (per hand per frame); **false hands**:
  predictions matched to nothing; **ID switches**: a true hand matched to a predicted id other
  than the one it was last matched to; **hand-free false positives**: frames without a true hand
  where at least one hand was predicted.
- **FPS**: frames / the wall time of ``process`` (detector, crops, model and tracker; with label
  boxes, no detector).
``by_hands`` groups frames by how many true hands they hold; ``by_size`` groups the true hands by
their size in the frame (``hand_size``: the longer side of their visible keypoints' box, frame px;
``SIZE_EDGES``), with each group's keypoint figures and missed hands (a hand far from the camera is
a few dozen px, where the model's crop is enlarged several times)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ..bench.clips import Clip, FrameHand, make_clips
from ..core.errors import HandkpError
from ..core.geometry import box_iou
from ..core.images import input_hw, input_label
from ..core.io import sha256_file, write_json
from ..core.paths import DETECTOR_ONNX, HEATMAP_ONNX, IMAGE_CACHE, MULTIHAND, PREPARED_TABLE, sized_detector
from ..core.roi import DETECTOR_BOX_SCALE, detector_box
from ..data.cache import CacheError, ImageCache
from ..data.dataset import split_arrays
from ..runtime import load_predictor
from ..track import HandTracker, MultiHandPipeline, TrackedHand, YoloHandDetector
from ..track.pipeline import Detector
from ..track.tracker import best_assignment
from ..yolo.export import chosen_input, sweep_inputs

PCK_THRESHOLDS = (1, 3, 5, 10)
MATCH_DISTANCE = 0.5  # mean keypoint distance, in the true hand's sizes (its visible keypoints' box, longer side)
MATCH_IOU = 0.3
PRESENCE_SWEEP_FIGURES = ("missed_rate", "false_hands", "id_switches", "pck_5px", "hand_free_false_positive_frames")
SIZE_EDGES = (40, 80, 160)  # frame px: by_size's groups <40, 40-80, 80-160, >=160 (a 640x480 frame)
FPS_CLIP = 30.0  # the clips' timestamps: frame i at i / 30 s

__all__ = [
    "ClipRun",
    "LabelBoxes",
    "label_box_figures",
    "match_frame",
    "pipeline_factory",
    "presence_sweep",
    "run_clips",
    "run_multihand",
    "score",
    "split_clips",
]


@dataclass
class ClipRun:
    """One clip through a pipeline: the hands predicted per frame and the seconds of each
    ``process`` call."""

    hands: list[list[TrackedHand]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


class LabelBoxes:
    """The detector's place taken by the labels: the boxes of the true hands of frame ``frame``
    of ``clip`` (``detector_box``: their keypoints' extent, ``DETECTOR_BOX_SCALE`` x as large about its centre, as a
    detector frames a hand), in the clip's order. ``run_clips`` sets ``frame`` before each frame."""

    def __init__(self, clip: Clip):
        self.clip, self.frame = clip, 0

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        boxes = [detector_box(hand.keypoints, hand.visible) for hand in self.clip.truth[self.frame]]
        return np.array(boxes, np.float32).reshape(-1, 4)


def run_clips(pipeline_factory: Callable[[Clip], MultiHandPipeline], clips: list[Clip]) -> list[ClipRun]:
    """Every clip frame by frame through a fresh pipeline (``pipeline_factory(clip)`` per clip, so
    a fresh tracker); only ``process`` is timed (the frames are rendered before). A pipeline whose
    detector is ``LabelBoxes`` has it moved to each frame."""
    runs = []
    for clip in clips:
        pipeline, run = pipeline_factory(clip), ClipRun()
        for i in range(len(clip)):
            frame = clip.frame(i)
            if isinstance(pipeline.detector, LabelBoxes):
                pipeline.detector.frame = i
            start = time.perf_counter()
            hands = pipeline.process(frame, i / FPS_CLIP)
            run.seconds.append(time.perf_counter() - start)
            run.hands.append(list(hands))
        runs.append(run)
    return runs


def hand_size(hand: FrameHand) -> float:
    box = hand.box()
    return max(float(max(box[2] - box[0], box[3] - box[1])), 1.0)


def match_frame(truth: list[FrameHand], predicted: list[TrackedHand]) -> list[tuple[int, int]]:
    """(truth index, prediction index) pairs of one frame (the module's docstring)."""
    if not truth or not predicted:
        return []
    cost = np.full((len(truth), len(predicted)), np.inf)
    for r, t in enumerate(truth):
        vis = t.visible if t.visible.any() else np.ones(len(t.keypoints), bool)
        for c, p in enumerate(predicted):
            d = float(
                np.linalg.norm(np.asarray(p.keypoints, np.float64)[vis] - t.keypoints[vis], axis=1).mean()
            ) / hand_size(t)
            if d <= MATCH_DISTANCE or box_iou(t.box(), np.asarray(p.box, np.float64)) >= MATCH_IOU:
                cost[r, c] = d
    return best_assignment(cost, 1e12)


def size_group(size: float) -> str:
    """``by_size``'s key of a hand ``size`` frame px across: "<40", "40-80", "80-160", ">=160"
    (``SIZE_EDGES``)."""
    for i, edge in enumerate(SIZE_EDGES):
        if size < edge:
            return f"<{edge}" if i == 0 else f"{SIZE_EDGES[i - 1]}-{edge}"
    return f">={SIZE_EDGES[-1]}"


SIZE_GROUPS = tuple(size_group(low) for low in (0, *SIZE_EDGES))  # by_size's keys, smallest first


def _frame_records(clips: list[Clip], runs: list[ClipRun]) -> list[dict]:
    """One record per frame: n_true, errors (source px of visible keypoints; inf for a missed
    hand's), matched_errors, missed, false, switches, seconds, and ``hands``: per true hand
    (size frame px, its errors, missed)."""
    records = []
    for clip, run in zip(clips, runs):
        if len(run.hands) != len(clip):
            raise ValueError(f"clip {clip.index}: {len(run.hands)} predicted frames for {len(clip)} frames")
        last_id: dict[int, int] = {}
        for i, (truth, predicted) in enumerate(zip(clip.truth, run.hands)):
            pairs = dict(match_frame(truth, predicted))
            hands, switches = [], 0
            for r, t in enumerate(truth):
                if r not in pairs:
                    hands.append((hand_size(t), np.full(int(t.visible.sum()), np.inf), True))
                    continue
                p = predicted[pairs[r]]
                e = (
                    np.linalg.norm(np.asarray(p.keypoints, np.float64)[t.visible] - t.keypoints[t.visible], axis=1)
                    / t.scale
                )
                hands.append((hand_size(t), e, False))
                if t.identity in last_id and last_id[t.identity] != p.id:
                    switches += 1
                last_id[t.identity] = p.id
            records.append(
                {
                    "n_true": len(truth),
                    "errors": _joined(e for _, e, _ in hands),
                    "matched_errors": _joined(e for _, e, missed in hands if not missed),
                    "missed": len(truth) - len(pairs),
                    "false": len(predicted) - len(pairs),
                    "switches": switches,
                    "n_pred": len(predicted),
                    "seconds": run.seconds[i] if i < len(run.seconds) else 0.0,
                    "hands": hands,
                }
            )
    return records


def _joined(arrays) -> np.ndarray:
    arrays = list(arrays)
    return np.concatenate(arrays) if arrays else np.empty(0)


def _keypoint_figures(errors: np.ndarray, matched: np.ndarray) -> dict:
    """PCK at ``PCK_THRESHOLDS`` over ``errors`` (a missed hand's are inf), the median of
    ``matched`` (None where empty)."""
    out = {f"pck_{t}px": float(np.mean(errors <= t)) if errors.size else None for t in PCK_THRESHOLDS}
    out["epe_median_px"] = float(np.median(matched)) if matched.size else None
    return out


def _figures(records: list[dict]) -> dict:
    errors = _joined(r["errors"] for r in records)
    matched = _joined(r["matched_errors"] for r in records)
    hands = sum(r["n_true"] for r in records)
    free = [r for r in records if r["n_true"] == 0]
    seconds = sum(r["seconds"] for r in records)
    out = {"frames": len(records), "hands": hands, "keypoints": int(errors.size), **_keypoint_figures(errors, matched)}
    missed = sum(r["missed"] for r in records)
    out.update(
        {
            "missed_hands": missed,
            "missed_rate": missed / hands if hands else None,
            "false_hands": sum(r["false"] for r in records),
            "id_switches": sum(r["switches"] for r in records),
            "hand_free_frames": len(free),
            "hand_free_false_positive_frames": sum(r["n_pred"] > 0 for r in free),
            "hand_free_false_positive_rate": (sum(r["n_pred"] > 0 for r in free) / len(free)) if free else None,
            "fps": len(records) / seconds if seconds > 0 else None,
        }
    )
    return out


def _size_figures(records: list[dict]) -> dict:
    """{size group: hands, keypoints, PCK, EPE median, missed hands and rate} over the true hands
    of ``records`` (groups without a hand left out), smallest first."""
    groups: dict[str, list] = {}
    for r in records:
        for size, errors, missed in r["hands"]:
            groups.setdefault(size_group(size), []).append((errors, missed))
    out = {}
    for key in (k for k in SIZE_GROUPS if k in groups):
        hands = groups[key]
        errors = _joined(e for e, _ in hands)
        missed = sum(m for _, m in hands)
        out[key] = {
            "hands": len(hands),
            "keypoints": int(errors.size),
            **_keypoint_figures(errors, _joined(e for e, m in hands if not m)),
            "missed_hands": missed,
            "missed_rate": missed / len(hands),
        }
    return out


def score(clips: list[Clip], runs: list[ClipRun]) -> dict:
    """{"overall": figures, "by_hands": {"<n true hands in the frame>": figures}, "by_size":
    {"<size group>": hand figures}} (the module's docstring: what each figure is)."""
    records = _frame_records(clips, runs)
    counts = sorted({r["n_true"] for r in records})
    return {
        "overall": _figures(records),
        "by_hands": {str(n): _figures([r for r in records if r["n_true"] == n]) for n in counts},
        "by_size": _size_figures(records),
    }


def rounded_figures(figures: dict, digits: int = 6) -> dict:
    return {k: round(v, digits) if isinstance(v, float) else v for k, v in figures.items()}


def rounded_score(figures: dict) -> dict:
    return {
        "overall": rounded_figures(figures["overall"]),
        "by_hands": {n: rounded_figures(f) for n, f in figures["by_hands"].items()},
        "by_size": {n: rounded_figures(f) for n, f in figures["by_size"].items()},
    }


def sweep_row(input_size, figures: dict, app_default: dict) -> dict:
    """One detector input's line of ``detector_sweep`` (``imgsz``: its long side, ``input``:
    [height, width]): missed hands, PCK@5 and FPS overall and in the frames with two hands, from
    the stage's run (``figures``) and from the two-hand clips run with the live app's default of up
    to two hands (``app_default``, keys ``*_app_default``)."""
    overall, two = figures["overall"], figures["by_hands"].get("2", {})
    app_two = app_default["by_hands"].get("2", {})
    return {
        "imgsz": max(input_hw(input_size)),
        "input": list(input_hw(input_size)),
        "missed_rate": overall["missed_rate"],
        "false_hands": overall["false_hands"],
        "pck_5px": overall["pck_5px"],
        "fps": overall["fps"],
        "missed_rate_2_hands": two.get("missed_rate"),
        "fps_2_hands": two.get("fps"),
        "missed_rate_2_hands_app_default": app_two.get("missed_rate"),
        "fps_2_hands_app_default": app_two.get("fps"),
    }


def presence_thresholds(cfg: dict) -> list[float]:
    """The ``multihand`` section's ``presence_sweep`` (none: []), each checked to be in [0, 1]."""
    thresholds = [float(t) for t in cfg.get("presence_sweep") or []]
    if not all(0.0 <= t <= 1.0 for t in thresholds):
        raise HandkpError(f"params.yaml multihand.presence_sweep: thresholds must be in [0, 1], got {thresholds}")
    return thresholds


def presence_sweep(predictor, detector: Detector, clips: list[Clip], cfg: dict, thresholds: list[float]) -> list[dict]:
    """The tracker's presence threshold weighed on ``clips``: one line per threshold with the
    ``PRESENCE_SWEEP_FIGURES`` of the clips run with ``LabelBoxes`` (``label_boxes``) and with
    ``detector`` (``detector``), the tracker otherwise as ``cfg`` (the ``multihand`` section) sets
    it. A lower threshold keeps the hands the model sees faintly (far, blurred) and follows what
    is no longer a hand for longer."""
    rows = []
    for threshold in thresholds:
        make = pipeline_factory(predictor, {**cfg, "presence_threshold": threshold})
        runs = {
            "label_boxes": run_clips(lambda clip, make=make: make(LabelBoxes(clip)), clips),
            "detector": run_clips(lambda clip, make=make: make(detector), clips),
        }
        row: dict = {"presence_threshold": threshold}
        for name, clip_runs in runs.items():
            overall = score(clips, clip_runs)["overall"]
            row[name] = rounded_figures({key: overall[key] for key in PRESENCE_SWEEP_FIGURES})
        rows.append(row)
    return rows


def _detector_files(params: dict) -> dict:
    """Each input of ``sweep_inputs`` (a side, or (height, width)) -> its export (detector_export);
    HandkpError naming a missing one."""
    files = {shape: sized_detector(shape) for shape in sweep_inputs(params["detector"])}
    missing = [str(f) for f in [DETECTOR_ONNX, *files.values()] if not f.is_file()]
    if missing:
        raise HandkpError(f"{', '.join(missing)} not found; run dvc repro detector_export")
    return files


def split_clips(params: dict, split: str) -> list[Clip]:
    """The stage's clips (``multihand`` section: n_clips, frames, frame_size, max_hands; ``seed``)
    of the hands of ``split`` (the image cache checked against the keypoint table)."""
    cfg = params["multihand"]
    names, pixels = ImageCache(IMAGE_CACHE).split(split)
    table_names, keypoints = split_arrays(pl.read_parquet(PREPARED_TABLE), split)
    if table_names != names:
        raise CacheError(f"{IMAGE_CACHE}: the {split} cache does not match {PREPARED_TABLE}; run dvc repro prepare")
    frame_size = (int(cfg["frame_size"][0]), int(cfg["frame_size"][1]))
    return make_clips(
        pixels,
        keypoints,
        names,
        int(params["seed"]),
        int(cfg["n_clips"]),
        int(cfg["frames"]),
        frame_size,
        int(cfg["max_hands"]),
    )


def pipeline_factory(predictor, cfg: dict) -> Callable[[Detector], MultiHandPipeline]:
    """detector -> a fresh ``MultiHandPipeline`` of ``predictor`` and a tracker with the stage's
    settings (``multihand`` section: max_hands, detect_every, presence_threshold, upright), smoothing
    off (scoring compares raw keypoints)."""

    def make(detector: Detector) -> MultiHandPipeline:
        tracker = HandTracker(
            max_hands=int(cfg["max_hands"]),
            detect_every=int(cfg["detect_every"]),
            presence_threshold=float(cfg["presence_threshold"]),
            smoothing=None,
            crop_size=predictor.input_size,
            upright=bool(cfg["upright"]),
        )
        return MultiHandPipeline(predictor, detector, tracker)

    return make


def detector_figures(predictor, detector: Detector, clips: list[Clip], cfg: dict) -> dict:
    """The clips through ``detector``, the tracker and ``predictor``: the rounded ``score``."""
    make = pipeline_factory(predictor, cfg)
    return rounded_score(score(clips, run_clips(lambda clip: make(detector), clips)))


def label_box_figures(predictor, clips: list[Clip], cfg: dict) -> dict:
    """The clips through the tracker and ``predictor`` with ``LabelBoxes`` in the detector's place:
    the rounded ``score`` (what the tracker and the keypoint model lose, the detector aside)."""
    make = pipeline_factory(predictor, cfg)
    return rounded_score(score(clips, run_clips(lambda clip: make(LabelBoxes(clip)), clips)))


def run_multihand(params: dict) -> dict:
    """The multihand stage: ``multihand.n_clips`` clips of val hands through the ONNX heatmap
    model and the hand detector (``models/detector.onnx``, ``detector.imgsz``; ONNX Runtime,
    ``runtime.threads``), smoothing off, then with ``LabelBoxes`` for the detector (the crops turned
    as ``multihand.upright`` says, and the other way), then with the
    detector at each ``detector.sweep`` size, and the clips of two hands again at each size with the
    live app's default ``max_hands``, then the dev hands' clips at each ``multihand.presence_sweep``
    threshold -> reports/metrics/multihand.json (the detector run's figures at the top, the
    label-box run's under ``label_boxes``, the other way's overall figures under
    ``label_boxes_other_orientation``, one line per size under ``detector_sweep``, one per
    threshold under ``presence_sweep``)."""
    cfg, seed = params["multihand"], int(params["seed"])
    thresholds = presence_thresholds(cfg)
    threads, conf = int(params["runtime"]["threads"]), float(params["evaluate"]["yolo_conf_threshold"])
    frame_size = (int(cfg["frame_size"][0]), int(cfg["frame_size"][1]))
    settings = {
        "n_clips": int(cfg["n_clips"]),
        "frames": int(cfg["frames"]),
        "frame_size": list(frame_size),
        "max_hands": int(cfg["max_hands"]),
        "detect_every": int(cfg["detect_every"]),
        "presence_threshold": float(cfg["presence_threshold"]),
        "upright": bool(cfg["upright"]),
        "smoothing": False,
        "conf_threshold": conf,
        "threads": threads,
        "spinning": False,  # ONNX Runtime threads of both models (OnnxRuntimeBackend), as in the live app
        "seed": seed,
        "match_distance": MATCH_DISTANCE,
        "match_iou": MATCH_IOU,
        "clip_fps": FPS_CLIP,
        # the tracker's duplicate rule (MediaPipe's) and how long a lost hand's id comes back: HandTracker's defaults
        **{
            key: getattr(HandTracker(), key)
            for key in ("duplicate_fraction", "duplicate_distance", "duplicate_iou", "new_hand_iou", "lost_s")
        },
    }
    imgsz, chosen, sized = int(params["detector"]["imgsz"]), chosen_input(params["detector"]), _detector_files(params)
    app_max_hands = HandTracker().max_hands  # the live app's default --max-hands
    predictor = load_predictor(HEATMAP_ONNX, "onnxruntime", "cpu", threads, spinning=False)  # turns with the detector
    detector = YoloHandDetector(DETECTOR_ONNX, conf_threshold=conf, threads=threads)
    if input_hw(detector.input_size) != input_hw(chosen):
        raise HandkpError(
            f"{DETECTOR_ONNX}: input {input_label(detector.input_size)}, not detector.imgsz {imgsz} shaped for "
            f"detector.frame_size ({input_label(chosen)}); run dvc repro detector_export"
        )
    settings.update(detector_imgsz=imgsz, detector_input=list(input_hw(chosen)), app_default_max_hands=app_max_hands)
    clips = split_clips(params, "val")
    with_yolo = detector_figures(predictor, detector, clips, cfg)
    with_labels = label_box_figures(predictor, clips, cfg)
    other_way = not bool(cfg["upright"])  # the crops turned the other way: what turning them upright is worth
    with_labels_other_way = label_box_figures(predictor, clips, {**cfg, "upright": other_way})
    two_hand_clips = [clip for clip in clips if max(map(len, clip.truth), default=0) == 2]
    app_pipeline = pipeline_factory(predictor, {**cfg, "max_hands": app_max_hands})
    sweep = []
    for shape, path in sized.items():
        if shape == chosen:
            sized_run, figures = detector, with_yolo  # the same file as models/detector.onnx
        else:
            sized_run = YoloHandDetector(path, conf_threshold=conf, threads=threads)
            figures = detector_figures(predictor, sized_run, clips, cfg)
        app_runs = run_clips(lambda clip, d=sized_run: app_pipeline(d), two_hand_clips)
        sweep.append(sweep_row(shape, figures, rounded_score(score(two_hand_clips, app_runs))))
        print(f"multihand, detector at {input_label(shape)} px: {sweep[-1]}")
    by_presence = presence_sweep(predictor, detector, split_clips(params, "dev"), cfg, thresholds)
    for row in by_presence:
        print(f"multihand, dev clips, presence threshold {row['presence_threshold']}: {row}")
    result = {
        "settings": {**settings, "label_box_scale": DETECTOR_BOX_SCALE},
        "files": {"heatmap": sha256_file(HEATMAP_ONNX), "detector": sha256_file(DETECTOR_ONNX)},
        **with_yolo,
        "label_boxes": with_labels,
        "label_boxes_other_orientation": {"upright": other_way, "overall": with_labels_other_way["overall"]},
        "detector_sweep": sweep,
        "presence_sweep": by_presence,
    }
    runs = (
        (f"detector at {input_label(chosen)} px", with_yolo["overall"]),
        ("label boxes", with_labels["overall"]),
        (f"label boxes, crops {'turned upright' if other_way else 'not turned'}", with_labels_other_way["overall"]),
    )
    for name, o in runs:
        print(
            f"multihand, {name}: {o['frames']} frames, {o['hands']} hands: PCK@5 {o['pck_5px']}, "
            f"missed {o['missed_hands']}, false {o['false_hands']}, ID switches {o['id_switches']}, {o['fps']} FPS"
        )
    write_json(MULTIHAND, result)
    return result
