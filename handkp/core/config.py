"""Reading params.yaml, and running a stage script."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import yaml

from .errors import HandkpError
from .paths import PARAMS


def load_params(path: str | Path = PARAMS) -> dict:
    """The whole params file as a dict."""
    with open(path) as f:
        return yaml.safe_load(f)


def run_stage(name: str, stage: Callable[[dict], object], params_path: str | Path = PARAMS) -> None:
    """A stage script's ``main``: runs ``stage(params)``; a HandkpError ends the process with its
    message (no traceback) and a non-zero status."""
    try:
        stage(load_params(params_path))
    except HandkpError as err:
        sys.exit(f"{name} failed: {err}")
