"""Training the heatmap network: AdamW with warm-up and cosine decay, EMA weights, channels-last
memory format (CPU and CUDA; bf16 autocast on CUDA), a saved state after every epoch with
automatic resume (also from the committed copy under release/), dvclive logging with the
throughput split into data and step time, model selection on the dev slice, DDP through torchrun.

Threads: the training step gets ``train.threads`` (0: every core); each loader worker computes
samples on one thread (``handkp.model.batches.loader_worker_init``)."""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
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
from .optimisation import EMA, lr_factor, recalibrate_batchnorm
from .train_state import copy_state, fingerprint, newest_state, run_params, save_state

DEV_METRICS = ("pck_1px", "pck_3px", "pck_5px", "pck_10px", "auc_0_15px", "epe_mean_px")


@dataclass
class TrainConfig:
    """The ``train`` section of params.yaml."""

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


def train(params: dict, table_path: Path, cache_dir: Path, out_dir: Path, ckpt_dir: Path, live_dir: Path) -> dict:
    """Trains from params.yaml's ``seed``, ``model``, ``codec`` and ``train`` sections. Writes
    ``out_dir/best.pt`` (EMA weights with the best dev score). ``ckpt_dir/last.pt`` is the run
    state after the last finished epoch (copied to ``train.state_copy`` when set); a run resumes
    from the furthest of the two that matches these params, data and code. Returns the best dev metrics."""
    from dvclive import Live

    cfg = TrainConfig(**params["train"])
    world, rank, local_rank = (
        int(os.environ.get("WORLD_SIZE", 1)),
        int(os.environ.get("RANK", 0)),
        int(os.environ.get("LOCAL_RANK", 0)),
    )
    device = torch.device(resolve_device(cfg.device))
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
    cuda, main = device.type == "cuda", rank == 0
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    if not cfg.num_workers:  # samples made in this process: OpenCV's own thread pool would fight the step's threads
        cv2.setNumThreads(1)
    seed = int(params["seed"])
    torch.manual_seed(seed)
    np.random.seed(seed)

    codec = codec_for_model(params["model"], params["codec"])
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
    sampler = EpochSampler(len(train_set), cfg.epoch_images, seed, rank, world)
    loader_kw = dict(
        num_workers=cfg.num_workers, pin_memory=cuda, worker_init_fn=loader_worker_init if cfg.num_workers else None
    )
    train_loader = DataLoader(
        train_set, batch_size=cfg.batch_size, sampler=sampler, drop_last=len(sampler) > cfg.batch_size, **loader_kw
    )
    dev_loader = DataLoader(dev_set, batch_size=cfg.batch_size, shuffle=False, **loader_kw)

    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = build_model(params["model"])
    load_backbone_weights(model, params["model"].get("pretrained", "none"))
    model = model.to(device, memory_format=memory_format)
    ema = EMA(model, cfg.ema_decay)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(train_loader))
    total_steps = cfg.epochs * steps_per_epoch
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total_steps, warmup, cfg.min_lr_ratio)
    )

    fp = fingerprint(params, [(train_images, train_kp), (dev_images, dev_kp)])
    ckpt_dir, out_dir = Path(ckpt_dir), Path(out_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    last_path = ckpt_dir / "last.pt"
    copy_path = Path(cfg.state_copy) if cfg.state_copy else None
    start_epoch, best, best_state, train_seconds = 0, {"score": -1.0, "epoch": -1, "metrics": {}}, None, 0.0
    found = newest_state([last_path] + ([copy_path] if copy_path else []), fp)
    if found is not None:
        state, where = found
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        ema.state, ema.updates = state["ema"], state["ema_updates"]
        start_epoch, best, best_state, train_seconds = (
            state["epoch"] + 1,
            state["best"],
            state["best_state_dict"],
            state["train_seconds"],
        )
        torch.set_rng_state(state["torch_rng"])
        if main:
            print(f"resuming from {where} after epoch {state['epoch'] + 1}/{cfg.epochs}")
    ema.state = {k: v.to(device) for k, v in ema.state.items()}

    net = torch.compile(model) if cfg.compile else model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[local_rank] if cuda else None)

    live = (
        Live(dir=str(live_dir), resume=start_epoch > 0, report=None, save_dvc_exp=False, dvcyaml=None) if main else None
    )
    eval_model = build_model(params["model"]).to(device, memory_format=memory_format)
    dev_gt = table.filter(pl.col("split") == "dev")
    channels_last = cfg.channels_last

    for epoch in range(start_epoch, cfg.epochs):
        net.train()
        sampler.epoch = train_set.epoch = epoch
        t0, seen, loss_sum, data_s = time.perf_counter(), 0, 0.0, 0.0
        bar = tqdm(total=len(train_loader), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", disable=not main)
        batches, t_wait = iter(train_loader), time.perf_counter()
        for x, target, weight in batches:
            data_s += time.perf_counter() - t_wait
            x = to_device(x, device, channels_last)
            target, weight = target.to(device, non_blocking=True), weight.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                pred = net(x)
            per_kp = ((pred.float() - target) ** 2).mean(dim=(2, 3))  # (N, K)
            loss = (per_kp * weight).sum() / weight.sum().clamp(min=1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            ema.update(model)
            seen += x.shape[0] * world
            loss_sum += loss.item() * x.shape[0]
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.2e}", img_s=f"{seen / (time.perf_counter() - t0):.1f}")
            t_wait = time.perf_counter()
        bar.close()
        train_s = time.perf_counter() - t0
        throughput = seen / train_s
        train_seconds += train_s
        if main:
            eval_model.load_state_dict(ema.state)
            calibration = (
                to_device(x, device, channels_last)
                for x, _, _ in itertools.islice(iter(train_loader), cfg.bn_recalibration_batches)
            )
            recalibrate_batchnorm(eval_model, calibration, device)
            kp = evaluate_heatmaps(eval_model, dev_loader, codec, device, channels_last)
            dev_pred = pl.DataFrame(
                {
                    "image": np.repeat(dev_images, kp.shape[1]),
                    "keypoint": np.tile(np.arange(kp.shape[1]), len(dev_images)),
                    "x": kp[..., 0].ravel(),
                    "y": kp[..., 1].ravel(),
                }
            )
            dev_metrics, _, _ = compute_metrics(dev_gt, dev_pred)
            live.log_metric("train/loss", loss_sum / max(1, seen // world))
            live.log_metric("train/lr", optimizer.param_groups[0]["lr"])
            live.log_metric("train/images_per_s", throughput)
            live.log_metric(
                "train/data_wait_fraction", data_s / train_s
            )  # the step waited for the loader this share of the time
            live.log_metric("train/epoch_seconds", train_s)
            for key in DEV_METRICS:
                live.log_metric(f"dev/{key}", dev_metrics[key])
            score = dev_metrics[cfg.select_metric]
            if score > best["score"]:
                best = {"score": score, "epoch": epoch, "metrics": dev_metrics}
                best_state = {k: v.detach().cpu().clone() for k, v in eval_model.state_dict().items()}
            save_state(
                last_path,
                {
                    "fingerprint": fp,
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "ema": {k: v.cpu() for k, v in ema.state.items()},
                    "ema_updates": ema.updates,
                    "best": best,
                    "best_state_dict": best_state,
                    "train_seconds": train_seconds,
                    "torch_rng": torch.get_rng_state(),
                },
            )
            if copy_path is not None:
                copy_state(
                    last_path,
                    copy_path,
                    {
                        "fingerprint": fp,
                        "epochs_done": epoch + 1,
                        "epochs": cfg.epochs,
                        "images_seen": (epoch + 1) * seen,
                        "train_hours": round(train_seconds / 3600, 3),
                        "images_per_s": round(throughput, 2),
                        "data_wait_fraction": round(data_s / train_s, 4),
                        "hardware": gpu_name() if cuda else f"{cpu_model_name()}, {torch.get_num_threads()} threads",
                        "torch": torch.__version__,
                        "dev": {k: round(float(dev_metrics[k]), 6) for k in DEV_METRICS},
                        "best_epoch": best["epoch"] + 1,
                        "best_dev": {k: round(float(best["metrics"][k]), 6) for k in DEV_METRICS},
                        "resume": "dvc repro train resumes from this file "
                        "when models/heatmap_checkpoint/ is absent or older",
                    },
                )
            live.next_step()
            print(
                f"epoch {epoch + 1}: loss {loss_sum / max(1, seen // world):.3e}, {throughput:.1f} img/s "
                f"(loader wait {data_s / train_s:.0%}), dev {cfg.select_metric} {score:.4f} "
                f"(best {best['score']:.4f} at epoch {best['epoch'] + 1})"
            )
        if world > 1:
            dist.barrier()
    if live is not None:
        live.end()
        save_checkpoint(
            out_dir / "best.pt",
            params["model"],
            codec,
            best_state,
            epoch=best["epoch"],
            dev_metrics=best["metrics"],
            params=run_params(params),
        )
    if world > 1:
        dist.destroy_process_group()
    return best["metrics"]


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
