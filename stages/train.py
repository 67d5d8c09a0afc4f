"""train: The heatmap network on the train split, model selection on the dev slice
-> models/heatmap/best.pt, curves in reports/train/heatmap/ (dvclive). Resumes after an
interruption. Several GPUs: `torchrun --nproc_per_node N stages/train.py`."""

from handkp.core.config import run_stage
from handkp.model.train import run_train


def main() -> None:
    run_stage("train", run_train)


if __name__ == "__main__":
    main()
