"""Short real trainings on the tiny fixture (CPU, one thread, 24 images an epoch): an interrupted
run with milder final epochs resumes to the very weights of the uninterrupted one, and a warm
start begins from another run's weights, refuses what it cannot use and adds up the budget."""

import json
import re
import shutil
from pathlib import Path

import cv2
import pytest
import torch
from conftest import TINY_ZIP

from handkp.core.io import sha256_file
from handkp.data.archive import DatasetArchive
from handkp.data.cache import write_image_cache
from handkp.data.dataset import keypoint_table, validate_dataset
from handkp.model import train as train_module
from handkp.model.train import TrainingData, train
from handkp.model.train_state import TrainError, run_budget

TRAIN = {
    "epochs": 2,
    "batch_size": 8,
    "lr": 0.002,
    "weight_decay": 0.0001,
    "warmup_epochs": 1,
    "min_lr_ratio": 0.01,
    "ema_decay": 0.999,
    "epoch_images": 24,
    "negative_fraction": 0.1,
    "select_metric": "auc_0_15px",
    "bn_recalibration_batches": 2,
    "num_workers": 0,
    "threads": 1,
    "device": "cpu",
    "state_copy": None,
    "augment": {"rotation_deg": 90, "scale": [0.5, 1.25], "translate": 0.15, "flip": 0.5, "occlusion": 0.15},
}
FINAL = {"final_epochs": 1, "final_augment": {"rotation_deg": 0, "occlusion": 0, "flip": 0}}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """The keypoint table and image cache of the tiny fixture (58 train, 6 dev images)."""
    out = tmp_path_factory.mktemp("tiny_train")
    with DatasetArchive(TINY_ZIP) as archive:
        samples, _ = validate_dataset(archive, 224, 1)
        table = keypoint_table(samples, 0.1, 42)
        table.write_parquet(out / "keypoints.parquet")
        write_image_cache(table, archive, out / "images", 224)
    return out


@pytest.fixture(autouse=True)
def in_tmp_with_threads_kept(tmp_path, monkeypatch):
    """Runs in a folder of its own (dvclive looks for a repository there) and gives the process
    its thread counts back (a run sets one thread for PyTorch and OpenCV)."""
    monkeypatch.chdir(tmp_path)
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(threads)
    cv2.setNumThreads(cv_threads)


def run_training(data: Path, run_dir: Path, **train_settings) -> dict:
    params = {
        "seed": 42,
        "model": {"deconv_layers": 3, "deconv_channels": 16, "head": "bilinear_dw", "backbone_tail": "light"},
        "codec": {"sigma": 2.0},
        "train": {**TRAIN, **train_settings},
    }
    return train(
        params, data / "keypoints.parquet", data / "images", run_dir / "best", run_dir / "ckpt", run_dir / "live"
    )


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


class Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_weights_of_the_whole_one_with_its_milder_final_epochs(
    tiny_data, tmp_path, monkeypatch
):
    whole = run_training(tiny_data, tmp_path / "whole", **FINAL)

    augment_of_epoch = {}
    start_epoch = TrainingData.start_epoch

    def spying_start_epoch(self, epoch, cfg):
        start_epoch(self, epoch, cfg)
        augment_of_epoch[epoch] = self.train_set.aug

    monkeypatch.setattr(TrainingData, "start_epoch", spying_start_epoch)
    train_epoch = train_module.train_epoch

    def stop_at_epoch_2(net, opt, data, run, cfg, epoch):
        if epoch == 1:
            raise Interrupted
        return train_epoch(net, opt, data, run, cfg, epoch)

    monkeypatch.setattr(train_module, "train_epoch", stop_at_epoch_2)
    with pytest.raises(Interrupted):
        run_training(tiny_data, tmp_path / "resumed", **FINAL)
    monkeypatch.setattr(train_module, "train_epoch", train_epoch)
    augment_of_epoch.clear()
    resumed = run_training(tiny_data, tmp_path / "resumed", **FINAL)

    assert list(augment_of_epoch) == [1]  # only the last epoch ran after the resume, with the final augmentation
    final = augment_of_epoch[1]
    assert (final.rotation_deg, final.occlusion, final.flip, final.translate) == (0, 0, 0, 0.15)
    assert resumed == whole
    last, last_whole = load(tmp_path / "resumed/ckpt/last.pt"), load(tmp_path / "whole/ckpt/last.pt")
    for key in ("model", "ema", "best_state_dict"):
        assert_same_tensors(last[key], last_whole[key])
    assert_same_tensors(
        load(tmp_path / "resumed/best/best.pt")["state_dict"], load(tmp_path / "whole/best/best.pt")["state_dict"]
    )

    run_training(tiny_data, tmp_path / "usual")  # the same run without the final augmentation
    usual = load(tmp_path / "usual/ckpt/last.pt")["model"]
    assert not all(torch.equal(usual[k], last_whole["model"][k]) for k in usual)


def test_a_warm_start_begins_from_the_weights_of_a_run_state_and_adds_up_the_budget(tiny_data, tmp_path):
    run_training(tiny_data, tmp_path / "first", epochs=1, state_copy=str(tmp_path / "first/copy.pt"))
    source = tmp_path / "source.pt"
    shutil.copyfile(tmp_path / "first/copy.pt", source)
    first = load(source)
    copy = tmp_path / "warm/copy.pt"

    with pytest.raises(TrainError, match=re.escape(f"{copy}: train.warm_start is train.state_copy of this run")):
        run_training(tiny_data, tmp_path / "warm", warm_start=str(copy), state_copy=str(copy))
    with pytest.raises(TrainError, match=re.escape(f"{tmp_path / 'gone.pt'}: train.warm_start names no file")):
        run_training(tiny_data, tmp_path / "warm", warm_start=str(tmp_path / "gone.pt"))

    # lr 0: the weights stay the warm start's, so what the run began from shows in what it saved
    run_training(tiny_data, tmp_path / "warm", epochs=1, lr=0.0, warm_start=str(source), state_copy=str(copy))
    state, record = load(tmp_path / "warm/ckpt/last.pt"), json.loads(copy.with_suffix(".json").read_text())
    params = {k for k, v in first["best_state_dict"].items() if v.dtype.is_floating_point and "running" not in k}
    for key in params:
        assert torch.equal(state["model"][key], first["best_state_dict"][key]), key
        torch.testing.assert_close(state["ema"][key], first["best_state_dict"][key])
    before = run_budget(first)
    assert before == {"train_seconds": first["train_seconds"], "epochs_done": 1, "images_seen": 24}
    assert state["budget_before"] == before and state["warm_start"] == {
        "path": str(source),
        "sha256": sha256_file(source),
    }
    assert record["warm_start"] == {
        **state["warm_start"],
        **before,
        "train_hours": round(before["train_seconds"] / 3600, 3),
    }
    total_seconds = before["train_seconds"] + state["train_seconds"]
    assert record["total_train_hours"] == round(total_seconds / 3600, 3) and record["total_images_seen"] == 48
    best = load(tmp_path / "warm/best/best.pt")
    assert best["budget"] == {"train_seconds": total_seconds, "epochs_done": 2, "images_seen": 48}

    source.unlink()  # the run has a state of its own now: the warm start is no longer read
    run_training(tiny_data, tmp_path / "warm", epochs=1, lr=0.0, warm_start=str(source), state_copy=str(copy))
    assert load(tmp_path / "warm/best/best.pt")["budget"] == best["budget"]
