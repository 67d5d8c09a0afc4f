"""Where the pipeline's files live (relative to the project root, where `dvc repro` runs).
``dvc.yaml`` declares the same paths as stage deps and outs."""
from pathlib import Path

RAW_ARCHIVE = Path("data/raw.zip")                    # fetch: the dataset as one zip (handkp.data.archive)
PREPARED_TABLE = Path("data/prepared/keypoints.parquet")  # prepare: one row per (image, keypoint)
IMAGE_CACHE = Path("data/images")                     # prepare: decoded images (handkp.data.cache)
DATA_QUALITY = Path("reports/data_quality.json")      # prepare: bad samples and counts
YOLO_DATA = Path("data/yolo")                         # yolo_data: the Ultralytics dataset yaml and lists

HEATMAP_DIR = Path("models/heatmap")                  # train: best.pt
HEATMAP_CHECKPOINT = HEATMAP_DIR / "best.pt"
TRAIN_STATE_DIR = Path("models/heatmap_checkpoint")   # train: last.pt / best.pt, for resuming
RELEASE_DIR = Path("release")                         # committed to git: what a fresh clone runs and continues from
TRAIN_STATE_COPY = RELEASE_DIR / "train_state.pt"     # train (train.state_copy): the run state after the last epoch
RELEASE_ONNX = RELEASE_DIR / "heatmap.onnx"           # release: the shipped model
RELEASE_MANIFEST = RELEASE_DIR / "manifest.json"      # release: its sha256, params, metrics, training figures
HEATMAP_ONNX = Path("models/heatmap.onnx")            # export
HEATMAP_INT8_ONNX = Path("models/heatmap.int8.onnx")  # quantize
YOLO_DIR = Path("models/yolo")                        # yolo_train: best.pt
YOLO_ONNX = Path("models/yolo.onnx")                  # yolo_export
ENGINE_DIR = Path("models/engine")                    # engine: deployable artefacts

REPORTS = Path("reports")
METRICS = REPORTS / "metrics"
TRAIN_LOGS = REPORTS / "train"                        # dvclive folders per model
FIGURES = REPORTS / "figures"
