"""The sentences of the README block: what the numbers are (split, counts, schedule,
initialisation, where latency was measured) and the comparison of the two models, worded by
who actually wins at the displayed precision (ties included)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from handkp.core.metrics import THRESHOLDS_PX

from .data import MODELS, ReportData
from .format import (
    MISSING,
    OBJECTS,
    SUBJECTS,
    TABLE_NAMES,
    fmt_count,
    fmt_fps,
    fmt_ms,
    fmt_pck,
    fmt_px,
    num,
    plural,
    posix,
)
from .tables import measured_on

REALTIME_FPS = 30.0  # the bar a deployment line compares end-to-end FPS against


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
    choice = value.strip().lower() if isinstance(value, str) else None
    if choice in ("none", "false"):  # what the training code reads as "no weights"
        return f"trained from scratch, random initialisation (`{key}: {value}`)"
    if choice == "download":  # yolo.pretrained: the official weights of the architecture
        of = f" of `{model_file}`" if model_file else ""
        return f"the official pretrained weights{of} (`{key}: {value}`)"
    if isinstance(value, str) and value:
        return f"initialised from `{value}` (`{key}`)"
    if model_file:
        if model_file.endswith((".yaml", ".yml")):
            return f"trained from scratch (architecture `{model_file}`)"
        return f"initialised from pretrained weights `{model_file}`"
    return f"initialisation not stated (`{key}` not in `params.yaml`)"


def describe_setup(data: ReportData) -> list[str]:
    """Bullet lines stating what the numbers are: split, counts, schedule, initialisation, target."""
    lines: list[str] = []
    evaluated = [m for m in data.models.values() if m.evaluated]

    # Evaluation split and counts (from the metrics themselves).
    counts = {m.name: (num(m.metrics, "n_images"), num(m.metrics, "n_keypoints")) for m in evaluated}
    if counts:
        distinct = set(counts.values())
        if len(distinct) == 1:
            n_img, n_kp = next(iter(distinct))
            lines.append(
                f"Evaluation: the `val` split, {plural(n_img, 'image')}, {plural(n_kp, 'visible keypoint')} "
                f"(the same images for every model)."
            )
        else:
            per = "; ".join(
                f"{TABLE_NAMES.get(n, n)} {plural(c[0], 'image')}, {plural(c[1], 'keypoint')}"
                for n, c in counts.items()
            )
            lines.append(f"Evaluation: the `val` split; the models were scored on different sets ({per}).")
    if data.ground_truth is not None and {"split", "image"} <= set(data.ground_truth.columns):
        per_split = data.ground_truth.group_by("split").agg(pl.col("image").n_unique().alias("n"))
        n_by = dict(zip(per_split["split"].to_list(), per_split["n"].to_list()))
        order = [s for s in ("train", "dev", "val") if s in n_by] + sorted(
            s for s in n_by if s not in ("train", "dev", "val")
        )
        split_text = ", ".join(f"{s} {plural(n_by[s], 'image')}" for s in order)
        data_flat = {
            k: v
            for k, v in _flatten(data.params.get("data")).items()
            if not any(w in k.lower() for w in ("source", "url", "sha", "md5", "path", "dir"))
        }
        extra = f"; `data`: {_key_values(data_flat, set())}" if data_flat else ""
        lines.append(f"Data (`{posix(data.paths.ground_truth)}`): {split_text}{extra}.")

    # Heatmap model: shape, initialisation, schedule.
    if "heatmap" in data.models:
        model_flat = _flatten(data.params.get("model"))
        train_flat = _flatten(data.params.get("train"))
        init = _initialisation(model_flat.get("pretrained"), "model.pretrained")
        sched, _ = _schedule("train", train_flat)
        warm, schedule = train_flat.get("warm_start"), "schedule"
        if warm:  # a second run: the schedule is this run's, the initialisation the first run's
            init, schedule = (
                f"continued from the weights of `{warm}` (`train.warm_start`), a run {init}",
                "this run's schedule",
            )
        shape = _key_values(model_flat, {"pretrained"})
        dev = _pick(train_flat, ("device",))
        dev_text = f"; trained on `{_yaml_value(dev[1])}`" if dev else ""
        shape_text = f"`model`: {shape}" if shape else "model shape not in `params.yaml`"
        lines.append(f"Heatmap model: {shape_text}; {init}; {schedule} {sched}{dev_text}.")

    # YOLO baseline.
    if "yolo" in data.models:
        yolo_flat = _flatten(data.params.get("yolo"))
        if yolo_flat:
            sched, used = _schedule("yolo", yolo_flat)
            model_hit = _pick(yolo_flat, ("model", "weights"))
            pre_hit = _pick(yolo_flat, ("pretrained",))
            init = _initialisation(
                pre_hit[1] if pre_hit else None,
                f"yolo.{pre_hit[0]}" if pre_hit else "yolo.pretrained",
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
            f"Latency: target `{target}`, device `{device}` (`{posix(data.latency_path)}`){note}; "
            "model-only = the network forward pass, end-to-end = pre-processing + network + decode "
            "from an RGB array; batch 1."
        )
    else:
        lines.append(f"Latency: not measured yet (no `{posix(data.latency_path)}`).")

    # Models left out.
    for m in data.models.values():
        if not m.evaluated:
            lines.append(
                f"{TABLE_NAMES.get(m.name, m.name)} is left out: {'; '.join(m.notes)} (not trained or evaluated yet)."
            )
    return lines


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
        a, b = num(h.metrics, f"pck_{t}px"), num(y.metrics, f"pck_{t}px")
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

    a, b = num(h.metrics, "auc_0_15px"), num(y.metrics, "auc_0_15px")
    if a is not None and b is not None:
        w = _winner(a, b, fmt_pck, True)
        if w == 0:
            lines.append(f"Both models have the same AUC over 0–15 px ({fmt_pck(a)}).")
        else:
            s, hi, lo = (H, a, b) if w == 1 else (Y, b, a)
            lines.append(f"{s} has the larger AUC over 0–15 px ({fmt_pck(hi)} vs {fmt_pck(lo)}).")

    a, b = num(h.metrics, "epe_mean_px"), num(y.metrics, "epe_mean_px")
    if a is not None and b is not None:
        w = _winner(a, b, fmt_px, False)
        if w == 0:
            lines.append(f"Both models have the same mean keypoint error ({fmt_px(a)} px).")
        else:
            s, lo, hi = (H, a, b) if w == 1 else (Y, b, a)
            lines.append(f"{s} has the lower mean keypoint error ({fmt_px(lo)} px vs {fmt_px(hi)} px).")

    a, b = num(h.metrics, "missed_images"), num(y.metrics, "missed_images")
    if a is not None and b is not None:
        if int(a) == int(b):
            lines.append(
                "Neither model missed a hand." if a == 0 else f"Both models missed the hand in {plural(a, 'image')}."
            )
        else:
            s, lo, hi = (H, a, b) if a < b else (Y, b, a)
            lines.append(f"{s} missed fewer hands ({fmt_count(lo)} vs {fmt_count(hi)} images with no hand found).")

    speed: dict[str, int] = {}
    if h.latency is not None and y.latency is not None:
        for part, label in (("model", "model-only"), ("e2e", "end-to-end")):
            a, b = num(h.latency, f"{part}_p50_ms"), num(y.latency, f"{part}_p50_ms")
            fa, fb = num(h.latency, f"{part}_fps"), num(y.latency, f"{part}_fps")
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
        fa, fb = num(h.latency, "e2e_fps"), num(y.latency, "e2e_fps")
        if fa is not None and fb is not None:
            where = f"{measured_on(data, h)}"
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
