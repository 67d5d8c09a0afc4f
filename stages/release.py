"""release: models/heatmap.onnx -> release/heatmap.onnx (committed, what a fresh clone runs) and
release/manifest.json (sha256, params, val metrics recomputed from the released file, robustness,
the training run's figures)."""
from handkp.core.config import run_stage
from handkp.evaluate.release import run_release


def main() -> None:
    run_stage("release", run_release)


if __name__ == "__main__":
    main()
