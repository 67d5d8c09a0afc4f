"""Training batches: images from the decoded-image cache, augmented, with their heatmap targets,
drawn in a seeded order; hand-free images mixed in.

Every random choice of a sample (augmentation, whether it becomes a hand-free image, which other
hand of the split is pasted beside its hand) comes from a generator seeded by (seed, epoch,
index), so a run is the same whatever the number of loader workers, and a resumed run draws what
the uninterrupted one would have drawn."""

from __future__ import annotations

from functools import partial

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..core.codec import HeatmapCodec
from ..core.roi import palm_size
from ..data.augment import AugmentConfig, augment
from ..data.crops import has_palm
from ..data.negatives import hand_free_image

MIN_DONORS = 64  # the other hands to draw from never fewer than this many (the largest palms)


class HeatmapDataset(Dataset):
    """Images of one split with their heatmap targets.

    pixels (N, S, S, 3) uint8 (the image cache's memory map of the split), keypoints (N, K, 3)
    px / visibility. Item: x (3, S, S) uint8 RGB pixels, heatmaps (K, H, H) float32, weights (K,)
    float32. With ``aug`` the image is augmented, and with probability ``negative_fraction`` it
    is replaced by a hand-free image of the same scene (all-zero targets, every weight 1). The
    other hands that ``aug.other_hand`` pastes come from the split's other items with a palm
    (``handkp.data.crops.has_palm``; ``donor``); a hand-free image gets none."""

    def __init__(
        self,
        pixels: np.ndarray,
        keypoints: np.ndarray,
        codec: HeatmapCodec,
        aug: AugmentConfig | None,
        seed: int,
        negative_fraction: float = 0.0,
    ):
        self.pixels, self.keypoints, self.codec, self.aug = pixels, keypoints, codec, aug
        self.seed, self.negative_fraction, self.epoch = seed, negative_fraction, 0
        # Items another hand can come from (``aug.other_hand``; ``aug`` may change between
        # epochs): those with a palm (``has_palm``), sorted by palm size (px), so that ``donor``
        # can draw among hands large enough.
        pool = np.array(
            [j for j in range(len(keypoints)) if has_palm(keypoints[j, :, :2], keypoints[j, :, 2] > 0)], np.int64
        )
        palms = np.array([palm_size(keypoints[j, :, :2]) for j in pool], dtype=np.float64)
        order = np.argsort(palms, kind="stable")
        self.donors, self.donor_palms = pool[order], palms[order]

    def __len__(self) -> int:
        return len(self.pixels)

    def augmented(self, i: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(image (S, S, 3) uint8, keypoints (K, 2) px or None for a hand-free image, visible
        (K,) bool) of item ``i`` in the current epoch: what ``sample`` encodes."""
        image = np.asarray(self.pixels[i])
        kp, visible = self.keypoints[i, :, :2], self.keypoints[i, :, 2] > 0
        if self.aug is None:
            return image, kp, visible
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if self.negative_fraction > 0 and rng.random() < self.negative_fraction:
            image = hand_free_image(image, kp, rng)
            image, _ = augment(image, kp, self.aug, rng, visible)
            return image, None, visible
        image, kp = augment(image, kp, self.aug, rng, visible, partial(self.donor, i))
        return image, kp, visible

    def donor(
        self, i: int, rng: np.random.Generator, min_palm: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Another hand for item ``i`` (``handkp.data.augment.Donor``): an item of ``donors``
        other than ``i`` with a palm of at least ``min_palm`` px (or, where fewer than
        ``MIN_DONORS`` have one, among the ``MIN_DONORS`` largest palms), drawn uniformly from
        ``rng``, as (image, keypoints (K, 2) px, visible (K,) bool); None when there is none."""
        start = min(int(np.searchsorted(self.donor_palms, min_palm)), max(len(self.donors) - MIN_DONORS, 0))
        candidates = self.donors[start:]
        own = bool(np.any(candidates == i))
        if len(candidates) - own < 1:
            return None
        j = int(candidates[rng.integers(len(candidates) - own)])
        if j == i:  # i's slot stands for the last candidate, which the draw above left out
            j = int(candidates[-1])
        return np.asarray(self.pixels[j]), self.keypoints[j, :, :2], self.keypoints[j, :, 2] > 0

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image (S, S, 3) uint8, heatmaps, weights) of item ``i`` in the current epoch."""
        image, kp, visible = self.augmented(i)
        targets = self.codec.empty(len(visible)) if kp is None else self.codec.encode(kp, visible)
        return (image, *targets)

    def __getitem__(self, i: int):
        image, heatmaps, weights = self.sample(i)
        return (
            torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            torch.from_numpy(heatmaps),
            torch.from_numpy(weights),
        )


class EpochSampler(Sampler):
    """A seeded permutation per epoch, optionally cut to ``per_epoch`` items, sharded by rank."""

    def __init__(self, n: int, per_epoch: int, seed: int, rank: int = 0, world: int = 1):
        self.n, self.per_epoch, self.seed, self.rank, self.world, self.epoch = n, per_epoch or n, seed, rank, world, 0

    def indices(self) -> list[int]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)[: min(self.per_epoch, self.n)]
        usable = len(order) // self.world * self.world
        return order[:usable][self.rank :: self.world].tolist()

    def __iter__(self):
        return iter(self.indices())

    def __len__(self) -> int:
        return len(self.indices())


def loader_worker_init(_worker_id: int) -> None:
    """A loader worker computes one sample at a time on one core: one thread for PyTorch and
    OpenCV, so it does not compete with the training step's threads."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
