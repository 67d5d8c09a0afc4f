"""Pieces of the training loop: precise BatchNorm, the learning-rate schedule (flat then cosine),
EMA, the sampler, the resume fingerprint, the training samples (augmentation, hand-free images, the
milder final epochs), the warm start and the budget behind it."""

import json
import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from handkp.core.codec import HeatmapCodec
from handkp.core.io import sha256_file
from handkp.data.augment import AugmentConfig
from handkp.model import train_state
from handkp.model.batches import EpochSampler, HeatmapDataset
from handkp.model.checkpoint import save_checkpoint
from handkp.model.network import build_model
from handkp.model.optimisation import EMA, lr_factor, recalibrate_batchnorm
from handkp.model.train import DEV_METRICS, EpochResult, TrainConfig, build_optimisation, copy_summary
from handkp.model.train_state import (
    Progress,
    RunFiles,
    TrainError,
    add_budgets,
    fingerprint,
    load_warm_start,
    newest_state,
    run_budget,
    save_state,
)


def test_recalibrated_batchnorm_holds_the_exact_statistics_of_the_batches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, momentum=0.01))
    batches = [torch.randn(8, 3, 5, 5) * 3 + 1 for _ in range(4)]
    recalibrate_batchnorm(model, iter(batches), torch.device("cpu"))
    with torch.no_grad():
        feats = torch.cat([model[0](b) for b in batches])
    bn = model[1]
    assert not model.training and bn.momentum == 0.01
    torch.testing.assert_close(bn.running_mean, feats.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    per_batch_var = torch.stack([model[0](b).detach().var(dim=(0, 2, 3), unbiased=True) for b in batches]).mean(0)
    torch.testing.assert_close(bn.running_var, per_batch_var, rtol=1e-4, atol=1e-5)


def test_backbone_batchnorm_tracks_with_momentum_point_one():
    model = build_model({"deconv_layers": 2, "deconv_channels": 16, "head": "bilinear_dw", "backbone_tail": "light"})
    assert {m.momentum for m in model.modules() if isinstance(m, nn.BatchNorm2d)} == {0.1}


def test_resume_fingerprint_follows_params_data_and_training_code(tmp_path, monkeypatch):
    """A state resumes only under the same params, data and training code: a change of the
    model code that keeps the state-dict layout must start afresh; a reworded docstring, or a
    setting that only changes speed, must not."""
    params = {
        "seed": 1,
        "model": {"deconv_channels": 64},
        "codec": {"sigma": 2.0},
        "train": {"epochs": 4, "num_workers": 2},
    }
    data = [(["a.jpg", "b.jpg"], np.zeros((2, 21, 3), np.float32))]
    fp = fingerprint(params, data)
    assert fingerprint(params, data) == fp
    assert fingerprint({**params, "train": {"epochs": 5, "num_workers": 2}}, data) != fp
    assert fingerprint({**params, "train": {"epochs": 4, "num_workers": 0}}, data) == fp
    assert fingerprint(params, [(["a.jpg", "c.jpg"], data[0][1])]) != fp
    assert fingerprint(params, [(data[0][0], data[0][1] + 0.5)]) != fp

    code = tmp_path / "handkp" / "model"
    code.mkdir(parents=True)
    module = code / "network.py"
    monkeypatch.setattr(train_state, "training_sources", lambda: [module])
    monkeypatch.setattr(train_state, "__file__", str(code / "train_state.py"))
    module.write_text('"""The network."""\nWIDTH = 64  # channels\n')
    fp = fingerprint(params, data)
    module.write_text('"""The network, reworded."""\n\nWIDTH = 64\n')
    assert fingerprint(params, data) == fp
    module.write_text('"""The network."""\nWIDTH = 96\n')
    assert fingerprint(params, data) != fp


def test_training_code_of_the_fingerprint_is_what_training_imports_and_dvc_tracks():
    """The fingerprint hashes the modules training loads, all inside the train stage's code deps
    in dvc.yaml; a module training never imports (the archive download, the stage runner) is
    left out."""
    import yaml
    from conftest import REPO

    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train"]["deps"]
    sources = {p.relative_to(REPO).as_posix() for p in train_state.training_sources()}
    assert all(any(s.startswith(f"{d}/") for d in deps) for s in sources - {"handkp/__init__.py"})
    # what a run computes with: the network, the augmentation, the crops and their ROI, the loader
    assert {"handkp/model/network.py", "handkp/data/augment.py", "handkp/data/crops.py"} <= sources
    assert {"handkp/core/roi.py", "handkp/model/batches.py", "handkp/core/codec.py"} <= sources
    assert {"handkp/__init__.py", "handkp/model/__init__.py"} <= sources  # run on import
    assert not sources & {"handkp/data/fetch.py", "handkp/core/config.py", "handkp/core/paths.py"}
    assert not any(s.startswith(("handkp/evaluate/", "handkp/track/", "handkp/app/")) for s in sources)


def test_imports_are_followed_in_every_form(tmp_path):
    """Relative, absolute, from a package, inside a function, and a name that is a module."""
    pkg = tmp_path / "handkp"
    for folder in ("model", "core", "data"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    entry = pkg / "model" / "train.py"
    entry.write_text(
        "import numpy as np\n"
        "from ..core.codec import Codec\n"
        "from . import network\n"
        "import handkp.data.augment\n"
        "def f():\n    from ..data import crops\n"
    )
    for name in ("core/codec.py", "model/network.py", "data/augment.py", "data/crops.py", "data/fetch.py"):
        (pkg / name).write_text("X = 1\n")
    found = {p.relative_to(tmp_path).as_posix() for p in train_state.imported_modules(entry, pkg)}
    assert found == {
        "handkp/__init__.py",
        "handkp/core/__init__.py",
        "handkp/core/codec.py",
        "handkp/model/__init__.py",
        "handkp/model/network.py",
        "handkp/data/__init__.py",
        "handkp/data/augment.py",
        "handkp/data/crops.py",
    }


def test_the_furthest_matching_state_is_resumed(tmp_path):
    """A new machine has only the committed copy; the local state wins when it is further along."""
    local, copy = tmp_path / "last.pt", tmp_path / "release" / "train_state.pt"
    save_state(copy, {"fingerprint": "run", "epoch": 3})
    assert newest_state([local, copy], "run")[1] == copy
    save_state(local, {"fingerprint": "run", "epoch": 5})
    assert newest_state([local, copy], "run")[1] == local
    save_state(local, {"fingerprint": "other", "epoch": 9})
    assert newest_state([local, copy], "run")[1] == copy
    copy.write_bytes(b"truncated")
    assert newest_state([local, copy], "run") is None


def test_samples_are_seeded_and_hand_free_ones_have_empty_targets():
    codec = HeatmapCodec(224, 56, 2.0)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(6, 224, 224, 3), dtype=np.uint8)
    kp = np.concatenate([rng.uniform(80, 150, size=(6, 21, 2)), np.full((6, 21, 1), 2.0)], axis=2).astype(np.float32)
    aug = AugmentConfig(noise=0.5, jpeg=0.5, occlusion=0.5, motion_blur=0.5, gamma=0.5, low_light=0.5)
    ds = HeatmapDataset(pixels, kp, codec, aug, seed=3, negative_fraction=0.5)
    again = HeatmapDataset(pixels, kp, codec, aug, seed=3, negative_fraction=0.5)
    kinds = set()
    for i in range(6):
        image, heatmaps, weights = ds.sample(i)
        image2, heatmaps2, _ = again.sample(i)
        assert np.array_equal(image, image2) and np.array_equal(heatmaps, heatmaps2)
        assert image.shape == (224, 224, 3) and image.dtype == np.uint8 and weights.tolist() == [1.0] * 21
        kinds.add("hand" if heatmaps.max() > 0.5 else "hand-free")
        if heatmaps.max() == 0:
            assert weights.sum() == 21  # every keypoint's empty map counts
    assert kinds == {"hand", "hand-free"}
    ds.epoch = 1
    assert not np.array_equal(ds.sample(0)[0], again.sample(0)[0])


def test_learning_rate_warms_up_then_decays_to_its_floor():
    f = [lr_factor(s, 100, 10, 0.02) for s in range(101)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:])) and f[100] == pytest.approx(0.02)


def test_ema_follows_the_weights_and_copies_integer_buffers():
    model = nn.BatchNorm1d(2)
    ema = EMA(model, decay=0.5)
    with torch.no_grad():
        model.weight.fill_(3.0)
    model.num_batches_tracked += 7
    ema.update(model)
    d = min(0.5, 2 / 11)
    assert ema.state["weight"][0].item() == pytest.approx(d * 1 + (1 - d) * 3)
    assert ema.state["num_batches_tracked"].item() == 7


def test_epoch_sampler_is_seeded_cut_and_sharded():
    a, b = EpochSampler(100, 30, seed=1, rank=0, world=2), EpochSampler(100, 30, seed=1, rank=1, world=2)
    assert len(a) == len(b) == 15 and not set(a.indices()) & set(b.indices())
    first = a.indices()
    a.epoch = 1
    assert a.indices() != first and EpochSampler(100, 30, seed=1, rank=0, world=2).indices() == first
    assert np.all(np.array(first) < 100)


def today_lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """lr_factor as it was before flat_epochs (a0cbaa2): the schedule of the released run."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@pytest.mark.parametrize("total, warmup, min_ratio", [(100, 10, 0.02), (2780, 139, 0.01), (7, 0, 0.5), (5, 5, 0.1)])
def test_learning_rate_without_a_flat_part_is_exactly_todays(total, warmup, min_ratio):
    for step in range(total + 2):
        today = today_lr_factor(step, total, warmup, min_ratio)
        assert lr_factor(step, total, warmup, min_ratio) == today
        assert lr_factor(step, total, warmup, min_ratio, flat=0) == today
        assert lr_factor(step, total, warmup, min_ratio, flat=warmup) == today  # a flat end within the warm-up


def test_learning_rate_stays_at_its_peak_until_the_flat_end_then_decays_to_its_floor():
    f = [lr_factor(s, 100, 10, 0.02, flat=60) for s in range(101)]
    assert f[:10] == [lr_factor(s, 100, 10, 0.02) for s in range(10)]  # the same warm-up
    assert f[9:61] == [1.0] * 52  # exactly the peak from the warm-up's last step until the decay starts
    assert all(a > b for a, b in zip(f[60:], f[61:])) and f[100] == pytest.approx(0.02)
    assert f[80] == pytest.approx(0.02 + 0.98 * 0.5)  # half-way through the decay: the cosine's middle


def small_train_config(**overrides) -> TrainConfig:
    settings = dict(
        epochs=4,
        batch_size=8,
        lr=0.01,
        weight_decay=0.0,
        warmup_epochs=1,
        min_lr_ratio=0.1,
        ema_decay=0.9,
        epoch_images=24,
        num_workers=0,
        device="cpu",
        select_metric="auc_0_15px",
        bn_recalibration_batches=1,
        augment={"rotation_deg": 90, "occlusion": 0.15, "flip": 0.5},
    )
    return TrainConfig(**{**settings, **overrides})


SMALL_MODEL = {"deconv_layers": 2, "deconv_channels": 16, "head": "bilinear_dw", "backbone_tail": "light"}


def test_the_schedule_counts_steps_of_the_sampled_epochs():
    """epoch_images sets the steps of an epoch; warm-up, flat part and decay follow them."""
    cfg = small_train_config(flat_epochs=2)
    steps_per_epoch = 3  # 24 images per epoch, 8 per batch
    opt = build_optimisation({"model": SMALL_MODEL}, cfg, steps_per_epoch, torch.device("cpu"))
    lrs = []
    for _ in range(cfg.epochs * steps_per_epoch):
        lrs.append(opt.optimizer.param_groups[0]["lr"])
        opt.optimizer.step()
        opt.scheduler.step()
    assert lrs[:3] == pytest.approx([0.01 / 3, 0.02 / 3, 0.01])
    assert lrs[2:7] == [0.01] * 5  # the peak until the end of epoch 2 (step 6)
    assert all(a > b for a, b in zip(lrs[6:], lrs[7:])) and lrs[-1] > 0.01 * cfg.min_lr_ratio


def test_the_last_epochs_take_the_final_augmentation_over_the_usual_one():
    cfg = small_train_config(final_epochs=1, final_augment={"rotation_deg": 30, "occlusion": 0.0})
    usual, final = cfg.augment_for(0), cfg.augment_for(3)
    assert cfg.augment_for(2) == usual and usual.rotation_deg == 90 and usual.occlusion == 0.15
    assert (final.rotation_deg, final.occlusion, final.flip) == (30, 0.0, 0.5)  # the rest as in train.augment
    assert final == AugmentConfig.from_params({**cfg.augment, "rotation_deg": 30, "occlusion": 0.0})
    assert all(small_train_config().augment_for(e) == usual for e in range(4))  # final_epochs 0: never


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"final_augment": {"rotaton_deg": 30}}, "train.final_augment: ['rotaton_deg']"),
        ({"final_epochs": 5}, "train.final_epochs = 5: expected 0 to train.epochs (4)"),
        ({"flat_epochs": -1}, "train.flat_epochs = -1"),
    ],
)
def test_new_train_settings_out_of_range_are_refused_by_name(overrides, message):
    with pytest.raises(TrainError, match=re.escape(message)):
        small_train_config(**overrides)


def test_the_warm_start_is_part_of_the_fingerprint():
    params = {"seed": 1, "model": SMALL_MODEL, "codec": {"sigma": 2.0}, "train": {"epochs": 4, "warm_start": None}}
    data = [(["a.jpg"], np.zeros((1, 21, 3), np.float32))]
    warm = {**params, "train": {"epochs": 4, "warm_start": "runs/a.pt"}}
    assert fingerprint(warm, data) != fingerprint(params, data)


def source_network(seed: int = 5) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model(SMALL_MODEL)
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-1, 1)  # statistics unlike a fresh network's
    return model.eval()


def test_warm_start_loads_the_weights_of_a_run_state_or_a_checkpoint(tmp_path):
    source = source_network()
    x = torch.rand(2, 3, 224, 224) * 255
    expected = source(x)
    state = {"fingerprint": "a", "epoch": 4, "train_seconds": 7200.0, "best_state_dict": source.state_dict()}
    save_state(tmp_path / "state.pt", {**state, "images_seen": 500, "budget_before": None})
    save_checkpoint(tmp_path / "best.pt", SMALL_MODEL, HeatmapCodec(224, 28, 2.0), source.state_dict())
    for name, budget in [
        ("state.pt", {"train_seconds": 7200.0, "epochs_done": 5, "images_seen": 500}),
        ("best.pt", {"train_seconds": None, "epochs_done": None, "images_seen": None}),  # no budget recorded
    ]:
        torch.manual_seed(9)
        model = build_model(SMALL_MODEL)
        assert not torch.equal(model.eval()(x), expected)
        warm, before = load_warm_start(tmp_path / name, model)
        assert torch.equal(model.eval()(x), expected)
        assert warm == {"path": str(tmp_path / name), "sha256": sha256_file(tmp_path / name)} and before == budget


def test_the_images_seen_by_an_older_run_state_come_from_its_manifest(tmp_path):
    """The released state predates counting images in the state: its manifest beside it has them."""
    weights = source_network().state_dict()
    save_state(
        tmp_path / "old.pt", {"fingerprint": "a", "epoch": 79, "train_seconds": 3600.0, "best_state_dict": weights}
    )
    manifest = tmp_path / "old.json"
    for record, images in [
        ({"fingerprint": "a", "epochs_done": 80, "images_seen": 1425920}, 1425920),
        ({"fingerprint": "b", "epochs_done": 80, "images_seen": 1425920}, None),  # another run's manifest
        ({"fingerprint": "a", "epochs_done": 79, "images_seen": 1408096}, None),  # an earlier epoch's
    ]:
        manifest.write_text(json.dumps(record))
        _, before = load_warm_start(tmp_path / "old.pt", build_model(SMALL_MODEL))
        assert before == {"train_seconds": 3600.0, "epochs_done": 80, "images_seen": images}


def test_warm_start_refuses_a_missing_file_an_other_network_and_the_runs_own_copy(tmp_path):
    save_state(
        tmp_path / "state.pt", {"epoch": 0, "train_seconds": 1.0, "best_state_dict": source_network().state_dict()}
    )
    with pytest.raises(TrainError, match=re.escape(f"{tmp_path / 'gone.pt'}: train.warm_start names no file")):
        load_warm_start(tmp_path / "gone.pt", build_model(SMALL_MODEL))
    wider = build_model({**SMALL_MODEL, "deconv_channels": 32})
    with pytest.raises(TrainError, match=re.escape(f"{tmp_path / 'state.pt'}: train.warm_start's head.")) as err:
        load_warm_start(tmp_path / "state.pt", wider)
    assert "(16," in str(err.value) and "(32," in str(err.value)  # both shapes named
    (tmp_path / "foreign.pt").write_bytes(b"not a torch file")
    with pytest.raises(TrainError, match="foreign.pt: train.warm_start is unreadable"):
        load_warm_start(tmp_path / "foreign.pt", build_model(SMALL_MODEL))
    files = RunFiles(tmp_path / "out" / "best.pt", tmp_path / "ckpt" / "last.pt", tmp_path / "state.pt")
    with pytest.raises(TrainError, match=re.escape(f"{tmp_path / 'state.pt'}: train.warm_start is train.state_copy")):
        files.check_warm_start(str(tmp_path / "state.pt"))
    with pytest.raises(TrainError, match="is the best checkpoint of this run"):
        files.check_warm_start(str(tmp_path / "out" / ".." / "out" / "best.pt"))
    files.check_warm_start(str(tmp_path / "other.pt"))  # any other file: checked when it is loaded


def test_the_budget_adds_the_training_behind_a_warm_start():
    """The manifest states the whole budget: this run's plus the warm start's (and its own warm start's)."""
    first = {"epoch": 79, "train_seconds": 36000.0, "images_seen": 800, "budget_before": None}
    second = {"epoch": 9, "train_seconds": 3600.0, "images_seen": 100, "budget_before": run_budget(first)}
    assert run_budget(second) == {"train_seconds": 39600.0, "epochs_done": 90, "images_seen": 900}
    assert add_budgets(run_budget(second), {"train_seconds": 1.0, "epochs_done": 1, "images_seen": None}) == {
        "train_seconds": 39601.0,
        "epochs_done": 91,
        "images_seen": None,  # unknown before: unknown in all
    }
    warm = {"path": "runs/second.pt", "sha256": "ab" * 32}
    progress = Progress(
        next_epoch=3, train_seconds=1800.0, images_seen=30, warm_start=warm, budget_before=run_budget(second)
    )
    progress.best = {"score": 0.5, "epoch": 2, "metrics": dict.fromkeys(DEV_METRICS, 0.5)}
    result = EpochResult(loss=0.1, seen=10, seconds=600.0, data_seconds=6.0)
    summary = copy_summary("fp", small_train_config(), 2, result, progress.best["metrics"], progress, cuda=False)
    assert summary["train_hours"] == 0.5 and summary["total_train_hours"] == 11.5
    assert summary["images_seen"] == 30 and summary["total_images_seen"] == 930
    assert summary["warm_start"] == {
        **warm,
        "train_seconds": 39600.0,
        "train_hours": 11.0,
        "epochs_done": 90,
        "images_seen": 900,
    }
    assert progress.total_budget() == {"train_seconds": 41400.0, "epochs_done": 93, "images_seen": 930}
    alone = copy_summary(
        "fp",
        small_train_config(),
        2,
        result,
        progress.best["metrics"],
        Progress(3, progress.best, None, 1800.0, 30),
        False,
    )
    assert alone["total_train_hours"] == alone["train_hours"] == 0.5 and alone["warm_start"] is None


def test_the_same_weights_give_the_same_checkpoint_bytes(tmp_path):
    """Written through a temporary file of a random name, a checkpoint still has the same bytes,
    so that DVC sees an unchanged models/heatmap when a finished run writes best.pt again."""
    weights = source_network().state_dict()
    codec = HeatmapCodec(224, 28, 2.0)
    first = save_checkpoint(tmp_path / "a" / "best.pt", SMALL_MODEL, codec, weights, epoch=3)
    second = save_checkpoint(tmp_path / "b" / "best.pt", SMALL_MODEL, codec, weights, epoch=3)
    assert sha256_file(first) == sha256_file(second)
    save_state(tmp_path / "a" / "state.pt", {"fingerprint": "f", "epoch": 1})
    save_state(tmp_path / "b" / "state.pt", {"fingerprint": "f", "epoch": 1})
    assert sha256_file(tmp_path / "a" / "state.pt") == sha256_file(tmp_path / "b" / "state.pt")
    assert sha256_file(save_checkpoint(tmp_path / "c.pt", SMALL_MODEL, codec, weights, epoch=4)) != sha256_file(first)
