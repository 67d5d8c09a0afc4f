"""quantize: INT8 variant of the heatmap model for the CPU, its parity and PCK
-> models/heatmap.int8.onnx, reports/deploy/int8_parity.json, reports/metrics/heatmap_int8.json."""

from handkp.core.config import run_stage
from handkp.evaluate.int8 import run_quantize


def main() -> None:
    run_stage("quantize", run_quantize)


if __name__ == "__main__":
    main()
