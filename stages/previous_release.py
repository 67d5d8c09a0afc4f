"""previous_release: the heatmap model shipped at previous_release.commit, scored with today's code
on today's data as the pipeline scores its own (val one pass / flip test / refine pass, the
robustness conditions, the multi-hand val clips) -> reports/metrics/previous_release.json, what the
report sets beside the release."""

from handkp.core.config import run_stage
from handkp.release.previous import run_previous_release


def main() -> None:
    run_stage("previous_release", run_previous_release)


if __name__ == "__main__":
    main()
