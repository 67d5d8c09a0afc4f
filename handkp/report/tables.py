"""The Markdown tables of the README block: accuracy, latency, and the speed-by-design section
(head variants against YOLO on every CPU runtime, each trained model on its fastest, with the
lines that judge the default, best against best, and the INT8 variants)."""

from __future__ import annotations

from collections.abc import Sequence

from handkp.core.metrics import THRESHOLDS_PX

from .data import ModelData, ReportData
from .format import (
    MISSING,
    TABLE_NAMES,
    fmt_count,
    fmt_fps,
    fmt_ms,
    fmt_pck,
    fmt_px,
    num,
    posix,
    table_row,
    table_rule,
)

SPEED_TARGET_RATIO = 0.6  # the heatmap model's end-to-end p50 must be at most this fraction of YOLO's
_ARCH_KEYS = ("backbone_tail", "head", "deconv_layers", "deconv_channels")  # the variant table's columns
_ARCH_DEFAULTS = {"width_mult": 1.0, "reduced_tail": False}  # build_model's, where a row or params has none
_MATCH_KEYS = ("backbone_tail", "width_mult", "reduced_tail", "head", "deconv_layers", "deconv_channels")
REFERENCE_RUNTIME = ("onnxruntime", "fp32")  # the variant table's runtime
RUNTIME_NAMES = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}
PRECISION_NAMES = {"fp32": "fp32", "bf16": "bf16", "int8": "INT8"}
SPEED_LABELS = {"default": "trained default", "yolo": "YOLO baseline"}
SPEED_METRICS = {"default": "heatmap", "yolo": "yolo"}  # speed model -> the model whose metrics files it has
_LEGACY_SPEED = {"default_fp32": ("default", "onnxruntime", "fp32"), "default_int8": ("default", "onnxruntime", "int8")}


def accuracy_table(models: Sequence[ModelData]) -> list[str]:
    head = (
        ["model"]
        + [f"PCK@{t}px" for t in THRESHOLDS_PX]
        + ["AUC 0–15px", "EPE mean (px)", "EPE median (px)", "missed images"]
    )
    lines = [table_row(head), table_rule(head, 1)]
    for m in models:
        mt = m.metrics
        cells = [TABLE_NAMES.get(m.name, m.name)]
        cells += [fmt_pck(num(mt, f"pck_{t}px")) for t in THRESHOLDS_PX]
        cells += [
            fmt_pck(num(mt, "auc_0_15px")),
            fmt_px(num(mt, "epe_mean_px")),
            fmt_px(num(mt, "epe_median_px")),
            fmt_count(num(mt, "missed_images")),
        ]
        lines.append(table_row(cells))
    return lines


def measured_on(data: ReportData, m: ModelData) -> str:
    lat = m.latency or {}
    top = data.latency or {}
    target = lat.get("target", top.get("target", MISSING))
    device = lat.get("device", top.get("device", MISSING))
    return f"`{target}` on `{device}`"


LATENCY_PARTS = (("model", "model-only"), ("e2e", "end-to-end"))


def latency_table(data: ReportData, models: Sequence[ModelData]) -> list[str]:
    head = ["model", "measured on", "part", "p50 (ms)", "p90 (ms)", "p99 (ms)", "FPS"]
    lines = [table_row(head), table_rule(head, 3)]
    for m in models:
        if m.latency is None:
            continue
        shown = TABLE_NAMES.get(m.name, m.name)
        rows = [(shown, m.latency, part, label) for part, label in LATENCY_PARTS]
        refine = (data.latency or {}).get(f"{m.name}_refine")
        if isinstance(refine, dict):  # the same file with the refine pass: two network passes a frame
            rows.append((f"{shown}, refine pass (2 passes)", refine, *LATENCY_PARTS[1]))
        for name, stats, part, label in rows:
            cells = [name, measured_on(data, m), label]
            cells += [fmt_ms(num(stats, f"{part}_p{q}_ms")) for q in (50, 90, 99)]
            cells.append(fmt_fps(num(stats, f"{part}_fps")))
            lines.append(table_row(cells))
    return lines


def speed_rows(speed: dict | None) -> dict[str, dict]:
    """speed.json's rows, each with ``model``, ``runtime`` and ``precision`` (a file of an earlier
    speed stage, ONNX Runtime only and keyed by model name, read the same way)."""
    out = {}
    for key, row in (speed or {}).get("rows", {}).items():
        if "runtime" not in row:
            model, runtime, precision = _LEGACY_SPEED.get(key, (key, *REFERENCE_RUNTIME))
            row = {**row, "model": model, "runtime": runtime, "precision": precision}
        out[key] = row
    return out


def find_row(rows: dict[str, dict], model: str, runtime: str, precision: str) -> dict | None:
    return next(
        (r for r in rows.values() if (r["model"], r["runtime"], r["precision"]) == (model, runtime, precision)), None
    )


def runtime_label(runtime: str, precision: str) -> str:
    return f"{RUNTIME_NAMES.get(runtime, runtime)} {PRECISION_NAMES.get(precision, precision)}"


def _arch(row: dict, key: str):
    return row.get(key, _ARCH_DEFAULTS.get(key))


def default_variant(data: ReportData) -> str | None:
    """The speed variant whose architecture is params.yaml's model section."""
    model = data.params.get("model", {})
    for row in speed_rows(data.speed).values():
        if row.get("kind") == "variant" and all(
            _arch(row, k) == model.get(k, _ARCH_DEFAULTS.get(k)) for k in _MATCH_KEYS
        ):
            return row["model"]
    return None


def _tail_cell(row: dict) -> str:
    """The backbone tail, with torchvision's MobileNetV3 options where they differ from the defaults."""
    cell = str(row.get("backbone_tail", MISSING))
    width = _arch(row, "width_mult")
    if isinstance(width, (int, float)) and width != 1.0:
        cell += f", ×{width:g} width"
    if _arch(row, "reduced_tail") is True:
        cell += ", reduced tail"
    return cell


def _speed_metrics(data: ReportData, model: str, runtime: str, precision: str) -> dict | None:
    """The val metrics of ``model`` as run at ``precision`` (None where not evaluated: a variant
    without an ablation run, bf16 where it is not the model's fastest, ONNX Runtime INT8 of YOLO)."""
    if model not in SPEED_METRICS:
        return (((data.ablation or {}).get(model) or {}).get("metrics")) if precision == "fp32" else None
    if precision == "bf16":  # the speed stage evaluates a trained model's fastest row at bf16
        best = ((data.speed or {}).get("best") or {}).get(model) or {}
        return best.get("val") if (best.get("runtime"), best.get("precision")) == (runtime, precision) else None
    name = SPEED_METRICS[model]
    if precision == "fp32":
        return (data.models.get(name) or ModelData(name)).metrics
    if precision == "int8" and runtime == "openvino":
        return data.openvino_int8.get(name)
    if precision == "int8" and model == "default":
        return data.int8_metrics
    return None


def _pck_at_least(a: dict, b: dict) -> tuple[list[int], list[int]]:
    """The PCK thresholds (px) at which metrics ``a`` are at least ``b``'s, and those where lower."""
    better = [t for t in (1, 3, 5, 10) if (num(a, f"pck_{t}px") or 0) >= (num(b, f"pck_{t}px") or 0)]
    return better, [t for t in (1, 3, 5, 10) if t not in better]


def _px_list(thresholds: list[int]) -> str:
    return ", ".join(f"{t} px" for t in thresholds)


def _measured_runtimes(speed: dict, rows: dict[str, dict]) -> list[tuple[str, str]]:
    pairs = [tuple(s.split("/", 1)) for s in speed.get("runtimes", [])]
    for row in rows.values():
        if (row["runtime"], row["precision"]) not in pairs:
            pairs.append((row["runtime"], row["precision"]))
    skipped = {(s["runtime"], s["precision"]) for s in speed.get("skipped", [])}
    return [p for p in pairs if p not in skipped]


def variant_table(data: ReportData, rows: dict[str, dict], default: str | None) -> list[str]:
    """Every model on ONNX Runtime fp32 (the trained default also at ONNX Runtime INT8), with its
    architecture, size, latency against YOLO's on the same runtime, and accuracy."""
    lines = [
        "| variant | backbone tail | head | steps | channels | params (M) | MACs (M) | e2e p50 (ms) | e2e p99 (ms) "
        "| × YOLO e2e p50 | PCK@1px | PCK@3px | PCK@5px | PCK@10px |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    models = list(dict.fromkeys(r["model"] for r in rows.values()))
    shown = [(m, *REFERENCE_RUNTIME) for m in models] + [("default", "onnxruntime", "int8")] * ("default" in models)
    shown.sort(key=lambda s: (models.index(s[0]), s[2] != "fp32"))
    for model, runtime, precision in shown:
        row = find_row(rows, model, runtime, precision)
        if row is None:
            continue
        if model in SPEED_LABELS:
            label = SPEED_LABELS[model] + ("" if model == "yolo" else f", {PRECISION_NAMES[precision]}")
        else:
            label = f"`{model}`" + (" (default)" if model == default else "")
        metrics = _speed_metrics(data, model, runtime, precision)
        cells = [label, _tail_cell(row)] + [str(row.get(k, MISSING)) for k in _ARCH_KEYS[1:]]
        if row.get("kind") != "variant":
            cells[1] = MISSING
        cells += [str(row.get("params_m", MISSING)), str(row.get("macs_m", MISSING))]
        cells += [fmt_ms(num(row, "e2e_p50_ms")), fmt_ms(num(row, "e2e_p99_ms")), fmt_px(num(row, "e2e_p50_vs_yolo"))]
        cells += [fmt_pck(num(metrics, f"pck_{t}px")) for t in (1, 3, 5, 10)]
        lines.append(table_row(cells))
    return lines


def runtime_table(rows: dict[str, dict], pairs: list[tuple[str, str]], default: str | None) -> list[str]:
    """End-to-end p50 of every model on every runtime/precision; each model's fastest in bold."""
    head = ["model"] + [runtime_label(*p) for p in pairs]
    lines = [table_row(head), table_rule(head, 1)]
    for model in dict.fromkeys(r["model"] for r in rows.values()):
        times = [num(find_row(rows, model, *p), "e2e_p50_ms") for p in pairs]
        fastest = min((t for t in times if t is not None), default=None)
        label = SPEED_LABELS.get(model, f"`{model}`" + (" (default)" if model == default else ""))
        cells = [f"**{fmt_ms(t)}**" if t is not None and t == fastest else fmt_ms(t) for t in times]
        lines.append(table_row([label, *cells]))
    return lines


def best_table(data: ReportData) -> list[str]:
    """The trained default and YOLO, each on its fastest runtime/precision (speed.json's ``best``)."""
    best = (data.speed or {}).get("best") or {}
    head = ["model", "fastest runtime", "model-only p50 (ms)", "e2e p50 (ms)", "e2e p99 (ms)", "e2e FPS"]
    head.append("PCK@5px there")
    lines = [table_row(head), table_rule(head, 2)]
    for model in ("default", "yolo"):
        b = best.get(model)
        if b:
            pck = num(_speed_metrics(data, model, b["runtime"], b["precision"]), "pck_5px")
            cells = [SPEED_LABELS[model], runtime_label(b["runtime"], b["precision"])]
            cells += [fmt_ms(num(b, f"{part}_ms")) for part in ("model_p50", "e2e_p50", "e2e_p99")]
            lines.append(table_row([*cells, fmt_fps(num(b, "e2e_fps")), fmt_pck(pck)]))
    return lines if len(lines) > 2 else []


SCHEDULE_KEYS = ("epochs", "epoch_images")


def ablation_schedule(data: ReportData) -> str:
    """What schedule the ablation runs had (their recorded ``train`` sections), said against the
    params' schedule, which trained the default measured above."""
    recorded = {tuple((v.get("train") or {}).get(k) for k in SCHEDULE_KEYS) for v in (data.ablation or {}).values()}
    current = tuple((data.params.get("train") or {}).get(k) for k in SCHEDULE_KEYS)
    if len(recorded) != 1:
        return "their schedules differ: see `reports/ablation/accuracy.json`"
    epochs, images = next(iter(recorded))
    per_epoch = "the whole train split" if not images else f"{fmt_count(images)} images"
    said = f"all on one schedule, {fmt_count(epochs)} epochs × {per_epoch}"
    return said + (
        ", the default's"
        if (epochs, images) == current
        else ", not the release schedule of the trained default (its rows compare the variants among themselves)"
    )


def speed_section(data: ReportData) -> list[str]:
    """The speed-by-design tables (latency from the `speed` stage on every CPU runtime, accuracy
    from the ablation runs and the INT8 evaluations) and the lines that judge the default against
    YOLO, best against best, and the cost of INT8."""
    rows = speed_rows(data.speed)
    if not rows:
        return [f"No speed measurements yet (`{posix(data.paths.speed)}`)."]
    ablation = data.ablation or {}
    default = default_variant(data)
    pairs = _measured_runtimes(data.speed, rows)
    out = [
        f"Measured in one interleaved run by the `speed` stage on `{data.speed.get('device', MISSING)}`, "
        f"{data.speed.get('threads', MISSING)} threads, batch 1, 224×224 input, on "
        + ", ".join(runtime_label(*p) for p in pairs)
        + (" (`speed.runtimes`)" if "runtimes" in data.speed else "")
        + "; end-to-end = RGB image in, keypoints out. "
        "INT8 files are calibrated on train images. "
        "The first table is ONNX Runtime fp32 (× YOLO: against YOLO on the same runtime and precision). "
        "Head variants are timed from random weights (latency does not depend on them); their accuracy comes from "
        "`python scripts/ablation.py …` (`dvc exp run` per variant"
        + (f"; {ablation_schedule(data)})." if ablation else "); no ablation results yet."),
        "",
    ]
    out += variant_table(data, rows, default)
    out.append("")
    ref = find_row(rows, default or "", *REFERENCE_RUNTIME) or {}
    ratio = num(ref, "e2e_p50_vs_yolo")
    if default and ratio is not None:
        verdict = "meets" if ratio <= SPEED_TARGET_RATIO else "misses"
        out.append(
            f"- The default (`{default}`) takes {fmt_ms(num(ref, 'e2e_p50_ms'))} ms end-to-end (p50) "
            "on ONNX Runtime fp32 against YOLO's "
            f"{fmt_ms(num(find_row(rows, 'yolo', *REFERENCE_RUNTIME), 'e2e_p50_ms'))} ms: {ratio:.2f}× YOLO, "
            f"which {verdict} the ≤ {SPEED_TARGET_RATIO}× target."
        )
    seed, mine = (ablation.get("seed_256") or {}).get("metrics"), (ablation.get(default or "") or {}).get("metrics")
    if seed and mine:
        better, worse = _pck_at_least(mine, seed)
        out.append(
            f"- On the ablation's schedule, the default is at least as accurate as the seed-shaped net (`seed_256`) at "
            f"{_px_list(better) or 'no threshold'}" + (f" and less accurate at {_px_list(worse)}." if worse else ".")
        )
    for name in dict.fromkeys(r["model"] for r in rows.values()):
        row, theirs = find_row(rows, name, *REFERENCE_RUNTIME), (ablation.get(name) or {}).get("metrics")
        if not (mine and theirs and row) or name in (default, "seed_256") or row.get("kind") != "variant":
            continue
        better, worse = _pck_at_least(theirs, mine)
        time_ratio = (num(row, "e2e_p50_ms") or 0) / (num(ref, "e2e_p50_ms") or float("nan"))
        out.append(
            f"- `{name}` against the default on the ablation's schedule: {time_ratio:.2f}× its end-to-end time; "
            f"at least as accurate at {_px_list(better) or 'no threshold'}"
            + (f", less accurate at {_px_list(worse)}." if worse else ".")
        )
    fp32 = (data.models.get("heatmap") or ModelData("heatmap")).metrics
    if data.int8_metrics and fp32:
        deltas = ", ".join(
            f"{t} px {(num(data.int8_metrics, f'pck_{t}px') or 0) - (num(fp32, f'pck_{t}px') or 0):+.3f}"
            for t in (1, 3, 5, 10)
        )
        parity = data.int8_parity or {}
        out.append(
            f"- INT8 (ONNX Runtime static quantisation, calibrated on train images): PCK change against fp32 {deltas}; "
            f"keypoints move by {fmt_px(num(parity, 'keypoint_mean_diff_px'))} px on average "
            f"(max {fmt_px(num(parity, 'keypoint_max_diff_px_confident'))} px over confident keypoints); "
            f"end-to-end p50 {fmt_ms(num(find_row(rows, 'default', 'onnxruntime', 'int8'), 'e2e_p50_ms'))} ms "
            f"vs {fmt_ms(num(find_row(rows, 'default', *REFERENCE_RUNTIME), 'e2e_p50_ms'))} ms fp32."
        )
    if "runtimes" in data.speed and len(pairs) > 1:
        out += [""] * (out[-1] != "") + [
            "End-to-end p50 (ms) of every model on every CPU runtime and precision (each model's fastest in bold):",
            "",
        ]
        out += runtime_table(rows, pairs, default)
        out.append("")
        for s in data.speed.get("skipped", []):
            out.append(
                f"- {runtime_label(s['runtime'], s['precision'])} not measured: "
                f"{str(s.get('reason', MISSING)).rstrip('.')}."
            )
    for line in speed_best_lines(data, rows):
        if line or out[-1] != "":
            out.append(line)
    while out and out[-1] == "":
        out.pop()
    return out


def speed_best_lines(data: ReportData, rows: dict[str, dict]) -> list[str]:
    """Each trained model on its fastest CPU runtime, the best-against-best ratio, and the PCK cost
    of OpenVINO INT8."""
    table, out = best_table(data), []
    if table:
        out += ["", "Each model on its fastest CPU runtime (lowest end-to-end p50 above):", ""] + table + [""]
    best, versus = (data.speed or {}).get("best") or {}, (data.speed or {}).get("best_vs_best")
    ratio = num(versus, "e2e_p50_ratio")
    if versus and ratio is not None and versus.get("model") in best and versus.get("reference") in best:
        a, b = best[versus["model"]], best[versus["reference"]]
        verdict = "meets" if ratio <= SPEED_TARGET_RATIO else "misses"
        out.append(
            f"- Best against best: the {SPEED_LABELS.get(versus['model'], versus['model'])} "
            f"on {runtime_label(a['runtime'], a['precision'])} takes "
            f"{fmt_ms(num(a, 'e2e_p50_ms'))} ms end-to-end (p50) against YOLO's {fmt_ms(num(b, 'e2e_p50_ms'))} ms on "
            f"{runtime_label(b['runtime'], b['precision'])}: {ratio:.2f}× YOLO, "
            f"which {verdict} the ≤ {SPEED_TARGET_RATIO}× target."
        )
    parts = []
    for model, name in SPEED_METRICS.items():
        int8, fp32 = data.openvino_int8.get(name), (data.models.get(name) or ModelData(name)).metrics
        d8, d32 = num(int8, "pck_5px"), num(fp32, "pck_5px")
        if d8 is None or d32 is None:
            continue
        t8 = num(find_row(rows, model, "openvino", "int8"), "e2e_p50_ms")
        t32 = num(find_row(rows, model, "openvino", "fp32"), "e2e_p50_ms")
        parts.append(
            f"{SPEED_LABELS[model]} {d8 - d32:+.3f} ({fmt_pck(d8)} vs {fmt_pck(d32)}; "
            f"end-to-end p50 {fmt_ms(t8)} ms vs {fmt_ms(t32)} ms OpenVINO fp32)"
        )
    if parts:
        out.append(
            "- INT8 on OpenVINO (NNCF post-training quantisation, calibrated on train images; the files timed above, "
            "evaluated on val by the `openvino_int8` stage): PCK@5px change against fp32: " + "; ".join(parts) + "."
        )
    return out


ROBUSTNESS_PCK = (5, 10)


def robustness_section(data: ReportData) -> list[str]:
    """PCK of each model under each condition of the robustness stage, the drop from clean
    images, and how well the presence score tells hands from hand-free images."""
    rob = data.robustness
    if not rob or not rob.get("models"):
        return [f"No robustness run yet (`{posix(data.paths.robustness)}`)."]
    models = list(rob["models"])
    head = ["condition"] + [f"{TABLE_NAMES.get(m, m)} PCK@{t}px" for m in models for t in ROBUSTNESS_PCK]
    lines = [
        f"{rob['images']:,} val images (a seeded pick), each condition alone at a fixed strength "
        "(`handkp/data/augment.py` `CONDITIONS`), labels moved with the image; "
        "in brackets the change from clean images.",
        "",
        table_row(head),
        table_rule(head, 1),
    ]
    for condition in rob["models"][models[0]]:
        cells = [condition.replace("_", " ")]
        for m in models:
            row, clean = rob["models"][m].get(condition, {}), rob["models"][m].get("clean", {})
            for t in ROBUSTNESS_PCK:
                v, c = num(row, f"pck_{t}px"), num(clean, f"pck_{t}px")
                delta = f" ({v - c:+.3f})" if v is not None and c is not None and condition != "clean" else ""
                cells.append(fmt_pck(v) + delta)
        lines.append(table_row(cells))
    for m, sep in (rob.get("presence") or {}).items():
        lines += [
            "",
            f"Presence ({TABLE_NAMES.get(m, m)}, threshold {sep['threshold']:g}): "
            f"{sep['hands_found']:.1%} of {sep['n_hand']:,} hand images found, "
            f"{sep['hand_free_flagged']:.1%} of {sep['n_hand_free']:,} hand-free images flagged as a hand; "
            f"AUROC {sep['auroc']:.3f}.",
        ]
    return lines
