"""Which val images the qualitative figure shows: per-image errors (from the evaluator's own
per-keypoint errors, `handkp.core.metrics.keypoint_errors`) and the rows picked from them."""

from __future__ import annotations

import math
from collections.abc import Mapping

import polars as pl

from handkp.core.metrics import keypoint_errors

from .format import OBJECTS

QUALITATIVE_ROWS = 4


def per_image_errors(ground_truth: pl.DataFrame, predictions: pl.DataFrame) -> dict[str, float]:
    """Mean pixel error over each val image's visible keypoints; inf where the model found no hand.

    Keypoints without a prediction are left out of the mean; images without a visible keypoint
    are left out.
    """
    val = ground_truth.filter(pl.col("split") == "val")
    per_image = keypoint_errors(val, predictions).group_by("image").agg(pl.col("error_px").mean())
    found = {
        image: e for image, e in zip(per_image["image"].to_list(), per_image["error_px"].to_list()) if e is not None
    }
    return {image: float(found.get(image, math.inf)) for image in sorted(per_image["image"].to_list())}


def pick_qualitative(
    errors: Mapping[str, Mapping[str, float]], n_rows: int = QUALITATIVE_ROWS
) -> list[tuple[str, str]]:
    """Rows for the qualitative figure: [(label, image)], images shared by every model.

    The first model is the reference: its typical image (median per-image error), its worst,
    then each other model's worst, the largest disagreement, the reference's best.
    """
    names = list(errors)
    if not names:
        return []
    common = set(errors[names[0]])
    for n in names[1:]:
        common &= set(errors[n])
    if not common:
        return []
    ref = names[0]
    by_ref = sorted(common, key=lambda i: (errors[ref][i], i))
    finite = [i for i in by_ref if math.isfinite(errors[ref][i])]
    candidates: list[tuple[str, str]] = []
    if finite:
        candidates.append(("typical", finite[(len(finite) - 1) // 2]))
    candidates.append((f"worst for {OBJECTS.get(ref, ref)}", by_ref[-1]))
    for n in names[1:]:
        worst = max(sorted(common), key=lambda i: errors[n][i])
        candidates.append((f"worst for {OBJECTS.get(n, n)}", worst))
    if len(names) > 1:
        both = [i for i in sorted(common) if all(math.isfinite(errors[n][i]) for n in names)]
        if both:
            gap = max(both, key=lambda i: max(errors[n][i] for n in names) - min(errors[n][i] for n in names))
            candidates.append(("largest gap", gap))
    if finite:
        candidates.append((f"best for {OBJECTS.get(ref, ref)}", finite[0]))
    rows: list[tuple[str, str]] = []
    seen: set[str] = set()
    for label, image in candidates:
        if image not in seen:
            rows.append((label, image))
            seen.add(image)
        if len(rows) == n_rows:
            break
    return rows
