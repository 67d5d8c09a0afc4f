"""Export of the trained heatmap network to ONNX, and the parity check of what was exported.

    export_onnx("models/heatmap/best.pt", "models/heatmap.onnx")    # simplified, with handkp metadata
    metrics = compare_predictors(load_predictor(pt), load_predictor(onnx), images)
    check_parity(metrics, tolerance_heatmap=1e-3, tolerance_px=0.5)  # ParityError when worse

The ONNX file carries the metadata that ``handkp.runtime.load_predictor`` reads
(``handkp_kind=heatmap``, ``handkp_codec=<json>``), so the file alone is a deployable model.
Parity is measured through the runtime API: the same pre-processing feeds both backends and the
same codec decodes both outputs, so only the network itself is compared.
"""
from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .runtime import INPUT_RGB_PIXELS, ONNX_META_CODEC, ONNX_META_INPUT, ONNX_META_KIND, ModelLoadError, Predictor, _load_torch_checkpoint

INPUT_NAME = "image"
OUTPUT_NAME = "heatmaps"
ONNX_META_MODEL_CONFIG = "handkp_model_config"
MIN_OPSET = 17


class ExportError(RuntimeError):
    """The network could not be exported, simplified or checked."""


class ParityError(RuntimeError):
    """The exported model does not reproduce the PyTorch model within the tolerances."""


def export_onnx(checkpoint_path: str | Path, onnx_path: str | Path, opset: int = 17,
                dynamic_batch: bool = False, simplify: bool = True) -> Path:
    """A handkp heatmap checkpoint (``models/heatmap/best.pt``) -> an ONNX file.

    Input ``image`` (1, 3, S, S) float32 RGB pixel values 0–255 (batch ``batch`` when
    ``dynamic_batch``; the graph normalises them), output ``heatmaps`` (1, 21, H, H); simplified
    with onnxsim when ``simplify``; metadata props ``handkp_kind``, ``handkp_codec``,
    ``handkp_input`` and ``handkp_model_config``. Written atomically (a
    temporary file beside ``onnx_path``, renamed when complete). Returns ``onnx_path``."""
    import onnx
    import torch

    if int(opset) < MIN_OPSET:
        raise ExportError(f"export.opset {opset} is too old: opset >= {MIN_OPSET} is needed")
    checkpoint_path, onnx_path = Path(checkpoint_path), Path(onnx_path)
    reference = _load_torch_checkpoint(checkpoint_path, "cpu")  # the one checkpoint loader
    model, codec = reference.run.model.float().eval(), reference.codec
    model_config = torch.load(checkpoint_path, map_location="cpu", weights_only=False).get("model_config", {})
    dummy = torch.zeros(1, 3, codec.input_size, codec.input_size, dtype=torch.float32)
    dynamic_axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None

    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{onnx_path.name}.", dir=onnx_path.parent) as tmp:
        raw_path = Path(tmp) / "raw.onnx"
        try:
            with warnings.catch_warnings():
                # The TorchScript exporter is deprecated in favour of the dynamo one, which needs
                # onnxscript; for this plain conv net both give the same graph.
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                torch.onnx.export(model, (dummy,), str(raw_path), dynamo=False, opset_version=int(opset),
                                  input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                  dynamic_axes=dynamic_axes, do_constant_folding=True)
        except Exception as err:
            raise ExportError(f"{checkpoint_path}: torch.onnx.export failed ({err})") from err
        proto = onnx.load(str(raw_path))
        if simplify:
            proto = _simplify(proto, checkpoint_path)
        del proto.metadata_props[:]
        for key, value in ((ONNX_META_KIND, "heatmap"), (ONNX_META_CODEC, json.dumps(codec.to_dict())), (ONNX_META_INPUT, INPUT_RGB_PIXELS),
                           (ONNX_META_MODEL_CONFIG, json.dumps(model_config, sort_keys=True))):
            prop = proto.metadata_props.add()
            prop.key, prop.value = key, value
        proto.doc_string = f"handkp heatmap network exported from {checkpoint_path.name}"
        try:
            onnx.checker.check_model(proto)
        except Exception as err:
            raise ExportError(f"{onnx_path}: the exported graph fails onnx.checker ({err})") from err
        out_tmp = Path(tmp) / onnx_path.name
        onnx.save(proto, str(out_tmp))
        os.replace(out_tmp, onnx_path)
    return onnx_path


def _simplify(proto, source: Path):
    import onnxsim

    try:
        simplified, ok = onnxsim.simplify(proto)
    except Exception as err:
        raise ExportError(f"{source}: onnxsim failed to simplify the exported graph ({err})") from err
    if not ok:
        raise ExportError(f"{source}: onnxsim could not validate the simplified graph against the original")
    return simplified


# ---- parity ----------------------------------------------------------------------------------
def compare_predictors(reference: Predictor, candidate: Predictor, images: list[np.ndarray],
                       min_score: float = 0.1) -> dict:
    """Runs both predictors on the same pre-processed inputs (the reference's pre-processing)
    and compares raw outputs and decoded keypoints.

    Returns ``heatmap_max_abs_diff``, ``heatmap_mean_abs_diff``, ``heatmap_max_rel_diff`` (max
    abs difference / max abs reference output), ``heatmap_peak_mean`` (mean peak value of the
    reference, for scale), ``keypoint_max_diff_px``, ``keypoint_mean_diff_px``
    (all keypoints), ``keypoint_max_diff_px_confident`` and ``n_confident_keypoints`` (keypoints
    whose reference score is >= ``min_score``: where the peak is not a near-tie of the
    background, so a difference there is a real disagreement), ``n_images``."""
    if reference.kind != candidate.kind:
        raise ModelLoadError(f"cannot compare a {reference.kind} model with a {candidate.kind} model")
    if not images:
        raise ValueError("compare_predictors needs at least one image")
    hm_max, hm_sum, hm_count, ref_max, peaks, dists, confident = 0.0, 0.0, 0, 0.0, [], [], []
    for image in images:
        x, box = reference.preprocess(image)
        raw_ref, raw_cand = np.asarray(reference.infer(x), np.float32), np.asarray(candidate.infer(x), np.float32)
        if raw_ref.shape != raw_cand.shape:
            raise ParityError(f"output shapes differ: reference {raw_ref.shape}, candidate {raw_cand.shape}")
        diff = np.abs(raw_ref.astype(np.float64) - raw_cand)
        hm_max, hm_sum, hm_count = max(hm_max, float(diff.max())), hm_sum + float(diff.sum()), hm_count + diff.size
        ref_max = max(ref_max, float(np.abs(raw_ref).max()))
        p_ref, p_cand = reference.postprocess(raw_ref, box), candidate.postprocess(raw_cand, box)
        d = np.linalg.norm(p_ref.keypoints.astype(np.float64) - p_cand.keypoints, axis=1)
        if not np.isfinite(hm_max) or not np.all(np.isfinite(d)) or p_ref.found != p_cand.found:
            d = np.full_like(d, np.inf)
        dists.append(d)
        confident.append(p_ref.scores >= min_score)
        peaks.append(float(p_ref.scores.mean()))
    d_all, conf = np.concatenate(dists), np.concatenate(confident)
    return {
        "heatmap_max_abs_diff": hm_max,
        "heatmap_mean_abs_diff": hm_sum / max(hm_count, 1),
        "heatmap_max_rel_diff": hm_max / ref_max if ref_max > 0 else hm_max,
        "heatmap_peak_mean": float(np.mean(peaks)),
        "keypoint_max_diff_px": float(d_all.max()),
        "keypoint_mean_diff_px": float(d_all.mean()),
        "keypoint_max_diff_px_confident": float(d_all[conf].max()) if conf.any() else 0.0,
        "n_confident_keypoints": int(conf.sum()),
        "n_keypoints": int(d_all.size),
        "n_images": len(images),
    }


def check_parity(metrics: dict, tolerance_heatmap: float, tolerance_px: float, what: str = "ONNX export") -> None:
    """Raises ParityError naming each violated tolerance; NaN/inf differences always fail."""
    problems = []
    hm = metrics["heatmap_max_abs_diff"]
    if not np.isfinite(hm) or hm > tolerance_heatmap:
        problems.append(f"max abs heatmap difference {hm:.3g} > export.tolerance_heatmap {tolerance_heatmap:g}")
    px = metrics["keypoint_max_diff_px_confident"]
    if not np.isfinite(px) or px > tolerance_px:
        problems.append(
            f"max keypoint difference {px:.3g} px (over {metrics['n_confident_keypoints']} keypoints with score >= "
            f"export.parity_min_score) > export.tolerance_px {tolerance_px:g}")
    if problems:
        raise ParityError(f"{what} does not match PyTorch on {metrics['n_images']} val images: " + "; ".join(problems))


def split_images(table, raw_root: str | Path, split: str = "val", limit: int = 32, seed: int | None = None) -> list[np.ndarray]:
    """``limit`` images (0: all) of ``split`` in the keypoint table, as RGB uint8: the first by name,
    or with ``seed`` a seeded random pick (kept in name order)."""
    import polars as pl

    from .dataset import read_rgb

    names = table.filter(pl.col("split") == split)["image"].unique().sort().to_list()
    if limit and seed is not None:
        picked = np.random.default_rng(seed).choice(len(names), size=min(limit, len(names)), replace=False)
        names = [names[i] for i in sorted(picked)]
    elif limit:
        names = names[:limit]
    if not names:
        raise ValueError(f"no '{split}' images in the keypoint table")
    return [read_rgb(Path(raw_root) / n) for n in names]


def onnx_summary(onnx_path: str | Path) -> dict:
    """``opset``, ``onnx_size_mb``, ``onnx_nodes`` of an ONNX file (for the export metrics)."""
    import onnx

    proto = onnx.load(str(onnx_path), load_external_data=False)
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return {"opset": int(opset), "onnx_size_mb": round(Path(onnx_path).stat().st_size / 2**20, 3),
            "onnx_nodes": len(proto.graph.node)}
