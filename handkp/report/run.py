"""`run_report`: read everything, write the figures, rewrite the README block."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .data import ReportPaths, load_report_data
from .figures import figure_links, make_figures
from .markdown import render_markdown
from .readme import ReportError, replace_block, update_readme

__all__ = ["ReportError", "ReportResult", "run_report"]


@dataclass
class ReportResult:
    markdown: str
    readme_changed: bool
    figures: dict[str, Path]


def run_report(paths: ReportPaths = ReportPaths(), *, figures: bool = True) -> ReportResult:
    """Read everything, write the figures, rewrite the README block. Checks the README first."""
    if not paths.readme.is_file():
        raise ReportError(f"{paths.readme}: README not found")
    replace_block(paths.readme.read_text(encoding="utf-8"), "", str(paths.readme))  # fail early
    data = load_report_data(paths)
    made = make_figures(data) if figures else {}
    markdown = render_markdown(data, figure_links(paths))
    changed = update_readme(paths.readme, markdown)
    return ReportResult(markdown, changed, made)
