"""The README's several-hands section from a synthetic reports/metrics/multihand.json."""

from __future__ import annotations

import json
from pathlib import Path

from section_inputs import data_with_only

from handkp.report.data import ReportData
from handkp.report.markdown import render_markdown
from handkp.report.multihand import multihand_section


def figures(frames, hands, pck5, missed, false, switches, free, free_fp, fps=None):
    return {
        "frames": frames,
        "hands": hands,
        "keypoints": hands * 21,
        "pck_1px": 0.1,
        "pck_3px": 0.4,
        "pck_5px": pck5,
        "pck_10px": 0.9,
        "epe_median_px": 4.25,
        "missed_hands": missed,
        "missed_rate": missed / hands if hands else None,
        "false_hands": false,
        "id_switches": switches,
        "hand_free_frames": free,
        "hand_free_false_positive_frames": free_fp,
        "hand_free_false_positive_rate": free_fp / free if free else None,
        "fps": fps,
    }


SYNTHETIC = {
    "settings": {
        "n_clips": 12,
        "frames": 60,
        "frame_size": [640, 480],
        "max_hands": 3,
        "detect_every": 1,
        "presence_threshold": 0.3,
        "smoothing": False,
        "threads": 2,
    },
    "overall": figures(720, 900, 0.625, 30, 7, 3, 200, 11, fps=17.345),
    "by_hands": {
        "0": figures(200, 0, None, 0, 11, 0, 200, 11),
        "1": figures(220, 220, 0.7, 5, 0, 0, 0, 0),
        "2": figures(150, 300, 0.6, 10, 1, 1, 0, 0),
        "3": figures(150, 380, 0.55, 15, 2, 2, 0, 0),
    },
}


def data_with(path: Path) -> ReportData:
    return data_with_only(path.parent, multihand=path)


def test_synthetic_multihand_json_renders_a_table(tmp_path):
    path = tmp_path / "multihand.json"
    path.write_text(json.dumps(SYNTHETIC))
    lines = multihand_section(data_with(path))
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + 1 + 4  # header, rule, all, 0-3 hands
    assert table[0].startswith("| true hands in the frame | frames | hands | PCK@1px | PCK@3px | PCK@5px | PCK@10px")
    assert table[2] == "| all | 720 | 900 | 0.100 | 0.400 | 0.625 | 0.900 | 4.25 | 30 (3.3%) | 7 | 3 | 11 of 200 |"
    assert table[3].startswith("| 0 | 200 | 0 | 0.100 | 0.400 | – |") and table[3].endswith(
        "| – | 11 | 0 | 11 of 200 |"
    )
    assert table[6].startswith("| 3 | 150 | 380 |")
    assert "12 synthetic clips of 60 frames at 640×480" in lines[0] and "smoothing off" in lines[0]
    assert "crops turned upright" in lines[0]  # a file without the setting: what the tracker always did
    path.write_text(json.dumps({**SYNTHETIC, "settings": {**SYNTHETIC["settings"], "upright": False}}))
    assert "crops not turned" in multihand_section(data_with(path))[0]
    path.write_text(json.dumps(SYNTHETIC))
    assert any("17.3 FPS" in line for line in lines)
    block = render_markdown(data_with(path), {})
    assert "### Several hands in larger frames" in block and table[2] in block


def test_label_box_run_is_a_row_of_its_own(tmp_path):
    path = tmp_path / "multihand.json"
    with_labels = {
        **SYNTHETIC,
        "settings": {**SYNTHETIC["settings"], "label_box_scale": 1.2},
        "label_boxes": {"overall": figures(720, 900, 0.8, 9, 1, 2, 200, 0, fps=40.0), "by_hands": {}},
    }
    path.write_text(json.dumps(with_labels))
    lines = multihand_section(data_with(path))
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + 1 + 4 + 1
    assert (
        table[-1]
        == "| all, label boxes | 720 | 900 | 0.100 | 0.400 | 0.800 | 0.900 | 4.25 | 9 (1.0%) | 1 | 2 | 0 of 200 |"
    )
    assert "keypoint extent × 1.2" in lines[-1]
    path.write_text(json.dumps(SYNTHETIC))  # a file from before the label-box run: no such row, no sentence
    assert not any("label boxes" in line for line in multihand_section(data_with(path)))


def test_the_label_box_run_with_crops_turned_the_other_way_is_the_next_row(tmp_path):
    path = tmp_path / "multihand.json"
    labels = {"overall": figures(720, 900, 0.8, 9, 1, 2, 200, 0), "by_hands": {}}
    other = {"upright": False, "overall": figures(720, 900, 0.85, 7, 1, 1, 200, 0)}
    path.write_text(json.dumps({**SYNTHETIC, "label_boxes": labels, "label_boxes_other_orientation": other}))
    table = [line for line in multihand_section(data_with(path)) if line.startswith("|")]
    assert table[-2].startswith("| all, label boxes | 720 | 900 |")
    assert table[-1] == (
        "| all, label boxes, crops not turned | 720 | 900 | 0.100 | 0.400 | 0.850 | 0.900 | 4.25 | 7 (0.8%) | 1 | 1 "
        "| 0 of 200 |"
    )
    other["upright"] = True  # the stage's crops not turned: the other way is upright
    path.write_text(json.dumps({**SYNTHETIC, "label_boxes": labels, "label_boxes_other_orientation": other}))
    assert [line for line in multihand_section(data_with(path)) if line.startswith("|")][-1].startswith(
        "| all, label boxes, crops turned upright |"
    )


def test_hands_by_size_are_a_table_of_both_runs(tmp_path):
    path = tmp_path / "multihand.json"

    def group(hands, missed, pck5):
        return {"hands": hands, "missed_hands": missed, "missed_rate": missed / hands, "pck_5px": pck5}

    by_size = {"<40": group(40, 20, 0.3), "40-80": group(200, 30, 0.6), ">=160": group(100, 0, 0.9)}
    labels = {"overall": SYNTHETIC["overall"], "by_hands": {}, "by_size": {"<40": group(40, 10, 0.5)}}
    path.write_text(json.dumps({**SYNTHETIC, "by_size": by_size, "label_boxes": labels}))
    lines = multihand_section(data_with(path))
    head = "| hand size px | hands | missed hands | PCK@5px | label boxes: missed hands | label boxes: PCK@5px |"
    start = lines.index(head)
    assert lines[start + 2 : start + 5] == [
        "| <40 | 40 | 20 (50.0%) | 0.300 | 10 (25.0%) | 0.500 |",
        "| 40-80 | 200 | 30 (15.0%) | 0.600 | – | – |",
        "| >=160 | 100 | 0 (0.0%) | 0.900 | – | – |",
    ]
    path.write_text(json.dumps(SYNTHETIC))  # a file from before by_size: no such table
    assert not any("hand size px" in line for line in multihand_section(data_with(path)))


def test_missing_multihand_json_is_said(tmp_path):
    lines = multihand_section(data_with(tmp_path / "multihand.json"))
    assert lines == [f"No multihand run yet (`{(tmp_path / 'multihand.json').as_posix()}`)."]
    assert "No multihand run yet" in render_markdown(data_with(tmp_path / "multihand.json"), {})


def test_detector_sizes_are_a_table_with_the_size_in_use_in_bold(tmp_path):
    path = tmp_path / "multihand.json"
    row = {"false_hands": 2, "pck_5px": 0.5, "missed_rate_2_hands": 0.25, "fps_2_hands": 31.04}
    row |= {"missed_rate_2_hands_app_default": 0.125, "fps_2_hands_app_default": 60.0}
    sweep = [
        {"imgsz": 224, "missed_rate": 0.458, "fps": 43.34, **row},
        {"imgsz": 416, "missed_rate": 0.30, "fps": 20.0, **row, "missed_rate_2_hands": None},
    ]
    settings = {**SYNTHETIC["settings"], "detector_imgsz": 416, "app_default_max_hands": 2}
    path.write_text(json.dumps({**SYNTHETIC, "settings": settings, "detector_sweep": sweep}))
    lines = multihand_section(data_with(path))
    assert "YOLO detector (input 416 px)" in lines[0]
    assert lines[-2] == "| 224 px | 45.8% | 25.0% | 2 | 0.500 | 43.3 | 31.0 | 12.5% | 60.0 |"
    assert lines[-1] == "| **416 px** | 30.0% | – | 2 | 0.500 | 20.0 | 31.0 | 12.5% | 60.0 |"
    assert "with the live app's default of up to 2 hands" in lines[-6] and "Up to 3 hands tracked" in lines[-6]
    # square and shaped for 640×480 frames (detector.frame_size): width × height, the input in use in bold
    shaped = [{**sweep[1], "input": [416, 416]}, {**sweep[1], "input": [320, 416], "missed_rate": 0.31}]
    settings["detector_input"] = [320, 416]
    path.write_text(json.dumps({**SYNTHETIC, "settings": settings, "detector_sweep": shaped}))
    lines = multihand_section(data_with(path))
    assert "YOLO detector (input 416×320 px)" in lines[0]
    assert lines[-2].startswith("| 416 px | 30.0% |") and lines[-1].startswith("| **416×320 px** | 31.0% |")
    path.write_text(json.dumps(SYNTHETIC))  # a file from before the sweep: no such table
    assert not any("detector input" in line for line in multihand_section(data_with(path)))


def test_presence_thresholds_are_a_table_of_both_runs_with_the_one_in_use_in_bold(tmp_path):
    path = tmp_path / "multihand.json"

    def run(missed, false, switches, pck5):
        return {"missed_rate": missed, "false_hands": false, "id_switches": switches, "pck_5px": pck5}

    sweep = [
        {"presence_threshold": 0.1, "label_boxes": run(0.2, 6, 11, 0.48), "detector": run(0.335, 51, 26, 0.401)},
        {"presence_threshold": 0.3, "label_boxes": run(0.332, 0, 3, 0.471), "detector": run(0.4176, 18, 0, 0.375)},
    ]
    path.write_text(json.dumps({**SYNTHETIC, "presence_sweep": sweep}))
    lines = multihand_section(data_with(path))
    assert lines[-1] == "| **0.3** | 33.2% | 0 | 3 | 0.471 | 41.8% | 18 | 0 | 0.375 |"
    assert lines[-2] == "| 0.1 | 20.0% | 6 | 11 | 0.480 | 33.5% | 51 | 26 | 0.401 |"
    assert lines[-3].startswith("|---:|") and "label boxes: missed hands" in lines[-4]
    assert "**dev** hands" in lines[-6]
    path.write_text(json.dumps(SYNTHETIC))  # a file from before the sweep: no such table
    assert not any("presence threshold (a crop's" in line for line in multihand_section(data_with(path)))
