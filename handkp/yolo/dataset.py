"""The Ultralytics dataset over the validated data: the dataset yaml (identity flip map) and
image lists (names in the dataset archive), and the view of it Ultralytics trains on (the
listed images and labels extracted from the archive)."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.keypoints import FLIP_INDEX, NUM_KEYPOINTS
from ..core.paths import DATA_QUALITY, PREPARED_TABLE, YOLO_DATA
from ..data.archive import DatasetArchive
from .ultralytics import YoloError


def _label_path(image: str) -> str:
    """``hand-keypoints/<split>/images/x.jpg`` -> ``hand-keypoints/<split>/labels/x.txt`` (the
    rule Ultralytics uses: the last ``/images/`` becomes ``/labels/``, the suffix ``.txt``)."""
    head, sep, tail = image.rpartition("/images/")
    if not sep:
        raise ValueError(f"{image}: not in an images/ folder")
    return f"{head}/labels/{Path(tail).with_suffix('.txt').as_posix()}"


def bad_samples(quality_report: dict) -> set[str]:
    """The archive members reports/data_quality.json lists as bad (images or labels)."""
    return {b["path"] for b in quality_report.get("bad", [])}


def split_images(table, split: str, bad: set[str]) -> list[str]:
    """The images (names in data/raw.zip) of one split of the keypoint table, sorted, without the
    ``bad`` samples (the keypoint table already lacks them; this makes sure)."""
    import polars as pl

    images = table.filter(pl.col("split") == split)["image"].unique().sort().to_list()
    return [im for im in images if im not in bad and _label_path(im) not in bad]


def select_images(table, quality_report: dict) -> dict[str, list[str]]:
    """The images (names in data/raw.zip) Ultralytics trains and validates on, as for the heatmap
    model: train = the train split minus the dev slice; Ultralytics' per-epoch validation (which
    picks best.pt) = the dev slice, so the val split stays unseen until yolo_evaluate (the val
    split only when there is no dev slice, data.dev_fraction = 0). Samples the quality report
    lists as bad are left out."""
    bad = bad_samples(quality_report)
    out = {
        "train": split_images(table, "train", bad),
        "val": split_images(table, "dev", bad) or split_images(table, "val", bad),
    }
    for split, images in out.items():
        if not images:
            raise YoloError(f"no {split} image left for the YOLO dataset (data/prepared/keypoints.parquet)")
    return out


DATASET_YAML = """\
# Ultralytics dataset for the YOLO-pose baseline, written by stages/yolo_data.py: do not edit.
# The same samples as the heatmap model: train = the train split minus the dev slice; val (the
# per-epoch validation that picks best.pt) = the dev slice, so the val split stays unseen until
# yolo_evaluate. Bad samples of reports/data_quality.json are left out. The image lists hold
# member names of the dataset archive data/raw.zip: yolo_train extracts them (and their labels,
# found by replacing images/ with labels/) into a throw-away folder Ultralytics reads.
train: {train}
val: {val}
names:
  0: hand
kpt_shape: [{k}, 3]  # 21 keypoints: x, y, visibility
# flip_idx: which keypoint a keypoint becomes when the image is mirrored. A mirrored hand keeps
# every keypoint's identity (the thumb tip of a mirrored right hand is the thumb tip of a left
# hand), so the map is the identity (handkp.keypoints.FLIP_INDEX). The published
# hand-keypoints.yaml swaps thumb and finger indices ([0, 1, 2, 4, 3, 10, ...]): that teaches
# the model to call a flipped thumb tip a thumb IP joint, and is wrong.
flip_idx: [{flip}]
"""


def write_dataset_yaml(table, quality_report: dict, out_dir: Path) -> Path:
    """Writes ``out_dir/{train.txt,val.txt,dataset.yaml}``; returns the yaml's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, images in select_images(table, quality_report).items():
        (out_dir / f"{split}.txt").write_text("".join(f"{im}\n" for im in images))
    assert list(FLIP_INDEX) == list(range(NUM_KEYPOINTS))
    yaml_path = out_dir / "dataset.yaml"
    yaml_path.write_text(
        DATASET_YAML.format(train="train.txt", val="val.txt", k=NUM_KEYPOINTS, flip=", ".join(map(str, FLIP_INDEX)))
    )
    return yaml_path


def read_image_lists(yaml_path: Path) -> dict[str, list[str]]:
    """The dataset yaml's train and val images: member names of the dataset archive."""
    import yaml

    yaml_path = Path(yaml_path)
    data = yaml.safe_load(yaml_path.read_text())
    return {
        split: [line.strip() for line in (yaml_path.parent / data[split]).read_text().splitlines() if line.strip()]
        for split in ("train", "val")
    }


def stage_view(
    yaml_path: Path, archive: DatasetArchive, view_dir: Path, lists: dict[str, list[str]] | None = None
) -> Path:
    """A throw-away copy of the listed samples: ``view_dir/{images,labels}/{train,val}/``, the
    images and labels extracted from the dataset ``archive``. ``lists`` ({"train": [...], "val":
    [...]}, archive member names) defaults to the dataset yaml's own lists; its classes, keypoint
    shape and flip map always come from the yaml.

    Ultralytics reads folders of files and writes a ``labels.cache`` next to every labels folder
    it reads; the view gives it both, outside every stage's output. Returns the view's dataset yaml
    (both keys, ``train`` and ``val``, as Ultralytics requires, even where a list is empty)."""
    import yaml

    view_dir = Path(view_dir)
    data = yaml.safe_load(Path(yaml_path).read_text())
    for split, images in (read_image_lists(yaml_path) if lists is None else lists).items():
        for kind in ("images", "labels"):
            (view_dir / kind / split).mkdir(parents=True, exist_ok=True)
        seen = set()
        for image in images:
            file_name = Path(image).name
            if file_name in seen:
                raise YoloError(f"{yaml_path}: two {split} images named {file_name}")
            seen.add(file_name)
            label = _label_path(image)
            archive.extract(image, view_dir / "images" / split / file_name)
            archive.extract(label, view_dir / "labels" / split / Path(label).name)
    view = {
        "path": str(view_dir.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": data["names"],
        "kpt_shape": data["kpt_shape"],
        "flip_idx": data["flip_idx"],
    }
    out = view_dir / "dataset.yaml"
    out.write_text(yaml.safe_dump(view, sort_keys=False))
    return out


def run_yolo_data(params: dict) -> Path:
    """The yolo_data stage: the Ultralytics dataset over the validated data -> data/yolo/. Train =
    the heatmap model's train images (the train split minus the dev slice); val.txt, Ultralytics'
    per-epoch validation that picks best.pt, = the dev slice, so the val split is seen only by
    yolo_evaluate. Bad samples of reports/data_quality.json are left out of both lists."""
    import polars as pl

    report = json.loads(DATA_QUALITY.read_text())
    path = write_dataset_yaml(pl.read_parquet(PREPARED_TABLE), report, YOLO_DATA)
    counts = {split: len(images) for split, images in read_image_lists(path).items()}
    print(
        f"{path}: {counts['train']} train, {counts['val']} validation (dev) images "
        f"({report.get('bad_count', 0)} bad samples left out)"
    )
    return path
