"""Fetch (download, safe extraction, atomic output) and validation of every bad-input kind."""
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

from handkp.data.dataset import DataError, check_quality, validate_dataset
from handkp.data.fetch import FetchError, fetch_dataset

from conftest import TINY_ZIP


def copy_dataset(tiny_dataset: Path, dst: Path) -> Path:
    shutil.copytree(tiny_dataset, dst)
    return dst


# ---- fetch -------------------------------------------------------------------------------
def test_fetch_from_zip_and_folder_give_the_same_layout(tmp_path, tiny_dataset):
    a = fetch_dataset(str(TINY_ZIP), tmp_path / "a" / "raw", 100)
    b = fetch_dataset(str(tiny_dataset / "hand-keypoints"), tmp_path / "b" / "raw", 100)
    for root in (a, b):
        assert len(list((root / "train" / "images").iterdir())) == 64
        assert len(list((root / "val" / "labels").iterdir())) == 32


def test_fetch_downloads_over_http_and_keeps_the_archive(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(TINY_ZIP.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{TINY_ZIP.name}"
        root = fetch_dataset(url, tmp_path / "raw", 100)
    finally:
        server.shutdown()
    assert len(list((root / "val" / "images").iterdir())) == 32
    # the archive is kept beside data/raw (downloads/), whole, with no temporary file
    assert [p.name for p in (tmp_path / "downloads").iterdir()] == [TINY_ZIP.name]
    assert (tmp_path / "downloads" / TINY_ZIP.name).read_bytes() == TINY_ZIP.read_bytes()


def test_fetch_without_network_says_how_to_use_a_local_copy(tmp_path):
    url = "http://127.0.0.1:9/hand-keypoints.zip"  # nothing listens there
    with pytest.raises(FetchError, match="cannot download .*downloads/.*data.source="):
        fetch_dataset(url, tmp_path / "raw", 100)
    assert not (tmp_path / "raw").exists()
    # no partial folder or file left beside it (at most the empty downloads folder)
    assert [p.name for p in tmp_path.iterdir()] in ([], ["downloads"])
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    # an archive put in downloads/ by hand is used instead of downloading
    (tmp_path / "downloads").mkdir(exist_ok=True)
    shutil.copy(TINY_ZIP, tmp_path / "downloads" / "hand-keypoints.zip")
    root = fetch_dataset(url, tmp_path / "raw", 100)
    assert len(list((root / "train" / "images").iterdir())) == 64


def evil_zip(path: Path, entry: str, link: bool = False) -> Path:
    with zipfile.ZipFile(TINY_ZIP) as src, zipfile.ZipFile(path, "w") as out:
        for name in src.namelist()[:6]:
            out.writestr(name, src.read(name))
        info = zipfile.ZipInfo(entry)
        if link:
            info.external_attr = (0o120777 << 16)
        out.writestr(info, "/etc/passwd" if link else "pwned")
    return path


@pytest.mark.parametrize("entry,link", [("../escaped.txt", False), ("hand-keypoints/../../escaped.txt", False),
                                        ("/tmp/escaped-abs.txt", False), ("hand-keypoints/link", True)])
def test_archives_with_escaping_entries_or_links_are_refused(tmp_path, entry, link):
    archive = evil_zip(tmp_path / "evil.zip", entry, link)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(FetchError, match=f"{archive}: entry '{entry}'"):
        fetch_dataset(str(archive), work / "data" / "raw", 100)
    assert not (tmp_path / "escaped.txt").exists() and not (work / "escaped.txt").exists()
    assert not Path("/tmp/escaped-abs.txt").exists()
    assert list((work / "data").iterdir()) == []


def test_archive_over_the_size_limit_is_refused(tmp_path):
    with pytest.raises(FetchError, match="over the limit"):
        fetch_dataset(str(TINY_ZIP), tmp_path / "raw", max_archive_mb=0.5)
    assert not (tmp_path / "raw").exists()


def test_corrupt_archive_leaves_no_dataset(tmp_path):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(TINY_ZIP.read_bytes()[: TINY_ZIP.stat().st_size // 2])
    with pytest.raises(FetchError, match="broken.zip"):
        fetch_dataset(str(broken), tmp_path / "raw", 100)
    assert not (tmp_path / "raw").exists()


def test_failed_fetch_removes_a_previous_output(tmp_path):
    out = tmp_path / "raw"
    fetch_dataset(str(TINY_ZIP), out, 100)
    with pytest.raises(FetchError):
        fetch_dataset(str(tmp_path / "missing.zip"), out, 100)
    assert not out.exists()


# ---- validation --------------------------------------------------------------------------
def corrupt(root: Path) -> dict[str, str]:
    """Breaks one train sample per kind; returns {relative path: expected reason fragment}."""
    train = root / "hand-keypoints" / "train"
    images = sorted((train / "images").iterdir())
    label = lambda img: train / "labels" / (img.stem + ".txt")  # noqa: E731
    expected = {}

    def rel(p):
        return p.relative_to(root).as_posix()

    label(images[0]).unlink(); expected[rel(images[0])] = "missing label"
    images[1].unlink(); expected[rel(label(images[1]))] = "missing image"
    images[2].write_bytes(os.urandom(3000)); expected[rel(images[2])] = "undecodable or truncated"
    data = images[3].read_bytes(); images[3].write_bytes(data[: len(data) // 2]); expected[rel(images[3])] = "undecodable or truncated"
    cv2.imwrite(str(images[4]), np.zeros((200, 200, 3), np.uint8)); expected[rel(images[4])] = "200×200, expected 224×224"
    fields = label(images[5]).read_text().split()
    label(images[5]).write_text(" ".join(fields[:-1])); expected[rel(images[5])] = "67 fields, expected 68"
    label(images[6]).write_text(" ".join(fields[:5] + ["abc"] + fields[6:])); expected[rel(images[6])] = "non-numeric value 'abc'"
    label(images[7]).write_text(" ".join(fields[:5] + ["nan"] + fields[6:])); expected[rel(images[7])] = "NaN"
    label(images[8]).write_text(" ".join(fields[:5] + ["1.5"] + fields[6:])); expected[rel(images[8])] = "1.5 outside [0, 1]"
    label(images[9]).write_text(" ".join(fields[:7] + ["3"] + fields[8:])); expected[rel(images[9])] = "visibility 3 not in"
    label(images[10]).write_text(" ".join(fields) + "\n" + " ".join(fields)); expected[rel(images[10])] = "2 hands, expected at most 1"
    label(images[11]).write_text(""); expected[rel(images[11])] = "no hand"
    return expected


def test_every_bad_sample_is_listed_with_its_reason_and_left_out(tmp_path, tiny_dataset):
    root = copy_dataset(tiny_dataset, tmp_path / "raw")
    expected = corrupt(root)
    samples, report = validate_dataset(root, root / "hand-keypoints", 224, 1)
    reasons = {b["path"]: b["reason"] for b in report["bad"]}
    assert set(reasons) == set(expected)
    for path, fragment in expected.items():
        assert fragment in reasons[path], (path, reasons[path])
    assert report["kept"] == {"train": 64 - 12, "val": 32}
    assert len(samples) == 64 - 12 + 32
    kept = {s.image for s in samples}
    assert not kept & set(expected)
    check_quality(report, root, max_bad_fraction=0.5)  # the run goes on
    with pytest.raises(DataError, match="12 of 64 samples are bad"):
        check_quality(report, root, max_bad_fraction=0.1)


def test_an_empty_split_fails_clearly(tmp_path, tiny_dataset):
    root = copy_dataset(tiny_dataset, tmp_path / "raw")
    shutil.rmtree(root / "hand-keypoints" / "val" / "images")
    _, report = validate_dataset(root, root / "hand-keypoints", 224, 1)
    with pytest.raises(DataError, match="no valid sample in the val split"):
        check_quality(report, root / "hand-keypoints", max_bad_fraction=1.0)
