"""The report: the README results block (between markers) and the figures under reports/figures/.

Every number in the block is read from the pipeline's files (docs/architecture.md, "Files between
stages"); nothing is typed. The output is deterministic (no timestamps, fixed ordering), so running
the report twice on the same inputs leaves README.md byte-identical.

    data.py        ReportPaths, ModelData, ReportData: what is read, and from where
    format.py      number formatting and model names shared by tables, sentences and figures
    tables.py      accuracy, latency and speed-by-design tables
    multihand.py   the several-hands section (the multihand stage's figures)
    release.py     the released files (release/manifest.json)
    sentences.py   what the numbers are; the comparison worded by who wins
    markdown.py    the block itself (render_markdown)
    qualitative.py per-image errors and the images the qualitative figure shows
    figures.py     the matplotlib figures
    readme.py      the markers and the in-place block replacement
    run.py         run_report
"""

from .data import MODELS, ModelData, ReportData, ReportPaths, load_report_data
from .figures import FIGURE_FILES, make_figures
from .markdown import render_markdown
from .readme import END_MARKER, START_MARKER, ReportError, replace_block, update_readme
from .run import ReportResult, run_report

__all__ = [
    "END_MARKER",
    "FIGURE_FILES",
    "MODELS",
    "START_MARKER",
    "ModelData",
    "ReportData",
    "ReportError",
    "ReportPaths",
    "ReportResult",
    "load_report_data",
    "make_figures",
    "render_markdown",
    "replace_block",
    "run_report",
    "update_readme",
]
