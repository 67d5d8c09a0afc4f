"""ONNX export of the heatmap network: structure and metadata, parity with PyTorch through the
runtime API on real fixture images, the parity failure path, the export stage, and the
pipeline's export metrics.

The model here is a small randomly initialised HeatmapNet whose BatchNorm statistics are set from
a few real images (an untrained net with default running statistics shrinks its activations to
denormal floats, which makes heatmaps all-zero and PyTorch on CPU very slow)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import polars as pl
import pytest
import torch
import yaml
from conftest import REPO, deep_update, run
from torch import nn

from handkp.core.codec import codec_for_model
from handkp.core.errors import HandkpError, ModelLoadError
from handkp.core.images import read_rgb
from handkp.data.archive import DatasetArchive
from handkp.data.augment import AugmentConfig, augment
from handkp.data.cache import ImageCache, write_image_cache
from handkp.data.dataset import keypoint_table, validate_dataset
from handkp.data.fetch import fetch_dataset
from handkp.deploy.export import ExportError, export_onnx
from handkp.deploy.parity import ParityError, check_parity, compare_predictors
from handkp.model.checkpoint import load_checkpoint, save_checkpoint
from handkp.model.network import build_model
from handkp.runtime import Predictor, load_predictor
from handkp.runtime.decoders import HeatmapDecoder, YoloPoseDecoder, rgb_to_nchw
from handkp.runtime.model_file import INPUT_RGB_PIXELS, ONNX_META_CODEC, ONNX_META_INPUT, ONNX_META_KIND

MODEL_CFG = {"pretrained": "none", "backbone_tail": "full", "head": "deconv", "deconv_layers": 3, "deconv_channels": 16}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """PyTorch's CPU thread pool is pathologically slow on a few contended cores; one thread is enough here."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_val_images(tiny_dataset: Path, n: int = 8) -> list[np.ndarray]:
    return [read_rgb(p) for p in sorted((tiny_dataset / "hand-keypoints" / "val" / "images").iterdir())[:n]]


def make_checkpoint(path: Path, images: list[np.ndarray], model_cfg: dict = MODEL_CFG, seed: int = 0) -> Path:
    """A checkpoint in the training format (model_config, codec, state_dict) of a random net,
    BatchNorm statistics taken from ``images``."""
    torch.manual_seed(seed)
    model = build_model(model_cfg)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batch
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(rgb_to_nchw(np.stack(images))))
    codec = codec_for_model(model_cfg, {"sigma": 2.0})
    return save_checkpoint(path, model_cfg, codec, model.eval().state_dict())


def make_stage_sandbox(root: Path, tiny_dataset: Path, overrides: dict | None = None) -> Path:
    """A folder where stage scripts after prepare run as in the pipeline: params.yaml (the repo's,
    with ``overrides``), data/prepared/keypoints.parquet and the decoded-image cache data/images
    of the tiny fixture. No data/raw.zip: those stages read their pixels from the cache only."""
    root.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    (root / "params.yaml").write_text(yaml.safe_dump(deep_update(params, overrides or {}), sort_keys=False))
    with DatasetArchive(fetch_dataset(str(tiny_dataset), root.parent / f"{root.name}-raw.zip", 100)) as archive:
        samples, _ = validate_dataset(archive, 224, 1)
        table = keypoint_table(samples, 0.1, 42)
        (root / "data" / "prepared").mkdir(parents=True)
        table.write_parquet(root / "data" / "prepared" / "keypoints.parquet")
        write_image_cache(table, archive, root / "data" / "images", 224)
    return root


def run_stage(name: str, cwd: Path, check: bool = True):
    return run([sys.executable, str(REPO / "stages" / f"{name}.py")], cwd, check=check)


@pytest.fixture(scope="module")
def val_images(tiny_dataset):
    return tiny_val_images(tiny_dataset)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, val_images):
    """(checkpoint, onnx) of the small model, exported with the defaults."""
    root = tmp_path_factory.mktemp("export")
    ckpt = make_checkpoint(root / "best.pt", val_images)
    return ckpt, export_onnx(ckpt, root / "heatmap.onnx")


def test_onnx_file_structure_and_metadata(exported):
    ckpt, onnx_path = exported
    proto = onnx.load(str(onnx_path))
    onnx.checker.check_model(proto)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    (inp,) = proto.graph.input
    assert inp.name == "image"
    assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, 3, 224, 224]
    assert [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim] == [1, 21, 56, 56]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta[ONNX_META_KIND] == "heatmap"
    assert meta[ONNX_META_INPUT] == INPUT_RGB_PIXELS
    # The stem conv takes the pixels: no normalisation op before it in the graph.
    assert [n.op_type for n in proto.graph.node if inp.name in n.input] == ["Conv"]
    assert json.loads(meta[ONNX_META_CODEC]) == load_checkpoint(ckpt)[1].to_dict()
    assert not any(n.op_type == "BatchNormalization" for n in proto.graph.node)  # folded by the simplifier
    assert [p.name for p in onnx_path.parent.iterdir() if p.name.startswith(".")] == []  # no temporary left
    p = load_predictor(onnx_path)
    assert (p.kind, p.backend, p.codec.heatmap_size) == ("heatmap", "onnxruntime", 56)


def test_stem_takes_pixels_and_normalises_them_with_imagenet_statistics(exported, val_images):
    """HeatmapNet's stem conv on RGB pixels 0–255 equals the same conv on (rgb / 255 - mean) / std
    (computed here from the ImageNet statistics) padded with normalised black; uint8 input alike."""
    stem = load_predictor(exported[0], "torch").run.model.backbone[0][0]
    rgb = np.stack(val_images[:2])
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    black = torch.from_numpy(-mean / std).float().view(1, 3, 1, 1)
    normalised = torch.from_numpy(((rgb / 255.0 - mean) / std).transpose(0, 3, 1, 2)).float()
    padded = black.expand(2, 3, 226, 226).clone()
    padded[:, :, 1:-1, 1:-1] = normalised
    with torch.no_grad():
        from_pixels = stem(torch.from_numpy(rgb_to_nchw(rgb)))
        from_uint8 = stem(torch.from_numpy(np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))))
        by_hand = torch.nn.functional.conv2d(padded, stem.weight, stride=2)
    torch.testing.assert_close(from_pixels, by_hand, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(from_uint8, from_pixels)


def test_export_of_an_older_convention_is_refused(exported, tmp_path):
    """An ONNX file without the input-convention metadata expects normalised input: loading it
    must fail with the remedy, not run on the wrong input."""
    proto = onnx.load(str(exported[1]))
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key != ONNX_META_INPUT]
    del proto.metadata_props[:]
    for key, value in kept:
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(proto, str(tmp_path / "old.onnx"))
    with pytest.raises(ModelLoadError, match=r"old\.onnx: exported by an older handkp.*dvc repro export"):
        load_predictor(tmp_path / "old.onnx")


def test_dynamic_batch_export(exported, val_images, tmp_path):
    ckpt, _ = exported
    path = export_onnx(ckpt, tmp_path / "dyn.onnx", opset=18, dynamic_batch=True)
    dim0 = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param == "batch" and not dim0.dim_value
    p = load_predictor(path)
    assert p.run.fixed_batch is None
    x = np.concatenate([p.preprocess(im)[0] for im in val_images[:3]])
    assert p.infer(x).shape == (3, 21, 56, 56)


def test_runtime_api_gives_the_same_keypoints_on_torch_and_onnxruntime(exported, val_images):
    ckpt, onnx_path = exported
    ref, dep = load_predictor(ckpt, "torch"), load_predictor(onnx_path, "onnxruntime")
    for image in val_images:
        a, b = ref.predict(image), dep.predict(image)
        assert a.found and b.found
        np.testing.assert_allclose(b.keypoints, a.keypoints, atol=0.25)  # px
        np.testing.assert_allclose(b.scores, a.scores, rtol=1e-3, atol=1e-5)
    metrics = compare_predictors(ref, dep, val_images, min_score=0.0)
    assert metrics["n_images"] == len(val_images) and metrics["n_keypoints"] == 21 * len(val_images)
    assert metrics["n_confident_keypoints"] == metrics["n_keypoints"]
    assert 0 < metrics["heatmap_max_abs_diff"] < 1e-4 and metrics["heatmap_max_rel_diff"] < 1e-3
    assert metrics["keypoint_max_diff_px"] < 0.25
    check_parity(metrics, tolerance_heatmap=1e-3, tolerance_px=0.5)  # passes


def test_parity_failure_is_a_clear_error(exported, val_images, tmp_path):
    ckpt, onnx_path = exported
    ref, dep = load_predictor(ckpt, "torch"), load_predictor(onnx_path, "onnxruntime")
    metrics = compare_predictors(ref, dep, val_images[:2], min_score=0.0)
    with pytest.raises(ParityError, match=r"tolerance_heatmap 0\b"):
        check_parity(metrics, tolerance_heatmap=0.0, tolerance_px=0.5)

    # A deliberately broken export: the final layer's bias shifted by 0.5 for one keypoint.
    proto = onnx.load(str(onnx_path))
    biases = [t for t in proto.graph.initializer if tuple(t.dims) == (21,)]
    assert biases, "expected the final conv's (21,) bias among the initializers"
    values = onnx.numpy_helper.to_array(biases[-1]).copy()
    values[3] += 0.5
    biases[-1].CopyFrom(onnx.numpy_helper.from_array(values, biases[-1].name))
    broken = tmp_path / "broken.onnx"
    onnx.save(proto, str(broken))
    bad = compare_predictors(ref, load_predictor(broken), val_images[:2], min_score=0.0)
    assert bad["heatmap_max_abs_diff"] == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(ParityError, match="max abs heatmap difference 0.5"):
        check_parity(bad, tolerance_heatmap=1e-3, tolerance_px=0.5)

    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(onnx_path.read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match="truncated.onnx"):
        load_predictor(truncated)


def test_export_refuses_bad_inputs(tmp_path, exported):
    not_a_checkpoint = tmp_path / "x.pt"
    not_a_checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="x.pt"):
        export_onnx(not_a_checkpoint, tmp_path / "x.onnx")
    with pytest.raises(ExportError, match="opset"):
        export_onnx(exported[0], tmp_path / "y.onnx", opset=13)
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "y.onnx").exists()


def test_export_stage_fails_without_output_when_parity_is_worse_than_the_tolerance(tmp_path, tiny_dataset, exported):
    overrides = {"export": {"parity_images": 4, "tolerance_heatmap": 0.0}}
    sandbox = make_stage_sandbox(tmp_path / "s", tiny_dataset, overrides)
    (sandbox / "models" / "heatmap").mkdir(parents=True)
    (sandbox / "models" / "heatmap" / "best.pt").write_bytes(exported[0].read_bytes())
    proc = run_stage("export", sandbox, check=False)
    assert proc.returncode != 0
    assert "export failed" in proc.stderr and "export.tolerance_heatmap 0" in proc.stderr
    assert not (sandbox / "models" / "heatmap.onnx").exists()
    assert sorted(p.name for p in (sandbox / "models").iterdir()) == ["heatmap"]  # no temporary left
    metrics = json.loads((sandbox / "reports/deploy/export.json").read_text())  # kept for diagnosis
    assert metrics["n_images"] == 4 and metrics["heatmap_max_abs_diff"] > 0

    # The same stage with the default tolerances passes and writes the ONNX file.
    params = yaml.safe_load((sandbox / "params.yaml").read_text())
    params["export"]["tolerance_heatmap"] = 1e-3
    (sandbox / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_stage("export", sandbox)
    assert load_predictor(sandbox / "models" / "heatmap.onnx").kind == "heatmap"


def test_letterbox_pads_the_heatmap_input_with_the_training_borders():
    """A frame that is not square is letterboxed. The heatmap net's bands must look like the
    borders it saw in training (what a shrinking augmentation warp brings in); YOLO's are
    Ultralytics' grey."""
    shrunk, _ = augment(
        np.full((224, 224, 3), 200, np.uint8),
        np.zeros((21, 2), np.float32),
        AugmentConfig(rotation_deg=0, scale=(0.5, 0.5), translate=0, flip=0, colour=0, blur=0),
        np.random.default_rng(0),
    )
    frame = np.full((112, 224, 3), 200, np.uint8)  # wide: bands of 56 px above and below
    x, box = Predictor(
        HeatmapDecoder(codec_for_model({"deconv_layers": 3}, {"sigma": 2.0})), "test", None, 224
    ).preprocess(frame)
    assert box.pad_y == 56 and np.all(x[0, :, 56:168] == 200)
    assert np.all(x[0, :, :56] == shrunk[0, 0, :, None, None]) and np.all(
        x[0, :, 168:] == shrunk[-1, -1, :, None, None]
    )
    y, _ = Predictor(YoloPoseDecoder(), "test", None, 224).preprocess(frame)
    assert np.allclose(y[0, :, 0, 0] * 255, 114)


def test_image_cache_holds_the_real_val_images(tmp_path, tiny_dataset):
    """The stages' images come from the decoded cache: the same pixels as the raw files, the first
    by name or a seeded pick, and a clear error for a split it does not hold."""
    sandbox = make_stage_sandbox(tmp_path / "s", tiny_dataset)
    table = pl.read_parquet(sandbox / "data/prepared/keypoints.parquet")
    cache = ImageCache(sandbox / "data/images")
    images = cache.pick("val", 3)
    assert len(images) == 3 and all(im.shape == (224, 224, 3) and im.dtype == np.uint8 for im in images)
    val_names = sorted(table.filter(pl.col("split") == "val")["image"].unique().to_list())
    assert all(np.array_equal(im, read_rgb(tiny_dataset / name)) for im, name in zip(images, val_names))
    assert np.array_equal(cache.read(val_names[5]), read_rgb(tiny_dataset / val_names[5]))
    assert len(cache.pick("val", 0)) == 32
    picked = cache.pick("val", 3, seed=7)  # a seeded pick: the same each time
    assert all(np.array_equal(a, b) for a, b in zip(picked, cache.pick("val", 3, seed=7)))
    assert not all(np.array_equal(a, b) for a, b in zip(picked, images))
    assert len(cache.pick("val", 99, seed=7)) == 32
    with pytest.raises(HandkpError, match="no split 'test'"):
        cache.pick("test")


# ---- the pipeline's export ------------------------------------------------------------------------
def test_pipeline_export_metrics(pipeline_run):
    params = yaml.safe_load((pipeline_run / "params.yaml").read_text())["export"]
    metrics = json.loads((pipeline_run / "reports/deploy/export.json").read_text())
    assert metrics["n_images"] == min(params["parity_images"] or 32, 32)
    assert metrics["opset"] >= 17 and metrics["onnx_size_mb"] > 1
    assert metrics["heatmap_max_abs_diff"] <= params["tolerance_heatmap"]
    assert metrics["keypoint_max_diff_px_confident"] <= params["tolerance_px"]
    p = load_predictor(pipeline_run / "models/heatmap.onnx")
    assert p.kind == "heatmap" and p.codec == load_checkpoint(pipeline_run / "models/heatmap/best.pt")[1]
