"""The README's "What ships" section from a synthetic release/manifest.json."""

from __future__ import annotations

import json
from pathlib import Path

from section_inputs import data_with_only

from handkp.report.data import ReportData
from handkp.report.markdown import render_markdown
from handkp.report.release import release_section


def val(pck1, pck5, missed):
    return {
        "pck_1px": pck1,
        "pck_3px": 0.6,
        "pck_5px": pck5,
        "pck_7px": 0.88,
        "pck_10px": 0.93,
        "auc_0_15px": 0.75,
        "epe_mean_px": 4.1,
        "missed_images": missed,
        "n_images": 7992,
    }


MANIFEST = {
    "file": "heatmap.onnx",
    "sha256": "ab" * 32,
    "bytes": 11_234_567,
    "val": val(0.2125, 0.84, 0),
    "val_flip_test": val(0.2301, 0.851, 0),
    "training": {
        "epochs": 80,
        "images_seen": 1_426_960,
        "train_hours": 13.456,
        "images_per_s_median": 29.93,
        "hardware": "Intel(R) Xeon(R) Processor, 2 threads",
        "best_epoch": 78,
    },
    "detector": {
        "file": "detector.onnx",
        "sha256": "cd" * 32,
        "bytes": 10_987_654,
        "val": {**val(0.01, 0.2, 3442), "conf_threshold": 0.25},
        "val_map": {
            "n_images": 7992,
            "imgsz": 224,
            "box": {"precision": 0.9651, "recall": 0.9544, "map50": 0.98614, "map50_95": 0.7791},
            "pose": {"precision": 0.8472, "recall": 0.7593, "map50": 0.7664, "map50_95": 0.5512},
        },
    },
    "commit": "0123456789abcdef",
}


def data_with(path: Path) -> ReportData:
    return data_with_only(path.parent, release=path)


def test_manifest_renders_one_row_per_released_file(tmp_path):
    path = tmp_path / "release" / "manifest.json"
    path.parent.mkdir()
    path.write_text(json.dumps(MANIFEST))
    lines = release_section(data_with(path))
    table = [line for line in lines if line.startswith("|")]
    assert len(table) == 2 + 3  # header, rule, the model, with the flip test, the detector
    assert table[0] == (
        "| file | role | sha256 | MB | PCK@1px | PCK@3px | PCK@5px | PCK@7px | PCK@10px | AUC 0–15px | missed images |"
    )
    folder = (tmp_path / "release").as_posix()
    assert table[2] == (
        f"| `{folder}/heatmap.onnx` | keypoint model | `abababababab` | 11.2 | 0.212 | 0.600 | 0.840 "
        "| 0.880 | 0.930 | 0.750 | 0 |"
    )
    assert table[3] == (
        f"| `{folder}/heatmap.onnx` | keypoint model, flip test (`--flip-test`: 2 passes) | `abababababab` "
        "| 11.2 | 0.230 | 0.600 | 0.851 | 0.880 | 0.930 | 0.750 | 0 |"
    )
    assert table[4].startswith(
        f"| `{folder}/detector.onnx` | hand detector (the YOLO baseline, confidence ≥ 0.25) "
        "| `cdcdcdcdcdcd` | 11.0 | 0.010 |"
    )
    assert table[4].endswith("| 3,442 |")
    training = next(line for line in lines if line.startswith("- The heatmap model's training run"))
    assert (
        "80 epochs, 1,426,960 images seen in 13.5 h on Intel(R) Xeon(R) Processor, 2 threads (median 29.9 images/s)"
        in training
    )
    assert "best dev epoch, 78" in training and "commit `0123456`" in training
    boxes = next(line for line in lines if "Ultralytics' own validator" in line)
    assert boxes == (
        "- The detector's weights on val by Ultralytics' own validator (7,992 images at 224 px): box mAP50 0.986, "
        "mAP50-95 0.779 (precision 0.965, recall 0.954); keypoints (OKS) mAP50 0.766, mAP50-95 0.551."
    )
    block = render_markdown(data_with(path), {})
    assert "### What ships: the released files" in block and table[2] in block


def test_without_a_manifest_the_section_says_nothing_is_released(tmp_path):
    lines = release_section(data_with(tmp_path / "release" / "manifest.json"))
    assert lines == [
        f"Nothing released yet (`{(tmp_path / 'release' / 'manifest.json').as_posix()}`): the release stage "
        "writes it when the release training run has ended."
    ]


def test_the_refine_row_states_its_latency_where_the_benchmark_measured_it(tmp_path):
    path = tmp_path / "release" / "manifest.json"
    path.parent.mkdir()
    path.write_text(json.dumps({**MANIFEST, "val_refine": val(0.15, 0.83, 0)}))
    latency = tmp_path / "latency.json"
    latency.write_text(
        json.dumps(
            {
                "target": "onnxruntime",
                "device": "AMD EPYC",
                "heatmap": {"model_p50_ms": 2.9, "e2e_p50_ms": 3.456},
                "heatmap_refine": {"e2e_p50_ms": 7.123},
            }
        )
    )
    lines = release_section(data_with_only(tmp_path, release=path, latency=latency))
    assert any("| keypoint model, refine pass (`--refine`: 2 passes) |" in line for line in lines)
    refine = next(line for line in lines if line.startswith("- The refine pass"))
    assert refine.endswith(
        "two network passes, end-to-end p50 7.12 ms against 3.46 ms for one pass "
        "(`onnxruntime` on `AMD EPYC`, the benchmark stage)."
    )
    unmeasured = release_section(data_with(path))  # no benchmark yet: no figure
    assert next(line for line in unmeasured if line.startswith("- The refine pass")).endswith("two network passes.")
