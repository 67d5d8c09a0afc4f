"""Training the YOLO-pose baseline on the same data, offline, with dvclive curves."""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from ..core.paths import RAW_ARCHIVE, TRAIN_LOGS, YOLO_DATA, YOLO_DIR
from ..data.archive import DatasetArchive
from .dataset import stage_view
from .ultralytics import YoloError, configure_ultralytics, model_config, resolve_pretrained, ultralytics_device

def _cuda_bf16() -> bool:
    import torch

    try:
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # older torch without including_emulation
        return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8


class _LiveLogger:
    """Ultralytics callbacks -> one dvclive step per epoch: losses, box and pose metrics, lr, images/s."""

    def __init__(self, live):
        self.live, self.epoch_start, self.epoch_done, self.images_per_s = live, 0.0, False, float("nan")

    @staticmethod
    def name(key: str) -> str:
        key = key.replace("metrics/", "val/").replace("(B)", "_box").replace("(P)", "_pose").replace("-", "_")
        return key.replace("lr/pg0", "train/lr")

    def on_train_epoch_start(self, trainer):
        self.epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer):
        self.images_per_s = len(trainer.train_loader.dataset) / max(1e-9, time.perf_counter() - self.epoch_start)
        self.epoch_done = True

    def on_fit_epoch_end(self, trainer):
        if not self.epoch_done:  # the final validation of best.pt runs this callback again
            return
        self.epoch_done = False
        values = {**trainer.label_loss_items(trainer.tloss, prefix="train"), **trainer.metrics, **trainer.lr}
        for key, value in values.items():
            if key.startswith("lr/") and key != "lr/pg0":
                continue
            self.live.log_metric(self.name(key), float(value))
        self.live.log_metric("train/images_per_s", self.images_per_s)
        self.live.next_step()
        print(f"epoch {trainer.epoch + 1}: {self.images_per_s:.1f} train images/s")


def train_yolo(cfg: dict, seed: int, data_yaml: Path, archive: Path, out_dir: Path, live_dir: Path) -> dict:
    """Trains the ``yolo`` params section's model on the dataset yaml, its images read from the
    dataset ``archive``. Writes ``out_dir/best.pt`` (with the run's ``args.yaml`` and
    ``results.csv``) and the per-epoch curves to the dvclive folder ``live_dir``. Ultralytics' runs folder is temporary. Returns the last epoch's values."""
    configure_ultralytics()
    weights = resolve_pretrained(cfg.get("pretrained", "none"), cfg["model"])  # first: fail before any work
    from dvclive import Live
    from ultralytics import YOLO

    out_dir, live_dir = Path(out_dir), Path(live_dir)
    device = ultralytics_device(cfg.get("device", "auto"))
    on_gpu = device != "cpu" and device != "mps"
    # bf16 autocast skips Ultralytics' AMP check (which downloads yolo26n.pt); fp16 AMP is not offered
    amp = "bf16" if on_gpu and str(cfg.get("amp", "bf16")).lower() == "bf16" else False
    if amp and not _cuda_bf16():
        print("yolo.amp = bf16: this GPU has no native bfloat16, training in fp32")
        amp = False
    shutil.rmtree(live_dir, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="handkp-yolo-") as work:
        work = Path(work)
        with DatasetArchive(archive) as dataset:
            view_yaml = stage_view(data_yaml, dataset, work / "data")
        model = YOLO(model_config(cfg["model"]), task="pose")
        live = Live(dir=str(live_dir), report=None, save_dvc_exp=False, dvcyaml=None)
        logger = _LiveLogger(live)
        for event in ("on_train_epoch_start", "on_train_epoch_end", "on_fit_epoch_end"):
            model.add_callback(event, getattr(logger, event))
        args = dict(
            data=str(view_yaml), epochs=int(cfg["epochs"]), imgsz=int(cfg["imgsz"]), batch=int(cfg["batch"]),
            workers=int(cfg["workers"]), device=device, seed=int(seed), deterministic=True, amp=amp,
            pretrained=str(weights) if weights else False, project=str(work / "runs"), name="train", exist_ok=True,
            plots=False, val=True, verbose=True,
        )
        extra = dict(cfg.get("train_args") or {})  # any other Ultralytics train argument (lr0, mosaic, ...)
        fixed = {"data", "project", "name", "exist_ok", "pretrained", "plots", "model", "resume"} & extra.keys()
        if fixed:
            raise YoloError(f"yolo.train_args may not set {sorted(fixed)}: the stage sets them")
        args.update(extra)
        print(f"YOLO baseline: {cfg['model']} from {weights or 'random init'}, device {device}, amp {amp}")
        model.train(**args)
        live.end()
        run_dir = work / "runs" / "train"
        best = run_dir / "weights" / "best.pt"
        if not best.is_file():
            raise YoloError(f"Ultralytics finished without {best}")
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        shutil.copyfile(best, out_dir / "best.pt")
        for name in ("args.yaml", "results.csv"):
            if (run_dir / name).is_file():
                shutil.copyfile(run_dir / name, out_dir / name)
    metrics_file = live_dir / "metrics.json"
    return json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}


def run_yolo_train(params: dict) -> dict:
    """The yolo_train stage: data/yolo/dataset.yaml over data/raw.zip -> models/yolo/best.pt, curves in reports/train/yolo/."""
    last = train_yolo(params["yolo"], params["seed"], YOLO_DATA / "dataset.yaml", RAW_ARCHIVE, YOLO_DIR, TRAIN_LOGS / "yolo")
    for group in ("train", "val"):
        print(f"last epoch, {group}:", {k: round(v, 4) for k, v in last.get(group, {}).items()})
    return last
