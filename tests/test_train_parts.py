"""Pieces of the training loop: precise BatchNorm, the learning-rate schedule, EMA, the sampler."""
import numpy as np
import pytest
import torch
from torch import nn

from handkp.models import build_model
import handkp.train
from handkp.train import EMA, EpochSampler, fingerprint, lr_factor, recalibrate_batchnorm


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
    """A checkpoint resumes only under the same params, data table and training code: a change of
    the model code that keeps the state-dict layout must start afresh."""
    table = tmp_path / "keypoints.parquet"
    table.write_bytes(b"table-1")
    params = {"model": {"deconv_channels": 64}, "train": {"epochs": 4}}
    fp = fingerprint(params, table)
    assert fingerprint(params, table) == fp
    assert fingerprint({**params, "train": {"epochs": 5}}, table) != fp
    table.write_bytes(b"table-2")
    assert fingerprint(params, table) != fp
    table.write_bytes(b"table-1")
    monkeypatch.setattr(handkp.train, "TRAINING_SOURCES", tuple(s for s in handkp.train.TRAINING_SOURCES if s != "models.py"))
    assert fingerprint(params, table) != fp  # models.py's text is part of it


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
