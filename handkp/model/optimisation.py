"""What the optimiser needs beyond AdamW: the learning-rate schedule, EMA weights, and "precise
BatchNorm" statistics for the EMA weights."""

from __future__ import annotations

import math

import torch
from torch import nn


def lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_ratio``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


class EMA:
    """Exponential moving average of a model's parameters and buffers, with the usual warm-up
    (decay grows from 0.1 to ``decay`` over the first steps)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay, self.updates = decay, 0
        self.state = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.state[k].mul_(d).add_(v.detach().float(), alpha=1 - d)
            else:
                self.state[k].copy_(v)


def recalibrate_batchnorm(model: nn.Module, batches, device: torch.device) -> None:
    """Precise BN: recomputes every BatchNorm's running statistics as the exact average over
    ``batches`` of (N, 3, S, S) inputs for the model's current weights (EMA weights with
    averaged running statistics would not match). Leaves the model in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for x in batches:
            model(x.to(device, non_blocking=True))
    for bn, momentum in zip(norms, momenta):
        bn.momentum = momentum
    model.eval()
