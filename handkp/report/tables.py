"""The Markdown tables of the README block: accuracy, latency, and the speed-by-design section
(head variants against YOLO, with the lines that judge the default and the INT8 variant)."""
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
)

SPEED_TARGET_RATIO = 0.6  # the default's end-to-end p50 must be at most this fraction of YOLO's
_ARCH_KEYS = ("backbone_tail", "head", "deconv_layers", "deconv_channels")


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
        cells += [fmt_pck(num(mt, f"pck_{t}px")) for t in THRESHOLDS_PX]
        cells += [
            fmt_pck(num(mt, "auc_0_15px")),
            fmt_px(num(mt, "epe_mean_px")),
            fmt_px(num(mt, "epe_median_px")),
            fmt_count(num(mt, "missed_images")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def measured_on(data: ReportData, m: ModelData) -> str:
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
            cells = [TABLE_NAMES.get(m.name, m.name), measured_on(data, m), label]
            cells += [fmt_ms(num(m.latency, f"{part}_p{q}_ms")) for q in (50, 90, 99)]
            cells.append(fmt_fps(num(m.latency, f"{part}_fps")))
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def default_variant(data: ReportData) -> str | None:
    """The speed variant whose architecture is params.yaml's model section."""
    model = data.params.get("model", {})
    for name, row in (data.speed or {}).get("rows", {}).items():
        if row.get("kind") == "variant" and all(row.get(k) == model.get(k) for k in _ARCH_KEYS):
            return name
    return None


def _pck_at_least(a: dict, b: dict) -> tuple[list[int], list[int]]:
    """The PCK thresholds (px) at which metrics ``a`` are at least ``b``'s, and those where lower."""
    better = [t for t in (1, 3, 5, 10) if (num(a, f"pck_{t}px") or 0) >= (num(b, f"pck_{t}px") or 0)]
    return better, [t for t in (1, 3, 5, 10) if t not in better]


def _px_list(thresholds: list[int]) -> str:
    return ", ".join(f"{t} px" for t in thresholds)


def speed_section(data: ReportData) -> list[str]:
    """The speed-by-design table (latency from the `speed` stage, accuracy from the ablation
    runs) and the lines that judge the default against YOLO and the INT8 variant."""
    rows = (data.speed or {}).get("rows", {})
    if not rows:
        return [f"No speed measurements yet (`{posix(data.paths.speed)}`)."]
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
        cells += [fmt_ms(num(row, "e2e_p50_ms")), fmt_ms(num(row, "e2e_p99_ms")), fmt_px(num(row, "e2e_p50_vs_yolo"))]
        cells += [fmt_pck(num(metrics, f"pck_{t}px")) for t in (1, 3, 5, 10)]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    ratio = num(rows.get(default or "", {}), "e2e_p50_vs_yolo")
    if default and ratio is not None:
        verdict = "meets" if ratio <= SPEED_TARGET_RATIO else "misses"
        out.append(
            f"- The default (`{default}`) takes {fmt_ms(num(rows[default], 'e2e_p50_ms'))} ms end-to-end (p50) against YOLO's "
            f"{fmt_ms(num(rows.get('yolo'), 'e2e_p50_ms'))} ms: {ratio:.2f}× YOLO, which {verdict} the ≤ {SPEED_TARGET_RATIO}× target."
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
        time_ratio = (num(row, "e2e_p50_ms") or 0) / (num(rows[default], "e2e_p50_ms") or float("nan"))
        out.append(
            f"- `{name}` against the default on the same schedule: {time_ratio:.2f}× its end-to-end time; "
            f"at least as accurate at {_px_list(better) or 'no threshold'}" + (f", less accurate at {_px_list(worse)}." if worse else ".")
        )
    fp32 = (data.models.get("heatmap") or ModelData("heatmap")).metrics
    if data.int8_metrics and fp32:
        deltas = ", ".join(f"{t} px {(num(data.int8_metrics, f'pck_{t}px') or 0) - (num(fp32, f'pck_{t}px') or 0):+.3f}" for t in (1, 3, 5, 10))
        parity = data.int8_parity or {}
        out.append(
            f"- INT8 (ONNX Runtime static quantisation, calibrated on train images): PCK change against fp32 {deltas}; "
            f"keypoints move by {fmt_px(num(parity, 'keypoint_mean_diff_px'))} px on average "
            f"(max {fmt_px(num(parity, 'keypoint_max_diff_px_confident'))} px over confident keypoints); "
            f"end-to-end p50 {fmt_ms(num(rows.get('default_int8'), 'e2e_p50_ms'))} ms vs {fmt_ms(num(rows.get('default_fp32'), 'e2e_p50_ms'))} ms fp32."
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
        "(`handkp/data/augment.py` `CONDITIONS`), labels moved with the image; in brackets the change from clean images.",
        "",
        "| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for condition in rob["models"][models[0]]:
        cells = [condition.replace("_", " ")]
        for m in models:
            row, clean = rob["models"][m].get(condition, {}), rob["models"][m].get("clean", {})
            for t in ROBUSTNESS_PCK:
                v, c = num(row, f"pck_{t}px"), num(clean, f"pck_{t}px")
                delta = f" ({v - c:+.3f})" if v is not None and c is not None and condition != "clean" else ""
                cells.append(fmt_pck(v) + delta)
        lines.append("| " + " | ".join(cells) + " |")
    for m, sep in (rob.get("presence") or {}).items():
        lines += ["", f"Presence ({TABLE_NAMES.get(m, m)}, threshold {sep['threshold']:g}): "
                      f"{sep['hands_found']:.1%} of {sep['n_hand']:,} hand images found, "
                      f"{sep['hand_free_flagged']:.1%} of {sep['n_hand_free']:,} hand-free images flagged as a hand; "
                      f"AUROC {sep['auroc']:.3f}."]
    return lines
