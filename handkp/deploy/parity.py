"""Parity of a deployed model with its reference, measured through the runtime API: the same
pre-processing feeds both backends and the same decoder decodes both outputs, so only the
networks are compared.

    metrics = compare_predictors(load_predictor(pt), load_predictor(onnx), images)
    check_parity(metrics, tolerance_heatmap=1e-3, tolerance_px=0.5)  # ParityError when worse
"""

from __future__ import annotations

import numpy as np

from ..core.errors import HandkpError, ModelLoadError
from ..runtime import Predictor


class ParityError(HandkpError):
    """The exported model does not reproduce the PyTorch model within the tolerances."""


def compare_predictors(
    reference: Predictor, candidate: Predictor, images: list[np.ndarray], min_score: float = 0.1
) -> dict:
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
            f"export.parity_min_score) > export.tolerance_px {tolerance_px:g}"
        )
    if problems:
        raise ParityError(f"{what} does not match PyTorch on {metrics['n_images']} val images: " + "; ".join(problems))
