"""The dataset as one file: ``data/raw.zip``, written by the fetch stage (``handkp.data.fetch``).

Its members are the dataset's images and labels and nothing else, under one fixed layout,
uncompressed, in name order, with fixed timestamps (the same dataset always gives the same
bytes, whether it came as a zip or a folder):

    hand-keypoints/{train,val}/images/<name>.jpg
    hand-keypoints/{train,val}/labels/<name>.txt

A member's name is the image's name everywhere else (the keypoint table, the image cache, the
YOLO image lists). DVC tracks this one file instead of ~27,000, so `dvc status` is quick.

    with DatasetArchive("data/raw.zip") as archive:
        images = archive.files("val", "images")       # stem -> member name
        jpeg = archive.read(images["IMG_00000823"])   # bytes
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from ..core.errors import HandkpError

DATASET_DIR = "hand-keypoints"  # the one top-level folder of the archive
SPLITS = ("train", "val")
KINDS = ("images", "labels")
MEMBER_DATE = (1980, 1, 1, 0, 0, 0)  # zip's earliest timestamp: members carry no time of their own


class ArchiveError(HandkpError):
    """The dataset archive is missing, unreadable or lacks a member; the message names the file."""


def member_name(split: str, kind: str, file_name: str) -> str:
    """``hand-keypoints/<split>/<kind>/<file_name>``."""
    return f"{DATASET_DIR}/{split}/{kind}/{file_name}"


def write_member(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    """Adds one stored (uncompressed) member with the fixed timestamp and mode 0644."""
    info = zipfile.ZipInfo(name, date_time=MEMBER_DATE)
    info.external_attr = 0o100644 << 16
    zf.writestr(info, data, compress_type=zipfile.ZIP_STORED)


class DatasetArchive:
    """Read access to an archive in the layout above."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise ArchiveError(f"{self.path}: no dataset archive here (the fetch stage writes it: dvc repro fetch)")
        try:
            self._zip = zipfile.ZipFile(self.path)
        except (zipfile.BadZipFile, OSError) as err:
            raise ArchiveError(f"{self.path}: not a readable zip archive ({err}); run dvc repro fetch") from err
        self._names = set(self._zip.namelist())

    def __enter__(self) -> DatasetArchive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def files(self, split: str, kind: str) -> dict[str, str]:
        """The members of ``hand-keypoints/<split>/<kind>/``: file stem -> member name."""
        folder = PurePosixPath(member_name(split, kind, "x")).parent
        return {PurePosixPath(n).stem: n for n in sorted(self._names) if PurePosixPath(n).parent == folder}

    def read(self, name: str) -> bytes:
        """One member's bytes."""
        if name not in self._names:
            raise ArchiveError(f"{self.path}: no member '{name}'")
        try:
            return self._zip.read(name)
        except (zipfile.BadZipFile, OSError) as err:
            raise ArchiveError(f"{self.path}: member '{name}' is unreadable ({err}); run dvc repro fetch") from err

    def extract(self, name: str, dest: str | Path) -> Path:
        """Writes one member to the file ``dest`` (its folder created); returns ``dest``."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(self.read(name))
        return dest
