"""multihand: several hands in larger frames: synthetic clips of val hands (scaled, turned,
moving, hand-free frames between) through the detector, the tracker and the heatmap model;
PCK in source px, missed and false hands, ID switches, FPS -> reports/metrics/multihand.json."""

from handkp.core.config import run_stage
from handkp.evaluate.multihand import run_multihand


def main() -> None:
    run_stage("multihand", run_multihand)


if __name__ == "__main__":
    main()
