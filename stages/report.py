"""Stage `report`: README.md results block (between the report markers) and reports/figures/*.png.

Reads the metrics, eval CSVs, predictions, latency, dvclive logs, params.yaml and the image cache;
see handkp/report/. Models whose files are missing are left out with a line saying so.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from handkp.report import MODELS, ReportError, ReportPaths, run_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    d = ReportPaths()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--readme", type=Path, default=d.readme, help="README with the report markers")
    p.add_argument(
        "--params", type=Path, default=d.params, help="to state split, schedule, initialisation, model shape"
    )
    p.add_argument("--metrics", default=d.metrics, help="metrics JSON per model ({model} is replaced)")
    p.add_argument("--latency", type=Path, default=d.latency, help="benchmark results (target, device, per model)")
    p.add_argument("--eval-dir", default=d.eval_dir, help="dir with pck_curve.csv and per_keypoint.csv")
    p.add_argument("--predictions", default=d.predictions, help="val predictions parquet per model")
    p.add_argument("--ground-truth", type=Path, default=d.ground_truth, help="prepared keypoints (all splits)")
    p.add_argument(
        "--images", type=Path, default=d.images, help="image cache (handkp.data.cache) holding the val images"
    )
    p.add_argument("--train-dir", default=d.train_dir, help="dvclive dir per model")
    p.add_argument("--figures", type=Path, default=d.figures, help="where the PNG figures go")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS), help="models to report")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    paths = ReportPaths(
        readme=a.readme,
        params=a.params,
        metrics=a.metrics,
        latency=a.latency,
        eval_dir=a.eval_dir,
        predictions=a.predictions,
        ground_truth=a.ground_truth,
        images=a.images,
        train_dir=a.train_dir,
        figures=a.figures,
        models=tuple(a.models),
    )
    try:
        result = run_report(paths)
    except ReportError as e:
        print(f"report: {e}", file=sys.stderr)
        return 2
    state = "updated" if result.readme_changed else "unchanged"
    print(f"report: {paths.readme} {state}; figures: {', '.join(str(p) for p in result.figures.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
