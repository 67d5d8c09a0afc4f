"""Speed by design: latency, parameters and MACs of heatmap-network variants beside the YOLO
baseline, on every CPU runtime and precision of ``speed.runtimes``, all in one interleaved run
(batch 1):

    onnxruntime/fp32   the ONNX file, ONNX Runtime
    onnxruntime/int8   ONNX Runtime's static quantisation of it (``handkp.deploy.quantize``)
    openvino/fp32      the ONNX file, OpenVINO at f32
    openvino/bf16      the same at bf16 (skipped, with the reason recorded, on a CPU without bfloat16)
    openvino/int8      an NNCF INT8 IR (``handkp.deploy.openvino``)

The variants' latency does not depend on their weights, so each is exported from a seeded
random initialisation (``handkp.deploy.export.export_variant``); trained models (the default,
YOLO) are measured from their files. INT8 files are built in a temporary folder
(``handkp.deploy.artefacts.build_int8``), calibrated on train images each pre-processed by the
model's own decoder, except those given in ``prebuilt`` (the speed stage: the quantize stage's
models/heatmap.int8.onnx and the openvino_int8 stage's IRs, whose PCK on val is reported, so what
is timed is what is evaluated). Models are measured in interleaved rounds
(``handkp.evaluate.latency.measure_interleaved``) so that drifts of the machine's speed affect
all of them alike; each figure is the median over rounds.

A row is one model on one runtime at one precision (key ``<model>@<runtime>/<precision>``, the
three also as fields). ``best``: each model on its fastest runtime/precision (lowest end-to-end
p50); ``best_vs_best``: the trained default's best against YOLO's best. Where a trained model is
fastest at bf16, which no other stage evaluates, the speed stage evaluates it there on val
(``best[model]["val"]``), so the best-against-best comparison states the accuracy of what it times.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..core.errors import HandkpError
from ..core.io import atomic_path, write_json
from ..core.paths import (
    HEATMAP_INT8_ONNX,
    HEATMAP_ONNX,
    IMAGE_CACHE,
    OPENVINO_INT8_DIR,
    PREPARED_TABLE,
    SPEED,
    VARIANTS_CSV,
    YOLO_ONNX,
)
from ..deploy.artefacts import artefact_path, build_int8
from ..deploy.export import export_variant
from ..runtime import Predictor, load_predictor
from ..runtime.decoders import YOLO_CONF_THRESHOLD
from .evaluation import split_metrics
from .latency import measure_interleaved

RUNTIMES = ("onnxruntime/fp32", "onnxruntime/int8", "openvino/fp32", "openvino/bf16", "openvino/int8")
ARCH_KEYS = ("backbone_tail", "width_mult", "reduced_tail", "head", "deconv_layers", "deconv_channels")
ARCH_DEFAULTS = {"width_mult": 1.0, "reduced_tail": False}  # build_model's, where the model section has none
BEST_KEYS = ("model_p50_ms", "e2e_p50_ms", "e2e_p99_ms", "e2e_fps")


class SpeedError(HandkpError):
    """The speed table could not be measured (the message names the setting, or the model and runtime)."""


# ---- runtimes and model files --------------------------------------------------------------------
def row_key(model: str, runtime: str, precision: str) -> str:
    """The key of a row of the speed table: ``light_bilinear_64@openvino/int8``."""
    return f"{model}@{runtime}/{precision}"


def parse_runtimes(specs) -> list[tuple[str, str]]:
    """``speed.runtimes`` (``runtime/precision`` strings) -> (runtime, precision) pairs, in order,
    without repeats; SpeedError for an unknown one or an empty list."""
    pairs: list[tuple[str, str]] = []
    for spec in specs or ():
        if spec not in RUNTIMES:
            raise SpeedError(f"speed.runtimes: unknown '{spec}', expected some of {list(RUNTIMES)}")
        pair = tuple(str(spec).split("/"))
        if pair not in pairs:
            pairs.append(pair)
    if not pairs:
        raise SpeedError(f"speed.runtimes is empty; expected some of {list(RUNTIMES)}")
    return pairs


def unavailable_reason(runtime: str, precision: str) -> str | None:
    """None when ``runtime`` can run ``precision`` on this CPU, else why not (OpenVINO absent, no bfloat16)."""
    if runtime != "openvino":
        return None
    from ..runtime import openvino as ov_runtime

    return ov_runtime.precision_unavailable_reason(precision, "CPU")


def load_on(
    path: Path, runtime: str, precision: str, threads: int, conf_threshold: float = YOLO_CONF_THRESHOLD
) -> Predictor:
    """A CPU predictor of ``path`` on ``runtime`` at ``precision`` (``conf_threshold``: a YOLO
    file's detection threshold)."""
    if runtime == "onnxruntime":
        return load_predictor(path, "onnxruntime", "cpu", threads, conf_threshold=conf_threshold)
    return load_predictor(path, "openvino", "cpu", threads, conf_threshold=conf_threshold, precision=precision)


# ---- the table -----------------------------------------------------------------------------------
def best_rows(rows: dict[str, dict]) -> dict[str, dict]:
    """Each model's fastest row (lowest end-to-end p50; the first of a tie): its key, runtime,
    precision and latency."""
    best: dict[str, str] = {}
    for key, row in rows.items():
        if row.get("e2e_p50_ms") is None:
            continue
        model = row["model"]
        if model not in best or row["e2e_p50_ms"] < rows[best[model]]["e2e_p50_ms"]:
            best[model] = key
    return {
        model: {
            "row": key,
            "runtime": rows[key]["runtime"],
            "precision": rows[key]["precision"],
            **{k: rows[key][k] for k in BEST_KEYS if k in rows[key]},
        }
        for model, key in best.items()
    }


def best_vs_best(best: dict[str, dict], model: str, reference: str) -> dict | None:
    """``model`` on its fastest runtime against ``reference`` on its own fastest, or None when
    either was not measured. ``e2e_p50_ratio``: the first's end-to-end p50 / the second's."""
    if model not in best or reference not in best:
        return None
    a, b = best[model], best[reference]
    return {
        "model": model,
        "reference": reference,
        "model_row": a["row"],
        "reference_row": b["row"],
        "e2e_p50_ratio": round(a["e2e_p50_ms"] / b["e2e_p50_ms"], 3),
    }


def speed_table(
    variants: dict[str, dict],
    base_model: dict,
    codec_cfg: dict,
    files: dict[str, Path],
    images: list[np.ndarray],
    threads: int,
    warmup: int,
    iterations: int,
    rounds: int,
    runtimes=RUNTIMES,
    calibration_images: list[np.ndarray] | None = None,
    prebuilt: dict[str, Path] | None = None,
    reference: str = "yolo",
    model: str = "default",
) -> dict:
    """Every model (each variant: ``base_model`` updated with its keys, random weights; each fp32
    ONNX file of ``files``, name -> path) on every runtime/precision of ``runtimes``, measured in
    one interleaved run. ``calibration_images`` (RGB uint8) calibrate the INT8 files built here;
    ``prebuilt`` (row key -> file) gives the INT8 files not to build.

    Returns ``{"runtimes", "skipped" (runtime, precision, reason), "rows", "best", "best_vs_best"?}``.
    A row has model, runtime, precision, kind (variant | file), the architecture and size
    figures of a variant, the latency keys and ``e2e_p50_vs_<reference>``: its end-to-end p50 as
    a fraction of the reference's on the same runtime and precision."""
    pairs, prebuilt = parse_runtimes(runtimes), dict(prebuilt or {})
    skipped, usable = [], []
    for runtime, precision in pairs:
        reason = unavailable_reason(runtime, precision)
        if reason:
            print(f"note: {runtime}/{precision} not measured: {reason}")
            skipped.append({"runtime": runtime, "precision": precision, "reason": reason})
        else:
            usable.append((runtime, precision))
    rows: dict[str, dict] = {}
    predictors: dict[str, Predictor] = {}
    with tempfile.TemporaryDirectory(prefix="handkp-speed-") as tmp:
        folder = Path(tmp)
        sources: dict[str, tuple[Path, dict]] = {}
        for name, overrides in variants.items():
            cfg = {**base_model, **overrides}
            onnx_path = folder / f"{name}.onnx"
            arch = {k: cfg.get(k, ARCH_DEFAULTS.get(k)) for k in ARCH_KEYS}
            sources[name] = (onnx_path, {"kind": "variant", **arch, **export_variant(cfg, codec_cfg, onnx_path)})
        for name, path in files.items():
            sources[name] = (Path(path), {"kind": "file"})
        for name, (onnx_path, info) in sources.items():
            for runtime, precision in usable:
                key = row_key(name, runtime, precision)
                row = {"model": name, "runtime": runtime, "precision": precision, **info}
                try:
                    if key in prebuilt:
                        path = Path(prebuilt[key])
                    elif precision == "int8":
                        if not calibration_images:
                            raise SpeedError(
                                f"{name}: {runtime}/int8 needs calibration images (quantize.calibration_images)"
                            )
                        path = build_int8(onnx_path, runtime, folder, name, list(calibration_images))
                        row["calibration_images"] = len(calibration_images)
                    else:
                        path = onnx_path
                    predictors[key] = load_on(path, runtime, precision, threads)
                except SpeedError:
                    raise
                except Exception as err:  # a build or load failure of one model: the stage says which
                    raise SpeedError(f"{name} on {runtime}/{precision}: {err}") from err
                if not path.is_relative_to(folder):
                    row["file"] = str(path)
                if runtime == "openvino":
                    row["inference_precision"] = predictors[key].inference_precision
                rows[key] = row
        latency = measure_interleaved(predictors, images, warmup, iterations, rounds)
    for key, stats in latency.items():
        rows[key].update(stats)
    for row in rows.values():
        ref = rows.get(row_key(reference, row["runtime"], row["precision"]))
        if ref and ref.get("e2e_p50_ms"):
            row[f"e2e_p50_vs_{reference}"] = round(row["e2e_p50_ms"] / ref["e2e_p50_ms"], 3)
    best = best_rows(rows)
    out = {"runtimes": [f"{r}/{p}" for r, p in pairs], "skipped": skipped, "rows": rows, "best": best}
    versus = best_vs_best(best, model, reference)
    if versus:
        out["best_vs_best"] = versus
    return out


CSV_COLUMNS = (
    "model",
    "runtime",
    "precision",
    "kind",
    *ARCH_KEYS,
    "params_m",
    "macs_m",
    "model_p50_ms",
    "e2e_p50_ms",
    "e2e_p99_ms",
    "e2e_p50_vs_yolo",
)
TRAINED = {"default": HEATMAP_ONNX, "yolo": YOLO_ONNX}
# The trained models' INT8 files: those the quantize and openvino_int8 stages built and evaluated.
PREBUILT = {
    row_key("default", "onnxruntime", "int8"): HEATMAP_INT8_ONNX,
    row_key("default", "openvino", "int8"): artefact_path(OPENVINO_INT8_DIR, "heatmap", "openvino"),
    row_key("yolo", "openvino", "int8"): artefact_path(OPENVINO_INT8_DIR, "yolo", "openvino"),
}


def run_speed(params: dict) -> dict:
    """The speed stage: latency (CPU, batch 1), parameters and MACs of the head variants in
    ``speed.variants``, the trained default and the YOLO baseline on every runtime/precision of
    ``speed.runtimes``, in one run -> reports/speed/speed.json, reports/speed/variants.csv. INT8
    files are calibrated on ``quantize.calibration_images`` train images (the quantize stage's
    seeded pick); the trained models' INT8 files are those the quantize and openvino_int8 stages
    built and evaluated."""
    from ..core.device import cpu_model_name
    from ..data.cache import ImageCache

    cfg, bench = params["speed"], params["benchmark"]
    runtimes = cfg.get("runtimes", RUNTIMES)
    cache = ImageCache(IMAGE_CACHE)
    images = cache.pick("val", bench["images"])
    calibration = None
    if any(precision == "int8" for _, precision in parse_runtimes(runtimes)):
        calibration = cache.pick("train", params["quantize"]["calibration_images"], seed=params["seed"])
    table = speed_table(
        cfg["variants"],
        params["model"],
        params["codec"],
        TRAINED,
        images,
        params["runtime"]["threads"],
        bench["warmup"],
        bench["iterations"],
        cfg["rounds"],
        runtimes,
        calibration,
        PREBUILT,
    )
    evaluate_bf16_best(table["best"], cache, params)
    out = {
        "device": cpu_model_name(),
        "threads": params["runtime"]["threads"],
        "rounds": cfg["rounds"],
        "iterations": bench["iterations"],
        **table,
    }
    write_speed(out)
    print_speed(table)
    return out


def evaluate_bf16_best(best: dict[str, dict], cache, params: dict) -> None:
    """Each trained model whose fastest row is at bf16, evaluated on val as it runs there
    (``best[model]["val"]``); its fp32 and INT8 files have their own evaluation stages."""
    import polars as pl

    gt = pl.read_parquet(PREPARED_TABLE).filter(pl.col("split") == "val")
    conf = float(params["evaluate"]["yolo_conf_threshold"])
    for model, path in TRAINED.items():
        fastest = best[model]
        if fastest["precision"] == "bf16":
            predictor = load_on(path, fastest["runtime"], fastest["precision"], params["runtime"]["threads"], conf)
            fastest["val"] = split_metrics(predictor, gt, cache, params["evaluate"]["batch_size"])


def write_speed(out: dict) -> None:
    """reports/speed/speed.json (``out``) and reports/speed/variants.csv (a line per row)."""
    import polars as pl

    write_json(SPEED, out)
    csv = pl.DataFrame(
        [{"name": k, **{c: v.get(c) for c in CSV_COLUMNS}} for k, v in out["rows"].items()], infer_schema_length=None
    )
    with atomic_path(VARIANTS_CSV) as tmp:
        csv.write_csv(tmp)


def print_speed(table: dict) -> None:
    """A line per row, each model's fastest row and the best against best."""
    for key, row in table["rows"].items():
        print(
            f"{key:44s} e2e p50 {row['e2e_p50_ms']:6.2f} ms  p99 {row['e2e_p99_ms']:6.2f} ms  "
            f"x{row.get('e2e_p50_vs_yolo', float('nan')):.2f} of YOLO (same runtime)"
        )
    for name, best in table["best"].items():
        there = f", val PCK@5 {best['val']['pck_5px']:.3f}" if "val" in best else ""
        print(f"fastest {name:28s} {best['runtime']}/{best['precision']}: e2e p50 {best['e2e_p50_ms']:.2f} ms{there}")
    if "best_vs_best" in table:
        print(f"best against best: default / YOLO e2e p50 = {table['best_vs_best']['e2e_p50_ratio']:.3f}")
