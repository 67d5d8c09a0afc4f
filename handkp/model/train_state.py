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

A run can also start from another run's weights (``train.warm_start``, ``load_warm_start``): the
training behind them (``budget``: seconds, epochs, images) is carried along in the run state as
``budget_before``, so that the manifest states the whole budget, never only this run's.

``RunFiles`` names a run's files, ``Progress`` is what the run has done so far, ``run_state`` the
dict saved after every epoch.
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.errors import HandkpError
from ..core.io import atomic_path, sha256_file, write_json
from .checkpoint import save_torch
from .optimisation import Optimisation

# The module whose imports, followed through the package, are the code a training run computes with
# (the fingerprint hashes them; the train stage's code deps in dvc.yaml are their folders).
TRAINING_ENTRY = "model/train.py"
# ``train`` params that change how fast a run goes, not what it computes: left out of the fingerprint.
OPERATIONAL_KEYS = ("num_workers", "threads", "device", "state_copy", "compile")
# What a budget counts: the training behind a set of weights (None: not known).
BUDGET_KEYS = ("train_seconds", "epochs_done", "images_seen")


class TrainError(HandkpError):
    """A ``train`` setting, or a file it names, that a run cannot use; the message names it."""


# Where the pipeline's files live, not what a run computes: a new path must not restart a long run.
NOT_TRAINING_CODE = ("core/paths.py",)


def training_sources() -> list[Path]:
    """The package's modules that ``TRAINING_ENTRY`` imports, itself and through the modules it
    imports (import statements inside functions too), but ``NOT_TRAINING_CODE``, in a fixed
    order: work on a module training never loads does not restart a long run."""
    root = Path(__file__).resolve().parents[1]
    found: set[Path] = set()
    todo = [root / TRAINING_ENTRY]
    while todo:
        path = todo.pop()
        if path not in found:
            found.add(path)
            todo += imported_modules(path, root)
    return sorted(p for p in found if p.relative_to(root).as_posix() not in NOT_TRAINING_CODE)


def imported_modules(path: Path, root: Path) -> list[Path]:
    """The files of the package at ``root`` that the import statements of module ``path`` load:
    each module named, as a module or as a name imported from its package, and every package
    above it (its ``__init__.py``)."""
    package = path.relative_to(root.parent).parent.parts  # ("handkp", "model") for model/train.py
    dotted: list[list[str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            dotted += [alias.name.split(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            base += node.module.split(".") if node.module else []
            dotted += [base, *(base + [alias.name] for alias in node.names)]
    files = []
    for parts in dotted:
        if parts[:1] != [root.name]:
            continue
        for depth in range(1, len(parts) + 1):
            module = root.parent.joinpath(*parts[:depth])
            files += [f for f in (module.with_suffix(".py"), module / "__init__.py") if f.is_file()]
    return files


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
    save_torch(path, state)


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


def add_budgets(budget: dict, before: dict | None) -> dict:
    """``budget`` plus ``before`` (None: nothing before), key by key (``BUDGET_KEYS``); a count
    unknown in either is unknown (None) in the sum."""
    if before is None:
        return dict(budget)
    return {k: None if budget[k] is None or before[k] is None else budget[k] + before[k] for k in BUDGET_KEYS}


def run_budget(state: dict) -> dict:
    """All the training behind a run state's weights: its own epochs (``images_seen`` is None in a
    state saved before the key existed) plus its ``budget_before``."""
    own = {
        "train_seconds": state["train_seconds"],
        "epochs_done": state["epoch"] + 1,
        "images_seen": state.get("images_seen"),
    }
    return add_budgets(own, state.get("budget_before"))


def manifest_images_seen(path: Path, state: dict) -> int | None:
    """The images seen by the run state at ``path`` as the manifest beside it (``.json``, written
    by ``copy_state``) states them, when that manifest is of the same state (fingerprint, epoch)."""
    manifest = path.with_suffix(".json")
    if not manifest.is_file():
        return None
    record = json.loads(manifest.read_text())
    same = record.get("fingerprint") == state.get("fingerprint") and record.get("epochs_done") == state["epoch"] + 1
    return record.get("images_seen") if same else None


def warm_weights(path: Path, source: dict) -> tuple[dict, dict]:
    """(weights, budget behind them) of a loaded warm-start file: a run state (its best epoch's
    EMA weights; the images seen from its manifest when the state predates counting them) or a
    heatmap checkpoint (``save_checkpoint``; its ``budget`` when it records one, else every count
    unknown)."""
    if isinstance(source, dict) and "best_state_dict" in source:
        if source["best_state_dict"] is None:
            raise TrainError(f"{path}: train.warm_start is a run state without best weights yet")
        if "images_seen" not in source:
            source = {**source, "images_seen": manifest_images_seen(path, source)}
        return source["best_state_dict"], run_budget(source)
    if isinstance(source, dict) and isinstance(source.get("state_dict"), dict):
        return source["state_dict"], source.get("budget", dict.fromkeys(BUDGET_KEYS))
    raise TrainError(
        f"{path}: train.warm_start is neither a run state (best_state_dict) nor a heatmap checkpoint (state_dict)"
    )


def check_same_layout(path: Path, weights: dict, model: nn.Module) -> None:
    """Raises TrainError naming ``path`` and the first tensor whose name or shape differs from the network's."""
    own = model.state_dict()
    for key, tensor in own.items():
        if key not in weights:
            raise TrainError(f"{path}: train.warm_start has no tensor {key} of this network (params' model section)")
        if tuple(weights[key].shape) != tuple(tensor.shape):
            raise TrainError(
                f"{path}: train.warm_start's {key} is {tuple(weights[key].shape)}, this network's "
                f"{tuple(tensor.shape)} (params' model section)"
            )
    extra = [k for k in weights if k not in own]
    if extra:
        raise TrainError(f"{path}: train.warm_start has {extra[0]}, which this network lacks (params' model section)")


def load_warm_start(path: Path, model: nn.Module) -> tuple[dict, dict]:
    """Loads the full network weights of the file ``path`` (a run state or a heatmap checkpoint)
    into ``model``. Returns (``{"path", "sha256"}`` of the file, the budget behind the weights:
    ``BUDGET_KEYS``). TrainError when the file is missing, unreadable, or its tensors' names or
    shapes differ from the network's."""
    path = Path(path)
    if not path.is_file():
        raise TrainError(f"{path}: train.warm_start names no file")
    try:
        source = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file fails in many ways
        raise TrainError(f"{path}: train.warm_start is unreadable ({err})") from err
    weights, budget = warm_weights(path, source)
    check_same_layout(path, weights, model)
    model.load_state_dict(weights)
    return {"path": str(path), "sha256": sha256_file(path)}, budget


@dataclass
class RunFiles:
    """Where a run keeps its results: ``best`` (best.pt), ``last`` (the run state after the last
    finished epoch) and ``copy`` (``train.state_copy``, None: off)."""

    best: Path
    last: Path
    copy: Path | None

    @classmethod
    def make(cls, out_dir: Path, ckpt_dir: Path, state_copy: str | None) -> RunFiles:
        """The files in ``out_dir`` and ``ckpt_dir`` (both created)."""
        out_dir, ckpt_dir = Path(out_dir), Path(ckpt_dir)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        return cls(out_dir / "best.pt", ckpt_dir / "last.pt", Path(state_copy) if state_copy else None)

    @property
    def resumable(self) -> list[Path]:
        return [self.last] + ([self.copy] if self.copy else [])

    def check_warm_start(self, warm_start: str | None) -> None:
        """TrainError when ``train.warm_start`` is one of this run's own files (it would
        overwrite the weights it started from)."""
        if not warm_start:
            return
        own = {"train.state_copy": self.copy, "the run state": self.last, "the best checkpoint": self.best}
        for name, path in own.items():
            if path is not None and Path(warm_start).resolve() == path.resolve():
                raise TrainError(
                    f"{warm_start}: train.warm_start is {name} of this run, which overwrites it; "
                    "copy the file elsewhere and warm-start from the copy"
                )


def hours(seconds: float | None) -> float | None:
    """Seconds as hours to 3 decimals, as the manifests state them (None stays None)."""
    return None if seconds is None else round(seconds / 3600, 3)


@dataclass
class Progress:
    """What the run has done: the next epoch (0-based), the best epoch so far with its weights,
    the training seconds and images of its epochs, and the warm start it began from (``{"path",
    "sha256"}``) with the training behind it (``budget_before``: ``BUDGET_KEYS``)."""

    next_epoch: int = 0
    best: dict = field(default_factory=lambda: {"score": -1.0, "epoch": -1, "metrics": {}})
    best_state: dict | None = None
    train_seconds: float = 0.0
    images_seen: int | None = 0
    warm_start: dict | None = None
    budget_before: dict | None = None

    @classmethod
    def of_state(cls, state: dict) -> Progress:
        """The progress saved in a run state (one saved before warm starts existed has none)."""
        return cls(
            next_epoch=state["epoch"] + 1,
            best=state["best"],
            best_state=state["best_state_dict"],
            train_seconds=state["train_seconds"],
            images_seen=state.get("images_seen"),
            warm_start=state.get("warm_start"),
            budget_before=state.get("budget_before"),
        )

    def count(self, epoch: int, seconds: float, seen: int) -> None:
        """Counts the finished ``epoch`` (0-based) of ``seconds`` and ``seen`` images (all ranks)."""
        self.next_epoch, self.train_seconds = epoch + 1, self.train_seconds + seconds
        self.images_seen = (epoch + 1) * seen

    def keep_if_best(self, epoch: int, dev: dict, score: float, model: nn.Module) -> None:
        """Keeps ``model``'s weights (on the CPU) and the ``dev`` metrics when ``score`` beats the best so far."""
        if score > self.best["score"]:
            self.best = {"score": score, "epoch": epoch, "metrics": dev}
            self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}

    def warm_start_record(self) -> dict | None:
        """For the manifest: the warm start's file (path, sha256) and the training behind it."""
        if self.warm_start is None:
            return None
        return {**self.warm_start, **self.budget_before, "train_hours": hours(self.budget_before["train_seconds"])}

    def total_budget(self) -> dict:
        """The training behind this run's weights, the warm start's included."""
        own = {"train_seconds": self.train_seconds, "epochs_done": self.next_epoch, "images_seen": self.images_seen}
        return add_budgets(own, self.budget_before)


def run_state(fp: str, epoch: int, opt: Optimisation, progress: Progress) -> dict:
    """The run state after ``epoch``: what a resumed run continues from."""
    return {
        "fingerprint": fp,
        "epoch": epoch,
        "model": opt.model.state_dict(),
        "optimizer": opt.optimizer.state_dict(),
        "scheduler": opt.scheduler.state_dict(),
        "ema": {k: v.cpu() for k, v in opt.ema.state.items()},
        "ema_updates": opt.ema.updates,
        "best": progress.best,
        "best_state_dict": progress.best_state,
        "train_seconds": progress.train_seconds,
        "images_seen": progress.images_seen,
        "warm_start": progress.warm_start,
        "budget_before": progress.budget_before,
        "torch_rng": torch.get_rng_state(),
    }
