"""benchmark: Batch-1 latency of both models on deploy.target (the heatmap model also with the refine
pass) -> reports/benchmark/latency.json, reports/metrics/latency.json (the headline figures)."""

from handkp.core.config import run_stage
from handkp.evaluate.latency import run_benchmark


def main() -> None:
    run_stage("benchmark", run_benchmark)


if __name__ == "__main__":
    main()
