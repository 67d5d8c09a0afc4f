"""Fetch (download, unsafe archives refused, packing into one zip, atomic output) and validation
of every bad-input kind."""

import functools
import http.server
import os
import shutil
import threading
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import TINY_ZIP

from handkp.data.archive import ArchiveError, DatasetArchive
from handkp.data.dataset import DataError, check_quality, validate_dataset
from handkp.data.fetch import FetchError, fetch_dataset


def copy_dataset(tiny_dataset: Path, dst: Path) -> Path:
    shutil.copytree(tiny_dataset, dst)
    return dst


def members(archive: Path) -> list[str]:
    with zipfile.ZipFile(archive) as zf:
        return zf.namelist()


# ---- fetch -------------------------------------------------------------------------------
def test_fetch_packs_zip_and_folder_into_the_same_bytes(tmp_path, tiny_dataset):
    a = fetch_dataset(str(TINY_ZIP), tmp_path / "a" / "raw.zip", 100)
    b = fetch_dataset(str(tiny_dataset / "hand-keypoints"), tmp_path / "b" / "raw.zip", 100)
    above = fetch_dataset(str(tiny_dataset), tmp_path / "c" / "raw.zip", 100)  # the dataset one folder down
    assert a.read_bytes() == b.read_bytes() == above.read_bytes()  # one layout, name order, fixed timestamps
    empty = tmp_path / "photos"
    (empty / "train").mkdir(parents=True)
    with pytest.raises(FetchError, match=f"{empty}: no dataset found"):
        fetch_dataset(str(empty), tmp_path / "d" / "raw.zip", 100)
    names = members(a)
    assert names == sorted(names) and len(names) == 2 * (64 + 32)
    with DatasetArchive(a) as archive:
        assert len(archive.files("train", "images")) == 64 and len(archive.files("val", "labels")) == 32
        first = sorted((tiny_dataset / "hand-keypoints/val/images").iterdir())[0]
        assert archive.read(f"hand-keypoints/val/images/{first.name}") == first.read_bytes()
    with zipfile.ZipFile(a) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}


def test_fetch_finds_the_dataset_under_any_top_folder_and_keeps_only_its_files(tmp_path):
    """The official layout has hand-keypoints/ on top; a zip with another top folder (or none),
    folder entries, a README and non-image files packs to the same archive."""
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(TINY_ZIP) as src, zipfile.ZipFile(other, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("my-copy/", b"")
        out.writestr("my-copy/README.txt", b"notes")
        out.writestr("my-copy/train/images/notes.md", b"not an image")
        for name in reversed(src.namelist()):
            out.writestr(name.replace("hand-keypoints/", "my-copy/", 1), src.read(name))
    top = tmp_path / "top.zip"
    with zipfile.ZipFile(TINY_ZIP) as src, zipfile.ZipFile(top, "w") as out:
        for name in src.namelist():
            out.writestr(name.removeprefix("hand-keypoints/"), src.read(name))
    reference = fetch_dataset(str(TINY_ZIP), tmp_path / "ref.zip", 100).read_bytes()
    assert fetch_dataset(str(other), tmp_path / "a.zip", 100).read_bytes() == reference
    assert fetch_dataset(str(top), tmp_path / "b.zip", 100).read_bytes() == reference
    nothing = tmp_path / "nothing.zip"
    with zipfile.ZipFile(nothing, "w") as out:
        out.writestr("photos/a.jpg", b"x")
    with pytest.raises(FetchError, match=f"{nothing}: no dataset found"):
        fetch_dataset(str(nothing), tmp_path / "c.zip", 100)
    assert not (tmp_path / "c.zip").exists()


def test_fetch_downloads_over_http_and_keeps_the_archive(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(TINY_ZIP.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{TINY_ZIP.name}"
        out = fetch_dataset(url, tmp_path / "raw.zip", 100)
    finally:
        server.shutdown()
    assert len(members(out)) == 2 * (64 + 32)
    # the archive is kept beside data/raw.zip (downloads/), whole, with no temporary file
    assert [p.name for p in (tmp_path / "downloads").iterdir()] == [TINY_ZIP.name]
    assert (tmp_path / "downloads" / TINY_ZIP.name).read_bytes() == TINY_ZIP.read_bytes()


def test_fetch_without_network_says_how_to_use_a_local_copy(tmp_path):
    url = "http://127.0.0.1:9/hand-keypoints.zip"  # nothing listens there
    with pytest.raises(FetchError, match="cannot download .*downloads/.*data.source="):
        fetch_dataset(url, tmp_path / "raw.zip", 100)
    # no partial folder or file left (at most the empty downloads folder)
    assert [p.name for p in tmp_path.iterdir()] in ([], ["downloads"])
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    # an archive put in downloads/ by hand is used instead of downloading
    (tmp_path / "downloads").mkdir(exist_ok=True)
    shutil.copy(TINY_ZIP, tmp_path / "downloads" / "hand-keypoints.zip")
    assert len(members(fetch_dataset(url, tmp_path / "raw.zip", 100))) == 2 * (64 + 32)


def evil_zip(path: Path, entry: str, link: bool = False) -> Path:
    with zipfile.ZipFile(TINY_ZIP) as src, zipfile.ZipFile(path, "w") as out:
        for name in src.namelist()[:6]:
            out.writestr(name, src.read(name))
        info = zipfile.ZipInfo(entry)
        if link:
            info.external_attr = 0o120777 << 16
        out.writestr(info, "/etc/passwd" if link else "pwned")
    return path


@pytest.mark.parametrize(
    "entry,link",
    [
        ("../escaped.txt", False),
        ("hand-keypoints/../../escaped.txt", False),
        ("/tmp/escaped-abs.txt", False),
        ("hand-keypoints/link", True),
    ],
)
def test_archives_with_escaping_entries_or_links_are_refused(tmp_path, entry, link):
    archive = evil_zip(tmp_path / "evil.zip", entry, link)
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    with pytest.raises(FetchError, match=f"{archive}: entry '{entry}'"):
        fetch_dataset(str(archive), work / "data" / "raw.zip", 100)
    assert not (tmp_path / "escaped.txt").exists() and not (work / "escaped.txt").exists()
    assert not Path("/tmp/escaped-abs.txt").exists()
    assert list((work / "data").iterdir()) == []


def test_archive_over_the_size_limit_is_refused(tmp_path):
    with pytest.raises(FetchError, match="over the limit"):
        fetch_dataset(str(TINY_ZIP), tmp_path / "raw.zip", max_archive_mb=0.5)
    assert list(tmp_path.iterdir()) == []
    bomb = tmp_path / "bomb.zip"  # small on disk, large unpacked
    with zipfile.ZipFile(TINY_ZIP) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for name in src.namelist():
            out.writestr(name, src.read(name))
        out.writestr("hand-keypoints/train/labels/zeros.txt", bytes(8 * 2**20))
    with pytest.raises(FetchError, match="MiB uncompressed, over the limit"):
        fetch_dataset(str(bomb), tmp_path / "raw.zip", max_archive_mb=5)
    assert not (tmp_path / "raw.zip").exists()


def test_corrupt_archive_leaves_no_dataset(tmp_path):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(TINY_ZIP.read_bytes()[: TINY_ZIP.stat().st_size // 2])
    with pytest.raises(FetchError, match="broken.zip"):
        fetch_dataset(str(broken), tmp_path / "raw.zip", 100)
    assert not (tmp_path / "raw.zip").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["broken.zip"]  # no partial file either


def test_failed_fetch_removes_a_previous_output(tmp_path):
    out = tmp_path / "raw.zip"
    fetch_dataset(str(TINY_ZIP), out, 100)
    with pytest.raises(FetchError):
        fetch_dataset(str(tmp_path / "missing.zip"), out, 100)
    assert not out.exists()


def test_a_missing_or_broken_archive_is_named(tmp_path):
    with pytest.raises(ArchiveError, match=f"{tmp_path / 'raw.zip'}: no dataset archive here .*dvc repro fetch"):
        DatasetArchive(tmp_path / "raw.zip")
    (tmp_path / "raw.zip").write_bytes(b"not a zip")
    with pytest.raises(ArchiveError, match="raw.zip: not a readable zip archive"):
        DatasetArchive(tmp_path / "raw.zip")
    with DatasetArchive(fetch_dataset(str(TINY_ZIP), tmp_path / "raw.zip", 100)) as archive:
        with pytest.raises(ArchiveError, match="raw.zip: no member 'hand-keypoints/val/images/nope.jpg'"):
            archive.read("hand-keypoints/val/images/nope.jpg")


# ---- validation --------------------------------------------------------------------------
def corrupt(root: Path) -> dict[str, str]:
    """Breaks one train sample per kind; returns {relative path: expected reason fragment}."""
    train = root / "hand-keypoints" / "train"
    images = sorted((train / "images").iterdir())
    label = lambda img: train / "labels" / (img.stem + ".txt")  # noqa: E731
    expected = {}

    def rel(p):
        return p.relative_to(root).as_posix()

    label(images[0]).unlink()
    expected[rel(images[0])] = "missing label"
    images[1].unlink()
    expected[rel(label(images[1]))] = "missing image"
    images[2].write_bytes(os.urandom(3000))
    expected[rel(images[2])] = "undecodable or truncated"
    data = images[3].read_bytes()
    images[3].write_bytes(data[: len(data) // 2])
    expected[rel(images[3])] = "undecodable or truncated"
    cv2.imwrite(str(images[4]), np.zeros((200, 200, 3), np.uint8))
    expected[rel(images[4])] = "200×200, expected 224×224"
    fields = label(images[5]).read_text().split()
    label(images[5]).write_text(" ".join(fields[:-1]))
    expected[rel(images[5])] = "67 fields, expected 68"
    label(images[6]).write_text(" ".join(fields[:5] + ["abc"] + fields[6:]))
    expected[rel(images[6])] = "non-numeric value 'abc'"
    label(images[7]).write_text(" ".join(fields[:5] + ["nan"] + fields[6:]))
    expected[rel(images[7])] = "NaN"
    label(images[8]).write_text(" ".join(fields[:5] + ["1.5"] + fields[6:]))
    expected[rel(images[8])] = "1.5 outside [0, 1]"
    label(images[9]).write_text(" ".join(fields[:7] + ["3"] + fields[8:]))
    expected[rel(images[9])] = "visibility 3 not in"
    label(images[10]).write_text(" ".join(fields) + "\n" + " ".join(fields))
    expected[rel(images[10])] = "2 hands, expected at most 1"
    label(images[11]).write_text("")
    expected[rel(images[11])] = "no hand"
    return expected


def packed(folder: Path, tmp_path: Path) -> DatasetArchive:
    """The folder's dataset as the fetch stage packs it, opened."""
    return DatasetArchive(fetch_dataset(str(folder), tmp_path / "raw.zip", 100))


def test_every_bad_sample_is_listed_with_its_reason_and_left_out(tmp_path, tiny_dataset):
    root = copy_dataset(tiny_dataset, tmp_path / "raw")
    expected = corrupt(root)
    with packed(root, tmp_path) as archive:
        samples, report = validate_dataset(archive, 224, 1)
    reasons = {b["path"]: b["reason"] for b in report["bad"]}
    assert set(reasons) == set(expected)
    for path, fragment in expected.items():
        assert fragment in reasons[path], (path, reasons[path])
    assert report["kept"] == {"train": 64 - 12, "val": 32}
    assert len(samples) == 64 - 12 + 32
    kept = {s.image for s in samples}
    assert not kept & set(expected)
    check_quality(report, tmp_path / "raw.zip", max_bad_fraction=0.5)  # the run goes on
    with pytest.raises(DataError, match="raw.zip: 12 of 64 train samples are bad"):
        check_quality(report, tmp_path / "raw.zip", max_bad_fraction=0.1)


def test_an_empty_split_fails_clearly(tmp_path, tiny_dataset):
    root = copy_dataset(tiny_dataset, tmp_path / "raw")
    for image in (root / "hand-keypoints" / "val" / "images").iterdir():
        image.write_bytes(b"broken")
    with packed(root, tmp_path) as archive:
        _, report = validate_dataset(archive, 224, 1)
    with pytest.raises(DataError, match="raw.zip: no valid sample in the val split"):
        check_quality(report, tmp_path / "raw.zip", max_bad_fraction=1.0)


def test_image_cache_writes_the_checksum_file_downstream_stages_depend_on(tmp_path, tiny_dataset):
    import json

    from handkp.core.io import sha256_file
    from handkp.data.cache import CHECKSUM_FILE, ImageCache, write_image_cache
    from handkp.data.dataset import keypoint_table

    with packed(copy_dataset(tiny_dataset, tmp_path / "raw"), tmp_path) as archive:
        samples, _ = validate_dataset(archive, 224, 1)
        table = keypoint_table(samples, 0.1, 42)
        counts = write_image_cache(table, archive, tmp_path / "images", 224)
    checksums = json.loads((tmp_path / "images" / CHECKSUM_FILE).read_text())
    assert set(checksums) == {"train.npy", "dev.npy", "val.npy", "index.json"}
    for name, digest in checksums.items():
        assert digest == sha256_file(tmp_path / "images" / name), name
    cache = ImageCache(tmp_path / "images")
    assert {split: len(cache.split(split)[0]) for split in counts} == counts
