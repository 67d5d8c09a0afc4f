"""How the live app reports: its exit codes (``EXIT_*``, listed in ``--help``), the errors it
reports with a message and an exit code instead of a traceback (``LiveError`` and subclasses), and
its progress and warning lines on stderr (``log``)."""

from __future__ import annotations

import sys

from handkp.core.errors import HandkpError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SOURCE = 3
EXIT_MODEL = 4
EXIT_SOURCE_LOST = 5
EXIT_DISPLAY = 6
EXIT_OUTPUT = 7

EXIT_CODES_HELP = """\
exit codes:
  0  done: the end of a file or folder, or stopped by the user (q/Esc in the window, Ctrl-C,
     SIGTERM, --max-frames reached)
  1  unexpected error (a traceback follows)
  2  bad command line
  3  the source cannot be opened: no such file or folder, not a readable video, a folder
     without images, a camera or URL still unavailable after --retry-s seconds
  4  the model (or the --detector) cannot be loaded: missing or corrupt file, model/backend mismatch, backend
     not installed
  5  the source failed mid-stream: a camera or stream gone for longer than --retry-s, a file
     unreadable or truncated partway (the summary is still printed, outputs are kept)
  6  a window was asked for but cannot be opened (OpenCV without GUI support, or no
     display): use --headless
  7  an output file (--save, --json) cannot be written
  130 interrupted (Ctrl-C) before the first frame (while loading the model or waiting for a camera)"""


class LiveError(HandkpError):
    """An error the app reports with a message and an exit code (no traceback)."""

    exit_code = EXIT_ERROR


class UsageError(LiveError):
    """Options the source does not allow (argparse reports the malformed ones itself)."""

    exit_code = EXIT_USAGE


class SourceError(LiveError):
    """The source cannot be opened."""

    exit_code = EXIT_SOURCE


class DisplayError(LiveError):
    """A window was asked for but cannot be opened."""

    exit_code = EXIT_DISPLAY


class OutputError(LiveError):
    """An output file cannot be written."""

    exit_code = EXIT_OUTPUT


class ModelError(LiveError):
    """The model cannot be loaded (wraps handkp.core.errors.ModelLoadError and a missing backend package)."""

    exit_code = EXIT_MODEL


def log(message: str) -> None:
    """A progress or warning line on stderr, prefixed ``[live]``."""
    print(f"[live] {message}", file=sys.stderr, flush=True)
