"""Shared test helpers: the tiny real dataset and throw-away copies of the pipeline.

``pipeline_run`` is one `dvc repro` of the whole pipeline on the tiny fixture (session-scoped,
so every end-to-end test reads the same run instead of training again)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
TINY_ZIP = FIXTURES / "hand-keypoints-tiny.zip"

# The environment as the session started: libraries imported by tests in this process (Ultralytics,
# NNCF) set variables such as OMP_NUM_THREADS=1, which must not leak into the pipeline runs a test
# starts (a training with another thread count computes other floating-point sums).
SESSION_ENV = dict(os.environ)

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@localhost",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@localhost",
}

# The columns of an evaluation's metrics file (the evaluate stages' and the runtime evaluator's).
METRIC_KEYS = {
    "pck_1px",
    "pck_3px",
    "pck_5px",
    "pck_7px",
    "pck_10px",
    "auc_0_15px",
    "epe_mean_px",
    "epe_median_px",
    "n_images",
    "n_keypoints",
    "missed_images",
}

# Params that make the whole pipeline take a few minutes on 2 CPU cores.
FAST_PARAMS = {
    "data": {"source": str(TINY_ZIP), "max_bad_fraction": 0.1, "dev_fraction": 0.1},
    "model": {"deconv_channels": 64},
    "train": {
        "epochs": 2,
        "batch_size": 16,
        "epoch_images": 0,
        "num_workers": 0,
        "bn_recalibration_batches": 2,
        "state_copy": None,
        "flat_epochs": 0,
        "final_epochs": 1,  # the last epoch with train.final_augment: both augmentations run
        "warm_start": None,  # the committed one is the release's state, which the tiny pipeline does not start from
    },
    "evaluate": {"batch_size": 16, "yolo_conf_threshold": 0.0},
    "yolo": {"epochs": 1, "batch": 8, "workers": 0, "device": "cpu"},
    "detector": {"imgsz": 224, "sweep": [160, 224]},
    "benchmark": {"warmup": 2, "iterations": 10, "images": 4},
    "quantize": {"calibration_images": 16, "parity_images": 4},
    "speed": {"rounds": 1},
    # the committed release is not in the copy's one-commit history: tests/release scores a commit of the copy
    "previous_release": {"commit": None},
}


def deep_update(base: dict, overrides: dict) -> dict:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def run(cmd: list[str], cwd: Path, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Runs a command, returning its output; on failure the assertion shows stdout and stderr."""
    env = {**SESSION_ENV, **GIT_IDENTITY, "PYTHONUNBUFFERED": "1", **kw.pop("env", {})}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, **kw)
    if check and proc.returncode != 0:
        command = " ".join(map(str, cmd))
        raise AssertionError(
            f"{command} exited {proc.returncode}\nstdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    return proc


def tracked_files(under: str = "", suffix: str = "") -> list[Path]:
    """The files that git tracks (below the folder ``under``, names ending in ``suffix``): what a
    fresh clone holds, never what lies in the checkout besides it (a .venv, data, builds).
    Outside a git checkout (e.g. an sdist), the tree as it is, .git left out."""
    proc = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode == 0 and proc.stdout:
        paths = [REPO / rel for rel in proc.stdout.split("\0") if rel]
    else:
        paths = [p for p in REPO.rglob("*") if ".git" not in p.relative_to(REPO).parts]
    root = REPO / under
    return sorted(p for p in paths if p.is_file() and p.name.endswith(suffix) and (not under or root in p.parents))


def make_pipeline_copy(dst: Path, overrides: dict) -> Path:
    """A git repo at ``dst`` holding the project's tracked files (``tracked_files``, tests
    excluded) and params.yaml with ``overrides`` merged in."""
    for path in tracked_files():
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith("tests/"):
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dst / rel)
    params = yaml.safe_load((dst / "params.yaml").read_text())
    (dst / "params.yaml").write_text(yaml.safe_dump(deep_update(params, overrides), sort_keys=False))
    run(["git", "init", "-q"], dst)
    run(["git", "add", "-A"], dst)
    run(["git", "commit", "-qm", "copy"], dst)
    return dst


def dvc(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], cwd, check=check)


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory) -> Path:
    """A pipeline copy after one full `dvc repro` on the tiny fixture."""
    repo = make_pipeline_copy(tmp_path_factory.mktemp("pipeline"), FAST_PARAMS)
    dvc(["repro"], repo)
    return repo


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """The tiny fixture extracted: a folder holding hand-keypoints/{train,val}/..."""
    out = tmp_path_factory.mktemp("tiny")
    with zipfile.ZipFile(TINY_ZIP) as zf:
        zf.extractall(out)
    return out
