"""The heatmap codec: keypoints (px) <-> Gaussian heatmaps, one object for training,
evaluation and every runtime.

Coordinates are continuous image pixels: the image spans [0, W) and pixel ``i`` covers
[i, i+1). Heatmap cell ``j`` covers image pixels [j*stride, (j+1)*stride), so a point at
``x`` px sits at ``x / stride - 0.5`` in cell-index space (cell centres are integers). Encode
and decode use that one mapping, so a round trip has no half-pixel bias.

Decoding follows DARK (Zhang et al., CVPR 2020): argmax, then one Newton step on the
log-heatmap for the sub-cell offset, its derivatives from a weighted quadratic fit around the peak.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class HeatmapCodec:
    """input_size: network input side (px); heatmap_size: heatmap side (cells);
    sigma: Gaussian std in heatmap cells."""

    input_size: int = 224
    heatmap_size: int = 56
    sigma: float = 2.0

    @property
    def stride(self) -> float:
        """Image pixels per heatmap cell."""
        return self.input_size / self.heatmap_size

    def to_dict(self) -> dict:
        return asdict(self)

    # ---- encode -------------------------------------------------------------------------
    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """keypoints (K, 2) px, visible (K,) bool -> heatmaps (K, H, H) float32 in [0, 1]
        and target weights (K,) float32: 1 for every labelled keypoint, 0 for unlabelled ones.
        A keypoint outside the image keeps its weight: its target is the part of its Gaussian
        that falls inside (nothing, far out), so the network learns to show no peak for it."""
        kp = np.asarray(keypoints, dtype=np.float64)
        weights = np.asarray(visible, dtype=bool).astype(np.float32)
        centres = kp / self.stride - 0.5  # (K, 2) in cell-index space
        grid = np.arange(self.heatmap_size, dtype=np.float64)
        gx = np.exp(-((grid[None, :] - centres[:, 0:1]) ** 2) / (2 * self.sigma**2))  # (K, W)
        gy = np.exp(-((grid[None, :] - centres[:, 1:2]) ** 2) / (2 * self.sigma**2))  # (K, H)
        heatmaps = (gy[:, :, None] * gx[:, None, :]).astype(np.float32)
        heatmaps *= weights[:, None, None]
        return heatmaps, weights

    def empty(self, num_keypoints: int) -> tuple[np.ndarray, np.ndarray]:
        """The targets of an image without a hand: all-zero heatmaps (K, H, H), every weight 1."""
        return (
            np.zeros((num_keypoints, self.heatmap_size, self.heatmap_size), np.float32),
            np.ones(num_keypoints, np.float32),
        )

    # ---- decode -------------------------------------------------------------------------
    def decode(self, heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """heatmaps (N, K, H, W) -> keypoints (N, K, 2) px in the network input, scores (N, K)
        (the heatmap maximum)."""
        hm = np.asarray(heatmaps, dtype=np.float32)
        n, k, h, w = hm.shape
        flat = hm.reshape(n * k, h, w)
        cells = hm.reshape(n * k, h * w)
        idx = cells.argmax(axis=1)
        scores = np.take_along_axis(cells, idx[:, None], axis=1)[:, 0]
        py, px = np.divmod(idx, w)
        offsets = self._dark_offsets(flat, px, py)
        coords = np.stack([px, py], axis=1).astype(np.float64) + offsets
        keypoints = (coords + 0.5) * self.stride
        return keypoints.reshape(n, k, 2).astype(np.float32), scores.reshape(n, k).astype(np.float32)

    def _dark_offsets(self, flat: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
        """Sub-cell offsets (M, 2) of the maxima of (M, H, W) heatmaps at integer peaks (px, py).

        A quadratic is fitted to the log-heatmap in a (2r+1)² window around each peak by
        least squares weighted with the heatmap values (cells outside the map get weight 0,
        so peaks at the border need no padding), and the offset is that quadratic's maximum:
        DARK's Newton step, with the window fit doing the smoothing. Exact for a Gaussian."""
        m, h, w = flat.shape
        dx, dy, design, design_outer = _quadratic_window(max(2, int(round(self.sigma))))
        xs, ys = px[:, None] + dx, py[:, None] + dy  # (M, S) cell indices of each window
        inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        cells = ys.clip(0, h - 1) * w + xs.clip(0, w - 1)
        vals = np.take_along_axis(flat.reshape(m, h * w), cells, axis=1).astype(np.float64)
        weights = np.where(inside, np.maximum(vals, 0.0), 0.0)
        logs = np.log(np.maximum(vals, 1e-10))
        # Normal equations of the weighted fit: AᵀWA (M, 6, 6) and AᵀW·log (M, 6).
        ata = (weights @ design_outer).reshape(m, 6, 6) + 1e-9 * np.eye(6)
        atb = (weights * logs) @ design
        _, bx, by, axx, ayy, axy = np.linalg.solve(ata, atb[..., None])[..., 0].T
        hxx, hyy, hxy = 2 * axx, 2 * ayy, axy
        det = hxx * hyy - hxy**2
        enough = (weights > 0).sum(axis=1) >= 6  # a quadratic has 6 coefficients
        concave = (hxx < 0) & (det > 1e-12) & enough
        safe = np.where(concave, det, 1.0)
        ox = -(hyy * bx - hxy * by) / safe
        oy = -(hxx * by - hxy * bx) / safe
        offsets = np.stack([ox, oy], axis=1) * concave[:, None]
        return np.clip(offsets, -1.0, 1.0)


@functools.lru_cache(maxsize=8)
def _quadratic_window(r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The (2r+1)² fitting window: integer offsets dx, dy (S,), the design matrix A (S, 6) of
    the quadratic 1, x, y, x², y², xy, and its row outer products (S, 36)."""
    d = np.arange(-r, r + 1)
    dy, dx = (a.ravel() for a in np.meshgrid(d, d, indexing="ij"))
    fx, fy = dx.astype(np.float64), dy.astype(np.float64)
    design = np.stack([np.ones_like(fx), fx, fy, fx * fx, fy * fy, fx * fy], axis=1)
    return dx, dy, design, np.einsum("si,sj->sij", design, design).reshape(-1, 36)


def codec_for_model(model_cfg: dict, codec_cfg: dict, input_size: int = 224) -> HeatmapCodec:
    """The codec matching a model built from ``model_cfg``: the heatmap side follows from the
    number of ×2 upsampling steps on MobileNetV3's stride-32 features."""
    steps = int(model_cfg["deconv_layers"])
    return HeatmapCodec(
        input_size=input_size, heatmap_size=input_size * 2**steps // 32, sigma=float(codec_cfg["sigma"])
    )
