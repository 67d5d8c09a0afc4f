"""release: models/heatmap.onnx -> release/heatmap.onnx and models/yolo.onnx -> release/detector.onnx
(committed, what a fresh clone runs), and release/manifest.json (sha256, params, val metrics
recomputed from each released file, robustness, the multi-hand benchmark, the training run's figures)."""

from handkp.core.config import run_stage
from handkp.release.manifest import run_release


def main() -> None:
    run_stage("release", run_release)


if __name__ == "__main__":
    main()
