"""How the report writes numbers and names models: the same formatting in tables, sentences and
figure labels, so a number shown twice is shown the same way."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

MISSING = "–"
TABLE_NAMES = {"heatmap": "heatmap", "yolo": "YOLO"}  # in tables and figure legends
SUBJECTS = {"heatmap": "The heatmap model", "yolo": "YOLO"}  # at the start of a sentence
OBJECTS = {"heatmap": "the heatmap model", "yolo": "YOLO"}  # inside a sentence


def posix(path: Path | str) -> str:
    return Path(path).as_posix()


def num(d: Mapping[str, Any] | None, key: str) -> float | None:
    """``d[key]`` as a float; None where ``d`` is None, the key is absent, not a number, or NaN."""
    if d is None:
        return None
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return None if math.isnan(v) else v


def fmt_pck(v: float | None) -> str:
    return MISSING if v is None else f"{v:.3f}"


def fmt_px(v: float | None) -> str:
    return MISSING if v is None else f"{v:.2f}"


def fmt_ms(v: float | None) -> str:
    return MISSING if v is None else f"{v:.2f}"


def fmt_fps(v: float | None) -> str:
    return MISSING if v is None else f"{v:.1f}"


def fmt_count(v: float | None) -> str:
    return MISSING if v is None else f"{int(round(v)):,}"


def plural(n: float | None, word: str) -> str:
    if n is None:
        return f"{MISSING} {word}s"
    return f"{fmt_count(n)} {word}" + ("" if int(round(n)) == 1 else "s")


def table_row(cells: Sequence[str]) -> str:
    """One row of a markdown table: ``| a | b |``."""
    return "| " + " | ".join(cells) + " |"


def table_rule(head: Sequence[str], left: int) -> str:
    """The rule under a markdown table's ``head``: its first ``left`` columns left-aligned, the
    rest (numbers) right-aligned."""
    return "|" + "|".join(["---"] * left + ["---:"] * (len(head) - left)) + "|"
