"""Getting the dataset: download (with a progress bar) or a local zip/folder, safe extraction,
and an output that appears only when complete."""
from __future__ import annotations

import shutil
import stat
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from ..core.errors import HandkpError
from ..core.io import atomic_path, sha256_file
from ..core.paths import RAW

DATASET_DIR = "hand-keypoints"  # the folder name inside data/raw/
DOWNLOADS = "downloads"  # beside data/raw: downloaded archives are kept there, and taken from there when present
OFFLINE_HINT = (
    f"On a machine without internet, get the archive elsewhere and put it at data/{DOWNLOADS}/<its file name> "
    "(it is then used instead of downloading), or point the pipeline at it: "
    "`dvc exp run -S data.source=/path/to/hand-keypoints.zip` (a zip or an extracted folder)."
)


class FetchError(HandkpError):
    """The dataset could not be fetched or extracted; the message names the file and the problem."""


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def download(url: str, dest: Path, max_bytes: int, timeout_s: float = 30.0) -> None:
    """Downloads ``url`` to ``dest`` with a progress bar; refuses more than ``max_bytes``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            if total > max_bytes:
                raise FetchError(f"{url}: the archive is {total / 2**20:.0f} MiB, over the limit of {max_bytes / 2**20:.0f} MiB (data.max_archive_mb)")
            with tqdm(total=total or None, unit="B", unit_scale=True, desc=f"download {PurePosixPath(url).name}") as bar:
                done = 0
                while chunk := response.read(1 << 20):
                    done += len(chunk)
                    if done > max_bytes:
                        raise FetchError(f"{url}: more than {max_bytes / 2**20:.0f} MiB received (data.max_archive_mb)")
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
        if isinstance(err, FetchError):
            raise
        reason = getattr(err, "reason", err)
        raise FetchError(f"cannot download {url}: {reason}. {OFFLINE_HINT}") from err


def downloaded(url: str, max_bytes: int, folder: Path) -> Path:
    """The archive at ``url``: ``folder/<file name>`` when already there (a previous download, or
    a copy put there by hand on a machine without internet), else downloaded there first."""
    path = Path(folder) / PurePosixPath(url).name
    if path.is_file():
        print(f"{url}: using {path} (delete it to download again)")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        download(url, tmp, max_bytes)
    return path


def _is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def check_zip_entries(archive: Path, zf: zipfile.ZipFile, max_bytes: int) -> None:
    """Refuses entries that would escape the target folder (absolute paths, ``..``, drive
    letters, links) and archives whose extracted size exceeds ``max_bytes``."""
    total = 0
    for info in zf.infolist():
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or (parts and ":" in parts[0]) or ".." in parts:
            raise FetchError(f"{archive}: entry '{name}' would be written outside the target folder; refusing to extract")
        if _is_link(info):
            raise FetchError(f"{archive}: entry '{name}' is a symbolic link; refusing to extract")
        total += info.file_size
    if total > max_bytes:
        raise FetchError(f"{archive}: extracts to {total / 2**20:.0f} MiB, over the limit of {max_bytes / 2**20:.0f} MiB (data.max_archive_mb)")


def extract_zip(archive: Path, dest: Path, max_bytes: int) -> None:
    """Extracts a checked archive into ``dest`` with a progress bar."""
    if archive.stat().st_size > max_bytes:
        raise FetchError(f"{archive}: {archive.stat().st_size / 2**20:.0f} MiB, over the limit of {max_bytes / 2**20:.0f} MiB (data.max_archive_mb)")
    try:
        with zipfile.ZipFile(archive) as zf:
            check_zip_entries(archive, zf, max_bytes)
            for info in tqdm(zf.infolist(), desc=f"extract {archive.name}", unit="file"):
                zf.extract(info, dest)
    except zipfile.BadZipFile as err:
        raise FetchError(f"{archive}: not a valid zip archive ({err})") from err


def find_dataset_root(folder: Path) -> Path:
    """The folder holding ``train/`` and ``val/`` (each with ``images/`` and ``labels/``)."""
    candidates = [folder, folder / DATASET_DIR, *sorted(p for p in folder.iterdir() if p.is_dir())]
    for c in candidates:
        if (c / "train" / "images").is_dir() and (c / "val" / "images").is_dir():
            return c
    raise FetchError(f"{folder}: no dataset found (expected train/images and val/images, optionally under {DATASET_DIR}/)")


def fetch_dataset(source: str, out_dir: Path, max_archive_mb: float) -> Path:
    """Fetches ``source`` (URL, zip or folder) into ``out_dir/hand-keypoints/``. Works in a
    temporary sibling folder renamed into place only when complete, so a failure leaves no
    ``out_dir`` behind. Returns the dataset folder."""
    max_bytes = int(max_archive_mb * 2**20)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out_dir, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-partial-", dir=out_dir.parent))
    try:
        if is_url(source):
            archive = downloaded(source, max_bytes, out_dir.parent / DOWNLOADS)
        else:
            archive = Path(source).expanduser()
            if not archive.exists():
                raise FetchError(f"{archive}: data.source does not exist. {OFFLINE_HINT}")
        staging = work / "extracted"
        if archive.is_dir():
            shutil.copytree(find_dataset_root(archive), staging / DATASET_DIR, symlinks=False)
        else:
            print(f"{archive}: sha256 {sha256_file(archive)}")
            extract_zip(archive, staging, max_bytes)
            root = find_dataset_root(staging)
            target = staging / DATASET_DIR
            if root == staging:
                target.mkdir()
                for split in ("train", "val"):
                    (staging / split).rename(target / split)
            elif root != target:
                root.rename(target)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out_dir / DATASET_DIR


def run_fetch(params: dict) -> None:
    """The fetch stage: ``data.source`` -> data/raw/."""
    data = params["data"]
    root = fetch_dataset(data["source"], RAW, data["max_archive_mb"])
    print(f"dataset ready in {root}")
