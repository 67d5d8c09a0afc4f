"""Speed by design: latency, parameters and MACs of heatmap-network variants beside the YOLO
baseline, all measured in one run on the same runtime (ONNX Runtime, batch 1).

The variants' latency does not depend on their weights, so each is exported from a seeded
random initialisation; trained models (the default fp32 and INT8 files, YOLO) are measured from
their files. Models are measured in interleaved rounds so that drifts of the machine's speed
affect all of them alike; each figure is the median over rounds.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.codec import codec_for_model
from ..core.io import atomic_path, write_json
from ..core.paths import HEATMAP_INT8_ONNX, HEATMAP_ONNX, IMAGE_CACHE, REPORTS, YOLO_ONNX
from ..deploy.export import export_onnx
from ..model.checkpoint import save_checkpoint
from ..model.network import build_model
from ..runtime import Predictor, load_predictor
from .latency import LATENCY_KEYS, measure_latency


def count_macs(model: nn.Module, input_size: int = 224) -> int:
    """Multiply-accumulates of one (1, 3, S, S) forward pass through convolutions and linear layers."""
    total = 0

    def hook(m, inputs, output):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += output.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.ConvTranspose2d):
            total += inputs[0].numel() * (m.out_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, input_size, input_size))
    for h in handles:
        h.remove()
    return total


def export_variant(model_cfg: dict, codec_cfg: dict, onnx_path: Path, seed: int = 0) -> dict:
    """Exports a seeded random-weight network of ``model_cfg`` to ONNX; returns its size figures."""
    torch.manual_seed(seed)
    model = build_model(model_cfg)
    model.train()
    with torch.no_grad():  # BatchNorm statistics of real scale: untrained ones give denormal activations, slow on CPU
        for _ in range(3):
            model(torch.rand(8, 3, 224, 224) * 255)
    model.eval()
    codec = codec_for_model(model_cfg, codec_cfg)
    ckpt = Path(onnx_path).with_suffix(".pt")
    save_checkpoint(ckpt, model_cfg, codec, model.state_dict())
    export_onnx(ckpt, onnx_path)
    return {"params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3), "macs_m": round(count_macs(model) / 1e6, 1),
            "heatmap_size": codec.heatmap_size}


def measure_interleaved(predictors: dict[str, Predictor], images: list[np.ndarray], warmup: int, iterations: int, rounds: int) -> dict[str, dict]:
    """Latency of every predictor, ``rounds`` interleaved rounds of ``iterations / rounds`` runs
    each; every key is the median over rounds."""
    per_round = max(1, iterations // rounds)
    runs: dict[str, list[dict]] = {name: [] for name in predictors}
    for _ in range(rounds):
        for name, predictor in predictors.items():
            runs[name].append(measure_latency(predictor, images, warmup, per_round))
    return {name: {k: round(float(np.median([r[k] for r in rs])), 4) for k in LATENCY_KEYS} for name, rs in runs.items()}


def speed_table(variants: dict[str, dict], base_model: dict, codec_cfg: dict, files: dict[str, Path], images: list[np.ndarray],
                threads: int, warmup: int, iterations: int, rounds: int, reference: str = "yolo") -> dict[str, dict]:
    """One row per variant (``base_model`` updated with the variant's keys, random weights) and
    per model file in ``files`` (name -> ONNX path), with latency, parameters (M), MACs (M) and
    ``e2e_p50_vs_<reference>``: the end-to-end p50 as a fraction of the reference's."""
    rows: dict[str, dict] = {}
    predictors: dict[str, Predictor] = {}
    with tempfile.TemporaryDirectory(prefix="handkp-speed-") as tmp:
        for name, overrides in variants.items():
            cfg = {**base_model, **overrides}
            onnx_path = Path(tmp) / f"{name}.onnx"
            rows[name] = {"kind": "variant", **{k: cfg[k] for k in ("backbone_tail", "head", "deconv_layers", "deconv_channels")},
                          **export_variant(cfg, codec_cfg, onnx_path)}
            predictors[name] = load_predictor(onnx_path, "onnxruntime", "cpu", threads)
        for name, path in files.items():
            rows[name] = {"kind": "file", "file": str(path)}
            predictors[name] = load_predictor(path, "onnxruntime", "cpu", threads)
        latency = measure_interleaved(predictors, images, warmup, iterations, rounds)
    ref = latency[reference]["e2e_p50_ms"] if reference in latency else None
    for name, stats in latency.items():
        rows[name].update(stats)
        if ref:
            rows[name][f"e2e_p50_vs_{reference}"] = round(stats["e2e_p50_ms"] / ref, 3)
    return rows


SPEED = REPORTS / "speed" / "speed.json"
VARIANTS_CSV = REPORTS / "speed" / "variants.csv"
CSV_COLUMNS = ("kind", "backbone_tail", "head", "deconv_layers", "deconv_channels", "params_m", "macs_m",
               "model_p50_ms", "e2e_p50_ms", "e2e_p99_ms", "e2e_p50_vs_yolo")


def run_speed(params: dict) -> dict:
    """The speed stage: latency (CPU, ONNX Runtime, batch 1), parameters and MACs of the head
    variants in ``speed.variants``, the trained default (fp32 and INT8) and the YOLO baseline, in
    one run -> reports/speed/speed.json, reports/speed/variants.csv."""
    import polars as pl

    from ..data.cache import ImageCache
    from ..core.device import cpu_model_name

    cfg, bench = params["speed"], params["benchmark"]
    files = {"default_fp32": HEATMAP_ONNX, "default_int8": HEATMAP_INT8_ONNX, "yolo": YOLO_ONNX}
    images = ImageCache(IMAGE_CACHE).pick("val", bench["images"])
    rows = speed_table(cfg["variants"], params["model"], params["codec"], files, images, bench["threads"],
                       bench["warmup"], bench["iterations"], cfg["rounds"])
    out = {"runtime": "onnxruntime", "device": cpu_model_name(), "threads": bench["threads"], "rows": rows}
    write_json(SPEED, out)
    table = pl.DataFrame([{"name": k, **{c: v.get(c) for c in CSV_COLUMNS}} for k, v in rows.items()])
    with atomic_path(VARIANTS_CSV) as tmp:
        table.write_csv(tmp)
    for name, row in rows.items():
        print(f"{name:28s} e2e p50 {row['e2e_p50_ms']:6.2f} ms  p99 {row['e2e_p99_ms']:6.2f} ms  x{row.get('e2e_p50_vs_yolo', float('nan')):.2f} of YOLO")
    return out
