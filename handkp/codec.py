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
        and target weights (K,) float32 (0 for keypoints not visible or outside the image)."""
        kp = np.asarray(keypoints, dtype=np.float64)
        inside = (kp[:, 0] >= 0) & (kp[:, 0] < self.input_size) & (kp[:, 1] >= 0) & (kp[:, 1] < self.input_size)
        weights = (np.asarray(visible, dtype=bool) & inside).astype(np.float32)
        centres = kp / self.stride - 0.5  # (K, 2) in cell-index space
        grid = np.arange(self.heatmap_size, dtype=np.float64)
        gx = np.exp(-((grid[None, :] - centres[:, 0:1]) ** 2) / (2 * self.sigma**2))  # (K, W)
        gy = np.exp(-((grid[None, :] - centres[:, 1:2]) ** 2) / (2 * self.sigma**2))  # (K, H)
        heatmaps = (gy[:, :, None] * gx[:, None, :]).astype(np.float32)
        heatmaps *= weights[:, None, None]
        return heatmaps, weights

    # ---- decode -------------------------------------------------------------------------
    def decode(self, heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """heatmaps (N, K, H, W) -> keypoints (N, K, 2) px in the network input, scores (N, K)
        (the heatmap maximum)."""
        hm = np.asarray(heatmaps, dtype=np.float32)
        n, k, h, w = hm.shape
        flat = hm.reshape(n * k, h, w)
        idx = flat.reshape(n * k, -1).argmax(axis=1)
        scores = flat.reshape(n * k, -1).max(axis=1)
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
        r = max(2, int(round(self.sigma)))
        d = np.arange(-r, r + 1)
        dy, dx = np.meshgrid(d, d, indexing="ij")
        dx, dy = dx.ravel().astype(np.float64), dy.ravel().astype(np.float64)  # (S,)
        xs, ys = px[:, None] + dx[None, :].astype(int), py[:, None] + dy[None, :].astype(int)  # (M, S)
        inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
        vals = flat[np.arange(m)[:, None], ys.clip(0, h - 1), xs.clip(0, w - 1)].astype(np.float64)
        weights = np.where(inside, np.maximum(vals, 0.0), 0.0)
        logs = np.log(np.maximum(vals, 1e-10))
        design = np.stack([np.ones_like(dx), dx, dy, dx * dx, dy * dy, dx * dy], axis=1)  # (S, 6)
        ata = np.einsum("ms,si,sj->mij", weights, design, design) + 1e-9 * np.eye(6)
        atb = np.einsum("ms,si,ms->mi", weights, design, logs)
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


def codec_for_model(model_cfg: dict, codec_cfg: dict, input_size: int = 224) -> HeatmapCodec:
    """The codec matching a model built from ``model_cfg``: the heatmap side follows from the
    number of ×2 upsampling steps on MobileNetV3's stride-32 features."""
    steps = int(model_cfg["deconv_layers"])
    return HeatmapCodec(input_size=input_size, heatmap_size=input_size * 2**steps // 32, sigma=float(codec_cfg["sigma"]))
