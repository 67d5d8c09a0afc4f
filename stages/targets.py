"""targets: The Gaussian heatmap targets of a few train images at the model's output size
-> reports/figures/targets.png."""

from handkp.core.config import run_stage
from handkp.data.targets import run_targets


def main() -> None:
    run_stage("targets", run_targets)


if __name__ == "__main__":
    main()
