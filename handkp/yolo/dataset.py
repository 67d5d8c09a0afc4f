"""The Ultralytics dataset over the validated data: the dataset yaml (identity flip map) and
image lists, and the view of it Ultralytics trains on."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.keypoints import FLIP_INDEX, NUM_KEYPOINTS
from ..core.paths import DATA_QUALITY, PREPARED_TABLE, RAW, YOLO_DATA
from .ultralytics import YoloError

def _label_path(image: str) -> str:
    """``hand-keypoints/<split>/images/x.jpg`` -> ``hand-keypoints/<split>/labels/x.txt`` (the
    rule Ultralytics uses: the last ``/images/`` becomes ``/labels/``, the suffix ``.txt``)."""
    head, sep, tail = image.rpartition("/images/")
    if not sep:
        raise ValueError(f"{image}: not in an images/ folder")
    return f"{head}/labels/{Path(tail).with_suffix('.txt').as_posix()}"


def select_images(table, quality_report: dict) -> dict[str, list[str]]:
    """The images (relative to data/raw) Ultralytics trains and validates on, as for the heatmap
    model: train = the train split minus the dev slice; Ultralytics' per-epoch validation (which
    picks best.pt) = the dev slice, so the val split stays unseen until yolo_evaluate (the val
    split only when there is no dev slice, data.dev_fraction = 0). Samples the quality report
    lists as bad are left out (the keypoint table already lacks them; this makes sure)."""
    import polars as pl

    bad = {b["path"] for b in quality_report.get("bad", [])}

    def images_of(split: str) -> list[str]:
        images = table.filter(pl.col("split") == split)["image"].unique().sort().to_list()
        return [im for im in images if im not in bad and _label_path(im) not in bad]

    out = {"train": images_of("train"), "val": images_of("dev") or images_of("val")}
    for split, images in out.items():
        if not images:
            raise YoloError(f"no {split} image left for the YOLO dataset (data/prepared/keypoints.parquet)")
    return out


DATASET_YAML = """\
# Ultralytics dataset for the YOLO-pose baseline, written by stages/yolo_data.py: do not edit.
# The same samples as the heatmap model: train = the train split minus the dev slice; val (the
# per-epoch validation that picks best.pt) = the dev slice, so the val split stays unseen until
# yolo_evaluate. Bad samples of reports/data_quality.json are left out. Image lists are relative
# to this file; Ultralytics finds each label by replacing images/ with labels/ in the image path.
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


def write_dataset_yaml(table, quality_report: dict, raw_root: Path, out_dir: Path) -> Path:
    """Writes ``out_dir/{train.txt,val.txt,dataset.yaml}``; returns the yaml's path."""
    out_dir, raw_root = Path(out_dir), Path(raw_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, images in select_images(table, quality_report).items():
        rel = [os.path.relpath(raw_root / im, out_dir) for im in images]
        # "./" makes Ultralytics resolve a line relative to the list file, not the working directory
        (out_dir / f"{split}.txt").write_text("".join(f"./{Path(r).as_posix()}\n" for r in rel))
    assert list(FLIP_INDEX) == list(range(NUM_KEYPOINTS))
    yaml_path = out_dir / "dataset.yaml"
    yaml_path.write_text(DATASET_YAML.format(train="train.txt", val="val.txt", k=NUM_KEYPOINTS, flip=", ".join(map(str, FLIP_INDEX))))
    return yaml_path


def read_image_lists(yaml_path: Path) -> dict[str, list[Path]]:
    """The dataset yaml's train and val images, resolved (as Ultralytics resolves them)."""
    import yaml

    yaml_path = Path(yaml_path)
    data = yaml.safe_load(yaml_path.read_text())
    out = {}
    for split in ("train", "val"):
        listing = yaml_path.parent / data[split]
        out[split] = [
            Path(os.path.normpath(listing.parent / line[2:] if line.startswith("./") else line))
            for line in listing.read_text().splitlines() if line.strip()
        ]
    return out


def stage_view(yaml_path: Path, view_dir: Path) -> Path:
    """A throw-away copy of the dataset made of links: ``view_dir/{images,labels}/{train,val}/``.

    Ultralytics writes a ``labels.cache`` next to every labels folder it reads; pointed at
    data/raw it would change the fetch stage's output (and make `dvc repro` fetch again). The
    view gives it a folder of its own. Returns the view's dataset yaml."""
    import yaml

    view_dir = Path(view_dir)
    data = yaml.safe_load(Path(yaml_path).read_text())
    for split, images in read_image_lists(yaml_path).items():
        for kind in ("images", "labels"):
            (view_dir / kind / split).mkdir(parents=True, exist_ok=True)
        for image in images:
            label = Path(_label_path(image.as_posix()))
            if not image.is_file() or not label.is_file():
                raise YoloError(f"{image}: image or label {label} missing; run `dvc repro yolo_data` after `prepare`")
            link = view_dir / "images" / split / image.name
            if link.is_symlink():
                if link.resolve() == image.resolve():
                    continue  # listed twice
                raise YoloError(f"{image}: two {split} images named {image.name}")
            os.symlink(image.resolve(), link)
            os.symlink(label.resolve(), view_dir / "labels" / split / label.name)
    view = {"path": str(view_dir.resolve()), "train": "images/train", "val": "images/val",
            "names": data["names"], "kpt_shape": data["kpt_shape"], "flip_idx": data["flip_idx"]}
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
    path = write_dataset_yaml(pl.read_parquet(PREPARED_TABLE), report, RAW, YOLO_DATA)
    counts = {split: len(images) for split, images in read_image_lists(path).items()}
    print(f"{path}: {counts['train']} train, {counts['val']} validation (dev) images ({report.get('bad_count', 0)} bad samples left out)")
    return path
