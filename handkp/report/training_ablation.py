"""The README's "Training choices" section, from reports/ablation/training.json (`python
scripts/ablation.py training ...`, issue 32): each variant continued from the released weights for
the same images, its dev figures single pass and with the refine pass, upside down, in the multihand clips made of
dev hands with the labels' boxes (what the tracker and the model lose), and its training hours."""

from __future__ import annotations

from .data import ReportData
from .format import MISSING, fmt_pck, num, posix, table_row, table_rule

ABLATION_PCK = (1, 3, 5, 10)
BASELINE = "continued"  # the variant every other row is read against (params.yaml ablation.variants)


def _changed(rows: dict[str, dict]) -> list[str]:
    """The params keys whose values differ between the rows (what the variants vary)."""
    keys = sorted({k for row in rows.values() for k in (row.get("sets") or {})})
    return [k for k in keys if len({repr((row.get("sets") or {}).get(k)) for row in rows.values()}) > 1]


def training_ablation_section(data: ReportData) -> list[str]:
    """The table (a line saying the study has not run where the table is empty or missing)."""
    rows = data.training_ablation or {}
    if not rows:
        return [
            f"No training ablation yet (`{posix(data.paths.training_ablation)}`): "
            "`python scripts/ablation.py training VARIANT...` writes it (params.yaml `ablation`)."
        ]
    order = sorted(rows, key=lambda name: (name != BASELINE, name))
    varied = _changed(rows)
    head = ["variant", "sets", "train h"]
    head += [f"dev PCK@{t}px" for t in ABLATION_PCK] + [f"refine PCK@{t}px" for t in ABLATION_PCK]
    head += ["turned 180° PCK@5px", "turned 180° refine PCK@5px", "multihand PCK@5px", "hands missed"]
    lines = [
        "Each variant continued from the released weights for the same number of images (params.yaml "
        "`ablation.shared`), scored on the dev slice of train only: single pass, and with the refine pass "
        "(the whole image, then the hand's upright crop from those keypoints); *turned 180°*: the dev images "
        "upside down (the robustness stage's `rotation_180`); *multihand*: the multihand "
        "stage's clips made of dev hands, the labels' boxes in the detector's place (the tracker's crops).",
        "",
        table_row(head),
        table_rule(head, 2),
    ]
    for name in order:
        row = rows[name]
        sets = row.get("sets") or {}
        own = ", ".join(f"`{k}={sets.get(k)}`" for k in varied if k in sets) or MISSING
        hours = num(row, "train_hours")
        cells = [f"`{name}`", own, MISSING if hours is None else f"{hours:.2f}"]
        cells += [fmt_pck(num(row.get("dev"), f"pck_{t}px")) for t in ABLATION_PCK]
        cells += [fmt_pck(num(row.get("dev_refine"), f"pck_{t}px")) for t in ABLATION_PCK]
        cells += [fmt_pck(num(row.get(key), "pck_5px")) for key in ("dev_rotation_180", "dev_rotation_180_refine")]
        multihand = row.get("dev_multihand_label_boxes") or {}
        missed = num(multihand, "missed_rate")
        cells += [fmt_pck(num(multihand, "pck_5px")), MISSING if missed is None else f"{missed:.1%}"]
        lines.append(table_row(cells))
    hardware = sorted({str(row.get("hardware")) for row in rows.values() if row.get("hardware")})
    if hardware:
        lines += ["", f"Trained on {', '.join(hardware)}."]
    return lines
