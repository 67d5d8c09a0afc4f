"""``python -m handkp <command>``: the project's command line.

Each command is a module of this package with ``add_arguments(parser)`` and ``main(args) -> int``
(the exit code). To add one, add a line to ``COMMANDS``. Only the chosen command's module is
imported, so a command's dependencies never slow down or break another (the Jetson has no torch).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "live": ("handkp.app.cli", "real-time keypoints from a camera, video, stream or image folder"),
    "evaluate": ("handkp.evaluate.cli", "PCK of a model file on a split of the prepared data"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; the options of ``command`` only are added (its module imported)."""
    parser = argparse.ArgumentParser(prog="python -m handkp", description="Hand keypoint detection tools.")
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name, (module, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(cmd)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return int(importlib.import_module(COMMANDS[args.command][0]).main(args))


if __name__ == "__main__":
    sys.exit(main())
