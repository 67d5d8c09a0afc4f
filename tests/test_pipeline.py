"""End to end: `dvc repro` on the tiny real fixture, reproducibility, the deconv_layers=4
ablation through `dvc exp run`, experiments that re-run only what their change reaches, and
resume after a killed training run."""

import json
import re
import shutil
import signal
import subprocess
import sys
import time

import polars as pl
import pytest
import torch
import yaml
from conftest import GIT_IDENTITY, METRIC_KEYS, SESSION_ENV, dvc, run

from handkp.core.metrics import compute_metrics

# `dvc exp show` narrowed as the README shows it: the run's name and the headline metrics always,
# the params where they differ between the runs shown, every other column dropped.
README_EXP_METRICS = ("pck_5px", "pck_10px", "auc_0_15px", "heatmap_p50_ms")
README_EXP_SHOW = [
    "--only-changed",
    "--drop",
    r"^(?!seed$|(model|codec|train)\.)",
    "--keep",
    f"^Experiment$|.*({'|'.join(README_EXP_METRICS)})$",
]


def test_repro_writes_metrics_predictions_and_plots(pipeline_run):
    metrics = json.loads((pipeline_run / "reports/metrics/heatmap.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    assert metrics["n_images"] == 32 and metrics["missed_images"] == 0
    assert all(0 <= metrics[f"pck_{t}px"] <= 1 for t in (1, 3, 5, 7, 10))
    pred = pl.read_parquet(pipeline_run / "reports/predictions/heatmap_val.parquet")
    assert pred.columns == ["image", "keypoint", "x", "y", "score"] and pred.height == 32 * 21
    gt = pl.read_parquet(pipeline_run / "data/prepared/keypoints.parquet").filter(pl.col("split") == "val")
    recomputed, _, _ = compute_metrics(gt, pred)
    for key in ("pck_1px", "pck_5px", "pck_10px", "auc_0_15px"):
        assert recomputed[key] == pytest.approx(metrics[key], abs=1e-6)
    quality = json.loads((pipeline_run / "reports/data_quality.json").read_text())
    assert quality["checked"] == {"train": 64, "val": 32}
    assert (pipeline_run / "reports/figures/targets.png").stat().st_size > 10_000
    steps = (pipeline_run / "reports/train/heatmap/plots/metrics/dev/pck_5px.tsv").read_text().splitlines()
    assert len(steps) == 1 + 2  # header + one row per epoch


def test_second_repro_does_nothing_and_status_is_clean(pipeline_run):
    assert "up to date" in dvc(["status"], pipeline_run).stdout
    out = dvc(["repro"], pipeline_run).stdout
    assert "Running stage" not in out
    shown = json.loads(dvc(["metrics", "show", "--json"], pipeline_run).stdout)
    files = next(iter(shown.values()))["data"]
    assert set(files) == {"reports/metrics/heatmap.json", "reports/metrics/yolo.json", "reports/metrics/latency.json"}
    heatmap, yolo = (files[f"reports/metrics/{m}.json"]["data"] for m in ("heatmap", "yolo"))
    assert set(heatmap) == set(yolo) == METRIC_KEYS  # the two models read as two rows of the same columns
    assert set(files["reports/metrics/latency.json"]["data"]) == {
        "target",
        "heatmap_p50_ms",
        "heatmap_refine_p50_ms",
        "yolo_p50_ms",
        "heatmap_vs_yolo",
    }
    table = dvc(["metrics", "show"], pipeline_run).stdout.splitlines()
    assert len(table) == 4 and max(len(line) for line in table) < 400  # header + three rows, a screen wide
    dvc(["plots", "show", "-o", "plots-html"], pipeline_run)
    assert (pipeline_run / "plots-html" / "index.html").exists()
    shutil.rmtree(pipeline_run / "plots-html")


def test_same_params_give_the_same_metrics(pipeline_run, tmp_path):
    """Determinism: training again from scratch with the same params and data gives the same val metrics."""
    repo = tmp_path / "again"
    shutil.copytree(pipeline_run, repo, symlinks=True)
    shutil.rmtree(repo / "models" / "heatmap_checkpoint")
    trained = dvc(["repro", "--force", "-s", "train"], repo).stdout
    dvc(["repro", "--force", "-s", "evaluate"], repo)
    first = json.loads((pipeline_run / "reports/metrics/heatmap.json").read_text())
    second = json.loads((repo / "reports/metrics/heatmap.json").read_text())
    curves = {
        run: (run / "reports/train/heatmap/plots/metrics/dev/auc_0_15px.tsv").read_text()
        for run in (pipeline_run, repo)
    }
    assert first == second, (
        f"retraining log:\n{trained}\ndev AUC per epoch, first and second run: {list(curves.values())}"
    )


def stages_run(output: str) -> set[str]:
    """The stages a `dvc repro` / `dvc exp run` ran, from what it printed."""
    return set(re.findall(r"Running stage '([^']+)'", output))


def reached_by(repo, param: str) -> set[str]:
    """The stages a change of ``param`` must re-run, from dvc.yaml: those that declare it (or its
    section) and every stage downstream of them (a dep that is, or lies in, an upstream out)."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]

    def written(stage: dict) -> list[str]:
        return [
            next(iter(e)) if isinstance(e, dict) else e
            for e in stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", [])
        ]

    def feeds(a: str, b: str) -> bool:
        return any(d == o or d.startswith(o + "/") for o in written(stages[a]) for d in stages[b].get("deps", []))

    reached = {
        name
        for name, st in stages.items()
        if any(param == p or param.startswith(p + ".") for p in st.get("params", []))
    }
    while more := {b for b in stages if b not in reached and any(feeds(a, b) for a in reached)}:
        reached |= more
    return reached


def committed_copy(pipeline_run, dst):
    """A copy of the pipeline run, committed: the baseline an experiment runs on and is diffed against."""
    shutil.copytree(pipeline_run, dst, symlinks=True)
    run(["git", "add", "-A"], dst)
    run(["git", "commit", "-qm", "baseline run"], dst)
    return dst


def test_an_experiment_on_one_multihand_param_reruns_multihand_and_what_depends_on_it(pipeline_run, tmp_path):
    repo = committed_copy(pipeline_run, tmp_path / "multihand")
    ran = stages_run(dvc(["exp", "run", "-S", "multihand.upright=false"], repo).stdout)
    assert ran == reached_by(repo, "multihand.upright") == {"multihand", "previous_release", "release", "report"}
    # the stage runs the label boxes with the crops turned both ways: the other way is the run of the other setting
    before = json.loads((pipeline_run / "reports/metrics/multihand.json").read_text())
    after = json.loads((repo / "reports/metrics/multihand.json").read_text())
    assert before["label_boxes_other_orientation"]["upright"] is False
    assert after["label_boxes_other_orientation"]["upright"] is True

    def without_fps(figures):
        return {**figures, "fps": None}

    assert without_fps(after["label_boxes"]["overall"]) == without_fps(
        before["label_boxes_other_orientation"]["overall"]
    )
    assert without_fps(after["label_boxes_other_orientation"]["overall"]) == without_fps(
        before["label_boxes"]["overall"]
    )


def test_ablation_with_four_deconv_layers_runs_end_to_end(pipeline_run, tmp_path):
    repo = committed_copy(pipeline_run, tmp_path / "ablation")
    ran = stages_run(dvc(["exp", "run", "-S", "model.deconv_layers=4"], repo).stdout)
    assert ran == reached_by(repo, "model.deconv_layers")  # train, what reads `model`, and their descendants
    assert {"train", "evaluate", "export", "report"} <= ran and not ran & {"prepare", "yolo_train", "yolo_evaluate"}
    ckpt = torch.load(repo / "models/heatmap/best.pt", weights_only=False)
    assert ckpt["codec"]["heatmap_size"] == 112
    assert ckpt["state_dict"]["final.weight"].shape[0] == 21
    metrics = json.loads((repo / "reports/metrics/heatmap.json").read_text())
    assert METRIC_KEYS <= set(metrics)
    diff = json.loads(dvc(["metrics", "diff", "--all", "--json"], repo).stdout)
    changed = diff["reports/metrics/heatmap.json"]
    assert {f"pck_{t}px" for t in (1, 3, 5, 7, 10)} <= set(changed)
    assert all({"old", "new", "diff"} <= set(v) for v in changed.values())
    assert all(v["old"] == v["new"] for v in diff["reports/metrics/yolo.json"].values())  # the YOLO row did not change
    assert '"deconv_layers": 4' in dvc(["exp", "show", "--json"], repo).stdout
    # The README's narrowed view: one line per run, the params that differ and the headline columns.
    shown = dvc(["exp", "show", "--csv", *README_EXP_SHOW], repo).stdout.splitlines()
    header = shown[0].split(",")
    column = {
        name: next((i for i, h in enumerate(header) if h.endswith(name)), None)
        for name in ("model.deconv_layers", "heatmap.json:pck_5px", "yolo.json:pck_5px", "heatmap_p50_ms")
    }
    assert None not in column.values(), header
    assert not any(h.endswith(("Created", "State", "Executor", ".lr", ".epochs")) for h in header), header
    shown_as = [h for h in header if h != "Experiment" and not h.endswith(README_EXP_METRICS)]
    assert all(h.startswith(("model.", "train.", "codec.")) or h == "seed" for h in shown_as), header  # no dep hashes
    rows = [line.split(",") for line in shown[1:]]
    assert len(rows) == 3  # workspace, the baseline commit, the experiment
    assert {row[column["model.deconv_layers"]] for row in rows} == {"3", "4"}


def test_killed_training_resumes_from_its_last_checkpoint(pipeline_run, tmp_path):
    repo = tmp_path / "resume"
    shutil.copytree(pipeline_run, repo, symlinks=True)
    params = (repo / "params.yaml").read_text().replace("epochs: 2", "epochs: 3")
    (repo / "params.yaml").write_text(params)
    env = {**SESSION_ENV, **GIT_IDENTITY, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "stages/train.py"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    deadline = time.time() + 300
    for line in proc.stdout:  # wait until the first epoch's checkpoint is written, then kill mid-epoch 2
        lines.append(line)
        if line.startswith("epoch 1:") or time.time() > deadline:
            break
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert any(line.startswith("epoch 1:") for line in lines), "".join(lines)
    out = dvc(["repro", "train"], repo).stdout
    assert "resuming from models/heatmap_checkpoint/last.pt after epoch 1/3" in out
    assert "epoch 1:" not in out and "epoch 3:" in out
    assert (repo / "models/heatmap/best.pt").exists()
    rows = (repo / "reports/train/heatmap/plots/metrics/train/loss.tsv").read_text().splitlines()
    assert len(rows) == 1 + 3  # the curve has every epoch once


def test_readme_shows_the_narrowed_exp_show_that_is_tested():
    from conftest import REPO

    quoted = " ".join(a if a.startswith("--") else f"'{a}'" for a in README_EXP_SHOW)
    assert f"dvc exp show {quoted}" in (REPO / "README.md").read_text()


def test_finished_run_keeps_only_what_writing_best_pt_needs(pipeline_run, tmp_path):
    """The committed copy of a finished run holds its best weights, not its optimiser moments,
    and a new machine (no models/heatmap_checkpoint) writes the same best.pt from it without training."""
    repo = tmp_path / "finished"
    shutil.copytree(pipeline_run, repo, symlinks=True)
    params = (repo / "params.yaml").read_text().replace("state_copy: null", "state_copy: release/train_state.pt")
    (repo / "params.yaml").write_text(params)
    shutil.rmtree(repo / "models/heatmap_checkpoint")  # the run trains again, writing its copy
    run([sys.executable, "stages/train.py"], repo)
    state = torch.load(repo / "release/train_state.pt", weights_only=False)
    record = json.loads((repo / "release/train_state.json").read_text())
    assert record["epochs_done"] == record["epochs"] == 2 and record["state"].startswith("the finished run")
    assert state["optimizer"]["state"] == {} and state["optimizer"]["param_groups"]
    for weights in (state["model"], state["ema"]):
        assert weights.keys() == state["best_state_dict"].keys()
        assert all(torch.equal(weights[k], v) for k, v in state["best_state_dict"].items())
    trained = torch.load(repo / "models/heatmap/best.pt", weights_only=False)["state_dict"]
    shutil.rmtree(repo / "models/heatmap_checkpoint")
    shutil.rmtree(repo / "models/heatmap")
    out = run([sys.executable, "stages/train.py"], repo).stdout
    assert "resuming from release/train_state.pt after epoch 2/2" in out and "epoch 1:" not in out
    again = torch.load(repo / "models/heatmap/best.pt", weights_only=False)["state_dict"]
    assert again.keys() == trained.keys() and all(torch.equal(again[k], v) for k, v in trained.items())
