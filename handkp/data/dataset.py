"""The YOLO-pose dataset: validation, the quality report and the keypoint tables.

Read from the dataset archive (``handkp.data.archive``): ``hand-keypoints/{train,val}/images/*.jpg``
and ``hand-keypoints/{train,val}/labels/*.txt``; one line per hand: ``class cx cy w h`` then
21 × ``x y visibility``, all normalised to the image.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image
from tqdm import tqdm

from ..core.errors import HandkpError
from ..core.io import atomic_path, write_json
from ..core.paths import DATA_QUALITY, IMAGE_CACHE, PREPARED_TABLE, RAW_ARCHIVE
from ..core.keypoints import NUM_KEYPOINTS
from .archive import SPLITS, DatasetArchive

FIELDS_PER_HAND = 5 + 3 * NUM_KEYPOINTS


class DataError(HandkpError):
    """The dataset as a whole is unusable (an empty split, too many bad samples)."""


@dataclass
class Sample:
    """One valid image with its hand: keypoints (K, 3) as x px, y px, visibility; box px (cx, cy, w, h)."""

    image: str  # member name in the dataset archive, hand-keypoints/<split>/images/<file>
    split: str
    keypoints: np.ndarray
    box: tuple[float, float, float, float]


def parse_label(text: str, image_size: int, max_hands: int) -> tuple[np.ndarray, tuple]:
    """Parses a label file's text into keypoints (K, 3) px and the box px. Raises ValueError
    with the reason when the label is malformed."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise ValueError("no hand in the label")
    if len(lines) > max_hands:
        raise ValueError(f"{len(lines)} hands, expected at most {max_hands}")
    fields = lines[0].split()
    if len(fields) != FIELDS_PER_HAND:
        raise ValueError(
            f"{len(fields)} fields, expected {FIELDS_PER_HAND} (class, box, {NUM_KEYPOINTS} × x y visibility)"
        )
    try:
        values = [float(f) for f in fields]
    except ValueError:
        bad = next(f for f in fields if not _is_float(f))
        raise ValueError(f"non-numeric value '{bad}'") from None
    if any(not math.isfinite(v) for v in values):
        raise ValueError("NaN or infinite value")
    arr = np.asarray(values[5:], dtype=np.float64).reshape(NUM_KEYPOINTS, 3)
    coords = np.concatenate([np.asarray(values[1:5]), arr[:, :2].ravel()])
    if coords.min() < 0 or coords.max() > 1:
        raise ValueError(f"coordinate {coords[(coords < 0) | (coords > 1)][0]:g} outside [0, 1]")
    if not set(arr[:, 2].tolist()) <= {0.0, 1.0, 2.0}:
        raise ValueError(f"visibility {sorted(set(arr[:, 2].tolist()) - {0.0, 1.0, 2.0})[0]:g} not in {{0, 1, 2}}")
    arr[:, :2] *= image_size
    box = tuple(float(v) * image_size for v in values[1:5])
    return arr, box


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def check_image(data: bytes, image_size: int) -> None:
    """Raises ValueError when the image's bytes cannot be decoded whole or have the wrong size."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # decodes every byte: a truncated file raises here
            size = im.size
    except Exception as err:  # PIL raises several types for undecodable data
        raise ValueError(f"undecodable or truncated image ({err})") from None
    if size != (image_size, image_size):
        raise ValueError(f"image is {size[0]}×{size[1]}, expected {image_size}×{image_size}")


def validate_split(
    archive: DatasetArchive, split: str, image_size: int, max_hands: int
) -> tuple[list[Sample], list[dict]]:
    """Checks every image and label of a split. Returns the valid samples and the bad ones
    as ``{"path", "split", "reason"}`` (paths: member names of the archive)."""
    images, labels = archive.files(split, "images"), archive.files(split, "labels")
    samples, bad = [], []
    for stem in tqdm(sorted(images.keys() | labels.keys()), desc=f"validate {split}", unit="img"):
        image, label = images.get(stem), labels.get(stem)
        try:
            if label is None:
                raise ValueError("missing label")
            if image is None:
                raise ValueError("missing image")
            keypoints, box = parse_label(archive.read(label).decode(errors="replace"), image_size, max_hands)
            check_image(archive.read(image), image_size)
        except ValueError as err:
            bad.append({"path": image or label, "split": split, "reason": str(err)})
            continue
        samples.append(Sample(image, split, keypoints, box))
    return samples, bad


def validate_dataset(archive: DatasetArchive, image_size: int, max_hands: int) -> tuple[list[Sample], dict]:
    """Validates both splits. Returns the valid samples and the quality report
    (``checked``/``kept`` counts per split, ``bad``: one entry per left-out sample)."""
    samples, bad, checked, kept = [], [], {}, {}
    for split in SPLITS:
        good, wrong = validate_split(archive, split, image_size, max_hands)
        samples += good
        bad += wrong
        checked[split], kept[split] = len(good) + len(wrong), len(good)
    return samples, {"checked": checked, "kept": kept, "bad_count": len(bad), "bad": bad}


def check_quality(report: dict, archive: Path, max_bad_fraction: float) -> None:
    """Raises DataError (naming the dataset ``archive``) when a split has no valid sample or too
    large a fraction of bad ones."""
    checked, kept = report["checked"], report["kept"]
    for split in SPLITS:
        if kept[split] == 0:
            raise DataError(
                f"{archive}: no valid sample in the {split} split ({checked[split]} checked); "
                "see reports/data_quality.json"
            )
        fraction = 1 - kept[split] / checked[split]
        if fraction > max_bad_fraction:
            raise DataError(
                f"{archive}: {checked[split] - kept[split]} of {checked[split]} {split} samples are bad "
                f"({fraction:.1%} > data.max_bad_fraction = {max_bad_fraction:.1%}); see reports/data_quality.json"
            )


def keypoint_table(samples: list[Sample], dev_fraction: float, seed: int) -> pl.DataFrame:
    """One row per (image, keypoint); a seeded ``dev_fraction`` of train images becomes ``dev``."""
    train_images = sorted(s.image for s in samples if s.split == "train")
    rng = np.random.default_rng(seed)
    n_dev = int(round(dev_fraction * len(train_images)))
    dev = set(rng.choice(train_images, size=n_dev, replace=False).tolist()) if n_dev else set()
    rows = {k: [] for k in ("image", "split", "keypoint", "x", "y", "visibility", "box_cx", "box_cy", "box_w", "box_h")}
    for s in sorted(samples, key=lambda s: s.image):
        split = "dev" if s.image in dev else s.split
        for k in range(NUM_KEYPOINTS):
            for key, value in zip(rows, (s.image, split, k, *s.keypoints[k, :2], int(s.keypoints[k, 2]), *s.box)):
                rows[key].append(value)
    return pl.DataFrame(
        rows,
        schema={
            "image": pl.String,
            "split": pl.String,
            "keypoint": pl.Int8,
            "x": pl.Float32,
            "y": pl.Float32,
            "visibility": pl.Int8,
            "box_cx": pl.Float32,
            "box_cy": pl.Float32,
            "box_w": pl.Float32,
            "box_h": pl.Float32,
        },
    )


def split_arrays(table: pl.DataFrame, split: str) -> tuple[list[str], np.ndarray]:
    """Images of a split (sorted) and their keypoints (N, K, 3): x px, y px, visibility."""
    part = table.filter(pl.col("split") == split).sort(["image", "keypoint"])
    images = part["image"].unique(maintain_order=True).to_list()
    kp = part.select("x", "y", "visibility").to_numpy().astype(np.float32).reshape(len(images), NUM_KEYPOINTS, 3)
    return images, kp


def run_prepare(params: dict) -> None:
    """The prepare stage: validate every image and label of data/raw.zip (bad ones listed in
    reports/data_quality.json and left out), then the keypoint table with its dev slice and the
    decoded-image cache."""
    from .cache import write_image_cache

    data = params["data"]
    with DatasetArchive(RAW_ARCHIVE) as archive:
        samples, report = validate_dataset(archive, data["image_size"], data["max_hands"])
        write_json(DATA_QUALITY, report)
        for bad in report["bad"]:
            print(f"left out {bad['path']}: {bad['reason']}")
        check_quality(report, RAW_ARCHIVE, data["max_bad_fraction"])
        table = keypoint_table(samples, data["dev_fraction"], params["seed"])
        PREPARED_TABLE.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(PREPARED_TABLE) as tmp:
            table.write_parquet(tmp)
        counts = write_image_cache(table, archive, IMAGE_CACHE, data["image_size"])
    print(
        f"kept {report['kept']} of {report['checked']} images; {report['bad_count']} left out (see {DATA_QUALITY}); "
        f"image cache {IMAGE_CACHE}: {counts}"
    )
