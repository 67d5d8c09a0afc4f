"""Everything the report reads: where the files are (`ReportPaths`) and what they hold
(`ReportData`, one `ModelData` per model). A missing file is None (or empty), never an error:
the report says what is missing instead of failing."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from handkp.core.config import load_params
from handkp.core.paths import (
    ACCURACY_TABLE,
    FIGURES,
    IMAGE_CACHE,
    INT8_PARITY,
    LATENCY,
    METRICS,
    MULTIHAND,
    PARAMS,
    PREPARED_TABLE,
    PREVIOUS_RELEASE,
    README,
    RELEASE_MANIFEST,
    REPORTS,
    ROBUSTNESS,
    SPEED,
    TRAIN_LOGS,
    TRAINING_ABLATION,
)

from .format import posix

MODELS = ("heatmap", "yolo")


@dataclass(frozen=True)
class ReportPaths:
    """Where the report reads and writes. `{model}` in a template is replaced by the model name."""

    readme: Path = README
    params: Path = PARAMS
    metrics: str = (METRICS / "{model}.json").as_posix()
    latency: Path = LATENCY
    eval_dir: str = (REPORTS / "eval" / "{model}").as_posix()
    predictions: str = (REPORTS / "predictions" / "{model}_val.parquet").as_posix()
    ground_truth: Path = PREPARED_TABLE
    images: Path = IMAGE_CACHE  # the decoded-image cache (handkp.data.cache)
    train_dir: str = (TRAIN_LOGS / "{model}").as_posix()
    figures: Path = FIGURES
    models: tuple[str, ...] = MODELS
    speed: Path = SPEED
    ablation: Path = ACCURACY_TABLE
    training_ablation: Path = TRAINING_ABLATION  # scripts/ablation.py training: issue 32's choices on dev
    int8_metrics: Path = METRICS / "heatmap_int8.json"  # the quantize stage's
    int8_parity: Path = INT8_PARITY
    openvino_int8_metrics: str = (METRICS / "{model}_openvino_int8.json").as_posix()  # the openvino_int8 stage
    robustness: Path = ROBUSTNESS
    multihand: Path = MULTIHAND
    release: Path = RELEASE_MANIFEST  # the release stage's manifest of the shipped files
    previous_release: Path = PREVIOUS_RELEASE  # the previous_release stage: the model shipped before, scored today

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
    predictions: pl.DataFrame | None = None
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
    ground_truth: pl.DataFrame | None
    paths: ReportPaths
    speed: dict[str, Any] | None = None
    ablation: dict[str, Any] | None = None
    training_ablation: dict[str, Any] | None = None
    int8_metrics: dict[str, Any] | None = None
    int8_parity: dict[str, Any] | None = None
    robustness: dict[str, Any] | None = None
    multihand: dict[str, Any] | None = None
    release: dict[str, Any] | None = None
    previous_release: dict[str, Any] | None = None
    openvino_int8: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # model -> metrics (or None)


def read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_csv_rows(path: Path) -> list[dict[str, str]] | None:
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_pck_curve(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    rows = read_csv_rows(path)
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
    params: dict[str, Any] = (load_params(paths.params) or {}) if paths.params.is_file() else {}
    latency = read_json(paths.latency)
    ground_truth = pl.read_parquet(paths.ground_truth) if paths.ground_truth.is_file() else None

    models: dict[str, ModelData] = {}
    for name in paths.models:
        m = ModelData(name=name)
        m.metrics_path = paths.of(paths.metrics, name)
        m.metrics = read_json(m.metrics_path)
        if m.metrics is None:
            m.notes.append(f"no `{posix(m.metrics_path)}` yet")
        eval_dir = paths.of(paths.eval_dir, name)
        m.pck_curve = read_pck_curve(eval_dir / "pck_curve.csv")
        m.per_keypoint = read_csv_rows(eval_dir / "per_keypoint.csv")
        pred_path = paths.of(paths.predictions, name)
        if pred_path.is_file():
            m.predictions = pl.read_parquet(pred_path)
        if latency is not None and isinstance(latency.get(name), dict):
            m.latency = latency[name]
        m.training = read_dvclive_series(paths.of(paths.train_dir, name))
        models[name] = m
    return ReportData(
        models,
        params,
        latency,
        paths.latency,
        ground_truth,
        paths,
        speed=read_json(paths.speed),
        ablation=read_json(paths.ablation),
        training_ablation=read_json(paths.training_ablation),
        int8_metrics=read_json(paths.int8_metrics),
        int8_parity=read_json(paths.int8_parity),
        robustness=read_json(paths.robustness),
        multihand=read_json(paths.multihand),
        release=read_json(paths.release),
        previous_release=read_json(paths.previous_release),
        openvino_int8={name: read_json(paths.of(paths.openvino_int8_metrics, name)) for name in MODELS},
    )
