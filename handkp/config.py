"""Reading params.yaml."""
from __future__ import annotations

from pathlib import Path

import yaml


def load_params(path: str | Path = "params.yaml") -> dict:
    """The whole params file as a dict."""
    with open(path) as f:
        return yaml.safe_load(f)
