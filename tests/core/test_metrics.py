import numpy as np
import polars as pl
import pytest

from handkp.core.metrics import compute_metrics


def table(rows):
    return pl.DataFrame(rows, schema=["image", "keypoint", "x", "y", "visibility"], orient="row")


def test_pck_epe_and_misses_on_hand_computed_cases():
    gt = table(
        [
            ("a", 0, 10.0, 10.0, 1),
            ("a", 1, 20.0, 20.0, 1),
            ("a", 2, 30.0, 30.0, 0),
            ("b", 0, 50.0, 50.0, 1),
            ("b", 1, 60.0, 60.0, 1),
        ]
    )
    pred = pl.DataFrame(
        {
            "image": ["a", "a", "a"],
            "keypoint": [0, 1, 2],
            "x": [10.5, 23.0, 0.0],
            "y": [10.0, 24.0, 0.0],
            "score": [1.0, 1.0, 1.0],
        }
    )
    m, curve, per_kp = compute_metrics(gt, pred)
    # visible: a0 (0.5 px), a1 (5 px), b0 and b1 (no prediction: misses); a2 is invisible
    assert m["n_keypoints"] == 4 and m["n_images"] == 2 and m["missed_images"] == 1
    assert m["pck_1px"] == pytest.approx(0.25)
    assert m["pck_3px"] == pytest.approx(0.25)
    assert m["pck_5px"] == pytest.approx(0.5)
    assert m["pck_10px"] == pytest.approx(0.5)
    assert m["epe_mean_px"] == pytest.approx(2.75) and m["epe_median_px"] == pytest.approx(2.75)
    assert curve["pck"][0] == 0 and curve["pck"][-1] == pytest.approx(0.5)
    assert per_kp.filter(pl.col("keypoint") == 0)["pck_1px"][0] == pytest.approx(0.5)


def test_perfect_predictions_give_pck_one_and_auc_near_one():
    gt = table([("a", k, 5.0 * k, 7.0, 1) for k in range(21)])
    pred = gt.select("image", "keypoint", "x", "y").with_columns(score=pl.lit(1.0))
    m, _, _ = compute_metrics(gt, pred)
    assert all(m[f"pck_{t}px"] == 1 for t in (1, 3, 5, 7, 10))
    assert m["epe_mean_px"] == 0 and m["auc_0_15px"] == pytest.approx(1.0, abs=1e-9)


def test_a_prediction_exactly_at_the_threshold_counts_as_a_hit():
    gt = table([("a", 0, 0.0, 0.0, 1)])
    pred = pl.DataFrame({"image": ["a"], "keypoint": [0], "x": [3.0], "y": [4.0], "score": [1.0]})
    m, _, _ = compute_metrics(gt, pred)
    assert m["pck_5px"] == 1 and m["pck_3px"] == 0 and np.isclose(m["epe_mean_px"], 5)
