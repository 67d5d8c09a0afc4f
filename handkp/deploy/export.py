"""Export of the trained heatmap network to ONNX, and the parity check of what was exported.

    export_onnx("models/heatmap/best.pt", "models/heatmap.onnx")    # simplified, with handkp metadata
    export_variant(model_cfg, codec_cfg, Path("variant.onnx"))      # a seeded random-weight network, for its speed

The ONNX file carries the metadata that ``handkp.runtime.load_predictor`` reads
(``handkp_kind=heatmap``, ``handkp_codec=<json>``, ``handkp_input``), so the file alone is a
deployable model. Its parity with PyTorch is checked by ``handkp.deploy.parity``.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import HandkpError
from ..core.io import atomic_path, write_json
from ..core.paths import EXPORT_METRICS, HEATMAP_CHECKPOINT, HEATMAP_ONNX, IMAGE_CACHE
from ..runtime.model_file import (
    INPUT_RGB_PIXELS,
    ONNX_META_CODEC,
    ONNX_META_INPUT,
    ONNX_META_KIND,
    ONNX_META_MODEL_CONFIG,
)

INPUT_NAME = "image"
OUTPUT_NAME = "heatmaps"
MIN_OPSET = 17

if TYPE_CHECKING:
    from torch import nn


class ExportError(HandkpError):
    """The network could not be exported, simplified or checked."""


def export_onnx(
    checkpoint_path: str | Path,
    onnx_path: str | Path,
    opset: int = 17,
    dynamic_batch: bool = False,
    simplify: bool = True,
) -> Path:
    """A handkp heatmap checkpoint (``models/heatmap/best.pt``) -> an ONNX file.

    Input ``image`` (1, 3, S, S) float32 RGB pixel values 0–255 (batch ``batch`` when
    ``dynamic_batch``; the graph normalises them), output ``heatmaps`` (1, 21, H, H); simplified
    with onnxsim when ``simplify``; metadata props ``handkp_kind``, ``handkp_codec``,
    ``handkp_input`` and ``handkp_model_config``. Written atomically (a
    temporary file beside ``onnx_path``, renamed when complete). Returns ``onnx_path``."""
    import onnx
    import torch

    from ..model.checkpoint import load_checkpoint

    if int(opset) < MIN_OPSET:
        raise ExportError(f"export.opset {opset} is too old: opset >= {MIN_OPSET} is needed")
    checkpoint_path, onnx_path = Path(checkpoint_path), Path(onnx_path)
    model, codec, ckpt = load_checkpoint(checkpoint_path)
    model, model_config = model.float().eval(), ckpt.get("model_config", {})
    dummy = torch.zeros(1, 3, codec.input_size, codec.input_size, dtype=torch.float32)
    dynamic_axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None

    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{onnx_path.name}.", dir=onnx_path.parent) as tmp:
        raw_path = Path(tmp) / "raw.onnx"
        try:
            with warnings.catch_warnings():
                # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
                # onnxscript; for this plain conv net both give the same graph.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                torch.onnx.export(
                    model,
                    (dummy,),
                    str(raw_path),
                    dynamo=False,
                    opset_version=int(opset),
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    dynamic_axes=dynamic_axes,
                    do_constant_folding=True,
                )
        except Exception as err:
            raise ExportError(f"{checkpoint_path}: torch.onnx.export failed ({err})") from err
        proto = onnx.load(str(raw_path))
        if simplify:
            proto = _simplify(proto, checkpoint_path)
        del proto.metadata_props[:]
        for key, value in (
            (ONNX_META_KIND, "heatmap"),
            (ONNX_META_CODEC, json.dumps(codec.to_dict())),
            (ONNX_META_INPUT, INPUT_RGB_PIXELS),
            (ONNX_META_MODEL_CONFIG, json.dumps(model_config, sort_keys=True)),
        ):
            prop = proto.metadata_props.add()
            prop.key, prop.value = key, value
        proto.doc_string = f"handkp heatmap network exported from {checkpoint_path.name}"
        try:
            onnx.checker.check_model(proto)
        except Exception as err:
            raise ExportError(f"{onnx_path}: the exported graph fails onnx.checker ({err})") from err
        with atomic_path(onnx_path) as out_tmp:
            onnx.save(proto, str(out_tmp))
    return onnx_path


def _simplify(proto, source: Path):
    import onnxsim

    try:
        simplified, ok = onnxsim.simplify(proto)
    except Exception as err:
        raise ExportError(f"{source}: onnxsim failed to simplify the exported graph ({err})") from err
    if not ok:
        raise ExportError(f"{source}: onnxsim could not validate the simplified graph against the original")
    return simplified


def onnx_summary(onnx_path: str | Path) -> dict:
    """``opset``, ``onnx_size_mb``, ``onnx_nodes`` of an ONNX file (for the export metrics)."""
    import onnx

    proto = onnx.load(str(onnx_path), load_external_data=False)
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return {
        "opset": int(opset),
        "onnx_size_mb": round(Path(onnx_path).stat().st_size / 2**20, 3),
        "onnx_nodes": len(proto.graph.node),
    }


def count_macs(model: nn.Module, input_size: int = 224) -> int:
    """Multiply-accumulates of one (1, 3, S, S) forward pass through convolutions and linear layers."""
    import torch
    from torch import nn

    total = 0

    def hook(m, inputs, output):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += output.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.ConvTranspose2d):
            total += inputs[0].numel() * (m.out_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
    ]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, input_size, input_size))
    for h in handles:
        h.remove()
    return total


def export_variant(model_cfg: dict, codec_cfg: dict, onnx_path: Path, seed: int = 0) -> dict:
    """Exports a seeded random-weight network of ``model_cfg`` to ONNX; returns its size figures."""
    import torch

    from ..core.codec import codec_for_model
    from ..model.checkpoint import save_checkpoint
    from ..model.network import build_model

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
    return {
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
        "macs_m": round(count_macs(model) / 1e6, 1),
        "heatmap_size": codec.heatmap_size,
    }


def run_export(params: dict) -> dict:
    """The export stage: models/heatmap/best.pt -> models/heatmap.onnx, checked against PyTorch on
    ``export.parity_images`` val images -> reports/deploy/export.json. Raises ParityError, leaving
    no ONNX file, when parity is worse than ``export.tolerance_heatmap`` / ``export.tolerance_px``."""
    import torch

    from ..data.cache import ImageCache
    from ..runtime import load_predictor
    from .parity import check_parity, compare_predictors

    cfg = params["export"]
    torch.set_num_threads(int(cfg.get("torch_threads", 1)))  # the PyTorch reference of the parity check
    images = ImageCache(IMAGE_CACHE).pick("val", int(cfg["parity_images"]))
    with atomic_path(HEATMAP_ONNX) as candidate:
        export_onnx(
            HEATMAP_CHECKPOINT,
            candidate,
            opset=int(cfg["opset"]),
            dynamic_batch=bool(cfg["dynamic_batch"]),
            simplify=bool(cfg["simplify"]),
        )
        metrics = compare_predictors(
            load_predictor(HEATMAP_CHECKPOINT, "torch", "cpu"),
            load_predictor(candidate, "onnxruntime", "cpu"),
            images,
            min_score=float(cfg["parity_min_score"]),
        )
        metrics.update(onnx_summary(candidate))
        write_json(EXPORT_METRICS, metrics)
        print(json.dumps(metrics, indent=2))
        check_parity(metrics, float(cfg["tolerance_heatmap"]), float(cfg["tolerance_px"]))
    print(f"wrote {HEATMAP_ONNX} ({metrics['onnx_size_mb']:.1f} MB, opset {metrics['opset']})")
    return metrics
