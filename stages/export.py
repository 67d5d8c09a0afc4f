"""export: models/heatmap/best.pt -> models/heatmap.onnx, checked against PyTorch on val images
-> reports/deploy/export.json; no ONNX file when parity is off."""

from handkp.core.config import run_stage
from handkp.deploy.export import run_export


def main() -> None:
    run_stage("export", run_export)


if __name__ == "__main__":
    main()
