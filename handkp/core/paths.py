"""Where the pipeline's files live (relative to the project root, where `dvc repro` runs): every
path a stage reads or writes is named here, once, beside the stage that writes it. ``dvc.yaml``
declares the same paths as stage deps and outs."""

from pathlib import Path

from .images import InputSize, input_hw

PARAMS = Path("params.yaml")  # every stage's settings (handkp.core.config.load_params)
README = Path("README.md")  # report: the results block between its markers
# Measurements, figures and logs. Each evaluation writes, per evaluated model <name>
# (handkp.evaluate.evaluation): metrics/<name>.json, predictions/<name>_val.parquet, eval/<name>/.
REPORTS = Path("reports")
METRICS = REPORTS / "metrics"  # the files `dvc metrics show` lists
FIGURES = REPORTS / "figures"  # targets and report: PNG figures
TRAIN_LOGS = REPORTS / "train"  # train and yolo_train: a dvclive folder per model
RELEASE_DIR = Path("release")  # committed to git: what a fresh clone runs and continues from

# The data.
RAW_ARCHIVE = Path("data/raw.zip")  # fetch: the dataset as one zip (handkp.data.archive)
PREPARED_TABLE = Path("data/prepared/keypoints.parquet")  # prepare: one row per (image, keypoint)
IMAGE_CACHE = Path("data/images")  # prepare: decoded images (handkp.data.cache)
DATA_QUALITY = REPORTS / "data_quality.json"  # prepare: bad samples and counts
YOLO_DATA = Path("data/yolo")  # yolo_data: the Ultralytics dataset yaml and lists

# The heatmap model.
HEATMAP_DIR = Path("models/heatmap")  # train: best.pt
HEATMAP_CHECKPOINT = HEATMAP_DIR / "best.pt"
TRAIN_STATE_DIR = Path("models/heatmap_checkpoint")  # train: last.pt / best.pt, for resuming
TRAIN_STATE_COPY = RELEASE_DIR / "train_state.pt"  # train (train.state_copy): the run state after the last epoch
HEATMAP_ONNX = Path("models/heatmap.onnx")  # export
EXPORT_METRICS = REPORTS / "deploy" / "export.json"  # export: the ONNX file's parity with PyTorch
HEATMAP_INT8_ONNX = Path("models/heatmap.int8.onnx")  # quantize: ONNX Runtime INT8
INT8_PARITY = REPORTS / "deploy" / "int8_parity.json"  # quantize: the INT8 file's parity with fp32

# The YOLO baseline.
YOLO_DIR = Path("models/yolo")  # yolo_train: best.pt
YOLO_CHECKPOINT = Path("models/yolo_checkpoint")  # yolo_train: Ultralytics' run folder and the run's record
YOLO_ONNX = Path("models/yolo.onnx")  # yolo_export: at yolo.imgsz (224), the val comparison
DETECTOR_ONNX = Path("models/detector.onnx")  # detector_export: at detector.imgsz, the hand detector in frames
DETECTOR_SIZES = Path("models/detector_sizes")  # detector_export: at each detector.sweep size (sized_detector)
YOLO_MAP = METRICS / "yolo_map.json"  # yolo_map: Ultralytics' box and pose mAP of best.pt on val

# Deployment and measurements of both models.
ENGINE_DIR = Path("models/engine")  # engine: deployable artefacts for deploy.target
ENGINE_METRICS = REPORTS / "deploy" / "engine.json"  # engine: what was built, where, with which versions
LATENCY = REPORTS / "benchmark" / "latency.json"  # benchmark: every latency figure of both models
HEADLINE_LATENCY = METRICS / "latency.json"  # benchmark: the few that `dvc metrics show` lists
OPENVINO_INT8_DIR = Path("models/openvino_int8")  # openvino_int8: heatmap.xml, yolo.xml (+ .bin, sidecars)
ROBUSTNESS = METRICS / "robustness.json"  # robustness: both models under each camera condition
MULTIHAND = METRICS / "multihand.json"  # multihand: detector + tracker + heatmap model on several hands
PREVIOUS_RELEASE = METRICS / "previous_release.json"  # previous_release: the model shipped before, scored today
SPEED = REPORTS / "speed" / "speed.json"  # speed: every model on every CPU runtime/precision
VARIANTS_CSV = REPORTS / "speed" / "variants.csv"  # speed: the same, a line per row
ACCURACY_TABLE = REPORTS / "ablation" / "accuracy.json"  # scripts/ablation.py: the head variants' accuracy
TRAINING_ABLATION = REPORTS / "ablation" / "training.json"  # scripts/ablation.py training: issue 32's choices, dev

# The release (committed to git).
RELEASE_ONNX = RELEASE_DIR / "heatmap.onnx"  # release: the shipped model
RELEASE_DETECTOR = RELEASE_DIR / "detector.onnx"  # release: the YOLO export beside it, the live app's hand detector
RELEASE_MANIFEST = RELEASE_DIR / "manifest.json"  # release: its sha256, params, metrics, training figures


def sized_detector(size: InputSize) -> Path:
    """The hand detector exported at an input (a side, or (height, width)) (detector_export):
    models/detector_sizes/yolo_<S>.onnx when square, yolo_<W>x<H>.onnx when not."""
    height, width = input_hw(size)
    name = f"{width}" if height == width else f"{width}x{height}"
    return DETECTOR_SIZES / f"yolo_{name}.onnx"
