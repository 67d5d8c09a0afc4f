"""Getting the dataset: download (with a progress bar) or a local zip/folder, checked (unsafe
or oversized archives refused) and packed into data/raw.zip (``handkp.data.archive``), an
output that appears only when complete."""

from __future__ import annotations

import contextlib
import stat
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from ..core.errors import HandkpError
from ..core.images import IMAGE_SUFFIXES
from ..core.io import atomic_path, sha256_file
from ..core.paths import RAW_ARCHIVE
from .archive import DATASET_DIR, KINDS, SPLITS, member_name, write_member

DOWNLOADS = "downloads"  # beside data/raw.zip: downloaded archives are kept there, and taken from there when present
OFFLINE_HINT = (
    f"On a machine without internet, get the archive elsewhere and put it at data/{DOWNLOADS}/<its file name> "
    "(it is then used instead of downloading), or point the pipeline at it: "
    "`dvc exp run -S data.source=/path/to/hand-keypoints.zip` (a zip or an extracted folder)."
)


class FetchError(HandkpError):
    """The dataset could not be fetched or packed; the message names the file and the problem."""


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def download(url: str, dest: Path, max_bytes: int, timeout_s: float = 30.0) -> None:
    """Downloads ``url`` to ``dest`` with a progress bar; refuses more than ``max_bytes``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, open(dest, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            if total > max_bytes:
                raise FetchError(
                    f"{url}: the archive is {total / 2**20:.0f} MiB, "
                    f"over the limit of {max_bytes / 2**20:.0f} MiB (data.max_archive_mb)"
                )
            with tqdm(
                total=total or None, unit="B", unit_scale=True, desc=f"download {PurePosixPath(url).name}"
            ) as bar:
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
            raise FetchError(f"{archive}: entry '{name}' points outside the archive's folder; refusing the archive")
        if _is_link(info):
            raise FetchError(f"{archive}: entry '{name}' is a symbolic link; refusing the archive")
        total += info.file_size
    if total > max_bytes:
        raise FetchError(
            f"{archive}: holds {total / 2**20:.0f} MiB uncompressed, "
            f"over the limit of {max_bytes / 2**20:.0f} MiB (data.max_archive_mb)"
        )


def dataset_prefix(archive: Path, names: list[str]) -> str:
    """The folder of a source (zip or folder; ``names``: its file paths) holding ``train/images/``
    and ``val/images/``: ``""`` (its top), ``hand-keypoints/`` or any other top-level folder."""
    tops = sorted({n.split("/", 1)[0] + "/" for n in names if "/" in n})
    for prefix in ("", f"{DATASET_DIR}/", *tops):
        if all(any(n.startswith(f"{prefix}{split}/images/") for n in names) for split in SPLITS):
            return prefix
    raise FetchError(
        f"{archive}: no dataset found (expected train/images/ and val/images/, optionally under {DATASET_DIR}/)"
    )


def _is_dataset_file(kind: str, file_name: str) -> bool:
    """The files validation reads: images (by suffix) in images/, ``.txt`` labels in labels/."""
    suffix = PurePosixPath(file_name).suffix.lower()
    return suffix in IMAGE_SUFFIXES if kind == "images" else suffix == ".txt"


def dataset_members(source: Path, names: list[str]) -> dict[str, str]:
    """The dataset files among ``names`` (``/``-separated paths inside ``source``, a zip or a
    folder): canonical member name -> its name in ``source``."""
    prefix = dataset_prefix(source, names)
    out = {}
    for name in names:
        parts = PurePosixPath(name[len(prefix) :]).parts if name.startswith(prefix) else ()
        if len(parts) == 3 and parts[0] in SPLITS and parts[1] in KINDS and _is_dataset_file(parts[1], parts[2]):
            out[member_name(*parts)] = name
    return out


def zip_members(archive: Path, zf: zipfile.ZipFile, max_bytes: int) -> dict[str, str]:
    """The dataset files of a checked source archive: canonical member name -> its name there."""
    check_zip_entries(archive, zf, max_bytes)
    return dataset_members(archive, [info.filename for info in zf.infolist() if not info.is_dir()])


def folder_members(folder: Path) -> dict[str, str]:
    """The dataset files of a source folder (at its top or one folder down; links followed):
    canonical member name -> its path relative to ``folder``."""
    files = (p for pattern in ("*/*/*", "*/*/*/*") for p in folder.glob(pattern) if p.is_file())
    return dataset_members(folder, sorted(p.relative_to(folder).as_posix() for p in files))


def pack_dataset(source: Path, out: Path, max_bytes: int) -> int:
    """Writes the dataset of ``source`` (a zip or a folder) to the archive ``out`` in the layout
    of ``handkp.data.archive``, whole or not at all. Returns the number of members."""
    with contextlib.ExitStack() as stack:
        if source.is_dir():
            members = folder_members(source)
            read = lambda name: (source / members[name]).read_bytes()  # noqa: E731
        else:
            if source.stat().st_size > max_bytes:
                raise FetchError(
                    f"{source}: {source.stat().st_size / 2**20:.0f} MiB, "
                    f"over the limit of {max_bytes / 2**20:.0f} MiB (data.max_archive_mb)"
                )
            print(f"{source}: sha256 {sha256_file(source)}")
            try:
                zf = stack.enter_context(zipfile.ZipFile(source))
                members = zip_members(source, zf, max_bytes)
            except zipfile.BadZipFile as err:
                raise FetchError(f"{source}: not a valid zip archive ({err})") from err
            read = lambda name: zf.read(members[name])  # noqa: E731
        with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", allowZip64=True) as dest:
            for name in tqdm(sorted(members), desc=f"pack {source.name}", unit="file"):
                try:
                    data = read(name)
                except (zipfile.BadZipFile, OSError, EOFError) as err:
                    raise FetchError(f"{source}: cannot read {members[name]} ({err})") from err
                write_member(dest, name, data)
    return len(members)


def fetch_dataset(source: str, out: Path, max_archive_mb: float) -> Path:
    """Fetches ``source`` (URL, zip or folder) into the archive ``out`` (see
    ``handkp.data.archive``). A failure leaves no ``out`` behind, not even an earlier one.
    Returns ``out``."""
    max_bytes = int(max_archive_mb * 2**20)
    out = Path(out)
    out.unlink(missing_ok=True)
    if is_url(source):
        archive = downloaded(source, max_bytes, out.parent / DOWNLOADS)
    else:
        archive = Path(source).expanduser()
        if not archive.exists():
            raise FetchError(f"{archive}: data.source does not exist. {OFFLINE_HINT}")
    pack_dataset(archive, out, max_bytes)
    return out


def run_fetch(params: dict) -> None:
    """The fetch stage: ``data.source`` -> data/raw.zip."""
    data = params["data"]
    out = fetch_dataset(data["source"], RAW_ARCHIVE, data["max_archive_mb"])
    print(f"dataset ready in {out}")
