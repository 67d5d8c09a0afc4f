"""yolo_evaluate: The YOLO baseline on the val split, same runtime API and evaluator
-> reports/metrics/yolo.json, reports/predictions/yolo_val.parquet, reports/eval/yolo/."""

from handkp.core.config import run_stage
from handkp.evaluate.evaluation import run_yolo_evaluate


def main() -> None:
    run_stage("yolo_evaluate", run_yolo_evaluate)


if __name__ == "__main__":
    main()
