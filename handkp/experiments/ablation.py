"""The accuracy half of the speed ablation: each head variant trained and evaluated on the same
schedule through `dvc exp run`, the results gathered from `dvc exp show` into one table.
(The latency half is the `speed` stage.)"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..core.io import write_json
from ..core.paths import ACCURACY_TABLE, METRICS, PARAMS

EXP_PREFIX = "ablation-"
METRICS_FILE = (METRICS / "heatmap.json").as_posix()  # the evaluate stage's, as `dvc exp show` names it


def set_value(value: Any) -> str:
    """A params value as `dvc exp run -S key=VALUE` reads it (YAML: null, lists, dicts, numbers)."""
    return json.dumps(value) if isinstance(value, (list, dict)) or value is None else str(value)


def exp_run_command(name: str, sets: dict[str, Any], target: str = "evaluate") -> list[str]:
    """`dvc exp run` of one variant, named ``ablation-<name>``: each dotted params key of ``sets``
    (``model.head``, ``train.augment.crop``) set to its value, up to the stage ``target``."""
    args = [arg for key, value in sets.items() for arg in ("-S", f"{key}={set_value(value)}")]
    return [sys.executable, "-m", "dvc", "exp", "run", "-n", f"{EXP_PREFIX}{name}", *args, target]


def exp_remove_command(name: str) -> list[str]:
    """`dvc exp remove` of one variant's experiment (on the current commit)."""
    return [sys.executable, "-m", "dvc", "exp", "remove", f"{EXP_PREFIX}{name}"]


def _experiments(node: Any) -> Iterator[dict]:
    """Every experiment record (a dict with ``name`` and ``data``) in `dvc exp show --json`."""
    if isinstance(node, dict):
        if isinstance(node.get("name"), str) and isinstance(node.get("data"), dict):
            yield node
        for value in node.values():
            yield from _experiments(value)
    elif isinstance(node, list):
        for value in node:
            yield from _experiments(value)


def collect_results(exp_show: Any, names: list[str]) -> dict[str, dict]:
    """{variant: {"model": model params, "train": schedule params, "metrics": val metrics}} for the
    ``ablation-<variant>`` experiments found in parsed `dvc exp show --json` output."""
    found: dict[str, dict] = {}
    for exp in _experiments(exp_show):
        name = exp["name"].removeprefix(EXP_PREFIX)
        if not exp["name"].startswith(EXP_PREFIX) or name not in names or name in found:
            continue
        params = exp["data"].get("params", {}).get(PARAMS.as_posix(), {}).get("data", {})
        metrics = exp["data"].get("metrics", {}).get(METRICS_FILE, {}).get("data")
        if metrics:
            found[name] = {
                "model": params.get("model", {}),
                "train": {k: v for k, v in params.get("train", {}).items() if k != "augment"},
                "data_source": params.get("data", {}).get("source"),
                "metrics": metrics,
            }
    return found


def _git(args: list[str], cwd: Path) -> str | None:
    """stdout of a git command, or None when it fails."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def reattach_head(branch_ref: str | None, cwd: Path) -> bool:
    """Puts HEAD back on ``branch_ref`` (e.g. ``refs/heads/main``) when it is left detached at that
    branch's commit, as an interrupted `dvc exp run` leaves it; commits made afterwards would
    otherwise land on no branch. True if it did."""
    if branch_ref is None or _git(["symbolic-ref", "-q", "HEAD"], cwd) is not None:
        return False
    if _git(["rev-parse", "HEAD"], cwd) != _git(["rev-parse", branch_ref], cwd):
        return False
    _git(["symbolic-ref", "-m", "handkp ablation: re-attach HEAD", "HEAD", branch_ref], cwd)
    print(f"ablation: dvc left HEAD detached; put it back on {branch_ref.removeprefix('refs/heads/')}", file=sys.stderr)
    return True


def run_ablation(variants: dict[str, dict], out_path: Path, cwd: Path = Path(".")) -> dict[str, dict]:
    """Runs every variant in order and writes their rows into the table at ``out_path`` (rows of
    other variants already there are kept; each row holds the params it was trained with). The
    workspace ends with the last variant's params and outputs (`dvc exp apply` or
    `git checkout params.yaml dvc.lock && dvc checkout` brings another back); a variant whose
    params are the workspace's own is an instant, cached run, so list the default first. Running
    a variant again replaces its experiment."""
    branch = _git(["symbolic-ref", "-q", "HEAD"], cwd)
    if branch is None:
        print("ablation: HEAD is on no branch; commit only after `git checkout <branch>`", file=sys.stderr)
    try:
        for name, overrides in variants.items():
            print(f"== ablation: {name} {overrides}", flush=True)
            # A rerun replaces the variant's earlier experiment (DVC refuses a second one of that
            # name). With no earlier one there is nothing to remove.
            subprocess.run(exp_remove_command(name), cwd=cwd, check=False, capture_output=True)
            sets = {f"model.{key}": value for key, value in overrides.items()}
            subprocess.run(exp_run_command(name, sets), cwd=cwd, check=True)
    finally:
        reattach_head(branch, cwd)
    shown = subprocess.run(
        [sys.executable, "-m", "dvc", "exp", "show", "--json"], cwd=cwd, check=True, capture_output=True, text=True
    )
    results = collect_results(json.loads(shown.stdout), list(variants))
    earlier = json.loads(out_path.read_text()) if out_path.is_file() else {}
    table = {**earlier, **results}  # rows of variants not run now stay, each with its own params
    write_json(out_path, table, sort_keys=True)
    return results


def ablation_main(argv: list[str], params: dict) -> int:
    """``python scripts/ablation.py VARIANT...``: the named variants of ``speed.variants``, trained
    and evaluated; prints one line per variant. Returns the exit code."""
    variants = params["speed"]["variants"]
    unknown = [n for n in argv if n not in variants]
    if unknown or not argv:
        print(
            "usage: python scripts/ablation.py VARIANT... (or: training VARIANT...); "
            f"variants in params.yaml speed.variants: {', '.join(variants)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else ""),
            file=sys.stderr,
        )
        return 2
    results = run_ablation({n: variants[n] for n in argv}, ACCURACY_TABLE)
    for name, row in results.items():
        m = row["metrics"]
        print(f"{name:28s} PCK@1/3/5/10 {m['pck_1px']:.3f} {m['pck_3px']:.3f} {m['pck_5px']:.3f} {m['pck_10px']:.3f}")
    return 0
