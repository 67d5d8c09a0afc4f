"""The decoded-image cache: every validated image of a split decoded once into one uint8 array,
``data/images/<split>.npy`` (N, S, S, 3) RGB, rows in the keypoint table's image order, plus
``data/images/index.json`` (split -> image names), and ``data/images/checksums.json`` (each of
those files -> its sha256): the small file the stages downstream of prepare depend on, so that
``dvc status`` reads a few hundred bytes for them instead of hashing the 4 GB cache per stage.

Training, evaluation and the report read pixels from here (memory-mapped, no JPEG decode per
epoch). The pixels are exactly those of ``handkp.core.images.decode_rgb`` on the JPEGs of the
dataset archive (``handkp.data.archive``), the same as ``read_rgb`` on the files extracted.

    cache = ImageCache("data/images")
    names, pixels = cache.split("val")      # list of names, (N, S, S, 3) uint8 memory map
    rgb = cache.read("hand-keypoints/val/images/IMG_00000823.jpg")
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
from numpy.lib.format import open_memmap
from tqdm import tqdm

from ..core.errors import HandkpError
from ..core.images import decode_rgb
from ..core.io import atomic_path, sha256_file, write_json
from .archive import DatasetArchive

SPLITS = ("train", "dev", "val")
INDEX_FILE = "index.json"
CHECKSUM_FILE = "checksums.json"


class CacheError(HandkpError):
    """The image cache is missing, incomplete or does not match the keypoint table."""


def split_names(table: pl.DataFrame, split: str) -> list[str]:
    """The images of ``split`` in the keypoint table, sorted by name (the cache's row order)."""
    return table.filter(pl.col("split") == split)["image"].unique().sort().to_list()


def write_image_cache(
    table: pl.DataFrame, archive: DatasetArchive, out_dir: str | Path, image_size: int
) -> dict[str, int]:
    """Decodes every image of the table, read from the dataset ``archive``, once into
    ``out_dir/<split>.npy``; each file is written whole or not at all, and its sha256 goes to
    ``out_dir/checksums.json`` (written last). Returns the number of images per split."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = {}
    for split in SPLITS:
        names = split_names(table, split)
        with atomic_path(out_dir / f"{split}.npy") as tmp:
            pixels = open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(names), image_size, image_size, 3))
            for i, name in enumerate(tqdm(names, desc=f"decode {split}", unit="img")):
                pixels[i] = decode_rgb(archive.read(name), f"{archive.path}:{name}")
            pixels.flush()
            del pixels
        index[split] = names
    write_json(out_dir / INDEX_FILE, index)
    files = [f"{split}.npy" for split in SPLITS] + [INDEX_FILE]
    write_json(out_dir / CHECKSUM_FILE, {name: sha256_file(out_dir / name) for name in files})
    return {split: len(names) for split, names in index.items()}


class ImageCache:
    """Read access to a cache written by ``write_image_cache``."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        index_path = self.folder / INDEX_FILE
        if not index_path.is_file():
            raise CacheError(f"{index_path}: no image cache here (the prepare stage writes it: dvc repro prepare)")
        self.index: dict[str, list[str]] = json.loads(index_path.read_text())
        self._arrays: dict[str, np.ndarray] = {}
        self._where = {name: (split, i) for split, names in self.index.items() for i, name in enumerate(names)}

    def split(self, split: str) -> tuple[list[str], np.ndarray]:
        """(image names, (N, S, S, 3) uint8 memory map) of one split."""
        if split not in self.index:
            raise CacheError(f"{self.folder}: no split '{split}' in the image cache (has {sorted(self.index)})")
        if split not in self._arrays:
            path = self.folder / f"{split}.npy"
            try:
                pixels = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as err:
                raise CacheError(f"{path}: unreadable image cache ({err}); run dvc repro prepare") from err
            if pixels.shape[0] != len(self.index[split]):
                raise CacheError(
                    f"{path}: {pixels.shape[0]} images, the index lists {len(self.index[split])}; run dvc repro prepare"
                )
            self._arrays[split] = pixels
        return self.index[split], self._arrays[split]

    def read(self, name: str) -> np.ndarray:
        """One image (S, S, 3) uint8 by its name in the keypoint table."""
        if name not in self._where:
            raise CacheError(f"{self.folder}: image '{name}' is not in the image cache")
        split, i = self._where[name]
        return np.array(self.split(split)[1][i])

    def pick(self, split: str, limit: int = 32, seed: int | None = None) -> list[np.ndarray]:
        """``limit`` images (0: all) of ``split``: the first by name, or with ``seed`` a seeded
        random pick (kept in name order)."""
        names, pixels = self.split(split)
        idx = np.arange(len(names))
        if limit and seed is not None:
            idx = np.sort(np.random.default_rng(seed).choice(len(names), size=min(limit, len(names)), replace=False))
        elif limit:
            idx = idx[:limit]
        if idx.size == 0:
            raise CacheError(f"{self.folder}: no '{split}' images in the image cache")
        return [np.array(pixels[i]) for i in idx]
