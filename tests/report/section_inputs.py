"""Report data for testing one README section: every input the report reads points at a missing
file in the given folder, except the ones named."""

from __future__ import annotations

from pathlib import Path

from handkp.report.data import ReportData, ReportPaths, load_report_data


def data_with_only(folder: Path, **given: Path) -> ReportData:
    missing = {
        "params": folder / "no-params.yaml",
        "latency": folder / "no-latency.json",
        "ground_truth": folder / "no-gt.parquet",
        "metrics": str(folder / "no-{model}.json"),
        "robustness": folder / "no-robustness.json",
        "speed": folder / "no-speed.json",
        "multihand": folder / "no-multihand.json",
        "release": folder / "no-release.json",
        "previous_release": folder / "no-previous-release.json",
        "training_ablation": folder / "no-training.json",
    }
    return load_report_data(ReportPaths(**{**missing, **given}))
