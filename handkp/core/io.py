"""Files written whole or not at all, and file hashes.

    with atomic_path("models/heatmap.onnx") as tmp:   # a temporary file beside the target
        write_something(tmp)                          # renamed over the target when the block ends
    write_json("reports/metrics/x.json", {...})       # the same, for JSON

A reader (or an interrupted run) never sees a half-written file: the rename is atomic on one
file system, and a failure inside the block removes the temporary file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` (same folder, same suffix), renamed to ``path`` when the
    block ends without an exception; removed otherwise. Parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.chmod(0o666 & ~_umask())  # mkstemp makes it 0600; the file gets the mode a plain open() would give
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, sort_keys: bool = False) -> Path:
    """``obj`` as indented JSON (one trailing newline), written atomically."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n")


def temp_dir_beside(path: str | os.PathLike) -> Path:
    """A new empty folder beside ``path`` (mode 0755), to build ``path``'s contents in before
    ``replace_dir``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    tmp.chmod(0o755)
    return tmp


def replace_dir(new: str | os.PathLike, out_dir: str | os.PathLike) -> None:
    """Puts the folder ``new`` in place of ``out_dir`` (which may not exist), old contents removed."""
    new, out_dir = Path(new), Path(out_dir)
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(out_dir, old)
    os.replace(new, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
