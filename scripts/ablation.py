"""Two studies through `dvc exp run`, each row written as soon as it is measured:

python scripts/ablation.py light_bilinear_64 seed_256
    head variants (params.yaml speed.variants) on the current schedule, val metrics
    -> reports/ablation/accuracy.json (the report stage's ablation table); the default first (cached)
python scripts/ablation.py training continued crops_50
    training choices (params.yaml ablation.variants), continued from the release, dev metrics
    -> reports/ablation/training.json
python scripts/ablation.py training --score-again crops_50
    a finished variant's experiment scored again with today's dev scores, its training figures kept
"""

import sys

from handkp.core.config import load_params
from handkp.experiments.ablation import ablation_main
from handkp.experiments.training import training_ablation_main


def main() -> int:
    args = sys.argv[1:]
    if args[:1] == ["training"]:
        return training_ablation_main(args[1:], load_params())
    return ablation_main(args, load_params())


if __name__ == "__main__":
    sys.exit(main())
