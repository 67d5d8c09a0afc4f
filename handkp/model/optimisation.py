"""What the optimiser needs beyond AdamW: the learning-rate schedule, EMA weights, "precise
BatchNorm" statistics for the EMA weights, and the four together with the network being trained
(``Optimisation``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


def lr_factor(step: int, total: int, warmup: int, min_ratio: float, flat: int = 0) -> float:
    """The learning rate of optimiser step ``step`` (0-based) as a fraction of its peak: a linear
    warm-up to 1 over ``warmup`` steps, 1 until step ``flat`` (counted from the start; at most
    ``warmup``: no flat part), then a cosine decay to ``min_ratio`` at step ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    if step < flat:
        return 1.0
    decay_start = max(warmup, flat)
    progress = (step - decay_start) / max(1, total - decay_start)
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


@dataclass
class Optimisation:
    """The network being trained, its EMA weights, AdamW and the learning-rate schedule (per step)."""

    model: nn.Module
    ema: EMA
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR

    def load(self, state: dict) -> None:
        """Continues from a saved run state."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.ema.state, self.ema.updates = state["ema"], state["ema_updates"]
