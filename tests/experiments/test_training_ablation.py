"""Issue 32's training ablation: what each variant runs with (no variant inherits another's
settings), and the whole study through `dvc exp run` on the tiny fixture's pipeline, warm-started
from the released weights and scored on the dev slice."""

import json
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import SESSION_ENV, run

from handkp.core.errors import HandkpError
from handkp.experiments.training import variant_sets

COMMITTED = {"train": {"lr": 0.002, "epochs": 80, "augment": {"crop": 0.0, "other_hand": 0.0, "rotation_deg": 90}}}
STUDY = {
    "shared": {"train.epochs": 2},
    "variants": {
        "continued": {},
        "crops": {"train.augment.crop": 0.5},
        "crops_other": {"train.augment.crop": 0.5, "train.augment.other_hand": 0.3},
    },
}


def test_every_key_a_variant_sets_is_set_in_every_run():
    assert variant_sets(STUDY, "continued", COMMITTED) == {
        "train.augment.crop": 0.0,
        "train.augment.other_hand": 0.0,
        "train.epochs": 2,
    }
    assert variant_sets(STUDY, "crops", COMMITTED) == {
        "train.augment.crop": 0.5,
        "train.augment.other_hand": 0.0,  # as committed, whatever the workspace holds from the run before
        "train.epochs": 2,
    }
    assert variant_sets(STUDY, "crops_other", COMMITTED)["train.augment.other_hand"] == 0.3


def test_unknown_variants_and_keys_are_refused_by_name():
    with pytest.raises(HandkpError, match="no 'crops_75'.*continued, crops, crops_other"):
        variant_sets(STUDY, "crops_75", COMMITTED)
    bad = {**STUDY, "variants": {"typo": {"train.augment.crops": 0.5}}}
    with pytest.raises(HandkpError, match="train.augment.crops is not a params key"):
        variant_sets(bad, "typo", COMMITTED)


def python_in(repo, *args: str) -> subprocess.CompletedProcess:
    """``python ARGS...`` run in the study's repository copy, its output captured."""
    return subprocess.run([sys.executable, *args], cwd=repo, env=SESSION_ENV, capture_output=True, text=True)


def test_the_study_runs_warm_started_variants_and_scores_them_on_dev(pipeline_run, tmp_path):
    """Two variants on the fixture's pipeline copy, each warm-started from release/train_state.pt
    (the real released run: the fixture's model section is the release's) for one short epoch."""
    repo = tmp_path / "study"
    shutil.copytree(pipeline_run, repo, symlinks=True)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["ablation"] = {
        "shared": {
            "train.warm_start": "release/train_state.pt",
            "train.epochs": 1,
            "train.epoch_images": 16,
            "train.lr": 0.0001,
            "train.augment.crop": 0.0,  # pinned as params.yaml's study pins what its rows ran with
        },
        "variants": {"continued": {}, "crops": {"train.augment.crop": 1.0}},
    }
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    table_path = repo / "reports/ablation/training.json"
    committed = {"crops_50": {"kept": "a row of an earlier session"}, "continued": {"replaced": True}}
    table_path.parent.mkdir(parents=True, exist_ok=True)
    table_path.write_text(json.dumps(committed))
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "study"], repo)
    done = python_in(repo, "scripts/ablation.py", "training", "crops", "continued")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "starting from the weights of release/train_state.pt" in done.stdout
    table = json.loads(table_path.read_text())
    # rows of variants not run again are kept (studies span sessions); a re-run variant's row is replaced
    assert set(table) == {"crops", "continued", "crops_50"} and table["crops_50"] == committed["crops_50"]
    assert "replaced" not in table["continued"]
    del table["crops_50"]
    assert table["crops"]["sets"]["train.augment.crop"] == 1.0
    assert table["continued"]["sets"]["train.augment.crop"] == 0.0  # not inherited from the crops run
    for row in table.values():
        assert row["dev"]["n_images"] == row["dev_refine"]["n_images"] == row["dev_rotation_180"]["n_images"] > 0
        assert row["dev_rotation_180_refine"]["n_images"] == row["dev"]["n_images"]
        multihand = row["dev_multihand_label_boxes"]  # the clips of dev hands, label boxes for the detector
        assert multihand["hands"] > 0 and 0 <= multihand["missed_rate"] <= 1
        # the released weights, barely moved: far above what the fixture's 2 epochs from random weights reach
        assert row["dev"]["pck_10px"] > 0.5
        # one epoch of 16 images: seconds, so 0.0 h at the table's 3 decimals
        assert row["epochs"] == 1 and row["train_hours"] is not None and row["images_per_s_median"] > 0
    fixture = json.loads((repo / "reports/metrics/heatmap.json").read_text())
    assert fixture["pck_10px"] < 0.5
    shown = python_in(repo, "-m", "dvc", "exp", "show", "--json").stdout
    assert "ablation-train-crops" in shown and "ablation-train-continued" in shown
    # scored again from its experiment's weights in DVC's cache (the workspace holds continued's, the last run's,
    # and keeps them): the same figures
    workspace = (repo / "models/heatmap/best.pt").read_bytes()
    again = python_in(repo, "scripts/ablation.py", "training", "--score-again", "crops")
    assert again.returncode == 0, again.stderr[-3000:]
    assert (repo / "models/heatmap/best.pt").read_bytes() == workspace
    rescored = json.loads(table_path.read_text())
    assert rescored["crops"]["scored_commit"] and rescored["crops"]["train_hours"] == table["crops"]["train_hours"]
    for key in ("dev", "dev_refine", "dev_rotation_180", "dev_multihand_label_boxes"):
        timed = {"fps"}  # the multihand figures' frame rate is a timing
        assert {k: v for k, v in rescored["crops"][key].items() if k not in timed} == {
            k: v for k, v in table["crops"][key].items() if k not in timed
        }
    assert rescored["continued"] == table["continued"] and rescored["crops_50"] == committed["crops_50"]
    bad = python_in(repo, "scripts/ablation.py", "training", "--score-again", "crops_25")
    assert bad.returncode == 1 and "no row for crops_25" in bad.stderr
    bad = python_in(repo, "scripts/ablation.py", "training", "--score-again", "crops_50")  # a row, no experiment
    assert bad.returncode == 1 and "no experiment 'ablation-train-crops_50'" in bad.stderr
    bad = python_in(repo, "scripts/ablation.py", "training", "nope")
    assert bad.returncode == 1 and "no 'nope'" in bad.stderr
