"""evaluate_deployed: PCK of the heatmap model through its deployed artefact
-> reports/metrics/heatmap_<target>.json, ..."""

from handkp.core.config import run_stage
from handkp.evaluate.evaluation import run_evaluate_deployed


def main() -> None:
    run_stage("evaluate_deployed", run_evaluate_deployed)


if __name__ == "__main__":
    main()
