"""The OpenVINO backend and deploy target: a small exported heatmap model and a real (tiny,
randomly initialised) Ultralytics YOLO-pose export run through OpenVINO like through ONNX
Runtime, at fp32 and bf16 (where the CPU has bfloat16); the openvino target's IR + sidecar,
loaded back by ``load_deployed``; the INT8 IR from NNCF, calibrated on a few train images of the
image cache by the engine stage's own code, close to fp32; and clear errors for bad files.

The heatmap model is test_export's (random weights, BatchNorm statistics from real images). Its
heatmaps are low (peaks ~0.005) and full of near-ties, and a random net's activations carry
little signal above 8-bit noise: decoded keypoints are compared tightly at fp32 only, bf16 by
correlation and median distance, and INT8 against the project's own INT8 (ONNX Runtime's static
quantisation, ``handkp.deploy.quantize``) on the same calibration images: OpenVINO's INT8 must
be no further from fp32 than that yardstick."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from standin_models import tiny_yolo_onnx
from test_export import (  # noqa: F401  (one_torch_thread is an autouse fixture)
    make_checkpoint,
    make_stage_sandbox,
    one_torch_thread,
    tiny_val_images,
)

from handkp.app import cli
from handkp.core.errors import ModelLoadError
from handkp.data.cache import ImageCache
from handkp.deploy.artefacts import DeployError, artefact_path, build_artefacts, load_deployed, run_engine
from handkp.deploy.export import export_onnx
from handkp.deploy.parity import compare_predictors
from handkp.deploy.quantize import quantize_int8
from handkp.runtime import BACKENDS, load_predictor
from handkp.runtime.openvino import is_quantized, precision_unavailable_reason
from handkp.runtime.tensorrt import sidecar_path

openvino = pytest.importorskip("openvino")
BF16_MISSING = precision_unavailable_reason("bf16")
needs_bf16 = pytest.mark.skipif(BF16_MISSING is not None, reason=f"no bf16 here: {BF16_MISSING}")


@pytest.fixture(scope="module")
def val_images(tiny_dataset):
    return tiny_val_images(tiny_dataset, 6)


@pytest.fixture(scope="module")
def heatmap_onnx(tmp_path_factory, val_images) -> Path:
    root = tmp_path_factory.mktemp("ov-heatmap")
    return export_onnx(make_checkpoint(root / "best.pt", val_images), root / "heatmap.onnx")


@pytest.fixture(scope="module")
def yolo_onnx(tmp_path_factory) -> Path:
    """A real Ultralytics YOLO11n-pose export (21 keypoints, one class, 224 px), random weights."""
    return tiny_yolo_onnx(tmp_path_factory.mktemp("ov-yolo"))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def agreement(reference, candidate, images) -> dict:
    """How close ``candidate``'s heatmaps are to ``reference``'s on the same inputs: correlation,
    mean abs difference / mean abs reference, and the median decoded keypoint distance (px)."""
    a, b, dists = [], [], []
    for image in images:
        x, box = reference.preprocess(image)
        ra, rb = reference.infer(x), candidate.infer(x)
        a.append(ra.ravel()), b.append(rb.ravel())
        dists.append(
            np.linalg.norm(reference.postprocess(ra, box).keypoints - candidate.postprocess(rb, box).keypoints, axis=1)
        )
    a, b = np.concatenate(a).astype(np.float64), np.concatenate(b).astype(np.float64)
    return {
        "corr": float(np.corrcoef(a, b)[0, 1]),
        "mean_rel": float(np.abs(a - b).mean() / np.abs(a).mean()),
        "median_px": float(np.median(np.concatenate(dists))),
    }


# ============================================================================ the backend


def test_openvino_fp32_runs_onnx_like_onnxruntime(heatmap_onnx, yolo_onnx, val_images):
    assert "openvino" in BACKENDS
    ort, ov = load_predictor(heatmap_onnx), load_predictor(heatmap_onnx, "openvino")
    assert (ov.backend, ov.kind, ov.run.precision, ov.run.inference_precision()) == (
        "openvino",
        "heatmap",
        "fp32",
        "f32",
    )
    assert ov.codec == ort.codec and ov.input_size == 224
    m = compare_predictors(ort, ov, val_images, min_score=0.0)
    assert m["heatmap_max_abs_diff"] < 1e-4 and m["keypoint_max_diff_px"] < 0.25, m
    # A fixed-batch model runs a larger batch one image at a time.
    batch = ov.predict_batch(val_images[:3])
    for image, p in zip(val_images[:3], batch):
        np.testing.assert_allclose(p.keypoints, ov.predict(image).keypoints, atol=1e-4)

    ort_y, ov_y = load_predictor(yolo_onnx), load_predictor(yolo_onnx, "openvino", threads=1)
    assert (ov_y.kind, ov_y.run.threads) == ("yolo", 1)
    x, box = ort_y.preprocess(val_images[0])
    raw_ort, raw_ov = ort_y.infer(x), ov_y.infer(x)
    assert raw_ov.shape == raw_ort.shape == (1, 4 + 1 + 63, 1029)
    np.testing.assert_allclose(raw_ov, raw_ort, atol=2e-3, rtol=1e-4)
    p_ort, p_ov = ort_y.postprocess(raw_ort, box), ov_y.postprocess(raw_ov, box)
    assert p_ort.found == p_ov.found
    if p_ort.found:
        np.testing.assert_allclose(p_ov.keypoints, p_ort.keypoints, atol=1e-2)


@needs_bf16
def test_openvino_bf16_is_close_to_fp32(heatmap_onnx, val_images):
    ort, bf16 = load_predictor(heatmap_onnx), load_predictor(heatmap_onnx, "openvino", precision="bf16")
    assert (bf16.run.precision, bf16.run.inference_precision()) == ("bf16", "bf16")
    m = compare_predictors(ort, bf16, val_images, min_score=0.0)
    assert 0 < m["heatmap_max_rel_diff"] < 0.4, m  # bf16 keeps ~3 significant digits per op
    a = agreement(ort, bf16, val_images)
    assert a["corr"] > 0.95 and a["mean_rel"] < 0.3 and a["median_px"] < 2.0, a  # near-ties of a random net may move


def test_bf16_without_cpu_support_is_a_clear_error(heatmap_onnx, monkeypatch):
    from handkp.runtime import openvino as ov_runtime

    monkeypatch.setattr(ov_runtime, "device_capabilities", lambda core, device: ["FP32", "INT8"])
    with pytest.raises(ModelLoadError, match=r"heatmap.onnx: precision bf16 needs bfloat16 support.*AVX512_BF16"):
        load_predictor(heatmap_onnx, "openvino", precision="bf16")
    assert "no bfloat16" in precision_unavailable_reason("bf16")


# ============================================================================ the deploy target


def test_openvino_target_builds_ir_with_sidecar_and_load_deployed_runs_it(
    tmp_path, heatmap_onnx, yolo_onnx, val_images
):
    out = tmp_path / "engine"
    summary = build_artefacts(
        "openvino", {"heatmap": heatmap_onnx, "yolo": yolo_onnx}, out, {"openvino": {"precision": "fp32"}}
    )
    assert leftovers(out) == ["heatmap.bin", "heatmap.xml", "heatmap.xml.json", "yolo.bin", "yolo.xml", "yolo.xml.json"]
    assert leftovers(tmp_path) == ["engine"]  # no temporary folder left
    assert artefact_path(out, "heatmap", "openvino") == out / "heatmap.xml"
    assert summary["target"] == "openvino" and summary["precision"] == "fp32"
    assert summary["heatmap"]["size_mb"] > 1 and summary["heatmap"]["builder"] == "openvino"
    side = json.loads(sidecar_path(out / "heatmap.xml").read_text())
    assert (side["kind"], side["target"], side["precision"], side["input_size"]) == ("heatmap", "openvino", "fp32", 224)
    assert side["codec"]["heatmap_size"] == 56 and side["openvino_version"] == openvino.__version__.split("-")[0]
    assert json.loads(sidecar_path(out / "yolo.xml").read_text())["kind"] == "yolo"

    deployed = load_deployed(out, "heatmap", "openvino", "auto")
    assert (deployed.backend, deployed.run.device, deployed.run.precision) == ("openvino", "CPU", "fp32")
    m = compare_predictors(load_predictor(heatmap_onnx), deployed, val_images, min_score=0.0)
    assert m["heatmap_max_abs_diff"] < 1e-4 and m["keypoint_max_diff_px"] < 0.25, m  # weights kept in fp32
    yolo = load_deployed(out, "yolo", "openvino")
    x, _ = yolo.preprocess(val_images[0])
    np.testing.assert_allclose(yolo.infer(x), load_predictor(yolo_onnx).infer(x), atol=2e-3, rtol=1e-4)


@needs_bf16
def test_bf16_ir_runs_at_the_precision_it_was_built_for(tmp_path, heatmap_onnx):
    build_artefacts("openvino", {"heatmap": heatmap_onnx}, tmp_path / "engine", {"openvino": {"precision": "bf16"}})
    p = load_deployed(tmp_path / "engine", "heatmap", "openvino")
    assert (p.run.precision, p.run.inference_precision()) == ("bf16", "bf16")
    assert load_predictor(tmp_path / "engine" / "heatmap.xml", precision="fp32").run.inference_precision() == "f32"


def test_engine_stage_builds_an_int8_ir_close_to_fp32(
    tmp_path, tiny_dataset, heatmap_onnx, yolo_onnx, val_images, monkeypatch
):
    overrides = {
        "deploy": {"target": "openvino", "openvino": {"precision": "int8"}},
        "quantize": {"calibration_images": 4},
    }
    sandbox = make_stage_sandbox(tmp_path / "s", tiny_dataset, overrides)
    (sandbox / "models").mkdir()
    for name, src in (("heatmap", heatmap_onnx), ("yolo", yolo_onnx)):
        (sandbox / "models" / f"{name}.onnx").write_bytes(src.read_bytes())
    monkeypatch.chdir(sandbox)
    params = yaml.safe_load((sandbox / "params.yaml").read_text())
    summary = run_engine(params)
    engine = sandbox / "models" / "engine"
    assert summary["precision"] == "int8" and summary["heatmap"]["calibration_images"] == 4
    side = json.loads(sidecar_path(engine / "heatmap.xml").read_text())
    assert (side["precision"], side["calibration_images"]) == ("int8", 4) and side["nncf_version"]
    assert json.loads((sandbox / "reports/deploy/engine.json").read_text())["target"] == "openvino"

    int8 = load_deployed(engine, "heatmap", "openvino")
    assert int8.run.precision == "int8" and is_quantized(openvino.Core().read_model(str(engine / "heatmap.xml")))
    fp32 = load_predictor(heatmap_onnx, "openvino")
    # The yardstick: ONNX Runtime's INT8 of the same model on the same 4 calibration images.
    calibration = ImageCache(sandbox / "data" / "images").pick("train", 4, seed=params["seed"])
    quantize_int8(heatmap_onnx, tmp_path / "ort_int8.onnx", [fp32.preprocess(im)[0] for im in calibration])
    ours, yardstick = (
        agreement(fp32, int8, val_images),
        agreement(fp32, load_predictor(tmp_path / "ort_int8.onnx"), val_images),
    )
    assert ours["corr"] > 0.5 and ours["mean_rel"] < 1.25 * yardstick["mean_rel"], (ours, yardstick)

    # YOLO: the head's coordinate decode stays in floating point, so boxes and keypoints stay in place.
    yolo8, yolo32 = load_deployed(engine, "yolo", "openvino"), load_predictor(yolo_onnx, "openvino")
    x, _ = yolo32.preprocess(val_images[0])
    raw8, raw32 = yolo8.infer(x), yolo32.infer(x)
    coords = np.r_[0:4, 5 + np.arange(21) * 3, 6 + np.arange(21) * 3]  # box, keypoint x and y rows (px)
    assert np.abs(raw8[0, coords] - raw32[0, coords]).max() < 2.0

    with pytest.raises(ModelLoadError, match="heatmap.xml: an INT8 .* runs with precision int8, not fp32"):
        load_predictor(engine / "heatmap.xml", precision="fp32")
    with pytest.raises(ModelLoadError, match="heatmap.onnx: precision int8 needs an INT8 model"):
        load_predictor(heatmap_onnx, "openvino", precision="int8")


# ============================================================================ errors and the app


def test_bad_files_and_settings_are_clear_errors(tmp_path, heatmap_onnx):
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(heatmap_onnx.read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match="truncated.onnx"):
        load_predictor(truncated, "openvino")
    garbage = tmp_path / "garbage.xml"
    garbage.write_text("<net>not an IR")
    with pytest.raises(ModelLoadError, match=r"garbage.xml: no sidecar garbage.xml.json"):
        load_predictor(garbage)
    sidecar_path(garbage).write_text(json.dumps({"kind": "yolo", "codec": None, "input_size": 224}))
    with pytest.raises(ModelLoadError, match="garbage.xml: OpenVINO cannot read this model"):
        load_predictor(garbage)

    out = tmp_path / "engine"
    build_artefacts("openvino", {"heatmap": heatmap_onnx}, out, {})
    (out / "heatmap.bin").unlink()
    with pytest.raises(ModelLoadError, match="heatmap.xml: OpenVINO cannot read this model"):
        load_deployed(out, "heatmap", "openvino")
    with pytest.raises(ModelLoadError, match="unknown precision 'fp16'"):
        load_predictor(heatmap_onnx, "openvino", precision="fp16")
    with pytest.raises(ModelLoadError, match="not on 'cuda'"):
        load_predictor(heatmap_onnx, "openvino", device="cuda")
    with pytest.raises(ModelLoadError, match="precision 'bf16' is the openvino backend's"):
        load_predictor(heatmap_onnx, "onnxruntime", precision="bf16")
    with pytest.raises(DeployError, match=r"deploy.openvino: unknown keys \['bits'\]"):
        build_artefacts("openvino", {"heatmap": heatmap_onnx}, tmp_path / "e2", {"openvino": {"bits": 8}})
    with pytest.raises(DeployError, match="unknown deploy.openvino.precision 'int4'"):
        build_artefacts("openvino", {"heatmap": heatmap_onnx}, tmp_path / "e2", {"openvino": {"precision": "int4"}})
    with pytest.raises(DeployError, match="int8 needs calibration images"):
        build_artefacts("openvino", {"heatmap": heatmap_onnx}, tmp_path / "e2", {"openvino": {"precision": "int8"}})
    assert not (tmp_path / "e2").exists()


def test_live_app_takes_the_openvino_backend(heatmap_onnx):
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        ["--source", "0", "--model", str(heatmap_onnx), "--backend", "openvino", "--precision", "fp32"]
    )
    predictor = cli._load_model(args, spinning=True)
    assert (predictor.backend, predictor.run.precision) == ("openvino", "fp32")
    bad = parser.parse_args(
        ["--source", "0", "--model", str(heatmap_onnx), "--backend", "openvino", "--device", "cuda"]
    )
    with pytest.raises(cli.ModelError, match="not on 'cuda'"):
        cli._load_model(bad, spinning=True)
