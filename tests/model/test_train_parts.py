"""Pieces of the training loop: precise BatchNorm, the learning-rate schedule, EMA, the sampler,
the resume fingerprint and the training samples (augmentation, hand-free images)."""

import numpy as np
import pytest
import torch
from torch import nn

from handkp.core.codec import HeatmapCodec
from handkp.data.augment import AugmentConfig
from handkp.model import train_state
from handkp.model.batches import EpochSampler, HeatmapDataset
from handkp.model.network import build_model
from handkp.model.optimisation import EMA, lr_factor, recalibrate_batchnorm
from handkp.model.train_state import fingerprint, newest_state, save_state


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


def test_training_code_of_the_fingerprint_is_what_dvc_tracks_for_train():
    """The fingerprint hashes the subpackages the train stage depends on in dvc.yaml."""
    import yaml
    from conftest import REPO

    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["train"]["deps"]
    assert {f"handkp/{p}" for p in train_state.TRAINING_PACKAGES} <= set(deps)
    sources = {p.relative_to(REPO).parts[1] for p in train_state.training_sources()}
    assert sources == set(train_state.TRAINING_PACKAGES)


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
