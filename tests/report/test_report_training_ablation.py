"""The README's training-choices section from a synthetic reports/ablation/training.json."""

from __future__ import annotations

import json

from section_inputs import data_with_only

from handkp.report.format import MISSING
from handkp.report.markdown import render_markdown
from handkp.report.training_ablation import training_ablation_section


def row(crop, other, pck5, refine5, hours=1.02):
    figures = {"pck_1px": 0.17, "pck_3px": 0.62, "pck_10px": 0.92}
    return {
        "sets": {"train.epochs": 6, "train.augment.crop": crop, "train.augment.other_hand": other},
        "dev": {**figures, "pck_5px": pck5},
        "dev_refine": {**figures, "pck_5px": refine5},
        "dev_rotation_180": {"pck_5px": 0.4},
        "dev_rotation_180_refine": {"pck_5px": 0.6},
        "dev_multihand_label_boxes": {"pck_5px": 0.5, "missed_rate": 0.25},
        "train_hours": hours,
        "hardware": "AMD EPYC",
    }


def test_rows_show_what_each_variant_changes_with_the_baseline_first(tmp_path):
    path = tmp_path / "training.json"
    path.write_text(json.dumps({"crops_50": row(0.5, 0.0, 0.80, 0.83), "continued": row(0.0, 0.0, 0.79, 0.66)}))
    lines = training_ablation_section(data_with_only(tmp_path, training_ablation=path))
    table = [line for line in lines if line.startswith("|")]
    assert table[0].startswith("| variant | sets | train h | dev PCK@1px |")
    assert table[0].endswith(
        "refine PCK@10px | turned 180° PCK@5px | turned 180° refine PCK@5px | multihand PCK@5px | hands missed |"
    )
    # only the keys that differ between rows are shown (train.epochs is shared; other_hand equal in both)
    assert table[2] == (
        "| `continued` | `train.augment.crop=0.0` | 1.02 | 0.170 | 0.620 | 0.790 | 0.920 "
        "| 0.170 | 0.620 | 0.660 | 0.920 | 0.400 | 0.600 | 0.500 | 25.0% |"
    )
    assert table[3].startswith("| `crops_50` | `train.augment.crop=0.5` | 1.02 |") and "| 0.800 |" in table[3]
    assert lines[-1] == "Trained on AMD EPYC."
    block = render_markdown(data_with_only(tmp_path, training_ablation=path), {})
    assert "### Training choices: continued from the release, scored on dev" in block and table[3] in block
    # a row written before the turned scores existed shows them as missing, not as zero
    older = {k: v for k, v in row(0.5, 0.0, 0.80, 0.83).items() if not k.startswith("dev_rotation")}
    path.write_text(json.dumps({"continued": row(0.0, 0.0, 0.79, 0.66), "older": older}))
    lines = training_ablation_section(data_with_only(tmp_path, training_ablation=path))
    assert f"| 0.830 | 0.920 | {MISSING} | {MISSING} | 0.500 |" in lines[-3]


def test_an_empty_or_missing_table_is_said(tmp_path):
    path = tmp_path / "training.json"
    path.write_text("{}\n")  # what the repository holds before the study runs
    for given in (path, tmp_path / "missing.json"):
        lines = training_ablation_section(data_with_only(tmp_path, training_ablation=given))
        assert len(lines) == 1 and lines[0].startswith("No training ablation yet")
