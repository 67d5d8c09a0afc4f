"""The README's comparison of the release with the one before, from a synthetic manifest and a
synthetic reports/metrics/previous_release.json: every figure side by side, the change, and the
figures where the release is worse named (lower is better for missed hands, false hands and ID
switches; a tie at the shown precision is not worse)."""

from __future__ import annotations

import json

from section_inputs import data_with_only

from handkp.report.markdown import render_markdown
from handkp.report.previous_release import previous_release_section


def pck(p1, p5, auc=0.75):
    return {"pck_1px": p1, "pck_3px": 0.6, "pck_5px": p5, "pck_7px": 0.88, "pck_10px": 0.93, "auc_0_15px": auc}


def hands(missed, false, switches, p5):
    return {"missed_rate": missed, "false_hands": false, "id_switches": switches, "pck_5px": p5, "fps": 40.0}


COMMIT = "3bc41da0301f1f74c1df0993907a27809f05a773"
PREVIOUS = {
    "commit": COMMIT,
    "path": "release/heatmap.onnx",
    "files": {"heatmap": "aa" * 32, "detector": "dd" * 32},
    "val": pck(0.169, 0.796),
    "val_flip_test": pck(0.186, 0.806),
    "val_refine": pck(0.090, 0.699),
    "robustness": {"clean": pck(0.17, 0.798), "rotation_180": pck(0.1, 0.501)},
    "presence": {"auroc": 0.9994},
    "multihand": {
        "detector": {"overall": hands(0.321, 2, 2, 0.426)},
        "label_boxes": {"overall": hands(0.291, 0, 0, 0.435)},
    },
}
MANIFEST = {
    "sha256": "bb" * 32,
    "val": pck(0.180, 0.810),
    "val_flip_test": pck(0.190, 0.8064),  # 0.806 as shown: level
    "val_refine": pck(0.150, 0.800),
    "robustness": {
        "heatmap": {"clean": pck(0.18, 0.812), "rotation_180": pck(0.15, 0.700)},
        "presence": {"auroc": 0.9940},
    },
    "detector": {"sha256": "dd" * 32},
    "multihand": {"overall": hands(0.300, 3, 2, 0.450), "label_boxes": hands(0.250, 0, 1, 0.460)},
}


def section(tmp_path, previous=PREVIOUS, manifest=MANIFEST):
    (tmp_path / "previous.json").write_text(json.dumps(previous))
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    data = data_with_only(tmp_path, previous_release=tmp_path / "previous.json", release=tmp_path / "manifest.json")
    return data, previous_release_section(data)


def test_each_figure_side_by_side_and_the_worse_ones_named(tmp_path):
    data, lines = section(tmp_path)
    table = [line for line in lines if line.startswith("|")]
    assert table[0] == "| figure | commit `3bc41da` | this release | change |"
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table[2:]}
    assert len(rows) == 5 + 2 + 2 + 1 + 4 + 3
    assert rows["val PCK@5px, one pass"] == "| val PCK@5px, one pass | 0.796 | 0.810 | +0.014 |"
    assert rows["robustness PCK@5px, rotation 180"] == "| robustness PCK@5px, rotation 180 | 0.501 | 0.700 | +0.199 |"
    assert rows["several hands (detector): false hands"] == "| several hands (detector): false hands | 2 | 3 | +1 |"
    assert rows["several hands (label boxes): hands missed"].endswith("| 0.291 | 0.250 | −0.041 |")
    # worse: presence AUROC (lower), the detector run's false hands (more) and the label-box ID switches (more);
    # the flip test's 0.8064 shows as 0.806: level, not worse
    assert lines[0].endswith(
        "better or level on 14 of 17 figures, worse on 3: presence AUROC, hands against hand-free images; "
        "several hands (detector): false hands; several hands (label boxes): ID switches."
    )
    assert "`release/heatmap.onnx` of commit `3bc41da`" in lines[0]
    assert "<details><summary>" in lines[2] and lines[-1] == "</details>"
    assert "\n".join(lines) in render_markdown(data, {})


def test_a_release_worse_nowhere_says_so(tmp_path):
    better = {**MANIFEST, "robustness": {**MANIFEST["robustness"], "presence": {"auroc": 0.9995}}}
    better["multihand"] = {"overall": hands(0.3, 1, 2, 0.45), "label_boxes": hands(0.25, 0, 0, 0.46)}
    _, lines = section(tmp_path, manifest=better)
    assert lines[0].endswith(
        "better or level on 17 of 17 figures, worse on none (missed hands, false hands and "
        "ID switches: lower is better)."
    )


def test_multihand_figures_of_another_detector_are_left_out(tmp_path):
    _, lines = section(tmp_path, manifest={**MANIFEST, "detector": {"sha256": "ee" * 32}})
    assert not any("several hands" in line for line in lines if line.startswith("|"))
    assert any("another models/detector.onnx" in line for line in lines)


def test_the_same_file_or_no_commit_or_no_release_gives_one_line_or_none(tmp_path):
    same = {**PREVIOUS, "files": {**PREVIOUS["files"], "heatmap": MANIFEST["sha256"]}}
    assert section(tmp_path, previous=same)[1] == [
        "- The released model is `release/heatmap.onnx` of commit `3bc41da` itself: nothing new to compare."
    ]
    none = {"commit": None, "path": "release/heatmap.onnx"}
    assert section(tmp_path, previous=none)[1] == [
        "- No earlier release to compare with (`previous_release.commit` is null)."
    ]
    assert previous_release_section(data_with_only(tmp_path, previous_release=tmp_path / "previous.json")) == []
