"""Training the YOLO-pose baseline on the same data, offline, resumable, with dvclive curves.

The run lives in ``models/yolo_checkpoint/`` (Ultralytics' run folder and the run's record,
``handkp.yolo.run_state``) and is copied after every epoch to ``yolo.state_copy``, so an
interrupted run, on this machine or a new one, continues with ``dvc repro yolo_train``.
Ultralytics' CPU defaults are overridden where they cost speed on a small machine: it trains
with every core (``yolo.threads``; Ultralytics takes one fewer than there are) and with
``yolo.workers`` loader processes (Ultralytics uses none on a CPU)."""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..core.device import cpu_model_name
from ..core.metrics import THRESHOLDS_PX, pck
from ..core.paths import IMAGE_CACHE, PREPARED_TABLE, RAW_ARCHIVE, TRAIN_LOGS, YOLO_CHECKPOINT, YOLO_DATA, YOLO_DIR
from ..data.archive import DatasetArchive
from ..data.cache import ImageCache
from ..data.dataset import split_arrays
from ..runtime.decoders import best_detection, yolo_input
from . import run_state
from .augment import ultralytics_augment
from .dataset import stage_view
from .ultralytics import YoloError, configure_ultralytics, model_config, resolve_pretrained, ultralytics_device

# Train arguments the stage sets itself (yolo.train_args may not).
FIXED_ARGS = {
    "data",
    "project",
    "name",
    "exist_ok",
    "pretrained",
    "plots",
    "model",
    "resume",
    "save_dir",
    "epochs",
    "augmentations",
}


def _cuda_bf16() -> bool:
    import torch

    try:
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # older torch without including_emulation
        return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8


def curve_name(column: str) -> str:
    """A results.csv column -> its dvclive name: Ultralytics validates on the dev slice, so its
    ``metrics/…`` and ``val/…`` columns are ``dev/…``; ``(B)`` box, ``(P)`` pose."""
    key = (
        column.strip()
        .replace("metrics/", "dev/")
        .replace("val/", "dev/")
        .replace("(B)", "_box")
        .replace("(P)", "_pose")
    )
    return key.replace("-", "_").replace("lr/pg0", "train/lr")


class DevKeypoints:
    """The dev slice's keypoint figures of a network during training (the val split stays unseen):
    PCK@1/3/5/7/10 px and missed images, with the evaluator's rules (the most confident detection
    at or above ``conf_threshold``; a missed image's keypoints miss at every threshold)."""

    def __init__(self, images: np.ndarray, keypoints: np.ndarray, conf_threshold: float, batch_size: int = 32):
        self.images, self.keypoints = images, keypoints
        self.conf_threshold, self.batch_size = conf_threshold, batch_size

    @classmethod
    def from_cache(cls, conf_threshold: float) -> DevKeypoints:
        import polars as pl

        names, keypoints = split_arrays(pl.read_parquet(PREPARED_TABLE), "dev")
        cache = ImageCache(IMAGE_CACHE)
        return cls(np.stack([cache.read(n) for n in names]), keypoints, conf_threshold)

    def __call__(self, model) -> dict:
        import torch

        errors, missed = [], 0
        model.eval()
        with torch.inference_mode():
            for start in range(0, len(self.images), self.batch_size):
                x = torch.from_numpy(yolo_input(self.images[start : start + self.batch_size]))
                x = x.to(next(model.parameters()).device, next(model.parameters()).dtype)
                out = model(x)
                raw = (out[0] if isinstance(out, (list, tuple)) else out).float().cpu().numpy()
                for i, gt in enumerate(self.keypoints[start : start + self.batch_size]):
                    conf, kp = best_detection(raw[i : i + 1])
                    visible = gt[:, 2] > 0
                    if kp is None or not conf >= self.conf_threshold:
                        missed += 1
                        errors.append(np.full(int(visible.sum()), np.nan))
                    else:
                        errors.append(np.linalg.norm(kp[visible, :2] - gt[visible, :2], axis=1))
        e = np.concatenate(errors)
        return {**{f"pck_{t}px": round(pck(e, t), 5) for t in THRESHOLDS_PX}, "missed_images": missed}


class RunRecorder:
    """Ultralytics callbacks: speed settings before the loaders are built; after every epoch the
    dev keypoint figures, the run's record and the copy for a new machine, and the dvclive curves
    rewritten from Ultralytics' results (so a resumed run's curves are the whole run's)."""

    def __init__(
        self,
        record: dict,
        run_dir: Path,
        copy_dir: Path | None,
        live_dir: Path,
        workers: int,
        threads: int,
        channels_last: bool,
        dev: DevKeypoints | None,
    ):
        self.record, self.run_dir, self.copy_dir, self.live_dir = record, run_dir, copy_dir, live_dir
        self.workers, self.threads, self.channels_last, self.dev = workers, threads, channels_last, dev
        self.epoch_start, self.images_per_s = 0.0, float("nan")

    def on_pretrain_routine_start(self, trainer):
        trainer.args.workers = self.workers  # before the loaders are built (Ultralytics sets 0 on CPU)

    def on_pretrain_routine_end(self, trainer):
        import torch

        if self.threads > 0:
            torch.set_num_threads(self.threads)
        elif trainer.device.type == "cpu":
            import os

            torch.set_num_threads(os.cpu_count() or 1)  # Ultralytics leaves one core idle
        if self.channels_last and trainer.device.type == "cpu":
            trainer.model.to(memory_format=torch.channels_last)

    def on_train_epoch_start(self, trainer):
        self.epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer):
        self.images_per_s = len(trainer.train_loader.dataset) / max(1e-9, time.perf_counter() - self.epoch_start)

    def on_model_save(self, trainer):
        """After Ultralytics wrote last.pt (and best.pt when the epoch was the best so far)."""
        epoch = trainer.epoch + 1
        improved = (
            trainer.best_fitness is not None and trainer.fitness is not None and trainer.fitness >= trainer.best_fitness
        )
        entry = {
            "epoch": epoch,
            "images_per_s": round(self.images_per_s, 2),
            "wall_s": round(time.perf_counter() - self.epoch_start, 1),
            "dev": self.dev(trainer.ema.ema) if self.dev is not None else {},
        }
        history = [h for h in self.record.get("history", []) if h["epoch"] < epoch] + [entry]
        self.record.update(epochs_done=epoch, history=history, finished=False)
        if improved:
            self.record["best_epoch"] = epoch
        weights = Path(trainer.wdir)
        if self.copy_dir is not None:
            run_state.copy_file(weights / run_state.LAST, self.copy_dir / run_state.LAST)
            if improved and (weights / run_state.BEST).is_file():
                stripped_best(weights / run_state.BEST, self.copy_dir / run_state.BEST)
            run_state.write_record(self.copy_dir, self.record)
        run_state.write_record(self.run_dir, self.record)
        write_curves(trainer.read_results_csv(), history, self.live_dir)
        dev = entry["dev"]
        print(
            f"epoch {epoch} of {self.record['epochs']}: {self.images_per_s:.1f} train images/s"
            + (f", dev PCK@5 {dev['pck_5px']:.3f}, {dev['missed_images']} dev images missed" if dev else "")
        )


def stripped_best(src: Path, dst: Path) -> None:
    """Ultralytics' best.pt without its optimiser (the weights, args and metrics), written atomically."""
    from ultralytics.utils.torch_utils import strip_optimizer

    with run_state.atomic_path(dst) as tmp:
        strip_optimizer(src, s=str(tmp))


def write_curves(results: dict, history: list[dict], live_dir: Path) -> None:
    """The dvclive folder ``live_dir`` written anew: one step per epoch, Ultralytics' results
    (``curve_name``), train images/s and the dev keypoint figures."""
    from dvclive import Live

    extra = {h["epoch"]: h for h in history}
    epochs = [int(float(e)) for e in results.get("epoch", [])]
    shutil.rmtree(live_dir, ignore_errors=True)
    live = Live(dir=str(live_dir), report=None, save_dvc_exp=False, dvcyaml=None)
    for i, epoch in enumerate(epochs):
        for column, values in results.items():
            name = curve_name(column)
            if column in ("epoch", "time") or (name.startswith("lr/") and name != "train/lr"):
                continue
            live.log_metric(name, float(values[i]))
        h = extra.get(epoch, {})
        if "images_per_s" in h:
            live.log_metric("train/images_per_s", float(h["images_per_s"]))
        for key, value in h.get("dev", {}).items():
            live.log_metric(f"dev/{key}", float(value))
        live.next_step()
    live.end()


def results_csv(results: dict) -> str:
    """Ultralytics' results.csv text from the columns a checkpoint keeps (``train_results``)."""
    out = io.StringIO()
    columns = list(results)
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(zip(*(results[c] for c in columns)))
    return out.getvalue()


def restore_run(copy_dir: Path, run_dir: Path) -> None:
    """A new machine: the copy's run state (none once the run has finished) and best weights into
    an empty Ultralytics run folder, with its results.csv rebuilt from the checkpoint (so the
    curves keep the earlier epochs)."""
    import torch

    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "weights").mkdir(parents=True)
    copied = [run_dir / "weights" / n for n in (run_state.LAST, run_state.BEST) if (copy_dir / n).is_file()]
    for path in copied:
        shutil.copyfile(copy_dir / path.name, path)
    shutil.copyfile(copy_dir / run_state.STATE_FILE, run_dir / run_state.STATE_FILE)
    results = torch.load(copied[0], map_location="cpu", weights_only=False).get("train_results")
    if results:
        (run_dir / "results.csv").write_text(results_csv(results))


def point_checkpoint_here(last: Path, data_yaml: Path, run_dir: Path) -> None:
    """Ultralytics resumes with the paths the checkpoint's arguments name: point them at this
    run's dataset view and run folder (the last run's were temporary or on another machine)."""
    import torch

    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    args = ckpt["train_args"]
    args.update(
        data=str(data_yaml), project=str(run_dir.parent), name=run_dir.name, save_dir=str(run_dir), exist_ok=True
    )
    with run_state.atomic_path(last) as tmp:
        torch.save(ckpt, tmp)


def train_args(cfg: dict, seed: int, weights: Path | None, device: str, amp) -> dict:
    """The Ultralytics train arguments of the ``yolo`` params section (its paths set later)."""
    args = dict(
        epochs=int(cfg["epochs"]),
        imgsz=int(cfg["imgsz"]),
        batch=int(cfg["batch"]),
        workers=int(cfg.get("workers", 0)),
        device=device,
        seed=int(seed),
        deterministic=True,
        amp=amp,
        pretrained=str(weights) if weights else False,
        cache=cfg.get("cache", False),
        plots=False,
        val=True,
        verbose=True,
    )
    extra = dict(cfg.get("train_args") or {})  # any other Ultralytics train argument (lr0, mixup, ...)
    fixed = (FIXED_ARGS | set(args)) & extra.keys()
    if fixed:
        raise YoloError(f"yolo.train_args may not set {sorted(fixed)}: the stage or another yolo param sets them")
    args.update(extra)
    args.update(ultralytics_augment(cfg.get("augment")))
    return args


def train_yolo(
    cfg: dict,
    seed: int,
    data_yaml: Path,
    archive: Path,
    out_dir: Path,
    live_dir: Path,
    run_dir: Path = YOLO_CHECKPOINT,
    dev: Callable[[], DevKeypoints] | None = None,
) -> dict:
    """Trains the ``yolo`` params section's model on the dataset yaml, its images read from the
    dataset ``archive``, resuming the run in ``run_dir`` or ``yolo.state_copy`` when one of them
    belongs to it. Writes ``out_dir/best.pt`` (with the run's ``args.yaml``, ``results.csv`` and
    ``state.json``) and the per-epoch curves to the dvclive folder ``live_dir``; ``dev`` makes the
    dev figures of every epoch (called once training starts). Returns the run's record."""
    configure_ultralytics()
    weights = resolve_pretrained(cfg.get("pretrained", "none"), cfg["model"])  # first: fail before any work
    from ultralytics import YOLO

    out_dir, live_dir, run_dir = Path(out_dir), Path(live_dir), Path(run_dir)
    copy_dir = Path(cfg["state_copy"]) if cfg.get("state_copy") else None
    device = ultralytics_device(cfg.get("device", "auto"))
    on_gpu = device not in ("cpu", "mps")
    # bf16 autocast skips Ultralytics' AMP check (which downloads yolo26n.pt); fp16 AMP is not offered
    amp = "bf16" if on_gpu and str(cfg.get("amp", "bf16")).lower() == "bf16" else False
    if amp and not _cuda_bf16():
        print("yolo.amp = bf16: this GPU has no native bfloat16, training in fp32")
        amp = False
    args = train_args(cfg, seed, weights, device, amp)
    lists = [Path(data_yaml)] + [Path(data_yaml).parent / f"{s}.txt" for s in ("train", "val")]
    fp = run_state.fingerprint({**args, "model": cfg["model"]}, [*lists, Path(archive)])
    here = run_state.resumable(run_dir, run_dir / "weights", fp)
    copy = run_state.resumable(copy_dir, copy_dir, fp)
    if copy is not None and (here is None or copy["epochs_done"] > here["epochs_done"]):
        if copy.get("finished"):
            print(
                f"{copy_dir}: the run finished (epoch {copy['epochs_done']} of {copy['epochs']}): "
                "best.pt from it, no training"
            )
        else:
            print(f"{copy_dir}: epoch {copy['epochs_done']} of {copy['epochs']} done: continuing from it")
        restore_run(copy_dir, run_dir)
        here = copy
    if here is not None and here.get("finished"):
        return _write_outputs(run_dir / "weights" / run_state.BEST, run_dir, here, out_dir, live_dir)
    record = here or {
        "fingerprint": fp,
        "epochs": args["epochs"],
        "epochs_done": 0,
        "history": [],
        "model": cfg["model"],
        "ultralytics": _ultralytics_version(),
    }
    record.setdefault("hardware", [])
    host = {"cpu": cpu_model_name(), "device": device}
    if host not in record["hardware"]:
        record["hardware"].append(host)
    recorder = RunRecorder(
        record,
        run_dir,
        copy_dir,
        live_dir,
        int(cfg.get("workers", 0)),
        int(cfg.get("threads", 0)),
        bool(cfg.get("channels_last", False)),
        dev() if dev is not None else None,
    )
    with tempfile.TemporaryDirectory(prefix="handkp-yolo-") as work:
        with DatasetArchive(archive) as dataset:
            view_yaml = stage_view(data_yaml, dataset, Path(work) / "data")
        if here is not None:
            last = run_dir / "weights" / run_state.LAST
            print(f"YOLO baseline: resuming {run_dir} after epoch {here['epochs_done']} of {here['epochs']}")
            point_checkpoint_here(last, view_yaml, run_dir)
            model = YOLO(str(last), task="pose")
            run = dict(
                resume=str(last),
                data=str(view_yaml),
                workers=args["workers"],
                device=device,
                cache=args["cache"],
                save_dir=str(run_dir),
            )
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
            model = YOLO(model_config(cfg["model"]), task="pose")
            run = dict(
                args,
                data=str(view_yaml),
                project=str(run_dir.parent),
                name=run_dir.name,
                exist_ok=True,
                save_dir=str(run_dir),
            )
            print(
                f"YOLO baseline: {cfg['model']} from {weights or 'random init'}, {args['epochs']} epochs, "
                f"device {device}, amp {amp}"
            )
        for event in (
            "on_pretrain_routine_start",
            "on_pretrain_routine_end",
            "on_train_epoch_start",
            "on_train_epoch_end",
            "on_model_save",
        ):
            model.add_callback(event, getattr(recorder, event))
        model.train(**run)
    record.update(finished=True, epochs_done=record["epochs"])
    best = run_dir / "weights" / run_state.BEST
    if not best.is_file():
        raise YoloError(f"Ultralytics finished without {best}")
    run_state.write_record(run_dir, record)
    if copy_dir is not None:  # a finished run keeps its best weights and record; the run state goes
        stripped_best(best, copy_dir / run_state.BEST)
        run_state.write_record(copy_dir, record)
        (copy_dir / run_state.LAST).unlink(missing_ok=True)
    return _write_outputs(best, run_dir, record, out_dir, live_dir)


def _write_outputs(best: Path, run_dir: Path, record: dict, out_dir: Path, live_dir: Path) -> dict:
    """models/yolo/: best.pt, the run's record and, when there, Ultralytics' args.yaml and
    results.csv; the curves from the record when the dvclive folder is missing."""
    import torch

    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    shutil.copyfile(best, out_dir / "best.pt")
    for name in ("args.yaml", "results.csv", run_state.STATE_FILE):
        if (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, out_dir / name)
    if not (live_dir / "metrics.json").is_file():
        results = torch.load(best, map_location="cpu", weights_only=False).get("train_results") or {}
        write_curves(results, record.get("history", []), live_dir)
    return record


def _ultralytics_version() -> str:
    import ultralytics

    return ultralytics.__version__


def run_yolo_train(params: dict) -> dict:
    """The yolo_train stage: data/yolo/dataset.yaml over data/raw.zip -> models/yolo/best.pt,
    curves in reports/train/yolo/, the run in models/yolo_checkpoint/ and yolo.state_copy."""
    cfg = params["yolo"]

    def dev() -> DevKeypoints:
        return DevKeypoints.from_cache(float(params["evaluate"]["yolo_conf_threshold"]))

    record = train_yolo(
        cfg, params["seed"], YOLO_DATA / "dataset.yaml", RAW_ARCHIVE, YOLO_DIR, TRAIN_LOGS / "yolo", dev=dev
    )
    last = record["history"][-1] if record.get("history") else {}
    print(
        f"epoch {record['epochs_done']} of {record['epochs']} (best {record.get('best_epoch')}); "
        f"last epoch's dev figures: {last.get('dev')}"
    )
    return record
