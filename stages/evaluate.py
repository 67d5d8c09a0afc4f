"""evaluate: The trained heatmap model on the val split through the runtime API
-> reports/metrics/heatmap.json, reports/predictions/heatmap_val.parquet, reports/eval/heatmap/."""

from handkp.core.config import run_stage
from handkp.evaluate.evaluation import run_evaluate


def main() -> None:
    run_stage("evaluate", run_evaluate)


if __name__ == "__main__":
    main()
