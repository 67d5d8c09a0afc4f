"""Speed by design: MACs, the INT8 variant, the ablation table, the speed table on every CPU
runtime (tiny random-weight heatmap exports and a tiny Ultralytics YOLO export, a few iterations)
and the speed stage's outputs."""

import json
import subprocess

import numpy as np
import pytest
import torch
from standin_models import tiny_yolo_onnx
from torch import nn

import handkp.experiments.ablation
from handkp.deploy.export import count_macs, export_variant
from handkp.deploy.parity import compare_predictors
from handkp.deploy.quantize import quantize_int8
from handkp.evaluate.speed import RUNTIMES, SpeedError, parse_runtimes, row_key, speed_table
from handkp.experiments.ablation import collect_results, exp_run_command, reattach_head, run_ablation
from handkp.runtime import load_predictor

TINY = {
    "backbone_tail": "light",
    "head": "bilinear_dense",
    "deconv_layers": 2,
    "deconv_channels": 32,
    "width_mult": 0.5,
}
MEASURED = ["onnxruntime/fp32", "onnxruntime/int8", "openvino/fp32", "openvino/bf16", "openvino/int8"]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """PyTorch's CPU thread pool is pathologically slow on a few contended cores; one thread is enough here."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def speed(tmp_path_factory, tiny_dataset):
    """One speed table: a tiny variant (exported in the table), a tiny heatmap file as the trained
    default (its ONNX Runtime INT8 given as prebuilt: the fp32 file itself) and a tiny YOLO export,
    on every runtime, with bf16 made unavailable; 4 calibration images, 2 rounds of 2 iterations."""
    pytest.importorskip("openvino")
    import cv2

    from handkp.runtime import openvino as ov_runtime

    root = tmp_path_factory.mktemp("speed")
    default = root / "default.onnx"
    export_variant(TINY, {"sigma": 2.0}, default, seed=1)
    files = {"default": default, "yolo": tiny_yolo_onnx(root)}
    images = [
        cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        for p in sorted((tiny_dataset / "hand-keypoints/val/images").iterdir())[:4]
    ]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ov_runtime, "device_capabilities", lambda core, device: ["FP32", "INT8"])  # a CPU without bfloat16
        table = speed_table(
            {"tiny_reduced": {"reduced_tail": True}},
            TINY,
            {"sigma": 2.0},
            files,
            images,
            threads=1,
            warmup=1,
            iterations=4,
            rounds=2,
            runtimes=MEASURED,
            calibration_images=images,
            prebuilt={row_key("default", "onnxruntime", "int8"): default},
        )
    return table, files


def test_speed_table_has_every_model_on_every_runtime(speed):
    table, files = speed
    usable = [("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("openvino", "fp32"), ("openvino", "int8")]
    models = ["tiny_reduced", "default", "yolo"]
    assert list(table["rows"]) == [row_key(m, r, p) for m in models for r, p in usable]
    assert table["runtimes"] == MEASURED
    assert table["skipped"] == [{"runtime": "openvino", "precision": "bf16", "reason": table["skipped"][0]["reason"]}]
    assert "no bfloat16" in table["skipped"][0]["reason"]
    for key, row in table["rows"].items():
        assert key == row_key(row["model"], row["runtime"], row["precision"])
        assert 0 < row["e2e_p50_ms"] <= row["e2e_p99_ms"] + 1e-9, key
        yolo = table["rows"][row_key("yolo", row["runtime"], row["precision"])]
        assert row["e2e_p50_vs_yolo"] == pytest.approx(row["e2e_p50_ms"] / yolo["e2e_p50_ms"], rel=1e-2, abs=1e-3)
        assert (row["runtime"] == "openvino") == ("inference_precision" in row), key
        assert row["kind"] == ("variant" if row["model"] == "tiny_reduced" else "file")
    variant = table["rows"]["tiny_reduced@openvino/int8"]
    assert (variant["width_mult"], variant["reduced_tail"], variant["head"], variant["calibration_images"]) == (
        0.5,
        True,
        "bilinear_dense",
        4,
    )
    assert "file" not in variant  # built in the temporary folder
    assert table["rows"]["yolo@onnxruntime/int8"]["calibration_images"] == 4
    prebuilt = table["rows"]["default@onnxruntime/int8"]
    assert prebuilt["file"] == str(files["default"]) and "calibration_images" not in prebuilt
    assert table["rows"]["yolo@openvino/fp32"]["file"] == str(files["yolo"])


def test_speed_table_picks_each_models_fastest_runtime(speed):
    table, _ = speed
    for model in ("tiny_reduced", "default", "yolo"):
        own = {k: r for k, r in table["rows"].items() if r["model"] == model}
        best = table["best"][model]
        assert best["e2e_p50_ms"] == min(r["e2e_p50_ms"] for r in own.values())
        row = own[best["row"]]
        assert (best["runtime"], best["precision"], best["e2e_p50_ms"]) == (
            row["runtime"],
            row["precision"],
            row["e2e_p50_ms"],
        )
    versus = table["best_vs_best"]
    assert (versus["model"], versus["reference"]) == ("default", "yolo")
    assert versus["e2e_p50_ratio"] == pytest.approx(
        table["best"]["default"]["e2e_p50_ms"] / table["best"]["yolo"]["e2e_p50_ms"], rel=1e-2
    )


def test_speed_runtimes_are_checked():
    assert parse_runtimes(["openvino/int8", "onnxruntime/fp32", "openvino/int8"]) == [
        ("openvino", "int8"),
        ("onnxruntime", "fp32"),
    ]
    assert [f"{r}/{p}" for r, p in parse_runtimes(RUNTIMES)] == list(RUNTIMES)
    with pytest.raises(SpeedError, match="speed.runtimes: unknown 'openvino/fp16'"):
        parse_runtimes(["openvino/fp16"])
    with pytest.raises(SpeedError, match="speed.runtimes is empty"):
        parse_runtimes([])


def test_macs_of_known_layers():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),
        nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1),
    )
    expected = 224 * 224 * 8 * 3 * 9 + 224 * 224 * 8 * 9 + 224 * 224 * 8 * 4 * 16
    assert count_macs(model) == expected


def test_light_bilinear_head_is_far_cheaper_than_the_seed_head(tmp_path):
    seed = export_variant(
        {"backbone_tail": "full", "head": "deconv", "deconv_layers": 3, "deconv_channels": 256},
        {"sigma": 2.0},
        tmp_path / "seed.onnx",
    )
    light = export_variant(
        {"backbone_tail": "light", "head": "bilinear_dw", "deconv_layers": 3, "deconv_channels": 96},
        {"sigma": 2.0},
        tmp_path / "light.onnx",
    )
    assert seed["heatmap_size"] == light["heatmap_size"] == 56
    assert light["macs_m"] < 0.25 * seed["macs_m"] and light["params_m"] < 0.5 * seed["params_m"]
    assert load_predictor(tmp_path / "light.onnx", "onnxruntime").kind == "heatmap"


def test_int8_model_keeps_metadata_and_stays_close(tmp_path, tiny_dataset):
    import cv2

    torch.manual_seed(0)
    cfg = {"backbone_tail": "light", "head": "bilinear_dw", "deconv_layers": 3, "deconv_channels": 32}
    export_variant(cfg, {"sigma": 2.0}, tmp_path / "fp32.onnx")
    fp32 = load_predictor(tmp_path / "fp32.onnx", "onnxruntime")
    images = [
        cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        for p in sorted((tiny_dataset / "hand-keypoints/val/images").iterdir())[:6]
    ]
    quantize_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", [fp32.preprocess(im)[0] for im in images])
    int8 = load_predictor(tmp_path / "int8.onnx", "onnxruntime")
    assert int8.kind == "heatmap" and int8.codec == fp32.codec
    parity = compare_predictors(fp32, int8, images[:2])
    assert parity["heatmap_max_rel_diff"] < 0.5  # quantisation noise, not a different model
    assert np.isfinite(parity["keypoint_mean_diff_px"])


def test_ablation_collects_metrics_of_its_experiments_from_dvc_exp_show():
    def exp(name, deconv, pck):
        return {
            "rev": "abc",
            "name": name,
            "data": {
                "params": {
                    "params.yaml": {
                        "data": {
                            "model": {"deconv_channels": deconv},
                            "train": {"epochs": 4, "augment": {}},
                            "data": {"source": "x.zip"},
                        }
                    }
                },
                "metrics": {"reports/metrics/heatmap.json": {"data": {"pck_1px": pck}}},
            },
        }

    shown = [
        {"rev": "workspace", "name": None, "data": {}},
        {
            "rev": "HEAD",
            "name": "main",
            "data": {},
            "experiments": [
                {"revs": [exp("ablation-seed_256", 256, 0.2)]},
                {"revs": [exp("ablation-light", 96, 0.3)]},
                {"revs": [exp("other", 1, 0.9)]},
            ],
        },
    ]
    results = collect_results(shown, ["seed_256", "light"])
    assert set(results) == {"seed_256", "light"}
    assert results["light"]["metrics"]["pck_1px"] == 0.3 and results["seed_256"]["model"]["deconv_channels"] == 256
    assert "augment" not in results["light"]["train"]
    cmd = exp_run_command("light", {"model.head": "bilinear_dw", "model.deconv_channels": 96})
    assert cmd[-1] == "evaluate" and "model.head=bilinear_dw" in cmd and "ablation-light" in cmd
    cmd = exp_run_command("crops", {"train.state_copy": None, "train.augment.scale": [0.5, 1.0]}, "train")
    assert cmd[-1] == "train" and "train.state_copy=null" in cmd and "train.augment.scale=[0.5, 1.0]" in cmd


def test_ablation_rerun_replaces_the_experiment_and_keeps_other_rows(tmp_path, monkeypatch):
    """`run_ablation` around `dvc exp` (the dvc calls recorded, `dvc exp show` answered by a stand-in):
    each variant's earlier experiment is removed before its run (DVC refuses a second of a name),
    and rows of variants not run this time stay in the table."""
    calls = []
    shown = [
        {
            "rev": "HEAD",
            "name": "main",
            "data": {},
            "experiments": [
                {
                    "revs": [
                        {
                            "rev": "b",
                            "name": "ablation-light",
                            "data": {
                                "params": {
                                    "params.yaml": {"data": {"model": {"deconv_channels": 96}, "train": {"epochs": 4}}}
                                },
                                "metrics": {"reports/metrics/heatmap.json": {"data": {"pck_1px": 0.3}}},
                            },
                        }
                    ]
                }
            ],
        }
    ]

    real_run = subprocess.run

    def fake_run(cmd, **kwargs):
        if cmd[0] == "git":
            return real_run(cmd, **kwargs)
        calls.append(cmd[3:5])
        return subprocess.CompletedProcess(cmd, 0, json.dumps(shown) if cmd[3:5] == ["exp", "show"] else "", "")

    monkeypatch.setattr(handkp.experiments.ablation.subprocess, "run", fake_run)
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

    monkeypatch.setattr(handkp.experiments.ablation.subprocess, "run", fake_run)
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
    measured = [
        r
        for r in params["speed"]["runtimes"]
        if r not in {f"{s['runtime']}/{s['precision']}" for s in speed["skipped"]}
    ]
    models = list(params["speed"]["variants"]) + ["default", "yolo"]
    assert set(speed["rows"]) == {f"{m}@{r}" for m in models for r in measured}
    for name, row in speed["rows"].items():
        assert row["e2e_p50_ms"] > 0 and row["e2e_p50_ms"] <= row["e2e_p99_ms"] + 1e-9, name
        yolo = speed["rows"][f"yolo@{row['runtime']}/{row['precision']}"]
        assert row["e2e_p50_vs_yolo"] == pytest.approx(row["e2e_p50_ms"] / yolo["e2e_p50_ms"], rel=1e-2, abs=1e-3)
    assert speed["rows"]["default@onnxruntime/int8"]["file"] == "models/heatmap.int8.onnx"
    assert speed["rows"]["yolo@openvino/int8"]["file"] == "models/openvino_int8/yolo.xml"
    assert set(speed["best"]) == set(models) and speed["best_vs_best"]["model"] == "default"
    for model in ("default", "yolo"):  # a fastest row at bf16 (no other stage's) is evaluated as it runs there
        best = speed["best"][model]
        assert ("val" in best) == (best["precision"] == "bf16")
        if "val" in best:
            assert best["val"]["n_images"] == 32 and 0 <= best["val"]["pck_5px"] <= 1
    csv = (pipeline_run / "reports/speed/variants.csv").read_text().splitlines()[0].split(",")
    assert csv[:4] == ["name", "model", "runtime", "precision"] and "width_mult" in csv
    int8 = json.loads((pipeline_run / "reports/metrics/heatmap_int8.json").read_text())
    assert int8["n_images"] == 32 and 0 <= int8["pck_10px"] <= 1
    for model in ("heatmap", "yolo"):
        ov = json.loads((pipeline_run / f"reports/metrics/{model}_openvino_int8.json").read_text())
        assert ov["n_images"] == 32 and 0 <= ov["pck_5px"] <= 1
    parity = json.loads((pipeline_run / "reports/deploy/int8_parity.json").read_text())
    assert parity["n_images"] == params["quantize"]["parity_images"] and np.isfinite(parity["keypoint_mean_diff_px"])
    readme = (pipeline_run / "README.md").read_text()
    assert (
        "Speed by design" in readme
        and "Each model on its fastest CPU runtime" in readme
        and "Best against best" in readme
    )
    fastest = readme.split("Each model on its fastest CPU runtime", 1)[1].split("\n\n")[1].splitlines()
    default_row = next(line for line in fastest if line.startswith("| trained default |"))
    best = speed["best"]["default"]
    evaluated = {
        "fp32": "heatmap",
        "int8": "heatmap_int8" if best["runtime"] == "onnxruntime" else "heatmap_openvino_int8",
    }
    there = (
        best["val"]
        if "val" in best
        else json.loads((pipeline_run / f"reports/metrics/{evaluated[best['precision']]}.json").read_text())
    )
    assert default_row.split("|")[-2].strip() == f"{there['pck_5px']:.3f}"  # PCK@5px there: the file that ran, on val
