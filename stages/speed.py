"""speed: Latency, parameters and MACs of the head variants beside the trained default and YOLO, on
every CPU runtime and precision of speed.runtimes, in one run
-> reports/speed/speed.json, reports/speed/variants.csv."""

from handkp.core.config import run_stage
from handkp.evaluate.speed import run_speed


def main() -> None:
    run_stage("speed", run_speed)


if __name__ == "__main__":
    main()
