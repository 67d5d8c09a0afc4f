"""The YOLO run: its augmentation arguments, its fingerprint, and a real Ultralytics run on the
tiny fixture that is interrupted, continued on a "new machine" from the committed copy alone,
and, once finished, gives its best weights again without training."""

import json
import shutil

import numpy as np
import pytest
from conftest import TINY_ZIP

from handkp.data.archive import DatasetArchive
from handkp.data.dataset import keypoint_table, validate_dataset
from handkp.data.fetch import fetch_dataset
from handkp.yolo import run_state
from handkp.yolo.augment import ultralytics_augment
from handkp.yolo.dataset import write_dataset_yaml
from handkp.yolo.train import DevKeypoints, RunRecorder, curve_name, train_yolo
from handkp.yolo.ultralytics import YoloError

HEATMAP_CONDITIONS = {
    "low_light": 0.15,
    "low_light_range": [0.2, 0.6],
    "gamma": 0.3,
    "gamma_range": [0.5, 2.0],
    "blur": 0.1,
    "blur_sigma": [0.5, 1.5],
    "motion_blur": 0.1,
    "motion_blur_px": [5, 11],
    "noise": 0.2,
    "noise_sigma": [3.0, 20.0],
    "jpeg": 0.2,
    "jpeg_quality": [15, 75],
}


def test_augment_keeps_ultralytics_keys_and_adds_the_heatmap_runs_camera_conditions():
    args = ultralytics_augment({"degrees": 90, "scale": 0.5, **HEATMAP_CONDITIONS})
    assert args["degrees"] == 90 and args["scale"] == 0.5
    by_name = {type(t).__name__: t for t in args["augmentations"]}
    assert list(by_name) == [
        "MultiplicativeNoise",
        "RandomGamma",
        "GaussianBlur",
        "MotionBlur",
        "GaussNoise",
        "ImageCompression",
    ]
    assert by_name["GaussNoise"].std_range == pytest.approx((3 / 255, 20 / 255))  # grey levels as a fraction of 255
    assert tuple(by_name["RandomGamma"].gamma_limit) == (50, 200)  # percent
    assert tuple(by_name["ImageCompression"].quality_range) == (15, 75)
    assert by_name["MultiplicativeNoise"].p == 0.15 and not by_name["MultiplicativeNoise"].elementwise
    # each transform only changes pixels: the image keeps its shape and type, keypoints do not move
    image = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    for t in by_name.values():
        t.p = 1.0
        out = t(image=image)["image"]
        assert out.shape == image.shape and out.dtype == np.uint8 and not np.array_equal(out, image)
    assert "augmentations" not in ultralytics_augment({"degrees": 10, "blur": 0.0})  # probability 0: left out


@pytest.mark.parametrize(
    "section, message",
    [
        ({"rotation_deg": 90}, r"unknown keys \['rotation_deg'\]"),
        ({"noise": 1.5, "noise_sigma": [3, 20]}, r"yolo.augment.noise = 1.5: expected a probability"),
        ({"jpeg": 0.2, "jpeg_quality": [75, 15]}, r"yolo.augment.jpeg_quality = \[75, 15\]: expected \[low, high\]"),
    ],
)
def test_augment_refuses_bad_settings_by_name(section, message):
    with pytest.raises(YoloError, match=message):
        ultralytics_augment(section)


def test_fingerprint_follows_what_the_run_computes_and_its_data(tmp_path):
    data = tmp_path / "train.txt"
    data.write_text("a.jpg\n")
    args = {
        "epochs": 80,
        "batch": 32,
        "degrees": 90,
        **ultralytics_augment(HEATMAP_CONDITIONS),
        "workers": 0,
        "cache": "ram",
    }
    fp = run_state.fingerprint(args, [data])
    assert run_state.fingerprint({**args, "workers": 2, "cache": False, "device": "0", "project": "/x"}, [data]) == fp
    assert run_state.fingerprint({**args, "epochs": 81}, [data]) != fp
    assert run_state.fingerprint({**args, **ultralytics_augment({**HEATMAP_CONDITIONS, "noise": 0.3})}, [data]) != fp
    data.write_text("b.jpg\n")
    assert run_state.fingerprint(args, [data]) != fp


def test_curve_names_say_the_per_epoch_validation_is_the_dev_slice():
    assert curve_name("metrics/mAP50(B)") == "dev/mAP50_box"
    assert curve_name("val/pose_loss") == "dev/pose_loss"
    assert curve_name("train/kobj_loss") == "train/kobj_loss" and curve_name("lr/pg0") == "train/lr"


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def tiny_yolo_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("yolo-run")
    archive = fetch_dataset(str(TINY_ZIP), root / "raw.zip", 100)
    with DatasetArchive(archive) as a:
        samples, report = validate_dataset(a, 224, 1)
    table = keypoint_table(samples, 0.1, 42)
    dev = table.filter(table["split"] == "dev").sort(["image", "keypoint"])
    return write_dataset_yaml(table, report, root / "yolo"), archive, dev


def test_interrupted_run_continues_from_the_copy_alone_then_gives_its_best_without_training(
    tiny_yolo_data, tmp_path, monkeypatch
):
    data_yaml, archive, dev_table = tiny_yolo_data
    cfg = {
        "model": "yolo11n-pose",
        "pretrained": "none",
        "imgsz": 224,
        "epochs": 2,
        "batch": 8,
        "workers": 0,
        "device": "cpu",
        "cache": False,
        "augment": {"degrees": 90, **HEATMAP_CONDITIONS},
        "state_copy": str(tmp_path / "release/yolo_run"),
    }
    images = np.zeros((4, 224, 224, 3), np.uint8)
    keypoints = dev_table["x", "y", "visibility"].to_numpy().astype(np.float32).reshape(-1, 21, 3)[:4]
    dev = lambda: DevKeypoints(images, keypoints, conf_threshold=0.0)  # noqa: E731
    copy = tmp_path / "release/yolo_run"

    def run(run_dir):
        return train_yolo(cfg, 42, data_yaml, archive, tmp_path / "out", tmp_path / "live", run_dir=run_dir, dev=dev)

    # the first machine: interrupted right after epoch 1 was saved and copied
    saved = RunRecorder.on_model_save

    def save_then_stop(self, trainer):
        saved(self, trainer)
        raise Interrupted

    monkeypatch.setattr(RunRecorder, "on_model_save", save_then_stop)
    with pytest.raises(Interrupted):
        run(tmp_path / "machine1")
    monkeypatch.setattr(RunRecorder, "on_model_save", saved)
    record = json.loads((copy / "state.json").read_text())
    assert (record["epochs_done"], record["epochs"], record["finished"]) == (1, 2, False)
    assert {"last.pt", "best.pt", "state.json"} <= {p.name for p in copy.iterdir()}
    assert set(record["history"][0]["dev"]) == {"pck_1px", "pck_3px", "pck_5px", "pck_7px", "pck_10px", "missed_images"}

    # a new machine: only the copy; the run continues at epoch 2 and finishes
    record = run(tmp_path / "machine2")
    assert (record["epochs_done"], record["finished"]) == (2, True)
    assert [h["epoch"] for h in record["history"]] == [1, 2]
    results = (tmp_path / "out/results.csv").read_text().splitlines()
    assert [line.split(",")[0].strip() for line in results[1:]] == ["1", "2"]  # the whole run's rows
    steps = (tmp_path / "live/plots/metrics/dev/pck_5px.tsv").read_text().splitlines()
    assert len(steps) == 1 + 2  # header + both epochs, epoch 1's from the first machine
    assert not (copy / "last.pt").exists() and (copy / "best.pt").is_file()  # finished: the run state goes

    # a third machine, the run finished: best.pt from the copy, no training
    monkeypatch.setattr("ultralytics.YOLO.train", lambda *a, **k: pytest.fail("trained again"))
    record = run(tmp_path / "machine3")
    assert record["finished"] and (tmp_path / "out/best.pt").read_bytes() == (copy / "best.pt").read_bytes()
    # the run folder (the stage's out) holds the finished run, and is enough on its own next time
    assert (tmp_path / "machine3/weights/best.pt").read_bytes() == (copy / "best.pt").read_bytes()
    assert run_state.resumable(tmp_path / "machine3", tmp_path / "machine3/weights", record["fingerprint"])
    shutil.rmtree(copy)
    assert run(tmp_path / "machine3")["finished"]


def test_a_run_of_other_params_is_not_resumed(tmp_path, capsys):
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / "last.pt").write_bytes(b"x")
    run_state.write_record(folder, {"fingerprint": "aaaa", "epochs": 2, "epochs_done": 1})
    assert run_state.resumable(folder, folder, "aaaa")["epochs_done"] == 1
    assert run_state.resumable(folder, folder, "bbbb") is None
    assert "a run of other params or data" in capsys.readouterr().out
    (folder / "last.pt").unlink()
    assert run_state.resumable(folder, folder, "aaaa") is None
