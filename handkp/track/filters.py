"""The One Euro filter (Casiez, Roussel & Vogel, CHI 2012) on keypoints: an adaptive low-pass
filter whose cutoff rises with the signal's speed, so a still hand stops jittering and a moving
hand does not lag.

Per sample (x at time t, dt = t - the previous t):

    dx      = (x - x̂_prev) / dt                      the raw speed
    dx̂      = dx̂_prev + α(d_cutoff, dt) · (dx - dx̂_prev)   the speed, low-passed
    cutoff  = min_cutoff + beta · |dx̂|
    x̂       = x̂_prev + α(cutoff, dt) · (x - x̂_prev)

with α(fc, dt) = 1 / (1 + τ / dt), τ = 1 / (2π fc) (``smoothing_factor``). Every element of the
array is its own channel (x and y of each keypoint, as MediaPipe filters each coordinate).
Units: t in seconds, cutoffs in Hz, beta in Hz per (unit of x)/s — px/s for keypoints in px.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def smoothing_factor(cutoff: float | np.ndarray, dt: float) -> float | np.ndarray:
    """α = 1 / (1 + τ / dt), τ = 1 / (2π · cutoff): the weight of the new sample in an
    exponential smoother of cutoff frequency ``cutoff`` Hz sampled every ``dt`` s."""
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


@dataclass(frozen=True)
class OneEuroSettings:
    """The filter's three parameters. Defaults for keypoints in px at camera rates: a still point
    is low-passed near 1 Hz (2 px of jitter at 30 fps comes out 7× lower in variance); at 300 px/s
    the cutoff reaches 1 + 0.02 · 300 = 7 Hz (a lag of ~5 px at 30 fps)."""

    min_cutoff: float = 1.0  # Hz
    beta: float = 0.02  # Hz per px/s
    d_cutoff: float = 1.0  # Hz, the speed's own low-pass


class OneEuroFilter:
    """One Euro filter over arrays of a fixed shape, e.g. keypoints (K, 2).

    ``f(x, t)`` returns the filtered x (float64, x's shape). The first sample (after construction
    or ``reset()``) comes back as it is. A sample with any NaN (a hand not found) resets the filter
    and comes back as it is. A repeated time (dt = 0) changes nothing and returns the last output;
    a time that goes back (dt < 0: a new stream) restarts the filter at this sample."""

    def __init__(
        self,
        min_cutoff: float = OneEuroSettings.min_cutoff,
        beta: float = OneEuroSettings.beta,
        d_cutoff: float = OneEuroSettings.d_cutoff,
    ):
        if not (min_cutoff > 0 and d_cutoff > 0 and beta >= 0):
            raise ValueError(
                f"One Euro filter needs min_cutoff > 0, d_cutoff > 0, beta >= 0; got {min_cutoff}, {d_cutoff}, {beta}"
            )
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample starts the filter afresh."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t = 0.0

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.array(x, dtype=np.float64)
        if not np.isfinite(x).all():
            self.reset()
            return x
        if self._x is not None and x.shape != self._x.shape:
            raise ValueError(f"the filter holds shape {self._x.shape}, got a sample of shape {x.shape}")
        dt = t - self._t
        if self._x is None or dt < 0:
            self._x, self._dx, self._t = x, np.zeros_like(x), t
            return x.copy()
        if dt == 0:
            return self._x.copy()
        speed = (x - self._x) / dt
        self._dx = self._dx + smoothing_factor(self.d_cutoff, dt) * (speed - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + smoothing_factor(cutoff, dt) * (x - self._x)
        self._t = t
        return self._x.copy()
