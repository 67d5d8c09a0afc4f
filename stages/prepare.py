"""prepare: Validate every image and label (bad ones listed in reports/data_quality.json and left out)
-> data/prepared/keypoints.parquet (with the dev slice) and data/images/ (the decoded-image cache)."""

from handkp.core.config import run_stage
from handkp.data.dataset import run_prepare


def main() -> None:
    run_stage("prepare", run_prepare)


if __name__ == "__main__":
    main()
