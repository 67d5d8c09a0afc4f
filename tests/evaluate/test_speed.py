"""Speed by design: MACs, the INT8 variant, the ablation table and the speed stage's outputs."""
import json
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

import handkp.evaluate.ablation
from handkp.deploy.parity import compare_predictors
from handkp.deploy.quantize import quantize_int8
from handkp.evaluate.ablation import collect_results, exp_run_command, reattach_head, run_ablation
from handkp.evaluate.speed import count_macs, export_variant
from handkp.runtime import load_predictor


def test_macs_of_known_layers():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1))
    expected = 224 * 224 * 8 * 3 * 9 + 224 * 224 * 8 * 9 + 224 * 224 * 8 * 4 * 16
    assert count_macs(model) == expected


def test_light_bilinear_head_is_far_cheaper_than_the_seed_head(tmp_path):
    seed = export_variant({"backbone_tail": "full", "head": "deconv", "deconv_layers": 3, "deconv_channels": 256}, {"sigma": 2.0}, tmp_path / "seed.onnx")
    light = export_variant({"backbone_tail": "light", "head": "bilinear_dw", "deconv_layers": 3, "deconv_channels": 96}, {"sigma": 2.0}, tmp_path / "light.onnx")
    assert seed["heatmap_size"] == light["heatmap_size"] == 56
    assert light["macs_m"] < 0.25 * seed["macs_m"] and light["params_m"] < 0.5 * seed["params_m"]
    assert load_predictor(tmp_path / "light.onnx", "onnxruntime").kind == "heatmap"


def test_int8_model_keeps_metadata_and_stays_close(tmp_path, tiny_dataset):
    import cv2

    torch.manual_seed(0)
    cfg = {"backbone_tail": "light", "head": "bilinear_dw", "deconv_layers": 3, "deconv_channels": 32}
    export_variant(cfg, {"sigma": 2.0}, tmp_path / "fp32.onnx")
    fp32 = load_predictor(tmp_path / "fp32.onnx", "onnxruntime")
    images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted((tiny_dataset / "hand-keypoints/val/images").iterdir())[:6]]
    quantize_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", [fp32.preprocess(im)[0] for im in images])
    int8 = load_predictor(tmp_path / "int8.onnx", "onnxruntime")
    assert int8.kind == "heatmap" and int8.codec == fp32.codec
    parity = compare_predictors(fp32, int8, images[:2])
    assert parity["heatmap_max_rel_diff"] < 0.5  # quantisation noise, not a different model
    assert np.isfinite(parity["keypoint_mean_diff_px"])


def test_ablation_collects_metrics_of_its_experiments_from_dvc_exp_show():
    def exp(name, deconv, pck):
        return {"rev": "abc", "name": name, "data": {
            "params": {"params.yaml": {"data": {"model": {"deconv_channels": deconv}, "train": {"epochs": 4, "augment": {}}, "data": {"source": "x.zip"}}}},
            "metrics": {"reports/metrics/heatmap.json": {"data": {"pck_1px": pck}}}}}
    shown = [{"rev": "workspace", "name": None, "data": {}},
             {"rev": "HEAD", "name": "main", "data": {}, "experiments": [
                 {"revs": [exp("ablation-seed_256", 256, 0.2)]}, {"revs": [exp("ablation-light", 96, 0.3)]}, {"revs": [exp("other", 1, 0.9)]}]}]
    results = collect_results(shown, ["seed_256", "light"])
    assert set(results) == {"seed_256", "light"}
    assert results["light"]["metrics"]["pck_1px"] == 0.3 and results["seed_256"]["model"]["deconv_channels"] == 256
    assert "augment" not in results["light"]["train"]
    cmd = exp_run_command("light", {"head": "bilinear_dw", "deconv_channels": 96})
    assert cmd[-1] == "evaluate" and "model.head=bilinear_dw" in cmd and "ablation-light" in cmd


def test_ablation_rerun_replaces_the_experiment_and_keeps_other_rows(tmp_path, monkeypatch):
    """`run_ablation` around `dvc exp` (the dvc calls recorded, `dvc exp show` answered by a stand-in):
    each variant's earlier experiment is removed before its run (DVC refuses a second of a name),
    and rows of variants not run this time stay in the table."""
    calls = []
    shown = [{"rev": "HEAD", "name": "main", "data": {}, "experiments": [{"revs": [{"rev": "b", "name": "ablation-light", "data": {
        "params": {"params.yaml": {"data": {"model": {"deconv_channels": 96}, "train": {"epochs": 4}}}},
        "metrics": {"reports/metrics/heatmap.json": {"data": {"pck_1px": 0.3}}}}}]}]}]

    real_run = subprocess.run

    def fake_run(cmd, **kwargs):
        if cmd[0] == "git":
            return real_run(cmd, **kwargs)
        calls.append(cmd[3:5])
        return subprocess.CompletedProcess(cmd, 0, json.dumps(shown) if cmd[3:5] == ["exp", "show"] else "", "")

    monkeypatch.setattr(handkp.evaluate.ablation.subprocess, "run", fake_run)
    table = tmp_path / "accuracy.json"
    table.write_text(json.dumps({"seed_256": {"metrics": {"pck_1px": 0.2}}, "light": {"metrics": {"pck_1px": 0.1}}}))
    run_ablation({"light": {"deconv_channels": 96}}, table, cwd=tmp_path)
    assert calls == [["exp", "remove"], ["exp", "run"], ["exp", "show"]]
    rows = json.loads(table.read_text())
    assert rows["seed_256"]["metrics"]["pck_1px"] == 0.2 and rows["light"]["metrics"]["pck_1px"] == 0.3


def test_ablation_puts_head_back_on_its_branch(tmp_path, monkeypatch, capsys):
    """An interrupted `dvc exp run` leaves HEAD detached at the branch's commit (seen here in the
    reflog: "dvc: Restore HEAD to '<sha>'"), and later commits then land on no branch. The stand-in
    for `dvc exp run` detaches HEAD the same way, then fails; real git does the rest."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q", "-b", "main")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "base")
    real_run = subprocess.run

    def fake_run(cmd, **kwargs):
        if cmd[0] == "git":
            return real_run(cmd, **kwargs)
        if cmd[3:5] == ["exp", "run"]:
            git("checkout", "-q", "--detach")
            raise subprocess.CalledProcessError(1, cmd)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(handkp.evaluate.ablation.subprocess, "run", fake_run)
    with pytest.raises(subprocess.CalledProcessError):
        run_ablation({"light": {"deconv_channels": 96}}, tmp_path / "accuracy.json", cwd=tmp_path)
    assert git("symbolic-ref", "HEAD") == "refs/heads/main"
    assert "put it back on main" in capsys.readouterr().err
    # Detached by the user on purpose (another commit): left alone.
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "next")
    git("checkout", "-q", "HEAD~1")
    assert not reattach_head("refs/heads/main", tmp_path)
    assert subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=tmp_path).returncode == 1


def test_speed_stage_measures_every_variant_beside_yolo(pipeline_run):
    speed = json.loads((pipeline_run / "reports/speed/speed.json").read_text())
    params = __import__("yaml").safe_load((pipeline_run / "params.yaml").read_text())
    assert set(params["speed"]["variants"]) | {"default_fp32", "default_int8", "yolo"} == set(speed["rows"])
    for name, row in speed["rows"].items():
        assert row["e2e_p50_ms"] > 0 and row["e2e_p50_ms"] <= row["e2e_p99_ms"] + 1e-9, name
        assert row["e2e_p50_vs_yolo"] == pytest.approx(row["e2e_p50_ms"] / speed["rows"]["yolo"]["e2e_p50_ms"], rel=1e-2)
    int8 = json.loads((pipeline_run / "reports/metrics/heatmap_int8.json").read_text())
    assert int8["n_images"] == 32 and 0 <= int8["pck_10px"] <= 1
    parity = json.loads((pipeline_run / "reports/deploy/int8_parity.json").read_text())
    assert parity["n_images"] == params["quantize"]["parity_images"] and np.isfinite(parity["keypoint_mean_diff_px"])
    assert "Speed by design" in (pipeline_run / "README.md").read_text()
