"""Batch-1 latency of a runtime Predictor, model-only and end-to-end.

    stats = measure_latency(predictor, images, warmup=20, iterations=200)
    # {"model_p50_ms", "model_p90_ms", "model_p99_ms", "model_fps",
    #  "e2e_p50_ms", "e2e_p90_ms", "e2e_p99_ms", "e2e_fps", "iterations", "warmup"}
    stats = measure_interleaved({"a": a, "b": b}, images, warmup=20, iterations=200, rounds=5)
    # {"a": {...}, "b": {...}}
    stats = measure_end_to_end(predictor.refined(), images, warmup=20, iterations=200)
    # {"e2e_p50_ms", ..., "e2e_fps", "iterations", "warmup"}: more than one network pass a call

model-only: ``predictor.infer`` on an already pre-processed (1, 3, S, S) input (the network and
its backend's host<->device copies); end-to-end: ``predictor.predict`` from an RGB uint8 image to
keypoints in image px (pre-processing + network + decode). Images are cycled through; each part has
its own untimed warm-up. FPS is sequential batch-1 throughput: iterations / total timed seconds.
"""

from __future__ import annotations

import json
import time

import numpy as np

from ..core.device import cpu_model_name
from ..core.errors import ModelLoadError
from ..core.io import write_json
from ..core.paths import ENGINE_DIR, ENGINE_METRICS, HEADLINE_LATENCY, IMAGE_CACHE, LATENCY, YOLO_ONNX
from ..runtime import Predictor

LATENCY_KEYS = (
    "model_p50_ms",
    "model_p90_ms",
    "model_p99_ms",
    "model_fps",
    "e2e_p50_ms",
    "e2e_p90_ms",
    "e2e_p99_ms",
    "e2e_fps",
)


def _stats(prefix: str, times_s: list[float]) -> dict:
    ms = np.asarray(times_s, dtype=np.float64) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        f"{prefix}_p50_ms": round(float(p50), 4),
        f"{prefix}_p90_ms": round(float(p90), 4),
        f"{prefix}_p99_ms": round(float(p99), 4),
        f"{prefix}_fps": round(float(len(ms) / (ms.sum() / 1e3)), 2),
    }


def _timed(run, inputs: list, warmup: int, iterations: int) -> list[float]:
    """Seconds of each of ``iterations`` calls of ``run`` on ``inputs`` (cycled through), after
    ``warmup`` untimed calls."""
    clock = time.perf_counter
    for i in range(warmup):
        run(inputs[i % len(inputs)])
    times = []
    for i in range(iterations):
        x = inputs[i % len(inputs)]
        t0 = clock()
        run(x)
        times.append(clock() - t0)
    return times


def _check_run(images: list[np.ndarray], warmup: int, iterations: int) -> None:
    if not images:
        raise ValueError("a latency measurement needs at least one image")
    if iterations < 1 or warmup < 0:
        raise ValueError(f"iterations must be >= 1 and warmup >= 0, got {iterations}, {warmup}")


def measure_latency(predictor: Predictor, images: list[np.ndarray], warmup: int = 20, iterations: int = 200) -> dict:
    """Latency percentiles (ms) and FPS of ``predictor`` at batch 1 on ``images`` (RGB uint8 HWC)."""
    _check_run(images, warmup, iterations)
    inputs = [predictor.preprocess(im)[0] for im in images]
    model_times = _timed(predictor.infer, inputs, warmup, iterations)
    return {**_stats("model", model_times), **measure_end_to_end(predictor, images, warmup, iterations)}


def measure_end_to_end(predictor: Predictor, images: list[np.ndarray], warmup: int = 20, iterations: int = 200) -> dict:
    """End-to-end latency only (``e2e_*``, ``iterations``, ``warmup``): for a predictor whose
    ``predict`` runs the network more than once (the refine pass), where model-only is one pass."""
    _check_run(images, warmup, iterations)
    return {
        **_stats("e2e", _timed(predictor.predict, images, warmup, iterations)),
        "iterations": int(iterations),
        "warmup": int(warmup),
    }


def measure_interleaved(
    predictors: dict[str, Predictor], images: list[np.ndarray], warmup: int, iterations: int, rounds: int
) -> dict[str, dict]:
    """Latency of every predictor, ``rounds`` interleaved rounds of ``iterations / rounds`` runs
    each (a drift of the machine's speed affects them all alike); every key is the median over rounds."""
    per_round = max(1, iterations // rounds)
    runs: dict[str, list[dict]] = {name: [] for name in predictors}
    for _ in range(rounds):
        for name, predictor in predictors.items():
            runs[name].append(measure_latency(predictor, images, warmup, per_round))
    return {
        name: {k: round(float(np.median([r[k] for r in rs])), 4) for k in LATENCY_KEYS} for name, rs in runs.items()
    }


def latency_from_trtexec(metrics: dict) -> dict:
    """Our latency keys from trtexec's parsed performance summary (``handkp.remote.parse_trtexec_log``):
    model-only = trtexec's "Latency" (H2D + GPU compute + D2H per batch-1 query), p50 = its median,
    FPS = its throughput. End-to-end is not measured by trtexec, so there are no ``e2e_*`` keys."""
    pairs = {
        "model_p50_ms": "latency_median_ms",
        "model_p90_ms": "latency_p90_ms",
        "model_p99_ms": "latency_p99_ms",
        "model_fps": "throughput_qps",
    }
    out = {ours: float(metrics[theirs]) for ours, theirs in pairs.items() if theirs in metrics}
    if "model_p50_ms" not in out:
        raise ValueError("trtexec summary without a latency median: cannot report latency")
    out["source"] = "trtexec"
    return out


def device_description(predictor: Predictor) -> str:
    """Where ``predictor`` runs: the GPU's name for CUDA / TensorRT, else the CPU model name."""
    run = predictor.run
    on_gpu = predictor.backend == "tensorrt"
    if hasattr(run, "on_gpu"):
        on_gpu = run.on_gpu()
    device = getattr(run, "device", None)
    if getattr(device, "type", None) == "cuda":
        on_gpu = True
    if on_gpu:
        import torch

        return torch.cuda.get_device_name(device if getattr(device, "type", None) == "cuda" else 0)
    return cpu_model_name()


def run_benchmark(params: dict) -> dict:
    """The benchmark stage: batch-1 latency of the heatmap model's deployed artefact and the YOLO
    baseline's on ``deploy.target`` -> reports/metrics/latency.json.

    onnxruntime / tensorrt: measured here on val images (model-only and end-to-end), and the heatmap
    model with the refine pass (``heatmap_refine``: end-to-end, two network passes). jetson: trtexec's
    own performance summary from the engine build (reports/metrics/engine.json), model-only."""
    from ..data.cache import ImageCache
    from ..deploy.artefacts import artefact_path, load_deployed

    cfg, deploy = params["benchmark"], params["deploy"]
    target, threads = deploy["target"], int(params["runtime"]["threads"])
    result, notes = {"target": target, "device": None, "threads": threads}, []
    for name in ("heatmap", "yolo"):
        if not artefact_path(ENGINE_DIR, name, target).is_file():
            if name == "heatmap":
                raise ModelLoadError(f"no {artefact_path(ENGINE_DIR, name, target)}; run the engine stage first")
            notes.append(f"{name}: no {target} artefact ({YOLO_ONNX} was not exported), not measured")
            print(f"note: {notes[-1]}")
            continue
        if target == "jetson":
            built = json.loads(ENGINE_METRICS.read_text())
            result[name] = latency_from_trtexec(built[name])
            result["device"] = built.get("device", deploy["jetson"]["host"])
            continue
        try:
            predictor = load_deployed(ENGINE_DIR, name, target, deploy["device"], threads=threads)
        except ModelLoadError as err:
            raise ModelLoadError(f"the {target} artefact of {name} cannot run here: {err}") from err
        result["device"] = device_description(predictor)
        images = ImageCache(IMAGE_CACHE).pick("val", int(cfg["images"]))
        result[name] = measure_latency(predictor, images, int(cfg["warmup"]), int(cfg["iterations"]))
        print(name, json.dumps(result[name]))
        if name == "heatmap":
            result["heatmap_refine"] = measure_end_to_end(
                predictor.refined(), images, int(cfg["warmup"]), int(cfg["iterations"])
            )
            print("heatmap_refine", json.dumps(result["heatmap_refine"]))
    if target == "jetson":
        notes.append(
            "jetson: model-only latency from trtexec's performance summary on the device; end-to-end and the "
            "refine pass not measured"
        )
    if notes:
        result["notes"] = notes
    write_json(LATENCY, result)
    write_json(HEADLINE_LATENCY, headline_latency(result))
    return result


def headline_latency(result: dict) -> dict:
    """The few latency figures `dvc metrics show` lists: each model's end-to-end p50 (model-only
    where end-to-end was not measured; the heatmap model's refine pass where measured) and the
    heatmap model's as a fraction of YOLO's."""
    out = {"target": result["target"]}
    for name in ("heatmap", "heatmap_refine", "yolo"):
        stats = result.get(name) or {}
        value = stats.get("e2e_p50_ms", stats.get("model_p50_ms"))
        if value is not None:
            out[f"{name}_p50_ms"] = round(float(value), 3)
    if "heatmap_p50_ms" in out and "yolo_p50_ms" in out:
        out["heatmap_vs_yolo"] = round(out["heatmap_p50_ms"] / out["yolo_p50_ms"], 3)
    return out
