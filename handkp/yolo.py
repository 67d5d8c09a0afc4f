"""The Ultralytics YOLO-pose baseline: its dataset yaml, training, ONNX export and the decode of
its output (the one piece the runtime uses).

Ultralytics reaches for the network in many places (fonts, the AMP check's weights, pip
auto-installs, analytics, integrations such as its own DVC logger). ``configure_ultralytics``
switches all of that off and must run before the first ``import ultralytics``; every function
here that needs Ultralytics calls it and imports Ultralytics inside. Only
``yolo.pretrained: download`` touches the network, for the official weights, and says so clearly
when it cannot.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .keypoints import FLIP_INDEX, NUM_KEYPOINTS

# The lowest detection confidence (class score) that counts as a hand. 0.25 is Ultralytics' own
# predict default; yolo_evaluate sets it from params (yolo.conf_threshold) before evaluating.
CONF_THRESHOLD = 0.25
KPT_DIMS = 3  # x, y, visibility
PRETRAINED_CHOICES = "none | download | path to a .pt file"
# Ultralytics integrations that log elsewhere (its DVC one would write a second dvclive run).
_INTEGRATIONS = ("clearml", "comet", "dvc", "mlflow", "raytune", "tensorboard", "wandb")
_CONFIGURED = False


class YoloError(RuntimeError):
    """A YOLO-baseline step that cannot go on; the message says why and what to do."""


# ---- decoding the exported model's output ---------------------------------------------------
def decode_pose_output(raw: np.ndarray, conf_threshold: float | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
    """The best hand in one image's raw YOLO-pose output.

    raw: ``(1, 4 + nc + 3K, A)`` as Ultralytics exports it (per anchor: box cx, cy, w, h px, the
    ``nc`` class scores, then K × (x px, y px, visibility probability)), all in px of the network
    input. The NMS-free layout ``(1, N, 6 + 3K)`` (x1, y1, x2, y2, score, class, keypoints) is read
    too. Returns keypoints (K, 2) float32 px, scores (K,) float32 (the keypoints' visibility
    probabilities) and found; when no detection reaches ``conf_threshold`` (default
    ``CONF_THRESHOLD``), found is False, the keypoints NaN and the scores 0."""
    thr = CONF_THRESHOLD if conf_threshold is None else conf_threshold
    a = np.asarray(raw, dtype=np.float32)
    if a.ndim == 3:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"expected a YOLO-pose output (1, C, A), got shape {np.shape(raw)}")
    nk = KPT_DIMS * NUM_KEYPOINTS
    if a.shape[1] == 6 + nk and a.shape[0] != 6 + nk:  # NMS-free: (N, x1 y1 x2 y2 score class kpts)
        conf, kpts = a[:, 4], a[:, 6:]
    elif a.shape[0] >= 5 + nk:  # (4 + nc + nk, A): one column per anchor
        nc = a.shape[0] - 4 - nk
        conf = a[4:4 + nc].max(axis=0)
        kpts = a[4 + nc:].T
    else:
        raise ValueError(f"output shape {np.shape(raw)} does not hold {NUM_KEYPOINTS} keypoints × {KPT_DIMS} values")
    best = int(np.argmax(conf)) if conf.size else -1
    if best < 0 or not conf[best] >= thr:
        return np.full((NUM_KEYPOINTS, 2), np.nan, np.float32), np.zeros(NUM_KEYPOINTS, np.float32), False
    k = kpts[best].reshape(NUM_KEYPOINTS, KPT_DIMS)
    return np.ascontiguousarray(k[:, :2], dtype=np.float32), k[:, 2].astype(np.float32), True


# ---- the dataset yaml ---------------------------------------------------------------------
def _label_path(image: str) -> str:
    """``hand-keypoints/<split>/images/x.jpg`` -> ``hand-keypoints/<split>/labels/x.txt`` (the
    rule Ultralytics uses: the last ``/images/`` becomes ``/labels/``, the suffix ``.txt``)."""
    head, sep, tail = image.rpartition("/images/")
    if not sep:
        raise ValueError(f"{image}: not in an images/ folder")
    return f"{head}/labels/{Path(tail).with_suffix('.txt').as_posix()}"


def select_images(table, quality_report: dict) -> dict[str, list[str]]:
    """The images (relative to data/raw) Ultralytics trains and validates on, as for the heatmap
    model: train = the train split minus the dev slice; Ultralytics' per-epoch validation (which
    picks best.pt) = the dev slice, so the val split stays unseen until yolo_evaluate (the val
    split only when there is no dev slice, data.dev_fraction = 0). Samples the quality report
    lists as bad are left out (the keypoint table already lacks them; this makes sure)."""
    import polars as pl

    bad = {b["path"] for b in quality_report.get("bad", [])}

    def images_of(split: str) -> list[str]:
        images = table.filter(pl.col("split") == split)["image"].unique().sort().to_list()
        return [im for im in images if im not in bad and _label_path(im) not in bad]

    out = {"train": images_of("train"), "val": images_of("dev") or images_of("val")}
    for split, images in out.items():
        if not images:
            raise YoloError(f"no {split} image left for the YOLO dataset (data/prepared/keypoints.parquet)")
    return out


DATASET_YAML = """\
# Ultralytics dataset for the YOLO-pose baseline, written by stages/yolo_data.py: do not edit.
# The same samples as the heatmap model: train = the train split minus the dev slice; val (the
# per-epoch validation that picks best.pt) = the dev slice, so the val split stays unseen until
# yolo_evaluate. Bad samples of reports/data_quality.json are left out. Image lists are relative
# to this file; Ultralytics finds each label by replacing images/ with labels/ in the image path.
train: {train}
val: {val}
names:
  0: hand
kpt_shape: [{k}, 3]  # 21 keypoints: x, y, visibility
# flip_idx: which keypoint a keypoint becomes when the image is mirrored. A mirrored hand keeps
# every keypoint's identity (the thumb tip of a mirrored right hand is the thumb tip of a left
# hand), so the map is the identity (handkp.keypoints.FLIP_INDEX). The published
# hand-keypoints.yaml swaps thumb and finger indices ([0, 1, 2, 4, 3, 10, ...]): that teaches
# the model to call a flipped thumb tip a thumb IP joint, and is wrong.
flip_idx: [{flip}]
"""


def write_dataset_yaml(table, quality_report: dict, raw_root: Path, out_dir: Path) -> Path:
    """Writes ``out_dir/{train.txt,val.txt,dataset.yaml}``; returns the yaml's path."""
    out_dir, raw_root = Path(out_dir), Path(raw_root)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, images in select_images(table, quality_report).items():
        rel = [os.path.relpath(raw_root / im, out_dir) for im in images]
        # "./" makes Ultralytics resolve a line relative to the list file, not the working directory
        (out_dir / f"{split}.txt").write_text("".join(f"./{Path(r).as_posix()}\n" for r in rel))
    assert list(FLIP_INDEX) == list(range(NUM_KEYPOINTS))
    yaml_path = out_dir / "dataset.yaml"
    yaml_path.write_text(DATASET_YAML.format(train="train.txt", val="val.txt", k=NUM_KEYPOINTS, flip=", ".join(map(str, FLIP_INDEX))))
    return yaml_path


def read_image_lists(yaml_path: Path) -> dict[str, list[Path]]:
    """The dataset yaml's train and val images, resolved (as Ultralytics resolves them)."""
    import yaml

    yaml_path = Path(yaml_path)
    data = yaml.safe_load(yaml_path.read_text())
    out = {}
    for split in ("train", "val"):
        listing = yaml_path.parent / data[split]
        out[split] = [
            Path(os.path.normpath(listing.parent / line[2:] if line.startswith("./") else line))
            for line in listing.read_text().splitlines() if line.strip()
        ]
    return out


def stage_view(yaml_path: Path, view_dir: Path) -> Path:
    """A throw-away copy of the dataset made of links: ``view_dir/{images,labels}/{train,val}/``.

    Ultralytics writes a ``labels.cache`` next to every labels folder it reads; pointed at
    data/raw it would change the fetch stage's output (and make `dvc repro` fetch again). The
    view gives it a folder of its own. Returns the view's dataset yaml."""
    import yaml

    view_dir = Path(view_dir)
    data = yaml.safe_load(Path(yaml_path).read_text())
    for split, images in read_image_lists(yaml_path).items():
        for kind in ("images", "labels"):
            (view_dir / kind / split).mkdir(parents=True, exist_ok=True)
        for image in images:
            label = Path(_label_path(image.as_posix()))
            if not image.is_file() or not label.is_file():
                raise YoloError(f"{image}: image or label {label} missing; run `dvc repro yolo_data` after `prepare`")
            link = view_dir / "images" / split / image.name
            if link.is_symlink():
                if link.resolve() == image.resolve():
                    continue  # listed twice
                raise YoloError(f"{image}: two {split} images named {image.name}")
            os.symlink(image.resolve(), link)
            os.symlink(label.resolve(), view_dir / "labels" / split / label.name)
    view = {"path": str(view_dir.resolve()), "train": "images/train", "val": "images/val",
            "names": data["names"], "kpt_shape": data["kpt_shape"], "flip_idx": data["flip_idx"]}
    out = view_dir / "dataset.yaml"
    out.write_text(yaml.safe_dump(view, sort_keys=False))
    return out


# ---- Ultralytics without surprises ----------------------------------------------------------
def configure_ultralytics() -> None:
    """Environment for Ultralytics, set before its first import: settings in a private,
    temporary folder (not the user's; its integrations off), no pip auto-installs, and offline
    mode (no analytics, pip-update check, download retries). An explicit download
    (``resolve_pretrained('download')``) still tries once: offline mode only makes it fail fast."""
    global _CONFIGURED
    if _CONFIGURED:
        return
    if "ultralytics" in sys.modules:  # too late for its environment: leave the user's settings alone
        print("warning: ultralytics was imported before handkp.yolo.configure_ultralytics(); "
              "its settings, integrations and online checks are as the user configured them", file=sys.stderr)
    else:
        config_dir = Path(tempfile.mkdtemp(prefix="handkp-ultralytics-config-"))
        atexit.register(shutil.rmtree, config_dir, True)
        os.environ["YOLO_CONFIG_DIR"] = str(config_dir)  # settings.json, fonts: not in the user's config
        os.environ["YOLO_AUTOINSTALL"] = "False"  # check_requirements never runs pip
        os.environ.pop("ULTRALYTICS_API_KEY", None)  # no streaming of the run to Ultralytics' platform
        os.environ["YOLO_OFFLINE"] = "1"  # is_online() False: no analytics, pip-update check, retries
        from ultralytics.utils import SETTINGS

        # the private settings file: no integration callbacks (its DVC one would start a second
        # dvclive run), no analytics sync
        SETTINGS.update({k: False for k in (*_INTEGRATIONS, "sync")})
    import ultralytics.data.utils as data_utils

    # check_det_dataset() always asks for Arial.ttf (a download): fonts only serve plots, which are off.
    data_utils.check_font = lambda *args, **kwargs: None
    _CONFIGURED = True


def model_config(model: str) -> str:
    """``yolo.model`` (an architecture such as yolo11n-pose, or a model .yaml) -> a model yaml name."""
    name = str(model).strip()
    if name.endswith(".pt"):
        raise YoloError(f"yolo.model = {name}: name an architecture (e.g. yolo11n-pose); weights go in yolo.pretrained")
    return name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"


def weights_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "handkp" / "ultralytics"


def resolve_pretrained(pretrained, model: str, cache_dir: Path | None = None) -> Path | None:
    """``yolo.pretrained`` -> the weights to start from, or None (random init).

    ``none``: built from the model yaml. ``download``: the official ``<model>.pt`` (kept in
    ``~/.cache/handkp/ultralytics/``); a clear error when it cannot be downloaded. Otherwise a
    local ``.pt`` file. Weights whose layers do not fit (e.g. the 17-keypoint COCO pose head)
    are skipped layer by layer by Ultralytics."""
    choice = str(pretrained).strip()
    if choice.lower() in ("none", "false", ""):
        return None
    stem = Path(model_config(model)).stem
    if choice.lower() == "download":
        cache_dir = Path(cache_dir or weights_cache_dir())
        target = cache_dir / f"{stem}.pt"
        if target.is_file():
            return target
        cache_dir.mkdir(parents=True, exist_ok=True)
        from ultralytics.utils.downloads import attempt_download_asset

        err: Exception | None = None
        try:
            attempt_download_asset(target)
        except Exception as e:  # ConnectionError offline, HTTP errors, ...
            err = e
        if not target.is_file():
            raise YoloError(
                f"yolo.pretrained = download: cannot download the official {stem}.pt"
                f"{f' ({str(err).strip()})' if err else ' (not an Ultralytics release asset?)'}. "
                f"Without internet, get {stem}.pt elsewhere and set yolo.pretrained to its path (or put it at "
                f"{target}), or train from scratch with yolo.pretrained = none."
            )
        return target
    path = Path(choice).expanduser()
    if path.suffix != ".pt":
        raise YoloError(f"yolo.pretrained = {choice}: expected {PRETRAINED_CHOICES}")
    if not path.is_file():
        raise YoloError(f"yolo.pretrained = {choice}: {path} does not exist")
    return path


def resolve_device(device) -> str:
    """``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` | ``N`` -> Ultralytics' device string."""
    d = str(device).strip().lower()
    if d == "auto":
        import torch

        return "0" if torch.cuda.is_available() else "cpu"
    if d == "cuda":
        return "0"
    return d.removeprefix("cuda:")


# ---- training -----------------------------------------------------------------------------
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


def train_yolo(cfg: dict, seed: int, data_yaml: Path, out_dir: Path, live_dir: Path) -> dict:
    """Trains the ``yolo`` params section's model on the dataset yaml. Writes ``out_dir/best.pt``
    (with the run's ``args.yaml`` and ``results.csv``) and the per-epoch curves to the dvclive
    folder ``live_dir``. Ultralytics' runs folder is temporary. Returns the last epoch's values."""
    configure_ultralytics()
    weights = resolve_pretrained(cfg.get("pretrained", "none"), cfg["model"])  # first: fail before any work
    from dvclive import Live
    from ultralytics import YOLO

    out_dir, live_dir = Path(out_dir), Path(live_dir)
    device = resolve_device(cfg.get("device", "auto"))
    on_gpu = device != "cpu" and device != "mps"
    # bf16 autocast skips Ultralytics' AMP check (which downloads yolo26n.pt); fp16 AMP is not offered
    amp = "bf16" if on_gpu and str(cfg.get("amp", "bf16")).lower() == "bf16" else False
    if amp and not _cuda_bf16():
        print("yolo.amp = bf16: this GPU has no native bfloat16, training in fp32")
        amp = False
    shutil.rmtree(live_dir, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="handkp-yolo-") as work:
        work = Path(work)
        view_yaml = stage_view(data_yaml, work / "data")
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


# ---- export -------------------------------------------------------------------------------
def export_onnx(weights: Path, out_file: Path, imgsz: int) -> Path:
    """``weights`` (an Ultralytics .pt) -> ONNX with a fixed 1×3×imgsz×imgsz input, Ultralytics'
    metadata kept (``task: pose``: how handkp.runtime recognises a YOLO file). The export runs in
    a temporary folder (Ultralytics writes next to the weights) without onnxslim (simplify off),
    so nothing is installed or downloaded."""
    configure_ultralytics()
    import onnx
    from ultralytics import YOLO

    out_file = Path(out_file)
    with tempfile.TemporaryDirectory(prefix="handkp-yolo-export-") as work:
        local = Path(work) / "yolo.pt"
        shutil.copyfile(weights, local)
        exported = Path(YOLO(str(local), task="pose").export(
            format="onnx", imgsz=int(imgsz), batch=1, dynamic=False, simplify=False, device="cpu"))
        meta = {p.key: p.value for p in onnx.load(str(exported), load_external_data=False).metadata_props}
        if meta.get("task") != "pose":
            raise YoloError(f"{exported}: exported without Ultralytics' task=pose metadata ({sorted(meta)})")
        out_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(exported), out_file)
    return out_file
