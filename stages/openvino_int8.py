"""openvino_int8: NNCF INT8 OpenVINO IRs of the heatmap model and the YOLO baseline, their PCK on val
-> models/openvino_int8/, reports/metrics/heatmap_openvino_int8.json, reports/metrics/yolo_openvino_int8.json."""

from handkp.core.config import run_stage
from handkp.evaluate.int8 import run_openvino_int8


def main() -> None:
    run_stage("openvino_int8", run_openvino_int8)


if __name__ == "__main__":
    main()
