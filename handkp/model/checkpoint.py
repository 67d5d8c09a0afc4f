"""The one checkpoint format of the heatmap network (``models/heatmap/best.pt`` and every file
made like it): what training writes, what the torch backend, the export and the speed stage read.

    {"model_config": params' model section, "codec": HeatmapCodec fields, "state_dict": weights,
     ...extra (epoch, dev_metrics, params)}
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.codec import HeatmapCodec
from ..core.errors import ModelLoadError
from ..core.io import atomic_path
from .network import HeatmapNet, build_model


def save_checkpoint(path: str | Path, model_config: dict, codec: HeatmapCodec, state_dict: dict, **extra) -> Path:
    """Writes a heatmap checkpoint atomically (tensors moved to the CPU); returns ``path``."""
    state = {
        "model_config": model_config,
        "codec": codec.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        **extra,
    }
    return save_torch(path, state)


def save_torch(path: str | Path, obj) -> Path:
    """``torch.save`` atomically, through a file object: the archive's inner folder is then
    ``archive/``, not the temporary file's random name, so the same object gives the same bytes
    (and DVC the same hash) every time it is written; returns ``path``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
    return Path(path)


def load_checkpoint(path: str | Path) -> tuple[HeatmapNet, HeatmapCodec, dict]:
    """(network with its weights, in eval mode; codec; the whole checkpoint dict).
    ModelLoadError when the file is not a handkp heatmap checkpoint."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        model = build_model(ckpt["model_config"])
        model.load_state_dict(ckpt["state_dict"])
        codec = HeatmapCodec(**ckpt["codec"])
    except Exception as err:  # a truncated or foreign file fails in many ways
        raise ModelLoadError(f"{path}: not a handkp heatmap checkpoint ({err})") from err
    return model.eval(), codec, ckpt
