"""Issue 32's training choices: each variant continued from the released weights for the same
number of images (so the same hours on one machine), then scored on the dev slice only, single pass
and with the refine pass. The variants and what they share are params.yaml's ``ablation`` section
(dotted params keys); each runs as `dvc exp run -n ablation-train-<name> -S ... train`, and its row
lands in reports/ablation/training.json as soon as it is scored, so an interrupted study keeps what
it finished. An interrupted variant resumes when the same command runs again on the same machine,
from the state copy the ``ablation.shared`` params put in git-ignored models/ablation_state/
(`dvc exp run` checks out the locked, empty models/heatmap_checkpoint/ before it trains).

    python scripts/ablation.py training continued crops_50
    python scripts/ablation.py training --score-again crops_50   # a score added since its row was written

Every key that any variant sets is set in every run (to the committed params.yaml's value where the
variant leaves it), so no variant inherits another's settings from the workspace that `dvc exp run`
leaves behind."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dvc.api
import numpy as np
import polars as pl
import yaml

from ..core.device import cpu_model_name
from ..core.errors import HandkpError
from ..core.io import write_json
from ..core.paths import HEATMAP_CHECKPOINT, IMAGE_CACHE, PARAMS, PREPARED_TABLE, TRAINING_ABLATION
from ..data.cache import ImageCache
from ..data.dataset import split_arrays
from ..evaluate.evaluation import split_metrics
from ..evaluate.multihand import label_box_figures, split_clips
from ..evaluate.robustness import perturbed_split
from ..release.manifest import training_summary
from ..runtime import load_predictor
from .ablation import EXP_PREFIX, _git, exp_remove_command, exp_run_command, reattach_head

NAME_PREFIX = "train-"  # experiment ablation-train-<variant>


def dotted(params: dict, key: str) -> Any:
    """The value of a dotted key (``train.augment.crop``) in a params dict; KeyError naming it."""
    node = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def variant_sets(cfg: dict, name: str, committed: dict) -> dict[str, Any]:
    """The params a variant runs with: ``cfg["shared"]``, then every key some variant of
    ``cfg["variants"]`` sets, at ``committed``'s value (params.yaml as committed), then the
    variant's own. HandkpError for an unknown variant or a key params.yaml does not have."""
    variants = cfg["variants"]
    if name not in variants:
        raise HandkpError(f"params.yaml ablation.variants has no {name!r} (it has {', '.join(variants)})")
    varied = sorted({key for sets in variants.values() for key in (sets or {})})
    shared = dict(cfg.get("shared") or {})
    for key in [*shared, *varied]:
        try:
            dotted(committed, key)
        except KeyError:
            raise HandkpError(f"params.yaml ablation: {key} is not a params key") from None
    return {**{key: dotted(committed, key) for key in varied}, **shared, **(variants[name] or {})}


def dev_scores(params: dict, weights: Path = HEATMAP_CHECKPOINT) -> dict[str, dict]:
    """A trained model (the workspace's models/heatmap/best.pt unless given, PyTorch on the CPU)
    on the dev slice: single pass, with the refine pass, both again on the dev images turned 180° (the
    robustness stage's ``rotation_180``), and in the multihand stage's clips made of dev hands
    with the labels' boxes in the detector's place (its ``multihand`` settings; overall figures)."""
    table = pl.read_parquet(PREPARED_TABLE)
    gt = table.filter(pl.col("split") == "dev")
    cache, batch_size = ImageCache(IMAGE_CACHE), int(params["evaluate"]["batch_size"])
    names, keypoints = split_arrays(table, "dev")
    pixels = np.stack([cache.read(name) for name in names])
    turned, turned_gt = perturbed_split("rotation_180", pixels, keypoints, names, int(params["seed"]))
    predictor = load_predictor(weights, "torch", "cpu")
    clips = split_clips(params, "dev")
    return {
        "dev": split_metrics(predictor, gt, cache, batch_size),
        "dev_refine": split_metrics(predictor.refined(), gt, cache, batch_size),
        "dev_rotation_180": split_metrics(predictor, turned_gt, turned, batch_size),
        "dev_rotation_180_refine": split_metrics(predictor.refined(), turned_gt, turned, batch_size),
        "dev_multihand_label_boxes": label_box_figures(predictor, clips, params["multihand"])["overall"],
    }


def run_training_ablation(
    names: list[str], params: dict, out_path: Path = TRAINING_ABLATION, cwd: Path = Path(".")
) -> dict[str, dict]:
    """Runs, scores (``dev_scores``) and records each named variant of ``params["ablation"]`` in
    turn (the module's docstring); rows of variants not run now stay in the table. Returns this
    call's rows."""
    cfg = params["ablation"]
    committed = yaml.safe_load(_git(["show", f"HEAD:{PARAMS.as_posix()}"], cwd) or "") or {}
    plans = {name: variant_sets(cfg, name, committed) for name in names}  # every name checked before any run
    branch = _git(["symbolic-ref", "-q", "HEAD"], cwd)
    rows: dict[str, dict] = {}
    try:
        for name, sets in plans.items():
            print(f"== ablation (training): {name} {sets}", flush=True)
            started = time.perf_counter()
            subprocess.run(exp_remove_command(NAME_PREFIX + name), cwd=cwd, check=False, capture_output=True)
            subprocess.run(exp_run_command(NAME_PREFIX + name, sets, "train"), cwd=cwd, check=True)
            summary = training_summary()
            rows[name] = {
                "sets": sets,
                **dev_scores(params),
                "train_hours": summary["train_hours"],
                "epochs": summary["epochs"],
                "images_per_s_median": summary["images_per_s_median"],
                "wall_hours": round((time.perf_counter() - started) / 3600, 3),
                "hardware": cpu_model_name(),
                "commit": _git(["rev-parse", "--short", "HEAD"], cwd),
            }
            earlier = json.loads(out_path.read_text()) if out_path.is_file() else {}
            write_json(out_path, {**earlier, name: rows[name]}, sort_keys=True)
    finally:
        reattach_head(branch, cwd)
    return rows


def experiment_commit(name: str, cwd: Path) -> str:
    """The commit of the newest experiment called ``name`` (on any baseline); HandkpError if none."""
    refs = _git(["for-each-ref", "--sort=-committerdate", "--format=%(objectname) %(refname)", "refs/exps"], cwd)
    for line in (refs or "").splitlines():
        commit, ref = line.split(" ", 1)
        if ref.rsplit("/", 1)[-1] == name:
            return commit
    raise HandkpError(f"no experiment {name!r} in this repository (`dvc exp list --all-commits` lists them)")


def score_again(names: list[str], params: dict, out_path: Path = TRAINING_ABLATION, cwd: Path = Path(".")) -> dict:
    """Scores the finished experiment of each named variant again with today's ``dev_scores`` (a
    score added after its row was written), keeping the row's training figures. The weights are
    read from the experiment's commit through DVC's cache; the workspace is left as it is. Returns
    the rows."""
    table = json.loads(out_path.read_text()) if out_path.is_file() else {}
    unknown = [name for name in names if name not in table]
    if unknown:
        raise HandkpError(f"{out_path}: no row for {', '.join(unknown)} to score again (it has {', '.join(table)})")
    commits = {name: experiment_commit(EXP_PREFIX + NAME_PREFIX + name, cwd) for name in names}
    for name, commit in commits.items():
        print(f"== ablation (training): {name} scored again (experiment {commit[:7]})", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            weights = Path(tmp) / HEATMAP_CHECKPOINT.name
            with dvc.api.open(HEATMAP_CHECKPOINT.as_posix(), repo=str(cwd), rev=commit, mode="rb") as src:
                weights.write_bytes(src.read())
            scores = dev_scores(params, weights)
        table[name] = {**table[name], **scores, "scored_commit": _git(["rev-parse", "--short", "HEAD"], cwd)}
        write_json(out_path, table, sort_keys=True)
    return {name: table[name] for name in names}


def training_ablation_main(args: list[str], params: dict) -> int:
    """``python scripts/ablation.py training [--score-again] VARIANT...``; prints one line per
    variant."""
    cfg = params.get("ablation") or {}
    again = args[:1] == ["--score-again"]
    names = args[1:] if again else args
    if not names or not cfg.get("variants"):
        print(
            "usage: python scripts/ablation.py training [--score-again] VARIANT...; "
            "variants in params.yaml ablation.variants: " + ", ".join(cfg.get("variants") or {}),
            file=sys.stderr,
        )
        return 2
    try:
        rows = score_again(names, params) if again else run_training_ablation(names, params)
    except HandkpError as err:
        print(f"ablation: {err}", file=sys.stderr)
        return 1
    for name, row in rows.items():
        d, r, t = row["dev"], row["dev_refine"], row["dev_rotation_180"]
        print(
            f"{name:28s} {row['train_hours']} h, dev PCK@1/3/5/10 "
            + " ".join(f"{d[f'pck_{k}px']:.3f}" for k in (1, 3, 5, 10))
            + ", refine "
            + " ".join(f"{r[f'pck_{k}px']:.3f}" for k in (1, 3, 5, 10))
            + f", turned 180 PCK@5 {t['pck_5px']:.3f}"
        )
    return 0
