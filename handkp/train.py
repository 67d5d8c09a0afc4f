"""Training the heatmap network: AdamW with warm-up and cosine decay, EMA weights, bf16
autocast and channels-last on CUDA, a checkpoint every epoch with automatic resume, dvclive
logging, model selection on the dev slice, DDP through torchrun."""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from .augment import AugmentConfig, augment
from .codec import HeatmapCodec, codec_for_model
from .dataset import read_rgb, split_arrays
from .metrics import compute_metrics
from .models import build_model, load_backbone_weights


class HeatmapDataset(Dataset):
    """Images of one split with their heatmap targets. Item: x (3, S, S) uint8 RGB pixels,
    heatmaps (K, H, H) float32, weights (K,) float32. Augmentation is seeded by
    (seed, epoch, index), so a run is the same whatever the number of loader workers."""

    def __init__(self, images: list[str], keypoints: np.ndarray, raw_root: Path, codec: HeatmapCodec, aug: AugmentConfig | None, seed: int):
        self.images, self.keypoints, self.raw_root = images, keypoints, Path(raw_root)
        self.codec, self.aug, self.seed, self.epoch = codec, aug, seed, 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        image = read_rgb(self.raw_root / self.images[i])
        kp, visible = self.keypoints[i, :, :2], self.keypoints[i, :, 2] > 0
        if self.aug is not None:
            image, kp = augment(image, kp, self.aug, np.random.default_rng([self.seed, self.epoch, i]))
        heatmaps, weights = self.codec.encode(kp, visible)
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), torch.from_numpy(heatmaps), torch.from_numpy(weights)


class EpochSampler(Sampler):
    """A seeded permutation per epoch, optionally cut to ``per_epoch`` items, sharded by rank."""

    def __init__(self, n: int, per_epoch: int, seed: int, rank: int = 0, world: int = 1):
        self.n, self.per_epoch, self.seed, self.rank, self.world, self.epoch = n, per_epoch or n, seed, rank, world, 0

    def indices(self) -> list[int]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)[: min(self.per_epoch, self.n)]
        usable = len(order) // self.world * self.world
        return order[:usable][self.rank :: self.world].tolist()

    def __iter__(self):
        return iter(self.indices())

    def __len__(self) -> int:
        return len(self.indices())


class EMA:
    """Exponential moving average of a model's parameters and buffers, with the usual warm-up
    (decay grows from 0.1 to ``decay`` over the first steps)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay, self.updates = decay, 0
        self.state = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.state[k].mul_(d).add_(v.detach().float(), alpha=1 - d)
            else:
                self.state[k].copy_(v)


def lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_ratio``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


# The package files that decide what a training run computes (the train stage's code deps).
TRAINING_SOURCES = ("train.py", "models.py", "augment.py", "codec.py", "metrics.py")


def fingerprint(params: dict, table_path: Path) -> str:
    """What a checkpoint must match to be resumed: the training params, the data table and the
    training code (a code change with the same state-dict layout must not resume an old run)."""
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    h.update(Path(table_path).read_bytes())
    for name in TRAINING_SOURCES:
        h.update((Path(__file__).parent / name).read_bytes())
    return h.hexdigest()[:16]


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
    compile: bool = False


def recalibrate_batchnorm(model: nn.Module, batches, device: torch.device) -> None:
    """Precise BN: recomputes every BatchNorm's running statistics as the exact average over
    ``batches`` of (N, 3, S, S) inputs for the model's current weights (EMA weights with
    averaged running statistics would not match). Leaves the model in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for x in batches:
            model(x.to(device, non_blocking=True))
    for bn, momentum in zip(norms, momenta):
        bn.momentum = momentum
    model.eval()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def evaluate_heatmaps(model: nn.Module, loader: DataLoader, codec: HeatmapCodec, device: torch.device, autocast: bool) -> np.ndarray:
    """Decoded keypoints (N, K, 2) px for every item of a non-augmented loader."""
    model.eval()
    out = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        for x, _, _ in loader:
            x = x.to(device, non_blocking=True)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            kp, _ = codec.decode(model(x).float().cpu().numpy())
            out.append(kp)
    return np.concatenate(out)


def train(params: dict, table_path: Path, raw_root: Path, out_dir: Path, ckpt_dir: Path, live_dir: Path) -> dict:
    """Trains from params.yaml's ``seed``, ``model``, ``codec`` and ``train`` sections. Writes
    ``out_dir/best.pt`` (EMA weights with the best dev score). ``ckpt_dir`` keeps ``last.pt``
    (resumed when it matches these params and data) and ``best.pt`` across interruptions.
    Returns the best dev metrics."""
    from dvclive import Live

    cfg = TrainConfig(**params["train"])
    world, rank, local_rank = int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0))
    device = resolve_device(cfg.device)
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
    main = rank == 0
    seed = int(params["seed"])
    torch.manual_seed(seed)
    np.random.seed(seed)

    codec = codec_for_model(params["model"], params["codec"])
    table = pl.read_parquet(table_path)
    train_images, train_kp = split_arrays(table, "train")
    dev_images, dev_kp = split_arrays(table, "dev")
    aug = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.augment.items()})
    train_set = HeatmapDataset(train_images, train_kp, raw_root, codec, aug, seed)
    dev_set = HeatmapDataset(dev_images, dev_kp, raw_root, codec, None, seed)
    sampler = EpochSampler(len(train_set), cfg.epoch_images, seed, rank, world)
    loader_kw = dict(num_workers=cfg.num_workers, pin_memory=device.type == "cuda", persistent_workers=False)
    train_loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler, drop_last=len(sampler) > cfg.batch_size, **loader_kw)
    dev_loader = DataLoader(dev_set, batch_size=cfg.batch_size, shuffle=False, **loader_kw)

    model = build_model(params["model"])
    load_backbone_weights(model, params["model"].get("pretrained", "none"))
    model.to(device)
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    ema = EMA(model, cfg.ema_decay)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(train_loader))
    total_steps = cfg.epochs * steps_per_epoch
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total_steps, warmup, cfg.min_lr_ratio))

    run_params = {k: params[k] for k in ("seed", "model", "codec", "train")}
    fp = fingerprint(run_params, table_path)
    ckpt_dir, out_dir = Path(ckpt_dir), Path(out_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    last_path = ckpt_dir / "last.pt"
    start_epoch, best = 0, {"score": -1.0, "epoch": -1, "metrics": {}}
    resume = False
    if last_path.exists():
        state = torch.load(last_path, map_location="cpu", weights_only=False)
        if state.get("fingerprint") == fp:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            ema.state, ema.updates = state["ema"], state["ema_updates"]
            start_epoch, best, resume = state["epoch"] + 1, state["best"], True
            torch.set_rng_state(state["torch_rng"])
            if main:
                print(f"resuming from {last_path} after epoch {state['epoch'] + 1}/{cfg.epochs}")
        elif main:
            print(f"{last_path} was made with other params, data or code: starting afresh")
    ema.state = {k: v.to(device) for k, v in ema.state.items()}

    net = model
    if cfg.compile:
        net = torch.compile(net)
    if world > 1:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[local_rank] if cuda else None)

    live = Live(dir=str(live_dir), resume=resume, report=None, save_dvc_exp=False, dvcyaml=None) if main else None
    eval_model = build_model(params["model"]).to(device)
    if cuda:
        eval_model = eval_model.to(memory_format=torch.channels_last)
    dev_gt = table.filter(pl.col("split") == "dev")

    for epoch in range(start_epoch, cfg.epochs):
        net.train()
        sampler.epoch = train_set.epoch = epoch
        t0, seen, loss_sum = time.perf_counter(), 0, 0.0
        bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", disable=not main)
        for x, target, weight in bar:
            x, target, weight = x.to(device, non_blocking=True), target.to(device, non_blocking=True), weight.to(device, non_blocking=True)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
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
            bar.set_postfix(loss=f"{loss.item():.2e}", img_s=f"{seen / (time.perf_counter() - t0):.1f}")
        throughput = seen / (time.perf_counter() - t0)
        if main:
            eval_model.load_state_dict(ema.state)
            calibration = (x for x, _, _ in itertools.islice(iter(train_loader), cfg.bn_recalibration_batches))
            recalibrate_batchnorm(eval_model, calibration, device)
            kp = evaluate_heatmaps(eval_model, dev_loader, codec, device, cuda)
            dev_pred = pl.DataFrame({
                "image": np.repeat(dev_images, kp.shape[1]), "keypoint": np.tile(np.arange(kp.shape[1]), len(dev_images)),
                "x": kp[..., 0].ravel(), "y": kp[..., 1].ravel(),
            })
            dev_metrics, _, _ = compute_metrics(dev_gt, dev_pred)
            live.log_metric("train/loss", loss_sum / max(1, seen // world))
            live.log_metric("train/lr", optimizer.param_groups[0]["lr"])
            live.log_metric("train/images_per_s", throughput)
            for key in ("pck_1px", "pck_3px", "pck_5px", "pck_10px", "auc_0_15px", "epe_mean_px"):
                live.log_metric(f"dev/{key}", dev_metrics[key])
            score = dev_metrics[cfg.select_metric]
            if score > best["score"]:
                best = {"score": score, "epoch": epoch, "metrics": dev_metrics}
                torch.save({"model_config": params["model"], "codec": codec.to_dict(), "state_dict": {k: v.cpu() for k, v in eval_model.state_dict().items()},
                            "epoch": epoch, "dev_metrics": dev_metrics, "params": run_params}, ckpt_dir / "best.pt.tmp")
                os.replace(ckpt_dir / "best.pt.tmp", ckpt_dir / "best.pt")
            torch.save({"fingerprint": fp, "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "ema": {k: v.cpu() for k, v in ema.state.items()},
                        "ema_updates": ema.updates, "best": best, "torch_rng": torch.get_rng_state()}, ckpt_dir / "last.pt.tmp")
            os.replace(ckpt_dir / "last.pt.tmp", last_path)
            live.next_step()
            print(f"epoch {epoch + 1}: loss {loss_sum / max(1, seen // world):.3e}, {throughput:.1f} img/s, "
                  f"dev {cfg.select_metric} {score:.4f} (best {best['score']:.4f} at epoch {best['epoch'] + 1})")
        if world > 1:
            dist.barrier()
    if live is not None:
        live.end()
        shutil.copyfile(ckpt_dir / "best.pt", out_dir / "best.pt")
    if world > 1:
        dist.destroy_process_group()
    return best["metrics"]
