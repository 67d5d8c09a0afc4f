"""Training the heatmap network: AdamW with warm-up, an optional flat stretch at the peak, then
cosine decay; EMA weights; channels-last memory format (CPU and CUDA; bf16 autocast on CUDA); a
saved state after every epoch with automatic resume (also from the committed copy under
release/); a start from another run's weights (``train.warm_start``); milder augmentation in the
last epochs (``train.final_epochs``, ``train.final_augment``); dvclive logging with the throughput
split into data and step time; model selection on the dev slice; DDP through torchrun.

``train`` reads as the recipe; each step is one function or object: ``Distributed`` (torchrun's
process group and the device), ``load_data`` (datasets and loaders), ``build_optimisation``
(network, EMA, AdamW, schedule), ``resume_or_start`` (a saved state, a warm start or fresh
weights; ``train_state.Progress`` is what the run has done), ``train_epoch``, ``evaluate_dev``
(EMA weights, BatchNorm recalibration, metrics) and ``RunRecord`` (dvclive, the run state and its
committed copy, ``best.pt``).

Threads: the training step gets ``train.threads`` (0: every core); each loader worker computes
samples on one thread (``handkp.model.batches.loader_worker_init``)."""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import polars as pl
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..core.codec import HeatmapCodec, codec_for_model
from ..core.device import cpu_model_name, gpu_name, resolve_device
from ..core.metrics import compute_metrics
from ..core.paths import HEATMAP_DIR, IMAGE_CACHE, PREPARED_TABLE, TRAIN_LOGS, TRAIN_STATE_DIR
from ..data.augment import AugmentConfig
from ..data.cache import CacheError, ImageCache
from ..data.dataset import split_arrays
from .batches import EpochSampler, HeatmapDataset, loader_worker_init
from .checkpoint import save_checkpoint
from .network import build_model, load_backbone_weights
from .optimisation import EMA, Optimisation, lr_factor, recalibrate_batchnorm
from .train_state import (
    Progress,
    RunFiles,
    TrainError,
    copy_state,
    fingerprint,
    hours,
    load_warm_start,
    newest_state,
    run_params,
    run_state,
    save_state,
)

DEV_METRICS = ("pck_1px", "pck_3px", "pck_5px", "pck_10px", "auc_0_15px", "epe_mean_px")


@dataclass
class TrainConfig:
    """The ``train`` section of params.yaml (TrainError for a new setting out of its range)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_epochs: float
    min_lr_ratio: float
    ema_decay: float
    epoch_images: int
    num_workers: int
    device: str
    select_metric: str
    bn_recalibration_batches: int
    augment: dict
    negative_fraction: float = 0.0
    threads: int = 0
    channels_last: bool = True
    state_copy: str | None = None
    compile: bool = False
    flat_epochs: float = 0.0  # the lr stays at its peak from the warm-up's end until this epoch
    final_epochs: int = 0  # the last epochs, augmented with ``final_augment`` over ``augment``
    final_augment: dict = field(default_factory=dict)
    warm_start: str | None = None  # a run state or heatmap checkpoint whose weights a new run starts from

    def __post_init__(self) -> None:
        for name in ("flat_epochs", "final_epochs"):
            if not 0 <= getattr(self, name) <= self.epochs:
                raise TrainError(f"train.{name} = {getattr(self, name)}: expected 0 to train.epochs ({self.epochs})")
        unknown = set(self.final_augment) - {f.name for f in dataclasses.fields(AugmentConfig)}
        if unknown:
            raise TrainError(f"train.final_augment: {sorted(unknown)} are not train.augment settings")

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def augment_for(self, epoch: int) -> AugmentConfig:
        """The augmentation of ``epoch`` (0-based): ``augment``, with ``final_augment`` over it
        in the last ``final_epochs`` epochs."""
        final = epoch >= self.epochs - self.final_epochs
        return AugmentConfig.from_params({**self.augment, **self.final_augment} if final else self.augment)


def to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def evaluate_heatmaps(
    model: nn.Module, loader: DataLoader, codec: HeatmapCodec, device: torch.device, channels_last: bool
) -> np.ndarray:
    """Decoded keypoints (N, K, 2) px for every item of a non-augmented loader."""
    model.eval()
    out = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        for x, _, _ in loader:
            kp, _ = codec.decode(model(to_device(x, device, channels_last)).float().cpu().numpy())
            out.append(kp)
    return np.concatenate(out)


@dataclass
class Distributed:
    """This process's place in a torchrun job (world 1: a plain run) and the device it trains on."""

    world: int
    rank: int
    local_rank: int
    device: torch.device

    @classmethod
    def start(cls, device_setting: str) -> Distributed:
        """Reads torchrun's variables and joins its process group (NCCL on CUDA, else gloo)."""
        world, rank, local_rank = (
            int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("RANK", 0)),
            int(os.environ.get("LOCAL_RANK", 0)),
        )
        device = torch.device(resolve_device(device_setting))
        if world > 1:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            if device.type == "cuda":
                device = torch.device("cuda", local_rank)
                torch.cuda.set_device(device)
        return cls(world, rank, local_rank, device)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def wrap(self, model: nn.Module, compile: bool) -> nn.Module:
        """The module the training step calls: ``model`` compiled when asked, in DDP when distributed."""
        net = torch.compile(model) if compile else model
        if self.world > 1:
            net = nn.parallel.DistributedDataParallel(net, device_ids=[self.local_rank] if self.cuda else None)
        return net

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def end(self) -> None:
        if self.world > 1:
            dist.destroy_process_group()


def seed_and_threads(cfg: TrainConfig, seed: int) -> None:
    """The step's thread count, and the global seeds (the network's initial weights)."""
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    if not cfg.num_workers:  # samples made in this process: OpenCV's own thread pool would fight the step's threads
        cv2.setNumThreads(1)
    torch.manual_seed(seed)
    np.random.seed(seed)


@dataclass
class TrainingData:
    """The train split (augmented, in the sampler's seeded order) and the dev slice (as it is),
    with their loaders; keypoints (N, K, 3) px / visibility."""

    table: pl.DataFrame
    train_images: list[str]
    train_kp: np.ndarray
    dev_images: list[str]
    dev_kp: np.ndarray
    train_set: HeatmapDataset
    sampler: EpochSampler
    train_loader: DataLoader
    dev_loader: DataLoader

    def fingerprint(self, params: dict) -> str:
        """The run's fingerprint: params, this data and the training code (``train_state.fingerprint``)."""
        return fingerprint(params, [(self.train_images, self.train_kp), (self.dev_images, self.dev_kp)])

    def start_epoch(self, epoch: int, cfg: TrainConfig) -> None:
        """The samples of ``epoch``: its order, its random draws, its augmentation (the loaders'
        workers copy the dataset when an epoch's iteration starts)."""
        self.sampler.epoch = self.train_set.epoch = epoch
        self.train_set.aug = cfg.augment_for(epoch)

    @property
    def dev_truth(self) -> pl.DataFrame:
        return self.table.filter(pl.col("split") == "dev")


def load_data(
    params: dict, cfg: TrainConfig, table_path: Path, cache_dir: Path, codec: HeatmapCodec, run: Distributed
) -> TrainingData:
    """The keypoint table and the image cache's train and dev splits (CacheError when the cache
    was made from another table), as datasets and loaders for this rank."""
    seed = int(params["seed"])
    table = pl.read_parquet(table_path)
    cache = ImageCache(cache_dir)
    train_images, train_kp = split_arrays(table, "train")
    dev_images, dev_kp = split_arrays(table, "dev")
    (cached_train, train_pixels), (cached_dev, dev_pixels) = cache.split("train"), cache.split("dev")
    if cached_train != train_images or cached_dev != dev_images:
        raise CacheError(f"{cache_dir}: the image cache does not match {table_path}; run dvc repro prepare")
    train_set = HeatmapDataset(
        train_pixels, train_kp, codec, AugmentConfig.from_params(cfg.augment), seed, cfg.negative_fraction
    )
    dev_set = HeatmapDataset(dev_pixels, dev_kp, codec, None, seed)
    sampler = EpochSampler(len(train_set), cfg.epoch_images, seed, run.rank, run.world)
    loader_kw = dict(
        num_workers=cfg.num_workers, pin_memory=run.cuda, worker_init_fn=loader_worker_init if cfg.num_workers else None
    )
    train_loader = DataLoader(
        train_set, batch_size=cfg.batch_size, sampler=sampler, drop_last=len(sampler) > cfg.batch_size, **loader_kw
    )
    dev_loader = DataLoader(dev_set, batch_size=cfg.batch_size, shuffle=False, **loader_kw)
    return TrainingData(table, train_images, train_kp, dev_images, dev_kp, train_set, sampler, train_loader, dev_loader)


def build_optimisation(params: dict, cfg: TrainConfig, steps_per_epoch: int, device: torch.device) -> Optimisation:
    """The network (seeded random weights, or the pretrained backbone ``model.pretrained``) on
    ``device``; AdamW; the schedule ``lr_factor`` in optimiser steps: ``steps_per_epoch`` times
    the epochs of ``warmup_epochs``, ``flat_epochs`` and ``epochs``."""
    model = build_model(params["model"])
    if not cfg.warm_start:  # with a warm start, its weights or a resumed state's replace every weight
        load_backbone_weights(model, params["model"].get("pretrained", "none"))
    model = model.to(device, memory_format=cfg.memory_format)
    ema = EMA(model, cfg.ema_decay)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps = cfg.epochs * steps_per_epoch
    warmup, flat = int(cfg.warmup_epochs * steps_per_epoch), int(cfg.flat_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total_steps, warmup, cfg.min_lr_ratio, flat)
    )
    return Optimisation(model, ema, optimizer, scheduler)


def resume_or_start(opt: Optimisation, files: RunFiles, fp: str, cfg: TrainConfig, run: Distributed) -> Progress:
    """Continues from the furthest saved state of this run (``fp``), else starts from the weights
    of ``train.warm_start`` (EMA from them too; TrainError when the file is missing or does not fit
    the network), else from the weights ``build_optimisation`` made."""
    found = newest_state(files.resumable, fp)
    if found is not None:
        state, where = found
        opt.load(state)
        progress = Progress.of_state(state)
        torch.set_rng_state(state["torch_rng"])
        if run.main:
            print(f"resuming from {where} after epoch {progress.next_epoch}/{cfg.epochs}")
    elif cfg.warm_start:
        warm, budget = load_warm_start(Path(cfg.warm_start), opt.model)
        opt.ema = EMA(opt.model, cfg.ema_decay)
        progress = Progress(warm_start=warm, budget_before=budget)
        if run.main:
            print(f"starting from the weights of {cfg.warm_start}")
    else:
        progress = Progress()
    opt.ema.state = {k: v.to(run.device) for k, v in opt.ema.state.items()}
    return progress


@dataclass
class EpochResult:
    """One epoch's training: mean loss per image, images seen (all ranks), seconds in all and
    seconds the step waited for the loader."""

    loss: float
    seen: int
    seconds: float
    data_seconds: float

    @property
    def images_per_s(self) -> float:
        return self.seen / self.seconds

    @property
    def data_wait_fraction(self) -> float:
        return self.data_seconds / self.seconds


def train_epoch(
    net: nn.Module, opt: Optimisation, data: TrainingData, run: Distributed, cfg: TrainConfig, epoch: int
) -> EpochResult:
    """One pass over the epoch's batches: heatmap MSE weighted per keypoint, an AdamW and
    schedule step per batch, the EMA following the weights."""
    net.train()
    t0, seen, loss_sum, data_s = time.perf_counter(), 0, 0.0, 0.0
    bar = tqdm(total=len(data.train_loader), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", disable=not run.main)
    batches, t_wait = iter(data.train_loader), time.perf_counter()
    for x, target, weight in batches:
        data_s += time.perf_counter() - t_wait
        x = to_device(x, run.device, cfg.channels_last)
        target, weight = target.to(run.device, non_blocking=True), weight.to(run.device, non_blocking=True)
        with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.cuda):
            pred = net(x)
        per_kp = ((pred.float() - target) ** 2).mean(dim=(2, 3))  # (N, K)
        loss = (per_kp * weight).sum() / weight.sum().clamp(min=1)
        opt.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        opt.optimizer.step()
        opt.scheduler.step()
        opt.ema.update(opt.model)
        seen += x.shape[0] * run.world
        loss_sum += loss.item() * x.shape[0]
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.2e}", img_s=f"{seen / (time.perf_counter() - t0):.1f}")
        t_wait = time.perf_counter()
    bar.close()
    return EpochResult(loss_sum / max(1, seen // run.world), seen, time.perf_counter() - t0, data_s)


def evaluate_dev(
    eval_model: nn.Module,
    ema_state: dict,
    data: TrainingData,
    codec: HeatmapCodec,
    device: torch.device,
    cfg: TrainConfig,
) -> dict:
    """The dev metrics (``compute_metrics``) of the EMA weights, loaded into ``eval_model`` with
    their BatchNorm statistics recomputed on ``bn_recalibration_batches`` train batches."""
    eval_model.load_state_dict(ema_state)
    calibration = (
        to_device(x, device, cfg.channels_last)
        for x, _, _ in itertools.islice(iter(data.train_loader), cfg.bn_recalibration_batches)
    )
    recalibrate_batchnorm(eval_model, calibration, device)
    kp = evaluate_heatmaps(eval_model, data.dev_loader, codec, device, cfg.channels_last)
    dev_pred = pl.DataFrame(
        {
            "image": np.repeat(data.dev_images, kp.shape[1]),
            "keypoint": np.tile(np.arange(kp.shape[1]), len(data.dev_images)),
            "x": kp[..., 0].ravel(),
            "y": kp[..., 1].ravel(),
        }
    )
    dev_metrics, _, _ = compute_metrics(data.dev_truth, dev_pred)
    return dev_metrics


def copy_summary(
    fp: str, cfg: TrainConfig, epoch: int, result: EpochResult, dev: dict, progress: Progress, cuda: bool
) -> dict:
    """The copy's manifest (``copy_state`` adds the file, commit and time): the epoch reached,
    this run's budget and the total one (the warm start's included; None where unknown), speed,
    hardware, the epoch's and the best dev metrics."""
    total, best = progress.total_budget(), progress.best
    return {
        "fingerprint": fp,
        "epochs_done": epoch + 1,
        "epochs": cfg.epochs,
        "images_seen": progress.images_seen,
        "train_hours": hours(progress.train_seconds),
        "total_train_hours": hours(total["train_seconds"]),
        "total_images_seen": total["images_seen"],
        "warm_start": progress.warm_start_record(),
        "images_per_s": round(result.images_per_s, 2),
        "data_wait_fraction": round(result.data_wait_fraction, 4),
        "hardware": gpu_name() if cuda else f"{cpu_model_name()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "dev": {k: round(float(dev[k]), 6) for k in DEV_METRICS},
        "best_epoch": best["epoch"] + 1,
        "best_dev": {k: round(float(best["metrics"][k]), 6) for k in DEV_METRICS},
        "resume": "dvc repro train resumes from this file when models/heatmap_checkpoint/ is absent or older",
    }


class RunRecord:
    """What the main process writes: after every epoch the dvclive curves, the run state
    (``files.last``), its copy with the manifest (``files.copy``) and a console line; at the end
    ``best.pt``."""

    def __init__(self, files: RunFiles, fp: str, cfg: TrainConfig, live_dir: Path, resumed: bool, run: Distributed):
        from dvclive import Live

        self.files, self.fp, self.cfg, self.run = files, fp, cfg, run
        self.live = Live(dir=str(live_dir), resume=resumed, report=None, save_dvc_exp=False, dvcyaml=None)

    def epoch(self, epoch: int, result: EpochResult, dev: dict, opt: Optimisation, progress: Progress) -> None:
        """Logs the epoch's curves and saves the state after it (``progress`` already counts it)."""
        for key, value in (
            ("train/loss", result.loss),
            ("train/lr", opt.optimizer.param_groups[0]["lr"]),
            ("train/images_per_s", result.images_per_s),
            ("train/data_wait_fraction", result.data_wait_fraction),  # the step waited for the loader this share
            ("train/epoch_seconds", result.seconds),
        ):
            self.live.log_metric(key, value)
        for key in DEV_METRICS:
            self.live.log_metric(f"dev/{key}", dev[key])
        save_state(self.files.last, run_state(self.fp, epoch, opt, progress))
        if self.files.copy is not None:
            summary = copy_summary(self.fp, self.cfg, epoch, result, dev, progress, self.run.cuda)
            copy_state(self.files.last, self.files.copy, summary)
        self.live.next_step()
        best = progress.best
        print(
            f"epoch {epoch + 1}: loss {result.loss:.3e}, {result.images_per_s:.1f} img/s "
            f"(loader wait {result.data_wait_fraction:.0%}), dev {self.cfg.select_metric} "
            f"{dev[self.cfg.select_metric]:.4f} (best {best['score']:.4f} at epoch {best['epoch'] + 1})"
        )

    def end(self, params: dict, codec: HeatmapCodec, progress: Progress) -> None:
        """Closes the curves and writes ``best.pt``: the best epoch's EMA weights, with the budget behind them."""
        self.live.end()
        save_checkpoint(
            self.files.best,
            params["model"],
            codec,
            progress.best_state,
            epoch=progress.best["epoch"],
            dev_metrics=progress.best["metrics"],
            params=run_params(params),
            budget=progress.total_budget(),
        )


def train(params: dict, table_path: Path, cache_dir: Path, out_dir: Path, ckpt_dir: Path, live_dir: Path) -> dict:
    """Trains from params.yaml's ``seed``, ``model``, ``codec`` and ``train`` sections. Writes
    ``out_dir/best.pt`` (EMA weights with the best dev score). ``ckpt_dir/last.pt`` is the run
    state after the last finished epoch (copied to ``train.state_copy`` when set); a run resumes
    from the furthest of the two that matches these params, data and code, else starts from
    ``train.warm_start`` when set. Returns the best dev metrics."""
    cfg = TrainConfig(**params["train"])
    files = RunFiles.make(out_dir, ckpt_dir, cfg.state_copy)
    files.check_warm_start(cfg.warm_start)
    run = Distributed.start(cfg.device)
    seed_and_threads(cfg, int(params["seed"]))
    codec = codec_for_model(params["model"], params["codec"])
    data = load_data(params, cfg, table_path, cache_dir, codec, run)
    opt = build_optimisation(params, cfg, max(1, len(data.train_loader)), run.device)
    fp = data.fingerprint(params)
    progress = resume_or_start(opt, files, fp, cfg, run)
    net = run.wrap(opt.model, cfg.compile)
    record = RunRecord(files, fp, cfg, live_dir, progress.next_epoch > 0, run) if run.main else None
    eval_model = build_model(params["model"]).to(run.device, memory_format=cfg.memory_format)
    for epoch in range(progress.next_epoch, cfg.epochs):
        data.start_epoch(epoch, cfg)
        result = train_epoch(net, opt, data, run, cfg, epoch)
        progress.count(epoch, result.seconds, result.seen)
        if record is not None:
            dev = evaluate_dev(eval_model, opt.ema.state, data, codec, run.device, cfg)
            progress.keep_if_best(epoch, dev, dev[cfg.select_metric], eval_model)
            record.epoch(epoch, result, dev, opt, progress)
        run.barrier()
    if record is not None:
        record.end(params, codec, progress)
    run.end()
    return progress.best["metrics"]


def run_train(params: dict) -> dict:
    """The train stage: -> models/heatmap/best.pt, curves in reports/train/heatmap/; resumes after
    an interruption from models/heatmap_checkpoint/last.pt or the copy at ``train.state_copy``."""
    best = train(
        params,
        PREPARED_TABLE,
        IMAGE_CACHE,
        out_dir=HEATMAP_DIR,
        ckpt_dir=TRAIN_STATE_DIR,
        live_dir=TRAIN_LOGS / "heatmap",
    )
    print("best dev metrics:", {k: round(v, 4) for k, v in best.items()})
    return best
