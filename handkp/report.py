"""The report: the README results block (between markers) and the figures under reports/figures/.

Every number in the block is read from the pipeline's files (docs/architecture.md, "Files between
stages"); nothing is typed. The output is deterministic (no timestamps, fixed ordering), so running
the report twice on the same inputs leaves README.md byte-identical.

`draw_skeleton` is the one place that draws a hand on an image (OpenCV, so it works on video
frames too); the live app reuses it.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from handkp.keypoints import FINGER_OF, KEYPOINT_NAMES, NUM_KEYPOINTS, SKELETON

START_MARKER = "<!-- report:start -->"
END_MARKER = "<!-- report:end -->"

MODELS = ("heatmap", "yolo")
# One colour per model, everywhere (figures and drawings); Okabe-Ito, colour-blind safe.
HEATMAP_COLOR = "#0072B2"  # blue
YOLO_COLOR = "#D55E00"  # vermillion
MODEL_COLORS = {"heatmap": HEATMAP_COLOR, "yolo": YOLO_COLOR}
GROUND_TRUTH_COLOR = "#FFFFFF"
TABLE_NAMES = {"heatmap": "heatmap", "yolo": "YOLO"}  # in tables and figure legends
SUBJECTS = {"heatmap": "The heatmap model", "yolo": "YOLO"}  # at the start of a sentence
OBJECTS = {"heatmap": "the heatmap model", "yolo": "YOLO"}  # inside a sentence

THRESHOLDS_PX = (1, 3, 5, 7, 10)
REALTIME_FPS = 30.0  # the bar a deployment line compares end-to-end FPS against
QUALITATIVE_ROWS = 4
DISPLAY_SCALE = 2  # qualitative panels are drawn at 2x the 224 px image for legible lines

FIGURE_FILES = {
    "pck_curves": "pck_curves.png",
    "per_keypoint": "per_keypoint_pck5.png",
    "latency": "latency.png",
    "qualitative": "qualitative.png",
    "training": "training_curves.png",
}
FIGURE_TITLES = {
    "pck_curves": "PCK against threshold, 0-15 px",
    "per_keypoint": "PCK@5px per keypoint",
    "latency": "Latency: p50 bars, p90-p99 whiskers",
    "qualitative": "The same val images, each model side by side",
    "training": "Training curves",
}
DPI = 100
MISSING = "–"


class ReportError(RuntimeError):
    """The report cannot be written (e.g. README.md has no report markers)."""


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportPaths:
    """Where the report reads and writes. `{model}` in a template is replaced by the model name."""

    readme: Path = Path("README.md")
    params: Path = Path("params.yaml")
    metrics: str = "reports/metrics/{model}.json"
    latency: Path = Path("reports/metrics/latency.json")
    eval_dir: str = "reports/eval/{model}"
    predictions: str = "reports/predictions/{model}_val.parquet"
    ground_truth: Path = Path("data/prepared/keypoints.parquet")
    images: Path = Path("data/raw")
    train_dir: str = "reports/train/{model}"
    figures: Path = Path("reports/figures")
    models: tuple[str, ...] = MODELS
    speed: Path = Path("reports/metrics/speed.json")
    ablation: Path = Path("reports/ablation/accuracy.json")
    int8_metrics: Path = Path("reports/metrics/heatmap_int8.json")
    int8_parity: Path = Path("reports/metrics/int8_parity.json")

    def of(self, template: str, model: str) -> Path:
        return Path(template.format(model=model))


@dataclass
class ModelData:
    """What the pipeline has produced for one model (None where the file is missing)."""

    name: str
    metrics: dict[str, Any] | None = None
    metrics_path: Path | None = None
    pck_curve: tuple[np.ndarray, np.ndarray] | None = None
    per_keypoint: list[dict[str, str]] | None = None
    predictions: Any = None  # polars.DataFrame
    latency: dict[str, Any] | None = None
    training: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def evaluated(self) -> bool:
        return self.metrics is not None


@dataclass
class ReportData:
    models: dict[str, ModelData]
    params: dict[str, Any]
    latency: dict[str, Any] | None
    latency_path: Path
    ground_truth: Any  # polars.DataFrame | None
    paths: ReportPaths
    speed: dict[str, Any] | None = None
    ablation: dict[str, Any] | None = None
    int8_metrics: dict[str, Any] | None = None
    int8_parity: dict[str, Any] | None = None


def _posix(path: Path | str) -> str:
    return Path(path).as_posix()


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _read_csv_rows(path: Path) -> list[dict[str, str]] | None:
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_pck_curve(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    rows = _read_csv_rows(path)
    if not rows:
        return None
    thr = np.array([float(r["threshold_px"]) for r in rows])
    pck = np.array([float(r["pck"]) for r in rows])
    order = np.argsort(thr, kind="stable")
    return thr[order], pck[order]


def read_dvclive_series(train_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every `plots/metrics/**/*.tsv` of a dvclive directory: {"train/loss": (steps, values)}.

    dvclive writes `step <name>` (some versions `timestamp step <name>`); the value is the
    column that is neither `timestamp` nor `step`. Without a `step` column the row index is used.
    """
    root = train_dir / "plots" / "metrics"
    series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if not root.is_dir():
        return series
    for tsv in sorted(root.rglob("*.tsv")):
        name = tsv.relative_to(root).with_suffix("").as_posix()
        with open(tsv, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter="\t"))
        if len(rows) < 2:
            continue
        header = rows[0]
        value_cols = [i for i, h in enumerate(header) if h not in ("timestamp", "step")]
        if not value_cols:
            continue
        vi = value_cols[-1]
        si = header.index("step") if "step" in header else None
        steps, values = [], []
        for k, row in enumerate(rows[1:]):
            if len(row) <= vi or row[vi] == "":
                continue
            try:
                values.append(float(row[vi]))
                steps.append(float(row[si]) if si is not None else float(k))
            except ValueError:
                continue
        if values:
            series[name] = (np.array(steps), np.array(values))
    return series


def load_report_data(paths: ReportPaths) -> ReportData:
    import polars as pl
    import yaml

    params: dict[str, Any] = {}
    if paths.params.is_file():
        with open(paths.params, encoding="utf-8") as f:
            params = yaml.safe_load(f) or {}
    latency = _read_json(paths.latency)
    ground_truth = None
    if paths.ground_truth.is_file():
        ground_truth = pl.read_parquet(paths.ground_truth)

    models: dict[str, ModelData] = {}
    for name in paths.models:
        m = ModelData(name=name)
        m.metrics_path = paths.of(paths.metrics, name)
        m.metrics = _read_json(m.metrics_path)
        if m.metrics is None:
            m.notes.append(f"no `{_posix(m.metrics_path)}` yet")
        eval_dir = paths.of(paths.eval_dir, name)
        m.pck_curve = read_pck_curve(eval_dir / "pck_curve.csv")
        m.per_keypoint = _read_csv_rows(eval_dir / "per_keypoint.csv")
        pred_path = paths.of(paths.predictions, name)
        if pred_path.is_file():
            m.predictions = pl.read_parquet(pred_path)
        if latency is not None and isinstance(latency.get(name), dict):
            m.latency = latency[name]
        m.training = read_dvclive_series(paths.of(paths.train_dir, name))
        models[name] = m
    return ReportData(models, params, latency, paths.latency, ground_truth, paths, _read_json(paths.speed),
                      _read_json(paths.ablation), _read_json(paths.int8_metrics), _read_json(paths.int8_parity))


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------


def _num(d: Mapping[str, Any] | None, key: str) -> float | None:
    if d is None:
        return None
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return None if math.isnan(v) else v


def fmt_pck(v: float | None) -> str:
    return MISSING if v is None else f"{v:.3f}"


def fmt_px(v: float | None) -> str:
    return MISSING if v is None else f"{v:.2f}"


def fmt_ms(v: float | None) -> str:
    return MISSING if v is None else f"{v:.2f}"


def fmt_fps(v: float | None) -> str:
    return MISSING if v is None else f"{v:.1f}"


def fmt_count(v: float | None) -> str:
    return MISSING if v is None else f"{int(round(v)):,}"


def _plural(n: float | None, word: str) -> str:
    if n is None:
        return f"{MISSING} {word}s"
    return f"{fmt_count(n)} {word}" + ("" if int(round(n)) == 1 else "s")


def per_image_errors(ground_truth: Any, predictions: Any) -> dict[str, float]:
    """Mean pixel error over each val image's visible keypoints; inf where the model found no hand.

    Images without a visible keypoint are left out.
    """
    import polars as pl

    val = ground_truth.filter((pl.col("split") == "val") & (pl.col("visibility") > 0))
    val = val.select("image", pl.col("keypoint").cast(pl.Int64), "x", "y")
    pred = predictions.select(
        "image",
        pl.col("keypoint").cast(pl.Int64),
        pl.col("x").cast(pl.Float64).alias("px"),
        pl.col("y").cast(pl.Float64).alias("py"),
    )
    joined = val.join(pred, on=["image", "keypoint"], how="inner")
    err = joined.with_columns(
        (((pl.col("px") - pl.col("x")) ** 2 + (pl.col("py") - pl.col("y")) ** 2).sqrt()).alias("e")
    )
    per_image = err.group_by("image").agg(pl.col("e").mean())
    found = dict(zip(per_image["image"].to_list(), per_image["e"].to_list()))
    out: dict[str, float] = {}
    for image in sorted(set(val["image"].to_list())):
        out[image] = float(found[image]) if image in found else math.inf
    return out


def pick_qualitative(errors: Mapping[str, Mapping[str, float]], n_rows: int = QUALITATIVE_ROWS) -> list[tuple[str, str]]:
    """Rows for the qualitative figure: [(label, image)], images shared by every model.

    The first model is the reference: its typical image (median per-image error), its worst,
    then each other model's worst, the largest disagreement, the reference's best.
    """
    names = list(errors)
    if not names:
        return []
    common = set(errors[names[0]])
    for n in names[1:]:
        common &= set(errors[n])
    if not common:
        return []
    ref = names[0]
    by_ref = sorted(common, key=lambda i: (errors[ref][i], i))
    finite = [i for i in by_ref if math.isfinite(errors[ref][i])]
    candidates: list[tuple[str, str]] = []
    if finite:
        candidates.append(("typical", finite[(len(finite) - 1) // 2]))
    candidates.append((f"worst for {OBJECTS.get(ref, ref)}", by_ref[-1]))
    for n in names[1:]:
        worst = max(sorted(common), key=lambda i: errors[n][i])
        candidates.append((f"worst for {OBJECTS.get(n, n)}", worst))
    if len(names) > 1:
        both = [i for i in sorted(common) if all(math.isfinite(errors[n][i]) for n in names)]
        if both:
            gap = max(both, key=lambda i: max(errors[n][i] for n in names) - min(errors[n][i] for n in names))
            candidates.append(("largest gap", gap))
    if finite:
        candidates.append((f"best for {OBJECTS.get(ref, ref)}", finite[0]))
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for label, image in candidates:
        if image not in seen:
            rows.append((label, image))
            seen.add(image)
        if len(rows) == n_rows:
            break
    return rows


# --------------------------------------------------------------------------------------------
# Drawing (OpenCV, reusable on video frames)
# --------------------------------------------------------------------------------------------


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return (int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16))


_SHIFT = 4  # OpenCV fixed-point bits: sub-pixel drawing


def _cv_point(xy: np.ndarray) -> tuple[int, int]:
    # Keypoints are continuous coordinates where the image spans [0, W); OpenCV's integer
    # coordinates are pixel centres, i.e. continuous (i + 0.5).
    p = np.round((xy - 0.5) * (1 << _SHIFT)).astype(np.int64)
    return int(p[0]), int(p[1])


def draw_skeleton(
    rgb: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray | None = None,
    color: tuple[int, int, int] | str = HEATMAP_COLOR,
    *,
    min_score: float = 0.0,
    thickness: int = 2,
    radius: int = 3,
    alpha: float = 1.0,
) -> np.ndarray:
    """Draw the hand skeleton (`handkp.keypoints.SKELETON`) on a copy of an RGB uint8 image.

    keypoints: (21, 2) px in the image's own pixel frame (continuous, image spans [0, W));
    scores: (21,) or None; a keypoint with a score below `min_score`, or NaN coordinates, is
    skipped with its edges. colour: RGB tuple (0-255) or "#rrggbb". alpha < 1 blends the drawing
    into the image (faint ground truth). Returns the new image; the input is left untouched.
    """
    img = np.ascontiguousarray(rgb, dtype=np.uint8).copy()
    import cv2

    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    if kp.shape[0] != NUM_KEYPOINTS:
        raise ValueError(f"expected ({NUM_KEYPOINTS}, 2) keypoints, got {kp.shape}")
    ok = np.all(np.isfinite(kp), axis=1)
    if scores is not None:
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        ok &= np.isfinite(s) & (s >= min_score)
    rgb_color = hex_to_rgb(color) if isinstance(color, str) else tuple(int(c) for c in color)
    overlay = img.copy() if alpha < 1.0 else img
    for a, b in SKELETON:
        if ok[a] and ok[b]:
            cv2.line(overlay, _cv_point(kp[a]), _cv_point(kp[b]), rgb_color, thickness, cv2.LINE_AA, _SHIFT)
    outline = (0, 0, 0) if sum(rgb_color) > 3 * 60 else (255, 255, 255)
    for i in np.flatnonzero(ok):
        c = _cv_point(kp[i])
        cv2.circle(overlay, c, (radius + 1) << _SHIFT, outline, -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(overlay, c, radius << _SHIFT, rgb_color, -1, cv2.LINE_AA, _SHIFT)
    if alpha < 1.0:
        img = cv2.addWeighted(overlay, float(alpha), img, 1.0 - float(alpha), 0.0)
    return img


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------


def _flatten(section: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(section, Mapping):
        return out
    for k, v in section.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out[key] = "[" + ", ".join(str(x) for x in v) + "]"
        else:
            out[key] = v
    return out


def _pick(flat: Mapping[str, Any], names: Sequence[str]) -> tuple[str, Any] | None:
    for n in names:
        for k, v in flat.items():
            if k.split(".")[-1] == n:
                return k, v
    return None


def _yaml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    return str(v)


def _key_values(flat: Mapping[str, Any], skip: set[str]) -> str:
    return ", ".join(f"{k}={_yaml_value(v)}" for k, v in flat.items() if k not in skip)


_EPOCHS = ("epochs", "max_epochs")
_BATCH = ("batch_size", "batch")
_LR = ("lr", "lr0", "learning_rate", "base_lr")


def _schedule(section_name: str, flat: Mapping[str, Any]) -> tuple[str, set[str]]:
    parts, used = [], set()
    for names, unit in ((_EPOCHS, "epochs"), (_BATCH, "batch"), (_LR, "lr")):
        hit = _pick(flat, names)
        if hit is None:
            continue
        used.add(hit[0])
        parts.append(f"{_yaml_value(hit[1])} epochs" if unit == "epochs" else f"{unit} {_yaml_value(hit[1])}")
    if not parts:
        return f"schedule not found in `params.yaml` `{section_name}`", used
    return ", ".join(parts) + f" (`{section_name}`)", used


def _initialisation(value: Any, key: str, model_file: str | None = None) -> str:
    if value is True:
        return f"pretrained weights (`{key}: true`)"
    if value is False:
        return f"trained from scratch, random initialisation (`{key}: false`)"
    if isinstance(value, str) and value:
        return f"initialised from `{value}` (`{key}`)"
    if model_file:
        if model_file.endswith((".yaml", ".yml")):
            return f"trained from scratch (architecture `{model_file}`)"
        return f"initialised from pretrained weights `{model_file}`"
    return f"initialisation not stated (`{key}` not in `params.yaml`)"


def describe_setup(data: ReportData) -> list[str]:
    """Bullet lines stating what the numbers are: split, counts, schedule, initialisation, target."""
    import polars as pl

    lines: list[str] = []
    evaluated = [m for m in data.models.values() if m.evaluated]

    # Evaluation split and counts (from the metrics themselves).
    counts = {m.name: (_num(m.metrics, "n_images"), _num(m.metrics, "n_keypoints")) for m in evaluated}
    if counts:
        distinct = set(counts.values())
        if len(distinct) == 1:
            n_img, n_kp = next(iter(distinct))
            lines.append(
                f"Evaluation: the `val` split, {_plural(n_img, 'image')}, {_plural(n_kp, 'visible keypoint')} "
                f"(the same images for every model)."
            )
        else:
            per = "; ".join(
                f"{TABLE_NAMES.get(n, n)} {_plural(c[0], 'image')}, {_plural(c[1], 'keypoint')}" for n, c in counts.items()
            )
            lines.append(f"Evaluation: the `val` split; the models were scored on different sets ({per}).")
    if data.ground_truth is not None and {"split", "image"} <= set(data.ground_truth.columns):
        per_split = data.ground_truth.group_by("split").agg(pl.col("image").n_unique().alias("n"))
        n_by = dict(zip(per_split["split"].to_list(), per_split["n"].to_list()))
        order = [s for s in ("train", "dev", "val") if s in n_by] + sorted(s for s in n_by if s not in ("train", "dev", "val"))
        split_text = ", ".join(f"{s} {_plural(n_by[s], 'image')}" for s in order)
        data_flat = {
            k: v
            for k, v in _flatten(data.params.get("data")).items()
            if not any(w in k.lower() for w in ("source", "url", "sha", "md5", "path", "dir"))
        }
        extra = f"; `data`: {_key_values(data_flat, set())}" if data_flat else ""
        lines.append(f"Data (`{_posix(data.paths.ground_truth)}`): {split_text}{extra}.")

    # Heatmap model: shape, initialisation, schedule.
    if "heatmap" in data.models:
        model_flat = _flatten(data.params.get("model"))
        train_flat = _flatten(data.params.get("train"))
        init = _initialisation(model_flat.get("pretrained"), "model.pretrained")
        sched, _ = _schedule("train", train_flat)
        shape = _key_values(model_flat, {"pretrained"})
        dev = _pick(train_flat, ("device",))
        dev_text = f"; trained on `{_yaml_value(dev[1])}`" if dev else ""
        shape_text = f"`model`: {shape}" if shape else "model shape not in `params.yaml`"
        lines.append(f"Heatmap model: {shape_text}; {init}; schedule {sched}{dev_text}.")

    # YOLO baseline.
    if "yolo" in data.models:
        yolo_flat = _flatten(data.params.get("yolo"))
        if yolo_flat:
            sched, used = _schedule("yolo", yolo_flat)
            model_hit = _pick(yolo_flat, ("model", "weights"))
            pre_hit = _pick(yolo_flat, ("pretrained",))
            init = _initialisation(
                pre_hit[1] if pre_hit else None,
                pre_hit[0] if pre_hit else "yolo.pretrained",
                str(model_hit[1]) if model_hit else None,
            )
            skip = used | ({pre_hit[0]} if pre_hit else set())
            lines.append(f"YOLO baseline: `yolo`: {_key_values(yolo_flat, skip)}; {init}; schedule {sched}.")
        else:
            lines.append("YOLO baseline: no `yolo` section in `params.yaml`.")

    # Latency: where it was measured.
    if data.latency is not None:
        target = data.latency.get("target", MISSING)
        device = data.latency.get("device", MISSING)
        deploy_target = _pick(_flatten(data.params.get("deploy")), ("target",))
        note = ""
        if deploy_target is not None and str(deploy_target[1]) != str(target):
            note = f" (note: `params.yaml` `deploy.target` is now `{deploy_target[1]}`; rerun the benchmark)"
        lines.append(
            f"Latency: target `{target}`, device `{device}` (`{_posix(data.latency_path)}`){note}; "
            "model-only = the network forward pass, end-to-end = pre-processing + network + decode "
            "from an RGB array; batch 1."
        )
    else:
        lines.append(f"Latency: not measured yet (no `{_posix(data.latency_path)}`).")

    # Models left out.
    for m in data.models.values():
        if not m.evaluated:
            lines.append(f"{TABLE_NAMES.get(m.name, m.name)} is left out: {'; '.join(m.notes)} (not trained or evaluated yet).")
    return lines


def accuracy_table(models: Sequence[ModelData]) -> list[str]:
    head = (
        ["model"]
        + [f"PCK@{t}px" for t in THRESHOLDS_PX]
        + ["AUC 0–15px", "EPE mean (px)", "EPE median (px)", "missed images"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for m in models:
        mt = m.metrics
        cells = [TABLE_NAMES.get(m.name, m.name)]
        cells += [fmt_pck(_num(mt, f"pck_{t}px")) for t in THRESHOLDS_PX]
        cells += [
            fmt_pck(_num(mt, "auc_0_15px")),
            fmt_px(_num(mt, "epe_mean_px")),
            fmt_px(_num(mt, "epe_median_px")),
            fmt_count(_num(mt, "missed_images")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _measured_on(data: ReportData, m: ModelData) -> str:
    lat = m.latency or {}
    top = data.latency or {}
    target = lat.get("target", top.get("target", MISSING))
    device = lat.get("device", top.get("device", MISSING))
    return f"`{target}` on `{device}`"


def latency_table(data: ReportData, models: Sequence[ModelData]) -> list[str]:
    head = ["model", "measured on", "part", "p50 (ms)", "p90 (ms)", "p99 (ms)", "FPS"]
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|---:|---:|---:|---:|"]
    for m in models:
        if m.latency is None:
            continue
        for part, label in (("model", "model-only"), ("e2e", "end-to-end")):
            cells = [TABLE_NAMES.get(m.name, m.name), _measured_on(data, m), label]
            cells += [fmt_ms(_num(m.latency, f"{part}_p{q}_ms")) for q in (50, 90, 99)]
            cells.append(fmt_fps(_num(m.latency, f"{part}_fps")))
            lines.append("| " + " | ".join(cells) + " |")
    return lines



SPEED_TARGET_RATIO = 0.6  # the default's end-to-end p50 must be at most this fraction of YOLO's
_ARCH_KEYS = ("backbone_tail", "head", "deconv_layers", "deconv_channels")


def default_variant(data: ReportData) -> str | None:
    """The speed variant whose architecture is params.yaml's model section."""
    model = data.params.get("model", {})
    for name, row in (data.speed or {}).get("rows", {}).items():
        if row.get("kind") == "variant" and all(row.get(k) == model.get(k) for k in _ARCH_KEYS):
            return name
    return None


def _pck_at_least(a: dict, b: dict) -> tuple[list[int], list[int]]:
    """The PCK thresholds (px) at which metrics ``a`` are at least ``b``'s, and those where lower."""
    better = [t for t in (1, 3, 5, 10) if (_num(a, f"pck_{t}px") or 0) >= (_num(b, f"pck_{t}px") or 0)]
    return better, [t for t in (1, 3, 5, 10) if t not in better]


def _px_list(thresholds: list[int]) -> str:
    return ", ".join(f"{t} px" for t in thresholds)


def speed_section(data: ReportData) -> list[str]:
    """The speed-by-design table (latency from the `speed` stage, accuracy from the ablation
    runs) and the lines that judge the default against YOLO and the INT8 variant."""
    rows = (data.speed or {}).get("rows", {})
    if not rows:
        return [f"No speed measurements yet (`{_posix(data.paths.speed)}`)."]
    ablation = data.ablation or {}
    default = default_variant(data)
    out = [
        f"Measured in one run by the `speed` stage: ONNX Runtime on `{data.speed.get('device', MISSING)}`, "
        f"{data.speed.get('threads', MISSING)} threads, batch 1, 224×224 input; end-to-end = RGB image in, keypoints out. "
        "Head variants are timed from random weights (latency does not depend on them); their accuracy comes from "
        "`python scripts/ablation.py …` (`dvc exp run` per variant, same schedule as the default)"
        + ("." if ablation else "; no ablation results yet."),
        "",
        "| variant | backbone tail | head | steps | channels | params (M) | MACs (M) | e2e p50 (ms) | e2e p99 (ms) | × YOLO e2e p50 | PCK@1px | PCK@3px | PCK@5px | PCK@10px |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        label = {"default_fp32": "trained default, fp32", "default_int8": "trained default, INT8", "yolo": "YOLO baseline"}.get(name, f"`{name}`")
        if name == default:
            label += " (default)"
        metrics = (ablation.get(name) or {}).get("metrics")
        if name == "default_int8":
            metrics = data.int8_metrics
        elif name in ("default_fp32", "yolo"):
            metrics = (data.models.get("heatmap" if name == "default_fp32" else "yolo") or ModelData(name)).metrics
        cells = [label] + [str(row.get(k, MISSING)) for k in _ARCH_KEYS]
        cells += [str(row.get("params_m", MISSING)), str(row.get("macs_m", MISSING))]
        cells += [fmt_ms(_num(row, "e2e_p50_ms")), fmt_ms(_num(row, "e2e_p99_ms")), fmt_px(_num(row, "e2e_p50_vs_yolo"))]
        cells += [fmt_pck(_num(metrics, f"pck_{t}px")) for t in (1, 3, 5, 10)]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    ratio = _num(rows.get(default or "", {}), "e2e_p50_vs_yolo")
    if default and ratio is not None:
        verdict = "meets" if ratio <= SPEED_TARGET_RATIO else "misses"
        out.append(
            f"- The default (`{default}`) takes {fmt_ms(_num(rows[default], 'e2e_p50_ms'))} ms end-to-end (p50) against YOLO's "
            f"{fmt_ms(_num(rows.get('yolo'), 'e2e_p50_ms'))} ms: {ratio:.2f}× YOLO, which {verdict} the ≤ {SPEED_TARGET_RATIO}× target."
        )
    seed, mine = (ablation.get("seed_256") or {}).get("metrics"), (ablation.get(default or "") or {}).get("metrics")
    if seed and mine:
        better, worse = _pck_at_least(mine, seed)
        out.append(
            f"- On the same schedule, the default is at least as accurate as the seed-shaped net (`seed_256`) at "
            f"{_px_list(better) or 'no threshold'}" + (f" and less accurate at {_px_list(worse)}." if worse else ".")
        )
    for name, row in rows.items():
        theirs = (ablation.get(name) or {}).get("metrics")
        if not (mine and theirs) or name in (default, "seed_256") or row.get("kind") != "variant":
            continue
        better, worse = _pck_at_least(theirs, mine)
        time_ratio = (_num(row, "e2e_p50_ms") or 0) / (_num(rows[default], "e2e_p50_ms") or float("nan"))
        out.append(
            f"- `{name}` against the default on the same schedule: {time_ratio:.2f}× its end-to-end time; "
            f"at least as accurate at {_px_list(better) or 'no threshold'}" + (f", less accurate at {_px_list(worse)}." if worse else ".")
        )
    fp32 = (data.models.get("heatmap") or ModelData("heatmap")).metrics
    if data.int8_metrics and fp32:
        deltas = ", ".join(f"{t} px {(_num(data.int8_metrics, f'pck_{t}px') or 0) - (_num(fp32, f'pck_{t}px') or 0):+.3f}" for t in (1, 3, 5, 10))
        parity = data.int8_parity or {}
        out.append(
            f"- INT8 (ONNX Runtime static quantisation, calibrated on train images): PCK change against fp32 {deltas}; "
            f"keypoints move by {fmt_px(_num(parity, 'keypoint_mean_diff_px'))} px on average "
            f"(max {fmt_px(_num(parity, 'keypoint_max_diff_px_confident'))} px over confident keypoints); "
            f"end-to-end p50 {fmt_ms(_num(rows.get('default_int8'), 'e2e_p50_ms'))} ms vs {fmt_ms(_num(rows.get('default_fp32'), 'e2e_p50_ms'))} ms fp32."
        )
    return out

def _winner(a: float, b: float, fmt, higher_is_better: bool) -> int:
    """+1 if a wins, -1 if b wins, 0 on a tie at the displayed precision."""
    if fmt(a) == fmt(b):
        return 0
    return (1 if a > b else -1) * (1 if higher_is_better else -1)


def comparison_lines(data: ReportData) -> list[str]:
    """Sentences computed from the numbers, worded by who actually wins (ties included)."""
    h, y = data.models.get("heatmap"), data.models.get("yolo")
    if h is None or y is None or not (h.evaluated and y.evaluated):
        absent = [TABLE_NAMES.get(n, n) for n in MODELS if n not in data.models or not data.models[n].evaluated]
        return [f"No comparison yet: needs results for both models ({', '.join(absent)} missing)."]
    H, Y = SUBJECTS["heatmap"], SUBJECTS["yolo"]
    lines: list[str] = []
    acc_wins = {1: 0, -1: 0, 0: 0}
    n_thr = 0
    for t in THRESHOLDS_PX:
        a, b = _num(h.metrics, f"pck_{t}px"), _num(y.metrics, f"pck_{t}px")
        if a is None or b is None:
            continue
        n_thr += 1
        w = _winner(a, b, fmt_pck, True)
        acc_wins[w] += 1
        if w == 1:
            lines.append(f"{H} is more accurate at {t} px (PCK {fmt_pck(a)} vs {fmt_pck(b)}).")
        elif w == -1:
            lines.append(f"{Y} is more accurate at {t} px (PCK {fmt_pck(b)} vs {fmt_pck(a)}).")
        else:
            lines.append(f"The two models are equally accurate at {t} px (PCK {fmt_pck(a)} each).")

    a, b = _num(h.metrics, "auc_0_15px"), _num(y.metrics, "auc_0_15px")
    if a is not None and b is not None:
        w = _winner(a, b, fmt_pck, True)
        if w == 0:
            lines.append(f"Both models have the same AUC over 0–15 px ({fmt_pck(a)}).")
        else:
            s, hi, lo = (H, a, b) if w == 1 else (Y, b, a)
            lines.append(f"{s} has the larger AUC over 0–15 px ({fmt_pck(hi)} vs {fmt_pck(lo)}).")

    a, b = _num(h.metrics, "epe_mean_px"), _num(y.metrics, "epe_mean_px")
    if a is not None and b is not None:
        w = _winner(a, b, fmt_px, False)
        if w == 0:
            lines.append(f"Both models have the same mean keypoint error ({fmt_px(a)} px).")
        else:
            s, lo, hi = (H, a, b) if w == 1 else (Y, b, a)
            lines.append(f"{s} has the lower mean keypoint error ({fmt_px(lo)} px vs {fmt_px(hi)} px).")

    a, b = _num(h.metrics, "missed_images"), _num(y.metrics, "missed_images")
    if a is not None and b is not None:
        if int(a) == int(b):
            lines.append("Neither model missed a hand." if a == 0 else f"Both models missed the hand in {_plural(a, 'image')}.")
        else:
            s, lo, hi = (H, a, b) if a < b else (Y, b, a)
            lines.append(f"{s} missed fewer hands ({fmt_count(lo)} vs {fmt_count(hi)} images with no hand found).")

    speed: dict[str, int] = {}
    if h.latency is not None and y.latency is not None:
        for part, label in (("model", "model-only"), ("e2e", "end-to-end")):
            a, b = _num(h.latency, f"{part}_p50_ms"), _num(y.latency, f"{part}_p50_ms")
            fa, fb = _num(h.latency, f"{part}_fps"), _num(y.latency, f"{part}_fps")
            if a is None or b is None:
                continue
            w = _winner(a, b, fmt_ms, False)
            speed[part] = w
            fps = ""
            if w == 0:
                if fa is not None and fb is not None:
                    fps = f"; {fmt_fps(fa)} vs {fmt_fps(fb)} FPS"
                lines.append(f"The two models are equally fast {label} (p50 {fmt_ms(a)} ms{fps}).")
            else:
                s, lo, hi, flo, fhi = (H, a, b, fa, fb) if w == 1 else (Y, b, a, fb, fa)
                if flo is not None and fhi is not None:
                    fps = f", {fmt_fps(flo)} vs {fmt_fps(fhi)} FPS"
                lines.append(f"{s} is faster {label} (p50 {fmt_ms(lo)} ms vs {fmt_ms(hi)} ms{fps}).")
        fa, fb = _num(h.latency, "e2e_fps"), _num(y.latency, "e2e_fps")
        if fa is not None and fb is not None:
            where = f"{_measured_on(data, h)}"
            rt = {n: f >= REALTIME_FPS for n, f in (("heatmap", fa), ("yolo", fb))}
            if all(rt.values()):
                verdict = f"both run in real time (≥ {REALTIME_FPS:g} FPS end-to-end)"
            elif not any(rt.values()):
                verdict = f"neither reaches real time ({REALTIME_FPS:g} FPS end-to-end)"
            else:
                fast = "heatmap" if rt["heatmap"] else "yolo"
                verdict = f"only {OBJECTS[fast]} reaches real time ({REALTIME_FPS:g} FPS end-to-end)"
            lines.append(
                f"Deployment on {where}: {verdict}; the heatmap model at {fmt_fps(fa)} FPS, YOLO at {fmt_fps(fb)} FPS."
            )
    else:
        missing = [TABLE_NAMES[n] for n, m in (("heatmap", h), ("yolo", y)) if m.latency is None]
        lines.append(f"No latency comparison yet: no latency measured for {', '.join(missing)}.")

    if n_thr:
        parts = []
        if acc_wins[1]:
            parts.append(f"the heatmap model is more accurate at {acc_wins[1]} of {n_thr} thresholds")
        if acc_wins[-1]:
            parts.append(f"YOLO at {acc_wins[-1]} of {n_thr}")
        if acc_wins[0]:
            parts.append(f"tied at {acc_wins[0]}")
        overall = "; ".join(parts)
        if "e2e" in speed:
            overall += {
                1: "; the heatmap model is faster end-to-end",
                -1: "; YOLO is faster end-to-end",
                0: "; equally fast end-to-end",
            }[speed["e2e"]]
        lines.append(f"Overall: {overall}.")
    return lines


def render_markdown(data: ReportData, figure_links: Mapping[str, str]) -> str:
    """The block between the markers (without the markers)."""
    evaluated = [m for m in data.models.values() if m.evaluated]
    out: list[str] = [
        "<!-- Generated by stages/report.py (dvc repro) from the files under reports/; edits here are overwritten. -->",
        "",
        "### What the numbers are",
        "",
    ]
    out += [f"- {line}" for line in describe_setup(data)]
    out += ["", "### Accuracy on val", ""]
    if evaluated:
        out.append(
            "PCK@t = fraction of visible keypoints predicted within t px of the label (224×224 images); "
            "AUC = area under the PCK curve over 0–15 px, normalised to 1; EPE = end-point error; "
            "a missed image (no hand found) counts its keypoints as misses."
        )
        out += [""] + accuracy_table(evaluated)
    else:
        out.append("No model has been evaluated yet.")
    out += ["", "### Latency", ""]
    with_latency = [m for m in evaluated if m.latency is not None]
    if with_latency:
        out.append("p50/p90/p99 = percentiles of per-frame time over the benchmark run; FPS as measured.")
        out += [""] + latency_table(data, with_latency)
    else:
        out.append(f"No latency measured yet (`{_posix(data.latency_path)}`).")
    for m in evaluated:
        if data.latency is not None and m.latency is None:
            out.append(f"\n{TABLE_NAMES.get(m.name, m.name)}: no latency in `{_posix(data.latency_path)}` yet.")
    out += ["", "### Comparison", ""]
    out += [f"- {line}" for line in comparison_lines(data)]
    out += ["", "### Speed by design: head variants against YOLO on CPU", ""]
    out += speed_section(data)
    out += ["", "### Figures", ""]
    for key, link in figure_links.items():
        out.append(f"![{FIGURE_TITLES[key]}]({link})")
        out.append("")
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out)


def replace_block(text: str, block: str, source: str = "README.md") -> str:
    """Replace what lies between the report markers; raise ReportError naming `source` if absent."""
    n_start, n_end = text.count(START_MARKER), text.count(END_MARKER)
    if n_start == 0 or n_end == 0:
        raise ReportError(
            f"{source}: no report markers; add a line `{START_MARKER}` and a line `{END_MARKER}` "
            "where the results belong"
        )
    if n_start > 1 or n_end > 1:
        raise ReportError(f"{source}: the report markers must appear exactly once each")
    i, j = text.index(START_MARKER), text.index(END_MARKER)
    if j < i:
        raise ReportError(f"{source}: `{END_MARKER}` comes before `{START_MARKER}`")
    return text[: i + len(START_MARKER)] + "\n" + block + "\n" + text[j:]


def update_readme(readme: Path, block: str) -> bool:
    """Rewrite the block in place; returns True if the file changed (bytes otherwise untouched)."""
    if not readme.is_file():
        raise ReportError(f"{readme}: README not found")
    raw = readme.read_bytes()
    text = raw.decode("utf-8")
    new = replace_block(text, block, str(readme))
    if "\r\n" in text:  # keep the file's own line endings
        new = new.replace("\r\n", "\n").replace("\n", "\r\n")
    new_raw = new.encode("utf-8")
    if new_raw == raw:
        return False
    tmp = readme.with_name(readme.name + ".report-tmp")
    tmp.write_bytes(new_raw)
    os.replace(tmp, readme)
    return True


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def _figure(w: float, h: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=DPI, layout="constrained")


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=DPI, metadata={"Software": None}, facecolor="white")
    os.replace(tmp, path)
    return path


def _placeholder(path: Path, title: str, message: str) -> Path:
    fig = _figure(6.4, 4.0)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=11, color="0.35")
    return _save(fig, path)


def _label(m: ModelData) -> str:
    return TABLE_NAMES.get(m.name, m.name)


def _color(name: str) -> str:
    return MODEL_COLORS.get(name, "0.3")


def figure_pck_curves(data: ReportData, path: Path) -> Path:
    models = [m for m in data.models.values() if m.pck_curve is not None]
    if not models:
        return _placeholder(path, FIGURE_TITLES["pck_curves"], "No PCK curves yet (reports/eval/<model>/pck_curve.csv).")
    fig = _figure(7.5, 5.0)
    ax = fig.add_subplot()
    for m in models:
        thr, pck = m.pck_curve
        auc = _num(m.metrics, "auc_0_15px")
        label = f"{_label(m)} (AUC {fmt_pck(auc)})" if auc is not None else _label(m)
        ax.plot(thr, pck, color=_color(m.name), lw=2.2, label=label)
        pts = [t for t in THRESHOLDS_PX if np.any(np.isclose(thr, t))]
        ax.plot(pts, np.interp(pts, thr, pck), "o", color=_color(m.name), ms=5)
    for t in THRESHOLDS_PX:
        ax.axvline(t, color="0.85", lw=0.8, zorder=0)
    ax.set_xlim(0, 15)
    ax.set_ylim(0, 1.0)
    ax.set_xticks(range(0, 16))
    ax.set_xlabel("threshold (px, 224×224 image)")
    ax.set_ylabel("PCK (fraction of visible keypoints within threshold)")
    ax.set_title("PCK against threshold on val")
    ax.grid(axis="y", color="0.9")
    ax.legend(loc="lower right", fontsize=11)
    return _save(fig, path)


def figure_per_keypoint(data: ReportData, path: Path) -> Path:
    models = [m for m in data.models.values() if m.per_keypoint]
    if not models:
        return _placeholder(path, FIGURE_TITLES["per_keypoint"], "No per-keypoint results yet (reports/eval/<model>/per_keypoint.csv).")
    fig = _figure(14.0, 5.5)
    ax = fig.add_subplot()
    x = np.arange(NUM_KEYPOINTS)
    width = 0.8 / len(models)
    for k, m in enumerate(models):
        values = np.full(NUM_KEYPOINTS, np.nan)
        for row in m.per_keypoint:
            i = int(row["keypoint"])
            if 0 <= i < NUM_KEYPOINTS and row.get("pck_5px", "") != "":
                values[i] = float(row["pck_5px"])
        ax.bar(x - 0.4 + width * (k + 0.5), values, width, color=_color(m.name), label=_label(m))
    # Finger bands: shaded alternately, named above the bars.
    start = 0
    band = 0
    for i in range(1, NUM_KEYPOINTS + 1):
        if i == NUM_KEYPOINTS or FINGER_OF[i] != FINGER_OF[start]:
            if band % 2 == 0:
                ax.axvspan(start - 0.5, i - 0.5, color="0.93", zorder=0)
            ax.text((start + i - 1) / 2, 1.04, FINGER_OF[start], ha="center", va="bottom", fontsize=11, fontweight="bold")
            start = i
            band += 1
    ax.set_xlim(-0.5, NUM_KEYPOINTS - 0.5)
    ax.set_ylim(0, 1.12)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xticks(x, [f"{i} {n}" for i, n in enumerate(KEYPOINT_NAMES)], rotation=55, ha="right", fontsize=9)
    ax.set_ylabel("PCK@5px")
    ax.set_title("PCK@5px per keypoint on val")
    ax.grid(axis="y", color="0.85")
    fig.legend(loc="outside upper right", fontsize=10, ncols=len(models))
    return _save(fig, path)


def figure_latency(data: ReportData, path: Path) -> Path:
    models = [m for m in data.models.values() if m.latency is not None]
    if not models:
        return _placeholder(path, FIGURE_TITLES["latency"], "No latency measured yet (reports/metrics/latency.json).")
    fig = _figure(8.0, 5.0)
    ax = fig.add_subplot()
    parts = (("model", "model-only"), ("e2e", "end-to-end"))
    width = 0.8 / len(models)
    top = 0.0
    for k, m in enumerate(models):
        for g, (part, _) in enumerate(parts):
            xc = g - 0.4 + width * (k + 0.5)
            p50 = _num(m.latency, f"{part}_p50_ms")
            p90 = _num(m.latency, f"{part}_p90_ms")
            p99 = _num(m.latency, f"{part}_p99_ms")
            fps = _num(m.latency, f"{part}_fps")
            if p50 is None:
                continue
            ax.bar(xc, p50, width * 0.9, color=_color(m.name), label=_label(m) if g == 0 else None)
            hi = p50
            if p90 is not None and p99 is not None:
                ax.vlines(xc, p90, p99, color="black", lw=1.5)
                ax.hlines([p90, p99], xc - width * 0.15, xc + width * 0.15, color="black", lw=1.5)
                hi = max(hi, p99)
            text = f"{fmt_ms(p50)} ms" + (f"\n{fmt_fps(fps)} FPS" if fps is not None else "")
            ax.text(xc, hi, text, ha="center", va="bottom", fontsize=9)
            top = max(top, hi)
    ax.set_xticks(range(len(parts)), [label for _, label in parts], fontsize=11)
    ax.set_ylim(0, top * 1.25 if top > 0 else 1)
    ax.set_ylabel("latency per frame (ms)")
    lat = data.latency or {}
    ax.set_title(f"Latency on {lat.get('target', MISSING)} ({lat.get('device', MISSING)}): p50 bars, p90–p99 whiskers", fontsize=11)
    ax.grid(axis="y", color="0.9")
    ax.legend(loc="upper left", fontsize=10)
    return _save(fig, path)


def _keypoint_array(df: Any, image: str, with_scores: bool) -> tuple[np.ndarray, np.ndarray | None]:
    import polars as pl

    kp = np.full((NUM_KEYPOINTS, 2), np.nan)
    sc = np.full(NUM_KEYPOINTS, np.nan) if with_scores else None
    rows = df.filter(pl.col("image") == image)
    for r in rows.iter_rows(named=True):
        i = int(r["keypoint"])
        if not 0 <= i < NUM_KEYPOINTS:
            continue
        if "visibility" in r and r["visibility"] is not None and r["visibility"] <= 0:
            continue
        kp[i] = (r["x"], r["y"])
        if sc is not None:
            sc[i] = r.get("score", 1.0) if r.get("score") is not None else 1.0
    return kp, sc


def figure_qualitative(data: ReportData, path: Path) -> Path:
    import cv2
    import polars as pl

    from handkp.dataset import read_rgb  # here: the live app imports this module without polars

    models = [m for m in data.models.values() if m.predictions is not None]
    if not models or data.ground_truth is None:
        return _placeholder(
            path, FIGURE_TITLES["qualitative"], "No predictions yet (reports/predictions/<model>_val.parquet) or no ground truth."
        )
    errors = {m.name: per_image_errors(data.ground_truth, m.predictions) for m in models}
    rows = pick_qualitative(errors)
    if not rows:
        return _placeholder(path, FIGURE_TITLES["qualitative"], "No val images shared by the predictions and the ground truth.")
    gt_val = data.ground_truth.filter(pl.col("split") == "val")
    panel = 3.2
    fig = _figure(max(panel * len(models) + 0.6, 4.6), max(panel * len(rows) + 0.5, 3.6))
    axes = fig.subplots(len(rows), len(models), squeeze=False)
    for r, (label, image) in enumerate(rows):
        try:
            rgb = read_rgb(data.paths.images / image)
        except ValueError:  # an unreadable image still gets its panel, on grey
            rgb = np.full((224, 224, 3), 200, np.uint8)
        h, w = rgb.shape[:2]
        big = cv2.resize(rgb, (w * DISPLAY_SCALE, h * DISPLAY_SCALE), interpolation=cv2.INTER_LINEAR)
        gt_kp, _ = _keypoint_array(gt_val, image, with_scores=False)
        base = draw_skeleton(big, gt_kp * DISPLAY_SCALE, None, GROUND_TRUTH_COLOR, thickness=2, radius=2, alpha=0.55)
        for c, m in enumerate(models):
            ax = axes[r, c]
            kp, sc = _keypoint_array(m.predictions, image, with_scores=True)
            err = errors[m.name][image]
            if math.isfinite(err):
                shown = draw_skeleton(base, kp * DISPLAY_SCALE, None, _color(m.name), thickness=3, radius=4)
                title = f"{_label(m)}: {err:.2f} px mean error"
            else:
                shown = base
                title = f"{_label(m)}: missed (no hand found)"
            ax.imshow(shown)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, color=_color(m.name), fontsize=10, fontweight="bold")
            if c == 0:
                ax.set_ylabel(f"{label}\n{Path(image).name}", fontsize=9)
    fig.suptitle("Val predictions (colour) over the label (faint white)", fontsize=11)
    return _save(fig, path)


def _is_loss(name: str) -> bool:
    return "loss" in name.lower()


def _is_pck(name: str) -> bool:
    return "pck" in name.lower()


_LINESTYLES = ("-", "--", ":", "-.")


def figure_training(data: ReportData, path: Path) -> Path:
    models = list(data.models.values())
    if not any(m.training for m in models):
        return _placeholder(path, FIGURE_TITLES["training"], "No training logs yet (reports/train/<model>/plots/metrics/*.tsv).")
    has_pck = any(_is_pck(n) for m in models for n in m.training)
    ncols = len(models) + (1 if has_pck else 0)
    fig = _figure(4.6 * ncols, 4.2)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for k, m in enumerate(models):
        ax = axes[k]
        losses = [n for n in m.training if _is_loss(n)]
        if not losses:
            ax.text(0.5, 0.5, "no loss logged", ha="center", va="center", transform=ax.transAxes, color="0.4")
        positive = True
        for j, n in enumerate(losses):
            steps, values = m.training[n]
            positive &= bool(np.all(values > 0))
            ax.plot(steps, values, color=_color(m.name), ls=_LINESTYLES[j % len(_LINESTYLES)], lw=1.8, label=n)
        if losses and positive:
            lo = min(float(np.min(m.training[n][1])) for n in losses)
            hi = max(float(np.max(m.training[n][1])) for n in losses)
            if hi / lo > 10:
                ax.set_yscale("log")
        ax.set_title(f"{_label(m)} loss", color=_color(m.name), fontweight="bold")
        ax.set_xlabel("epoch (dvclive step)")
        ax.set_ylabel("loss")
        ax.grid(color="0.9")
        if losses:
            ax.legend(fontsize=8)
    if has_pck:
        ax = axes[-1]
        for m in models:
            for j, n in enumerate(x for x in m.training if _is_pck(x)):
                steps, values = m.training[n]
                ax.plot(steps, values, color=_color(m.name), ls=_LINESTYLES[j % len(_LINESTYLES)], lw=1.8, label=f"{_label(m)} {n}")
        ax.set_title("dev PCK")
        ax.set_xlabel("epoch (dvclive step)")
        ax.set_ylabel("PCK")
        ax.set_ylim(0, 1)
        ax.grid(color="0.9")
        ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


FIGURE_MAKERS = {
    "pck_curves": figure_pck_curves,
    "per_keypoint": figure_per_keypoint,
    "latency": figure_latency,
    "qualitative": figure_qualitative,
    "training": figure_training,
}


def make_figures(data: ReportData) -> dict[str, Path]:
    """Write every figure (a placeholder where its inputs are missing, so the outs always exist)."""
    return {key: FIGURE_MAKERS[key](data, data.paths.figures / FIGURE_FILES[key]) for key in FIGURE_FILES}


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


@dataclass
class ReportResult:
    markdown: str
    readme_changed: bool
    figures: dict[str, Path]


def figure_links(paths: ReportPaths) -> dict[str, str]:
    rel = os.path.relpath(paths.figures.resolve(), paths.readme.resolve().parent)
    return {key: Path(rel, name).as_posix() for key, name in FIGURE_FILES.items()}


def run_report(paths: ReportPaths = ReportPaths(), *, figures: bool = True) -> ReportResult:
    """Read everything, write the figures, rewrite the README block. Checks the README first."""
    if not paths.readme.is_file():
        raise ReportError(f"{paths.readme}: README not found")
    replace_block(paths.readme.read_text(encoding="utf-8"), "", str(paths.readme))  # fail early
    data = load_report_data(paths)
    made = make_figures(data) if figures else {}
    markdown = render_markdown(data, figure_links(paths))
    changed = update_readme(paths.readme, markdown)
    return ReportResult(markdown, changed, made)
