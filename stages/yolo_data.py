"""yolo_data: The Ultralytics dataset over the validated data -> data/yolo/{dataset.yaml,train.txt,val.txt}."""

from handkp.core.config import run_stage
from handkp.yolo.dataset import run_yolo_data


def main() -> None:
    run_stage("yolo_data", run_yolo_data)


if __name__ == "__main__":
    main()
