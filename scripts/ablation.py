"""Trains and evaluates the head variants named on the command line (from params.yaml's
`speed.variants`) on the current schedule through `dvc exp run`, then writes their val metrics
to reports/ablation/accuracy.json, which the report stage turns into the README's ablation table.

    python scripts/ablation.py light_bilinear_64 seed_256     # the default first: its run is cached
"""

import sys

from handkp.core.config import load_params
from handkp.experiments.ablation import ablation_main


def main() -> int:
    return ablation_main(sys.argv[1:], load_params())


if __name__ == "__main__":
    sys.exit(main())
