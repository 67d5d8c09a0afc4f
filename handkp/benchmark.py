"""Batch-1 latency of a runtime Predictor, model-only and end-to-end.

    stats = measure_latency(predictor, images, warmup=20, iterations=200)
    # {"model_p50_ms", "model_p90_ms", "model_p99_ms", "model_fps",
    #  "e2e_p50_ms", "e2e_p90_ms", "e2e_p99_ms", "e2e_fps", "iterations", "warmup"}

model-only: ``predictor.infer`` on an already pre-processed (1, 3, S, S) input (the network and
its backend's host<->device copies); end-to-end: ``predictor.predict`` from an RGB uint8 image to
keypoints in image px (pre-processing + network + decode). Images are cycled through; each part has
its own untimed warm-up. FPS is sequential batch-1 throughput: iterations / total timed seconds.
"""
from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np

from .runtime import Predictor

LATENCY_KEYS = ("model_p50_ms", "model_p90_ms", "model_p99_ms", "model_fps",
                "e2e_p50_ms", "e2e_p90_ms", "e2e_p99_ms", "e2e_fps")


def _stats(prefix: str, times_s: list[float]) -> dict:
    ms = np.asarray(times_s, dtype=np.float64) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {f"{prefix}_p50_ms": round(float(p50), 4), f"{prefix}_p90_ms": round(float(p90), 4),
            f"{prefix}_p99_ms": round(float(p99), 4), f"{prefix}_fps": round(float(len(ms) / (ms.sum() / 1e3)), 2)}


def measure_latency(predictor: Predictor, images: list[np.ndarray], warmup: int = 20, iterations: int = 200) -> dict:
    """Latency percentiles (ms) and FPS of ``predictor`` at batch 1 on ``images`` (RGB uint8 HWC)."""
    if not images:
        raise ValueError("measure_latency needs at least one image")
    if iterations < 1 or warmup < 0:
        raise ValueError(f"iterations must be >= 1 and warmup >= 0, got {iterations}, {warmup}")
    inputs = [predictor.preprocess(im)[0] for im in images]
    clock = time.perf_counter

    for i in range(warmup):
        predictor.infer(inputs[i % len(inputs)])
    model_times = []
    for i in range(iterations):
        x = inputs[i % len(inputs)]
        t0 = clock()
        predictor.infer(x)
        model_times.append(clock() - t0)

    for i in range(warmup):
        predictor.predict(images[i % len(images)])
    e2e_times = []
    for i in range(iterations):
        im = images[i % len(images)]
        t0 = clock()
        predictor.predict(im)
        e2e_times.append(clock() - t0)
    return {**_stats("model", model_times), **_stats("e2e", e2e_times), "iterations": int(iterations), "warmup": int(warmup)}


def latency_from_trtexec(metrics: dict) -> dict:
    """Our latency keys from trtexec's parsed performance summary (``handkp.remote.parse_trtexec_log``):
    model-only = trtexec's "Latency" (H2D + GPU compute + D2H per batch-1 query), p50 = its median,
    FPS = its throughput. End-to-end is not measured by trtexec, so there are no ``e2e_*`` keys."""
    pairs = {"model_p50_ms": "latency_median_ms", "model_p90_ms": "latency_p90_ms",
             "model_p99_ms": "latency_p99_ms", "model_fps": "throughput_qps"}
    out = {ours: float(metrics[theirs]) for ours, theirs in pairs.items() if theirs in metrics}
    if "model_p50_ms" not in out:
        raise ValueError("trtexec summary without a latency median: cannot report latency")
    out["source"] = "trtexec"
    return out


def cpu_model_name(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name from /proc/cpuinfo ("model name", or "Model"/"Hardware" on ARM),
    else what ``platform`` knows."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        text = ""
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        for line in text.splitlines():
            k, sep, v = line.partition(":")
            if sep and k.strip() == key and v.strip():
                return " ".join(v.split())
    return platform.processor() or platform.machine() or "unknown CPU"


def device_description(predictor: Predictor) -> str:
    """Where ``predictor`` runs: the GPU's name for CUDA / TensorRT, else the CPU model name."""
    run = predictor.run
    on_gpu = predictor.backend == "tensorrt"
    session = getattr(run, "session", None)
    if session is not None:
        on_gpu = session.get_providers()[0] == "CUDAExecutionProvider"
    device = getattr(run, "device", None)
    if getattr(device, "type", None) == "cuda":
        on_gpu = True
    if on_gpu:
        import torch

        return torch.cuda.get_device_name(device if getattr(device, "type", None) == "cuda" else 0)
    return cpu_model_name()
