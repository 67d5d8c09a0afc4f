"""End to end: `dvc repro` on the tiny real fixture, reproducibility, the deconv_layers=4
ablation through `dvc exp run`, and resume after a killed training run."""
import json
import shutil
import signal
import subprocess
import sys
import time

import polars as pl
import pytest
import torch

from conftest import GIT_IDENTITY, SESSION_ENV, dvc, run
from handkp.core.metrics import compute_metrics

# `dvc exp show` narrowed as the README shows it: the run's name and the headline metrics always,
# the params where they differ between the runs shown, every other column dropped.
README_EXP_METRICS = ("pck_5px", "pck_10px", "auc_0_15px", "heatmap_p50_ms")
README_EXP_SHOW = ["--only-changed", "--drop", r"^(?!seed$|(model|codec|train)\.)",
                   "--keep", f"^Experiment$|.*({'|'.join(README_EXP_METRICS)})$"]

METRIC_KEYS = {"pck_1px", "pck_3px", "pck_5px", "pck_7px", "pck_10px", "auc_0_15px", "epe_mean_px",
               "epe_median_px", "n_images", "n_keypoints", "missed_images"}


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
    assert set(files["reports/metrics/latency.json"]["data"]) == {"target", "heatmap_p50_ms", "yolo_p50_ms", "heatmap_vs_yolo"}
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
    curves = {run: (run / "reports/train/heatmap/plots/metrics/dev/auc_0_15px.tsv").read_text() for run in (pipeline_run, repo)}
    assert first == second, f"retraining log:\n{trained}\ndev AUC per epoch, first and second run: {list(curves.values())}"


def test_ablation_with_four_deconv_layers_runs_end_to_end(pipeline_run, tmp_path):
    repo = tmp_path / "ablation"
    shutil.copytree(pipeline_run, repo, symlinks=True)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "baseline run"], repo)  # the default's results, to diff the experiment against
    dvc(["exp", "run", "-S", "model.deconv_layers=4", "evaluate"], repo)
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
    column = {name: next((i for i, h in enumerate(header) if h.endswith(name)), None)
              for name in ("model.deconv_layers", "heatmap.json:pck_5px", "yolo.json:pck_5px", "heatmap_p50_ms")}
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
    proc = subprocess.Popen([sys.executable, "stages/train.py"], cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
