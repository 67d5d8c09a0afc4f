"""The state of a training run between epochs, and where it is kept.

``last.pt`` (in ``models/heatmap_checkpoint/``, written after every epoch) holds everything a
resumed run needs to continue exactly where the interrupted one stopped: weights, optimiser,
schedule, EMA, the best epoch so far with its weights, the RNG state, and the run's fingerprint.
A copy of it (``train.state_copy``, by default ``release/train_state.pt``, committed to git with
its manifest ``release/train_state.json``) lets a run continue on a new machine that has only
the repository: ``dvc repro`` resumes from whichever of the two is further along and matches.
Once the run has finished, the copy keeps only what writing ``best.pt`` needs (``finished_state``):
a finished run is never continued, so its optimiser moments and last-epoch weights would only
weigh on the repository.
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from ..core.io import atomic_path, write_json

# The subpackages whose code decides what a training run computes: the train stage's code deps
# in dvc.yaml are these folders, and the fingerprint hashes the same files.
TRAINING_PACKAGES = ("core", "data", "model")
# ``train`` params that change how fast a run goes, not what it computes: left out of the fingerprint.
OPERATIONAL_KEYS = ("num_workers", "threads", "device", "state_copy", "compile")


def training_sources() -> list[Path]:
    """Every .py file of ``TRAINING_PACKAGES``, in a fixed order."""
    root = Path(__file__).resolve().parents[1]
    return sorted(p for pkg in TRAINING_PACKAGES for p in (root / pkg).rglob("*.py"))


def run_params(params: dict) -> dict:
    """The params sections a run's result depends on (``train``'s operational keys left out)."""
    out = {k: params[k] for k in ("seed", "model", "codec", "train")}
    out["train"] = {k: v for k, v in out["train"].items() if k not in OPERATIONAL_KEYS}
    return out


def fingerprint(params: dict, arrays: list[tuple[list[str], np.ndarray]]) -> str:
    """What a saved state must match to be resumed: the run's params (``run_params``), the
    training data (image names and keypoints of each split used) and the training code (a code
    change with the same state-dict layout must not resume an old run; comments and docstrings
    do not count, see ``code_text``)."""
    h = hashlib.sha256(json.dumps(run_params(params), sort_keys=True).encode())
    for names, keypoints in arrays:
        h.update("\n".join(names).encode())
        h.update(np.ascontiguousarray(keypoints, dtype=np.float32).tobytes())
    root = Path(__file__).resolve().parents[1]
    for path in training_sources():
        h.update(path.relative_to(root).as_posix().encode())
        h.update(code_text(path).encode())
    return h.hexdigest()[:16]


# Note: a module holding only a docstring reads as `pass`, an empty one as nothing, so the
# training packages' __init__.py files stay empty (their descriptions are in docs/architecture.md).
def code_text(path: Path) -> str:
    """A module's code without its comments, docstrings and formatting (its syntax tree written
    back as source): what it computes, so a reworded docstring does not restart a long run."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def save_state(path: Path, state: dict) -> None:
    """Writes a run state atomically."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: Path, fp: str) -> dict | None:
    """The state saved at ``path`` when it exists and belongs to the run ``fp``, else None
    (saying why when the file exists)."""
    if not Path(path).is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated copy fails in many ways
        print(f"{path}: unreadable run state ({err}): not resumed from it")
        return None
    if state.get("fingerprint") != fp:
        print(f"{path} was made with other params, data or code: not resumed from it")
        return None
    return state


def newest_state(paths: list[Path], fp: str) -> tuple[dict, Path] | None:
    """Of the states at ``paths`` that belong to the run ``fp``, the one furthest along."""
    found = [(s, p) for p in paths if (s := load_state(p, fp)) is not None]
    return max(found, key=lambda sp: sp[0]["epoch"]) if found else None


def _commit() -> str | None:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def finished_state(state: dict) -> dict:
    """A finished run's state as the train stage needs it to write ``best.pt`` without training:
    the best epoch's weights (also standing in for the model and EMA weights, loaded before the
    stage sees there is no epoch left), the optimiser's param groups without their moments, and
    the rest (schedule, best epoch, training seconds, RNG state, fingerprint) as it was."""
    best = state["best_state_dict"]
    optimizer = {"state": {}, "param_groups": state["optimizer"]["param_groups"]}
    return {**state, "model": best, "ema": best, "optimizer": optimizer}


def copy_state(last_path: Path, copy_path: Path, summary: dict) -> None:
    """Copies the run state to ``copy_path`` (atomically; once the run has finished, its
    ``finished_state`` only) and writes its manifest beside it (``.json``): the epoch reached, the
    dev metrics, throughput, fingerprint, commit, time, and what the file holds."""
    finished = summary["epochs_done"] == summary["epochs"]
    if finished:
        save_state(copy_path, finished_state(torch.load(last_path, map_location="cpu", weights_only=False)))
    else:
        with atomic_path(copy_path) as tmp:
            shutil.copyfile(last_path, tmp)
    holds = (
        "the finished run: its best weights (as model and EMA too), optimiser param groups without moments"
        if finished
        else "the whole run state after the last finished epoch"
    )
    write_json(
        copy_path.with_suffix(".json"),
        {
            **summary,
            "file": copy_path.name,
            "state": holds,
            "commit": _commit(),
            "saved_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
