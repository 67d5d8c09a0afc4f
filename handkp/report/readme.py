"""The report's block in README.md: between two marker lines, replaced in place; every byte
outside the markers (line endings included) is left as it was."""

from __future__ import annotations

import shutil
from pathlib import Path

from handkp.core.errors import HandkpError
from handkp.core.io import atomic_path

START_MARKER = "<!-- report:start -->"
END_MARKER = "<!-- report:end -->"


class ReportError(HandkpError):
    """The report cannot be written (e.g. README.md has no report markers)."""


def replace_block(text: str, block: str, source: str = "README.md") -> str:
    """Replace what lies between the report markers; raise ReportError naming `source` if absent."""
    n_start, n_end = text.count(START_MARKER), text.count(END_MARKER)
    if n_start == 0 or n_end == 0:
        raise ReportError(
            f"{source}: no report markers; add a line `{START_MARKER}` and a line `{END_MARKER}` "
            "where the results belong"
        )
    if n_start > 1 or n_end > 1:
        raise ReportError(f"{source}: the report markers must appear exactly once each")
    i, j = text.index(START_MARKER), text.index(END_MARKER)
    if j < i:
        raise ReportError(f"{source}: `{END_MARKER}` comes before `{START_MARKER}`")
    return text[: i + len(START_MARKER)] + "\n" + block + "\n" + text[j:]


def update_readme(readme: Path, block: str) -> bool:
    """Rewrite the block in place; returns True if the file changed (bytes otherwise untouched)."""
    if not readme.is_file():
        raise ReportError(f"{readme}: README not found")
    raw = readme.read_bytes()
    text = raw.decode("utf-8")
    new = replace_block(text, block, str(readme))
    if "\r\n" in text:  # keep the file's own line endings
        new = new.replace("\r\n", "\n").replace("\n", "\r\n")
    new_raw = new.encode("utf-8")
    if new_raw == raw:
        return False
    with atomic_path(readme) as tmp:
        tmp.write_bytes(new_raw)  # bytes, not write_text: the encoding and line endings stay exact
        shutil.copymode(readme, tmp)  # the temporary file is created 0600; keep the README's mode
    return True
