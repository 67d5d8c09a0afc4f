"""robustness: both shipped models on val images under each condition users meet (rotation,
small and shifted hands, mirror, low light, gamma, noise, motion blur, JPEG, occlusion), labels
moved exactly; and the presence score's separation -> reports/metrics/robustness.json."""

from handkp.core.config import run_stage
from handkp.evaluate.robustness import run_robustness


def main() -> None:
    run_stage("robustness", run_robustness)


if __name__ == "__main__":
    main()
