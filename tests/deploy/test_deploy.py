"""Deployment: the engine stage per target (onnxruntime; tensorrt through a local trtexec; jetson
end-to-end against a REAL OpenSSH server), all-or-nothing outputs on failure, the deployed
evaluation, the latency benchmark, the TensorRT backend, and the pipeline's deployment outputs.

The SSH side reuses tests/deploy/test_remote.py's `SshWorld`: a real `sshd` on 127.0.0.1 whose
"Jetson" runs tests/fixtures/standin_trtexec.sh, a STAND-IN for NVIDIA's trtexec that prints a
real trtexec log and writes a stand-in engine (no GPU here). The same stand-in plays the local
`trtexec` of the tensorrt target. TensorRT execution is tested only where TensorRT and CUDA exist.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from conftest import METRIC_KEYS
from test_export import (  # noqa: F401  (one_torch_thread is an autouse fixture)
    make_checkpoint,
    make_stage_sandbox,
    one_torch_thread,
    run_stage,
    tiny_val_images,
)
from test_remote import LOG_8X, LOG_10_9, STANDIN_TRTEXEC, SshWorld, needs_sshd, ssh_world  # noqa: F401  (ssh_world: the real sshd fixture)

from handkp.core.errors import ModelLoadError
from handkp.deploy.artefacts import DeployError, build_artefacts, load_deployed
from handkp.deploy.export import export_onnx
from handkp.deploy.jetson import RemoteError
from handkp.deploy.trtexec import parse_trtexec_log
from handkp.evaluate.latency import (
    LATENCY_KEYS,
    cpu_model_name,
    device_description,
    latency_from_trtexec,
    measure_end_to_end,
    measure_latency,
)
from handkp.runtime import Predictor, load_predictor
from handkp.runtime.decoders import YoloPoseDecoder
from handkp.runtime.model_file import decoder_to_metadata
from handkp.runtime.tensorrt import (
    load_tensorrt_predictor,
    read_sidecar,
    sidecar_path,
    tensorrt_unavailable_reason,
    write_sidecar,
)

TRT_MISSING = tensorrt_unavailable_reason()
needs_tensorrt = pytest.mark.skipif(TRT_MISSING is not None, reason=f"TensorRT engines cannot run here: {TRT_MISSING}")


@pytest.fixture(scope="module")
def val_images(tiny_dataset):
    return tiny_val_images(tiny_dataset)


@pytest.fixture(scope="module")
def heatmap_onnx(tmp_path_factory, val_images) -> Path:
    root = tmp_path_factory.mktemp("deploy-model")
    return export_onnx(make_checkpoint(root / "best.pt", val_images), root / "heatmap.onnx")


@pytest.fixture
def standin_trtexec(tmp_path) -> Path:
    """The stand-in trtexec with the real logs it prints, as a local executable."""
    bin_dir = tmp_path / "trt-bin"
    (bin_dir / "trtexec").mkdir(parents=True)
    exe = bin_dir / "trtexec-standin"
    shutil.copy(STANDIN_TRTEXEC, exe)
    exe.chmod(0o755)
    for log in (LOG_10_9, LOG_8X):
        shutil.copy(log, bin_dir / "trtexec" / log.name)
    return exe


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def stage_sandbox_with_onnx(tmp_path, tiny_dataset, heatmap_onnx, overrides) -> Path:
    sandbox = make_stage_sandbox(tmp_path / "s", tiny_dataset, overrides)
    (sandbox / "models").mkdir()
    shutil.copy(heatmap_onnx, sandbox / "models" / "heatmap.onnx")
    return sandbox


# ============================================================================ onnxruntime target


def test_onnxruntime_target_engine_evaluation_and_benchmark_stages(tmp_path, tiny_dataset, heatmap_onnx):
    overrides = {
        "deploy": {"target": "onnxruntime", "device": "cpu"},
        "benchmark": {"warmup": 2, "iterations": 10, "images": 4},
        "runtime": {"threads": 1},
    }
    sandbox = stage_sandbox_with_onnx(tmp_path, tiny_dataset, heatmap_onnx, overrides)

    out = run_stage("engine", sandbox).stdout
    assert "models/yolo.onnx not found" in out  # no YOLO export in this sandbox: noted, not fatal
    engine_dir = sandbox / "models" / "engine"
    assert leftovers(engine_dir) == ["heatmap.onnx", "heatmap.onnx.json"]
    assert leftovers(sandbox / "models") == ["engine", "heatmap.onnx"]  # no temporary folder left
    assert (engine_dir / "heatmap.onnx").read_bytes() == heatmap_onnx.read_bytes()
    side = json.loads((engine_dir / "heatmap.onnx.json").read_text())
    assert (side["kind"], side["target"], side["builder"], side["input_size"]) == (
        "heatmap",
        "onnxruntime",
        "copy",
        224,
    )
    assert side["codec"]["heatmap_size"] == 56 and len(side["source_sha256"]) == 64
    summary = json.loads((sandbox / "reports/deploy/engine.json").read_text())
    assert summary["target"] == "onnxruntime" and summary["heatmap"]["size_mb"] > 1

    run_stage("evaluate_deployed", sandbox)
    metrics = json.loads((sandbox / "reports/metrics/heatmap_onnxruntime.json").read_text())
    assert set(metrics) == METRIC_KEYS and metrics["n_images"] == 32
    pred = pl.read_parquet(sandbox / "reports/predictions/heatmap_onnxruntime_val.parquet")
    assert pred.height == 32 * 21
    assert (sandbox / "reports/eval/heatmap_onnxruntime/pck_curve.csv").is_file()

    run_stage("benchmark", sandbox)
    latency = json.loads((sandbox / "reports/benchmark/latency.json").read_text())
    assert (latency["target"], latency["threads"]) == ("onnxruntime", 1)
    assert latency["device"] == cpu_model_name()
    assert set(LATENCY_KEYS) <= set(latency["heatmap"]) and latency["heatmap"]["iterations"] == 10
    refine = latency["heatmap_refine"]  # the same artefact with the refine pass: end-to-end only
    assert refine["iterations"] == 10 and not any(k.startswith("model_") for k in refine)
    assert "yolo" not in latency and any("yolo" in n for n in latency["notes"])
    headline = json.loads((sandbox / "reports/metrics/latency.json").read_text())  # no YOLO: no ratio
    assert headline == {
        "target": "onnxruntime",
        "heatmap_p50_ms": pytest.approx(latency["heatmap"]["e2e_p50_ms"], abs=1e-3),
        "heatmap_refine_p50_ms": pytest.approx(refine["e2e_p50_ms"], abs=1e-3),
    }


def test_deployed_onnx_predicts_like_the_exported_file(tmp_path, heatmap_onnx, val_images):
    build_artefacts("onnxruntime", {"heatmap": heatmap_onnx}, tmp_path / "engine", {})
    deployed, original = (
        load_deployed(tmp_path / "engine", "heatmap", "onnxruntime", "cpu"),
        load_predictor(heatmap_onnx),
    )
    for image in val_images[:3]:
        np.testing.assert_array_equal(deployed.predict(image).keypoints, original.predict(image).keypoints)


def test_unknown_target_and_missing_onnx(tmp_path, heatmap_onnx):
    with pytest.raises(DeployError, match="unknown deploy.target 'tflite'"):
        build_artefacts("tflite", {"heatmap": heatmap_onnx}, tmp_path / "engine", {})
    with pytest.raises(DeployError, match="model yolo: .*nope.onnx: ONNX file not found"):
        build_artefacts(
            "onnxruntime", {"heatmap": heatmap_onnx, "yolo": tmp_path / "nope.onnx"}, tmp_path / "engine", {}
        )
    assert leftovers(tmp_path) == []  # the heatmap artefact built before the failure is gone too


# ============================================================================ tensorrt target (local trtexec)


def test_tensorrt_target_with_local_trtexec(tmp_path, heatmap_onnx, standin_trtexec):
    cfg = {"target": "tensorrt", "fp16": True, "trtexec": str(standin_trtexec), "trtexec_args": ["--verbose"]}
    summary = build_artefacts("tensorrt", {"heatmap": heatmap_onnx}, tmp_path / "engine", cfg)
    engine = tmp_path / "engine" / "heatmap.engine"
    assert leftovers(engine.parent) == ["heatmap.engine", "heatmap.engine.json", "heatmap.engine.log"]
    assert engine.read_bytes().startswith(b"STAND-IN ENGINE fp16=yes\n")  # what the stand-in writes
    assert Path(f"{engine}.log").read_text() == LOG_10_9.read_text()
    expected = parse_trtexec_log(LOG_10_9.read_text())
    assert {k: summary["heatmap"][k] for k in expected} == expected
    assert summary["heatmap"]["builder"] == "trtexec" and summary["target"] == "tensorrt"
    side = json.loads(sidecar_path(engine).read_text())
    assert (side["kind"], side["builder"], side["fp16"], side["tensorrt_version"]) == (
        "heatmap",
        "trtexec",
        True,
        "10.9.0",
    )
    with pytest.raises(ModelLoadError):  # a stand-in engine never runs (and here there is no TensorRT)
        load_deployed(tmp_path / "engine", "heatmap", "tensorrt")


def test_failed_engine_build_leaves_no_partial_engine(tmp_path, heatmap_onnx):
    failing = tmp_path / "trtexec-failing"
    failing.write_text(
        '#!/bin/sh\nfor a in "$@"; do case "$a" in --saveEngine=*) printf partial > "${a#--saveEngine=}";; esac; done\n'
        'echo "[E] Error[4]: out of memory while building" >&2\nexit 3\n'
    )
    failing.chmod(0o755)
    out_dir = tmp_path / "models" / "engine"
    out_dir.mkdir(parents=True)
    (out_dir / "heatmap.engine").write_text("previous complete engine")
    with pytest.raises(DeployError) as err:
        build_artefacts("tensorrt", {"heatmap": heatmap_onnx}, out_dir, {"trtexec": str(failing)})
    message = str(err.value)
    assert "target tensorrt, model heatmap" in message and "run trtexec" in message
    assert "status 3" in message and "out of memory while building" in message
    assert leftovers(out_dir.parent) == ["engine"]  # no temporary folder with the partial engine
    assert (
        leftovers(out_dir) == ["heatmap.engine"]
        and (out_dir / "heatmap.engine").read_text() == "previous complete engine"
    )


# ============================================================================ jetson target, real sshd


def jetson_params(world: SshWorld, remote_dir: Path, **overrides) -> dict:
    t = world.target(remote_dir)
    fields = {
        k: getattr(t, k) for k in ("host", "user", "port", "key", "remote_dir", "trtexec", "known_hosts", "ssh_config")
    }
    return {**fields, "connect_timeout_s": 5, **overrides}


@needs_sshd
def test_jetson_target_end_to_end_over_ssh(ssh_world, tmp_path, tiny_dataset, heatmap_onnx):  # noqa: F811  (the fixture imported above)
    remote = tmp_path / "jetson" / "handkp-engine"
    overrides = {"deploy": {"target": "jetson", "jetson": jetson_params(ssh_world, remote)}}
    sandbox = stage_sandbox_with_onnx(tmp_path, tiny_dataset, heatmap_onnx, overrides)

    run_stage("engine", sandbox)
    engine = sandbox / "models" / "engine" / "heatmap.engine"
    assert leftovers(engine.parent) == ["heatmap.engine", "heatmap.engine.json", "heatmap.engine.log"]
    assert engine.read_bytes() == (remote / "heatmap.engine").read_bytes()  # built there, brought back
    assert (remote / "heatmap.onnx").read_bytes() == heatmap_onnx.read_bytes()
    assert engine.read_bytes().startswith(b"STAND-IN ENGINE fp16=yes\n")
    side = json.loads(sidecar_path(engine).read_text())
    assert (side["kind"], side["target"], side["host"]) == ("heatmap", "jetson", "127.0.0.1")
    built = json.loads((sandbox / "reports/deploy/engine.json").read_text())
    assert built["target"] == "jetson" and built["device"]  # the device's model (here: its CPU architecture)
    assert built["heatmap"]["latency_median_ms"] == 1.43823 and built["heatmap"]["host"] == "127.0.0.1"

    run_stage("benchmark", sandbox)  # numbers from trtexec's summary on the device
    latency = json.loads((sandbox / "reports/benchmark/latency.json").read_text())
    assert (latency["target"], latency["device"]) == ("jetson", built["device"])
    assert latency["heatmap"] == {
        "model_p50_ms": 1.43823,
        "model_p90_ms": 1.45624,
        "model_p99_ms": 2.61597,
        "model_fps": 691.435,
        "source": "trtexec",
    }
    headline = json.loads((sandbox / "reports/metrics/latency.json").read_text())  # model-only: no end-to-end there
    assert headline == {"target": "jetson", "heatmap_p50_ms": pytest.approx(1.43823, abs=1e-3)}

    run_stage("evaluate_deployed", sandbox)  # a Jetson engine does not run here: said so, not faked
    note = json.loads((sandbox / "reports/metrics/heatmap_jetson.json").read_text())
    assert note["evaluated"] is False and "Jetson engine cannot run on this machine" in note["reason"]
    assert pl.read_parquet(sandbox / "reports/predictions/heatmap_jetson_val.parquet").height == 0


@needs_sshd
@pytest.mark.parametrize(
    "fault, step, words",
    [
        ("wrong-key", "connect", ["Permission denied"]),
        ("no-trtexec", "check trtexec", ["trtexec not found at"]),
    ],
)
def test_jetson_faults_name_host_and_step_and_leave_no_engine(
    ssh_world,  # noqa: F811  (the fixture imported above)
    tmp_path,
    tiny_dataset,
    heatmap_onnx,
    fault,
    step,
    words,
):
    remote = tmp_path / "jetson"
    change = (
        {"key": str(ssh_world.wrong_key)} if fault == "wrong-key" else {"trtexec": str(tmp_path / "none" / "trtexec")}
    )
    overrides = {"deploy": {"target": "jetson", "jetson": jetson_params(ssh_world, remote, **change)}}
    sandbox = stage_sandbox_with_onnx(tmp_path, tiny_dataset, heatmap_onnx, overrides)
    proc = run_stage("engine", sandbox, check=False)
    assert proc.returncode != 0
    assert "engine failed: deploy.target=jetson; no models/engine/ was written" in proc.stderr
    assert f"{step} on host 127.0.0.1 failed" in proc.stderr
    assert all(w in proc.stderr for w in words)
    assert leftovers(sandbox / "models") == ["heatmap.onnx"]  # no models/engine, no temporary folder
    assert not (sandbox / "reports/deploy/engine.json").exists()


def test_jetson_params_are_checked(tmp_path, heatmap_onnx):
    with pytest.raises(DeployError, match="unknown keys \\['hostname'\\]"):
        build_artefacts("jetson", {"heatmap": heatmap_onnx}, tmp_path / "e", {"jetson": {"hostname": "x"}})
    with pytest.raises(DeployError, match="deploy.jetson.host is not set"):
        build_artefacts("jetson", {"heatmap": heatmap_onnx}, tmp_path / "e", {"jetson": {"host": ""}})


def test_unreachable_jetson_is_a_remote_error(tmp_path, heatmap_onnx):
    # Nothing listens on port 1 of 127.0.0.1: refused at once, whatever ssh config the machine has.
    cfg = {"jetson": {"host": "127.0.0.1", "port": 1, "connect_timeout_s": 3, "ssh_config": str(_empty(tmp_path))}}
    with pytest.raises(RemoteError) as err:
        build_artefacts("jetson", {"heatmap": heatmap_onnx}, tmp_path / "engine", cfg)
    assert (err.value.step, err.value.kind) == ("connect", "unreachable")
    assert leftovers(tmp_path) == ["ssh_config"]


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "ssh_config"
    path.write_text("")
    return path


# ============================================================================ benchmark


def test_measure_latency_keys_and_sanity(heatmap_onnx, val_images):
    p = load_predictor(heatmap_onnx, threads=1)
    stats = measure_latency(p, val_images[:3], warmup=2, iterations=12)
    assert set(LATENCY_KEYS) <= set(stats) and (stats["iterations"], stats["warmup"]) == (12, 2)
    for part in ("model", "e2e"):
        p50, p90, p99, fps = (stats[f"{part}_{k}"] for k in ("p50_ms", "p90_ms", "p99_ms", "fps"))
        assert 0 < p50 <= p90 <= p99 < 10_000
        assert 1000 / p99 <= fps * 1.0001 and fps > 0
    assert device_description(p) == cpu_model_name()
    with pytest.raises(ValueError, match="at least one image"):
        measure_latency(p, [], 1, 1)
    with pytest.raises(ValueError, match="iterations"):
        measure_latency(p, val_images[:1], 0, 0)


def test_the_refine_pass_is_timed_end_to_end_with_both_network_passes(heatmap_onnx, val_images):
    p = load_predictor(heatmap_onnx, threads=1)
    passes = []

    def counted(x):
        passes.append(len(x))
        return p.run(x)

    refined = Predictor(p.decoder, p.backend, counted, p.input_size).refined()
    stats = measure_end_to_end(refined, val_images[:3], warmup=1, iterations=5)
    assert set(stats) == {k for k in LATENCY_KEYS if k.startswith("e2e_")} | {"iterations", "warmup"}
    assert 0 < stats["e2e_p50_ms"] <= stats["e2e_p90_ms"] <= stats["e2e_p99_ms"]
    # every call: the whole image, then the hand's crop (a pass on one crop) where the first pass placed one
    assert len(passes) == 2 * (1 + 5) and passes == [1] * len(passes)
    with pytest.raises(ValueError, match="at least one image"):
        measure_end_to_end(refined, [], 1, 1)


def test_latency_from_trtexec_summaries():
    assert latency_from_trtexec(parse_trtexec_log(LOG_10_9.read_text())) == {
        "model_p50_ms": 1.43823,
        "model_p90_ms": 1.45624,
        "model_p99_ms": 2.61597,
        "model_fps": 691.435,
        "source": "trtexec",
    }
    # TensorRT 8.x prints no p90: left out, not invented.
    assert latency_from_trtexec(parse_trtexec_log(LOG_8X.read_text())) == {
        "model_p50_ms": 34.7981,
        "model_p99_ms": 36.4373,
        "model_fps": 29.5527,
        "source": "trtexec",
    }


def test_cpu_model_name(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)  CPU @ 2.20GHz\n")
    arm = tmp_path / "arm"
    arm.write_text(
        "processor\t: 0\nBogoMIPS\t: 62.50\nCPU part\t: 0xd42\n\nModel\t\t: NVIDIA Jetson Orin Nano Developer Kit\n"
    )
    assert cpu_model_name(x86) == "Intel(R) Xeon(R) CPU @ 2.20GHz"
    assert cpu_model_name(arm) == "NVIDIA Jetson Orin Nano Developer Kit"
    assert cpu_model_name(tmp_path / "missing")  # falls back to what platform knows


# ============================================================================ TensorRT backend


def test_tensorrt_predictor_needs_its_sidecar(tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"not an engine")
    with pytest.raises(ModelLoadError, match="no sidecar m.engine.json"):
        load_predictor(engine)  # .engine -> the tensorrt backend
    sidecar_path(engine).write_text("{not json")
    with pytest.raises(ModelLoadError, match="malformed engine sidecar"):
        load_tensorrt_predictor(engine)


@pytest.mark.skipif(
    TRT_MISSING is None, reason="TensorRT and CUDA are present: the absent-TensorRT error cannot happen"
)
def test_tensorrt_absent_is_a_clear_error(tmp_path, heatmap_onnx):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"not an engine")
    write_sidecar(
        engine, {"kind": "heatmap", "codec": {"input_size": 224, "heatmap_size": 56, "sigma": 2.0}, "input_size": 224}
    )
    with pytest.raises(ModelLoadError, match="TensorRT is not installed|CUDA"):
        load_predictor(engine, backend="tensorrt")
    with pytest.raises(DeployError, match="needs trtexec .* or the TensorRT Python package"):
        build_artefacts("tensorrt", {"heatmap": heatmap_onnx}, tmp_path / "engine", {"trtexec": "no-such-trtexec"})
    assert not (tmp_path / "engine").exists()


def test_an_engine_sidecar_keeps_a_rectangular_input(tmp_path):
    """A detector exported at (height, width) (detector.frame_size): its engine's sidecar records
    [height, width], read back as the input the runtime letterboxes to; a square one stays a side."""
    for size, written in (((320, 416), [320, 416]), (224, 224)):
        engine = tmp_path / f"detector_{written}.engine"
        write_sidecar(engine, decoder_to_metadata(YoloPoseDecoder(), size))
        assert json.loads(sidecar_path(engine).read_text())["input_size"] == written
        assert read_sidecar(engine)["input_size"] == size


@needs_tensorrt
@pytest.mark.parametrize("fp16, tolerance_px", [(False, 0.25), (True, 1.5)])
def test_tensorrt_engine_predicts_like_onnxruntime(tmp_path, heatmap_onnx, val_images, fp16, tolerance_px):
    summary = build_artefacts(
        "tensorrt", {"heatmap": heatmap_onnx}, tmp_path / "engine", {"fp16": fp16, "trtexec": "no-such-trtexec"}
    )  # the TensorRT Python builder
    assert summary["heatmap"]["builder"] == "tensorrt-python"
    trt_p = load_deployed(tmp_path / "engine", "heatmap", "tensorrt")
    ort_p = load_predictor(heatmap_onnx)
    assert trt_p.backend == "tensorrt" and device_description(trt_p) != cpu_model_name()
    for image in val_images:
        a, b = ort_p.predict(image), trt_p.predict(image)
        np.testing.assert_allclose(b.keypoints, a.keypoints, atol=tolerance_px)
    x = np.concatenate([trt_p.preprocess(im)[0] for im in val_images[:3]])
    assert trt_p.infer(x).shape == (3, 21, 56, 56)  # a fixed-batch engine runs a batch image by image
    stats = measure_latency(trt_p, val_images[:2], warmup=2, iterations=10)
    assert stats["model_p50_ms"] > 0


# ============================================================================ the pipeline's deployment


def test_pipeline_deployed_evaluation_matches_pytorch(pipeline_run):
    torch_metrics = json.loads((pipeline_run / "reports/metrics/heatmap.json").read_text())
    deployed = json.loads((pipeline_run / "reports/metrics/heatmap_onnxruntime.json").read_text())
    assert set(deployed) == set(torch_metrics) == METRIC_KEYS
    assert deployed["n_images"] == torch_metrics["n_images"] and deployed["missed_images"] == 0
    # The tiny pipeline's 2-epoch model has near-flat heatmaps (peaks ~1e-3), so argmax ties break
    # differently under float noise and per-keypoint errors (EPE) differ between backends; PCK,
    # which counts hits, must still agree. export.json's parity figures are the exact comparison.
    for key in ("pck_1px", "pck_3px", "pck_5px", "pck_7px", "pck_10px", "auc_0_15px"):
        assert deployed[key] == pytest.approx(torch_metrics[key], abs=0.01), key
    engine_dir = pipeline_run / "models" / "engine"
    assert {"heatmap.onnx", "heatmap.onnx.json"} <= set(leftovers(engine_dir))
    built = json.loads((pipeline_run / "reports/deploy/engine.json").read_text())
    assert built["target"] == "onnxruntime" and built["heatmap"]["builder"] == "copy"


def test_pipeline_latency_for_both_models(pipeline_run):
    params = yaml.safe_load((pipeline_run / "params.yaml").read_text())
    latency = json.loads((pipeline_run / "reports/benchmark/latency.json").read_text())
    assert latency["target"] == params["deploy"]["target"] == "onnxruntime"
    assert latency["device"] == cpu_model_name() and latency["threads"] == params["runtime"]["threads"]
    for model in ("heatmap", "yolo"):
        stats = latency[model]
        assert set(LATENCY_KEYS) <= set(stats), model
        assert stats["iterations"] == params["benchmark"]["iterations"]
        assert 0 < stats["model_p50_ms"] <= stats["model_p90_ms"] <= stats["model_p99_ms"]
        assert 0 < stats["e2e_p50_ms"] <= stats["e2e_p90_ms"] <= stats["e2e_p99_ms"]
        assert stats["model_fps"] > 0 and stats["e2e_fps"] > 0
    # the headline file `dvc metrics show` lists: each model's end-to-end p50 and their ratio
    headline = json.loads((pipeline_run / "reports/metrics/latency.json").read_text())
    assert (
        set(headline) == {"target", "heatmap_p50_ms", "heatmap_refine_p50_ms", "yolo_p50_ms", "heatmap_vs_yolo"}
        and headline["target"] == "onnxruntime"
    )
    for model in ("heatmap", "yolo"):
        assert headline[f"{model}_p50_ms"] == pytest.approx(latency[model]["e2e_p50_ms"], abs=1e-3), model
    assert headline["heatmap_vs_yolo"] == pytest.approx(headline["heatmap_p50_ms"] / headline["yolo_p50_ms"], abs=2e-3)
    assert {"yolo.onnx", "yolo.onnx.json"} <= set(leftovers(pipeline_run / "models" / "engine"))
    assert json.loads((pipeline_run / "models/engine/yolo.onnx.json").read_text())["kind"] == "yolo"
