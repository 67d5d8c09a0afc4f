"""The Ultralytics YOLO-pose baseline: its dataset yaml, its outputs in the shared `dvc repro`
run, the decode of its raw output, and one evaluator for both models."""

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import polars as pl
import pytest
import yaml
from conftest import METRIC_KEYS, REPO, TINY_ZIP, dvc

from handkp.core.codec import HeatmapCodec
from handkp.core.keypoints import FLIP_INDEX, NUM_KEYPOINTS
from handkp.core.metrics import compute_metrics
from handkp.data.archive import ArchiveError, DatasetArchive
from handkp.data.dataset import keypoint_table, validate_dataset
from handkp.data.fetch import fetch_dataset
from handkp.evaluate.evaluation import evaluate_model
from handkp.runtime import Predictor
from handkp.runtime.decoders import YOLO_CONF_THRESHOLD, HeatmapDecoder, YoloPoseDecoder
from handkp.runtime.loader import onnx_decoder
from handkp.runtime.predictor import Letterbox
from handkp.yolo.dataset import bad_samples, read_image_lists, split_images, stage_view, write_dataset_yaml
from handkp.yolo.export import export_onnx

NK = 3 * NUM_KEYPOINTS


# ---- the shared pipeline run ----------------------------------------------------------------
def test_dataset_yaml_has_identity_flip_map_and_the_heatmap_models_images(pipeline_run):
    data = yaml.safe_load((pipeline_run / "data/yolo/dataset.yaml").read_text())
    assert data["kpt_shape"] == [21, 3]
    assert data["flip_idx"] == list(range(21)) == list(FLIP_INDEX)
    assert data["names"] == {0: "hand"}
    lists = read_image_lists(pipeline_run / "data/yolo/dataset.yaml")
    table = pl.read_parquet(pipeline_run / "data/prepared/keypoints.parquet")
    with DatasetArchive(pipeline_run / "data/raw.zip") as archive:
        in_archive = set(archive.files("train", "images").values())
    # like the heatmap model: train on the train split minus the dev slice, select on the dev slice
    for ours, split in (("train", "train"), ("val", "dev")):
        expected = sorted(table.filter(pl.col("split") == split)["image"].unique().to_list())
        assert lists[ours] == expected and set(expected) <= in_archive
    assert len(lists["train"]) + len(lists["val"]) == 64 and len(lists["val"]) == round(0.1 * 64)
    # Ultralytics' label caches went to a temporary view, not into any stage's output
    assert not list(pipeline_run.rglob("*.cache"))
    assert not (pipeline_run / "runs").exists() and not (pipeline_run / "weights").exists()


def test_yolo_training_export_and_curves(pipeline_run):
    assert (pipeline_run / "models/yolo/best.pt").stat().st_size > 1_000_000
    decoder, size = onnx_decoder(pipeline_run / "models/yolo.onnx")
    assert (decoder.kind, getattr(decoder, "codec", None), size) == ("yolo", None, 224)
    import onnx

    model = onnx.load(str(pipeline_run / "models/yolo.onnx"), load_external_data=False)
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 224, 224]
    assert [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim][:2] == [1, 4 + 1 + NK]
    live = json.loads((pipeline_run / "reports/train/yolo/metrics.json").read_text())
    assert {"box_loss", "pose_loss", "lr", "images_per_s"} <= set(live["train"])
    # Ultralytics validates every epoch on the dev slice (the val split stays unseen): dev/ curves
    assert {"mAP50_pose", "mAP50_95_pose", "mAP50_box", "pck_5px", "missed_images"} <= set(live["dev"])
    assert "val" not in live
    rows = (pipeline_run / "reports/train/yolo/plots/metrics/train/pose_loss.tsv").read_text().splitlines()
    assert rows[0] == "step\tpose_loss" and len(rows) == 1 + 1  # one row per epoch (FAST_PARAMS: 1 epoch)


def test_exporting_the_same_weights_again_writes_the_same_bytes(pipeline_run, tmp_path):
    """Ultralytics stamps the export time into the metadata; the export leaves it out, so a stage
    that exports unchanged weights again keeps its file's hash (and every stage after it stays)."""
    import onnx

    again = export_onnx(pipeline_run / "models/yolo/best.pt", tmp_path / "again.onnx", 224)
    assert again.read_bytes() == (pipeline_run / "models/yolo.onnx").read_bytes()
    meta = {p.key for p in onnx.load(str(again), load_external_data=False).metadata_props}
    assert {"task", "kpt_shape", "imgsz"} <= meta and "date" not in meta


def test_yolo_metrics_in_range_and_recomputed_from_predictions(pipeline_run):
    metrics = json.loads((pipeline_run / "reports/metrics/yolo.json").read_text())
    heatmap = json.loads((pipeline_run / "reports/metrics/heatmap.json").read_text())
    assert set(metrics) == set(heatmap) == METRIC_KEYS
    pcks = [metrics[f"pck_{t}px"] for t in (1, 3, 5, 7, 10)]
    assert all(0 <= p <= 1 for p in pcks) and pcks == sorted(pcks)
    assert 0 <= metrics["auc_0_15px"] <= 1
    assert metrics["n_images"] == 32 and 0 < metrics["n_keypoints"] <= 32 * 21
    assert 0 <= metrics["missed_images"] <= 32
    if metrics["missed_images"] < 32:
        assert 0 <= metrics["epe_median_px"] and 0 <= metrics["epe_mean_px"]
    pred = pl.read_parquet(pipeline_run / "reports/predictions/yolo_val.parquet")
    assert pred.columns == ["image", "keypoint", "x", "y", "score"]
    assert pred.height == (32 - metrics["missed_images"]) * 21
    gt = pl.read_parquet(pipeline_run / "data/prepared/keypoints.parquet").filter(pl.col("split") == "val")
    recomputed, _, _ = compute_metrics(gt, pred)
    for key in ("pck_1px", "pck_3px", "pck_5px", "pck_7px", "pck_10px", "auc_0_15px", "missed_images"):
        assert recomputed[key] == pytest.approx(metrics[key], abs=1e-6)
    curve = pl.read_csv(pipeline_run / "reports/eval/yolo/pck_curve.csv")
    assert curve.columns == ["threshold_px", "pck"]
    assert pl.read_csv(pipeline_run / "reports/eval/yolo/per_keypoint.csv").height == 21


def test_ultralytics_map_is_measured_on_the_val_split_and_released(pipeline_run):
    """yolo_map: Ultralytics' own validator on the 32 val images (not the 6-image dev slice it
    validates on while training); the release manifest carries the same figures."""
    figures = json.loads((pipeline_run / "reports/metrics/yolo_map.json").read_text())
    assert (figures["n_images"], figures["imgsz"]) == (32, 224)
    for kind in ("box", "pose"):
        assert set(figures[kind]) == {"precision", "recall", "map50", "map50_95"}
        assert all(0 <= v <= 1 for v in figures[kind].values())
        assert figures[kind]["map50_95"] <= figures[kind]["map50"]
    manifest = json.loads((pipeline_run / "release/manifest.json").read_text())
    assert manifest["detector"]["val_map"] == figures


def test_yolo_stages_are_up_to_date_after_the_run(pipeline_run):
    """Nothing the YOLO stages run (Ultralytics' caches, runs folder) changes a declared file."""
    assert "up to date" in dvc(["status", "yolo_evaluate", "yolo_map"], pipeline_run).stdout


# ---- the dataset yaml ---------------------------------------------------------------------
def test_bad_samples_of_the_quality_report_are_left_out(tiny_dataset, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(tiny_dataset, raw)
    root = raw / "hand-keypoints"
    train_images = sorted((root / "train/images").iterdir())
    truncated, unlabelled = train_images[3], train_images[7]
    truncated.write_bytes(truncated.read_bytes()[:200])
    (root / "train/labels" / f"{unlabelled.stem}.txt").unlink()
    val_label = sorted((root / "val/labels").iterdir())[2]
    val_label.write_text("0 0.5 0.5 0.2\n")  # too few fields
    with DatasetArchive(fetch_dataset(str(raw), tmp_path / "raw.zip", 100)) as archive:
        samples, report = validate_dataset(archive, 224, 1)
    bad = {b["path"] for b in report["bad"]}
    assert len(bad) == 3
    table = keypoint_table(samples, 0.1, 42)
    path = write_dataset_yaml(table, report, tmp_path / "yolo")
    listed = {im for ims in read_image_lists(path).values() for im in ims}
    assert truncated.relative_to(raw).as_posix() in bad and truncated.relative_to(raw).as_posix() not in listed
    assert unlabelled.relative_to(raw).as_posix() not in listed
    assert len(listed) == 64 - 2  # train minus the bad ones: train minus dev, and dev for validation
    assert not any(im.startswith("hand-keypoints/val/") for im in listed)  # the val split stays unseen
    table = table.with_columns(pl.col("split").replace("dev", "train"))  # no dev slice: val validates
    path = write_dataset_yaml(table, report, tmp_path / "no-dev")
    val_listed = set(read_image_lists(path)["val"])
    assert len(val_listed) == 32 - 1 and f"hand-keypoints/val/images/{val_label.stem}.jpg" not in val_listed
    # even a table that still holds a bad sample: the report decides
    also_bad = sorted(listed)[0]
    report["bad"].append({"path": also_bad, "split": "train", "reason": "test"})
    path = write_dataset_yaml(table, report, tmp_path / "yolo2")
    assert also_bad not in {im for ims in read_image_lists(path).values() for im in ims}


def test_the_view_ultralytics_reads_is_extracted_from_the_archive(tmp_path):
    """stage_view: the listed images and their labels as files, byte for byte; a listed member
    the archive lacks is named."""
    archive_path = fetch_dataset(str(TINY_ZIP), tmp_path / "raw.zip", 100)
    with DatasetArchive(archive_path) as archive:
        samples, report = validate_dataset(archive, 224, 1)
        path = write_dataset_yaml(keypoint_table(samples, 0.1, 42), report, tmp_path / "yolo")
        view = yaml.safe_load(stage_view(path, archive, tmp_path / "view").read_text())
        lists = read_image_lists(path)
        for split in ("train", "val"):
            files = sorted((tmp_path / "view" / view[split]).iterdir())
            assert [f.name for f in files] == sorted(im.rsplit("/", 1)[1] for im in lists[split])
            image = lists[split][0]
            assert (tmp_path / "view/images" / split / image.rsplit("/", 1)[1]).read_bytes() == archive.read(image)
            label = image.replace("/images/", "/labels/").replace(".jpg", ".txt")
            assert (tmp_path / "view/labels" / split / label.rsplit("/", 1)[1]).read_bytes() == archive.read(label)
        assert view["flip_idx"] == list(range(21)) and view["kpt_shape"] == [21, 3]
        # other lists than the yaml's (the yolo_map stage: the val split only), the yaml's classes and flip map
        table = keypoint_table(samples, 0.1, 42)
        val_split = split_images(table, "val", bad_samples(report))
        assert len(val_split) == 32 and all(im.startswith("hand-keypoints/val/images/") for im in val_split)
        view_yaml = stage_view(path, archive, tmp_path / "view3", {"train": [], "val": val_split})
        view = yaml.safe_load(view_yaml.read_text())
        assert (view["train"], view["val"], view["flip_idx"]) == ("images/train", "images/val", list(range(21)))
        assert not list((tmp_path / "view3/images/train").iterdir())
        assert sorted(f.name for f in (tmp_path / "view3/images/val").iterdir()) == sorted(
            im.rsplit("/", 1)[1] for im in val_split
        )
        assert len(list((tmp_path / "view3/labels/val").iterdir())) == 32
        (tmp_path / "yolo/val.txt").write_text("hand-keypoints/train/images/IMG_99999999.jpg\n")
        with pytest.raises(ArchiveError, match="raw.zip: no member 'hand-keypoints/train/images/IMG_99999999.jpg'"):
            stage_view(path, archive, tmp_path / "view2")


# ---- decoding ---------------------------------------------------------------------------
def _raw_output(
    keypoints_by_anchor: dict[int, tuple[np.ndarray, float]], anchors: int = 1029, nc: int = 1
) -> np.ndarray:
    """A (1, 4 + nc + 63, A) tensor as Ultralytics exports it; the given anchors hold (keypoints (21, 3), score)."""
    raw = np.zeros((1, 4 + nc + NK, anchors), np.float32)
    raw[0, 4 : 4 + nc] = 0.01
    for a, (kp, score) in keypoints_by_anchor.items():
        raw[0, :4, a] = [100, 100, 50, 50]
        raw[0, 4 + nc - 1, a] = score
        raw[0, 4 + nc :, a] = kp.reshape(-1)  # x0 y0 v0 x1 y1 v1 ...
    return raw


def decode_pose_output(raw, conf_threshold=YOLO_CONF_THRESHOLD):
    """The YOLO decoder on one raw output, in network-input px: (keypoints, scores, found, presence)."""
    p = YoloPoseDecoder(conf_threshold).decode(raw, Letterbox(1.0, 0.0, 0.0))
    return p.keypoints, p.scores, p.found, p.presence


def test_decode_pose_output_picks_the_best_detection():
    rng = np.random.default_rng(0)
    best = np.concatenate([rng.uniform(0, 224, (21, 2)), rng.uniform(0, 1, (21, 1))], axis=1).astype(np.float32)
    other = best.copy()
    other[:, :2] += 30
    raw = _raw_output({17: (other, 0.6), 512: (best, 0.9)})
    kp, scores, found, presence = decode_pose_output(raw)
    assert presence == pytest.approx(0.9)
    assert found and kp.shape == (21, 2) and kp.dtype == np.float32 and scores.dtype == np.float32
    np.testing.assert_allclose(kp, best[:, :2], atol=1e-4)
    np.testing.assert_allclose(scores, best[:, 2], atol=1e-6)
    kp, _, found, _ = decode_pose_output(_raw_output({3: (best, 0.9)}, nc=3))  # several classes: the best score
    assert found and np.allclose(kp, best[:, :2], atol=1e-4)
    nms_free = np.zeros((1, 300, 6 + NK), np.float32)
    nms_free[0, 5, 4], nms_free[0, 5, 6:] = 0.8, best.reshape(-1)
    kp, _, found, _ = decode_pose_output(nms_free)
    assert found and np.allclose(kp, best[:, :2], atol=1e-4)


def test_decode_pose_output_without_a_confident_detection():
    kp = np.full((21, 3), 50.0, np.float32)
    keypoints, scores, found, presence = decode_pose_output(_raw_output({4: (kp, YOLO_CONF_THRESHOLD * 0.9)}))
    assert not found and np.isnan(keypoints).all() and keypoints.shape == (21, 2) and (scores == 0).all()
    assert presence == pytest.approx(YOLO_CONF_THRESHOLD * 0.9)
    assert decode_pose_output(_raw_output({4: (kp, 0.1)}), conf_threshold=0.05)[2]
    # the threshold is the decoder's own: a predictor built with a lower one finds the hand
    image = np.zeros((224, 224, 3), np.uint8)
    weak = _raw_output({4: (kp, 0.1)})
    assert not Predictor(YoloPoseDecoder(), "test", lambda x: weak, 224).predict(image).found
    found = Predictor(YoloPoseDecoder(conf_threshold=0.05), "test", lambda x: weak, 224).predict(image)
    assert found.found and np.allclose(found.keypoints, 50.0)


# ---- one evaluator for both models --------------------------------------------------------
def test_evaluator_gives_the_same_pck_for_yolo_and_heatmap_predictions(tmp_path):
    """The same keypoints, once as heatmaps (decoded by the codec) and once as a YOLO output
    (picked by decode_pose_output), through the runtime and the evaluator: the same metrics.
    An image where the YOLO model finds no hand counts all its visible keypoints as misses."""
    rng = np.random.default_rng(1)
    codec = HeatmapCodec(224, 56, 2.0)
    raw_root, n = tmp_path / "raw", 6
    (raw_root / "hand-keypoints/val/images").mkdir(parents=True)
    rows, heatmaps, yolo_raw = [], [], []
    for i in range(n):
        image = f"hand-keypoints/val/images/im{i}.jpg"
        cv2.imwrite(str(raw_root / image), np.full((224, 224, 3), 90, np.uint8))
        gt = rng.uniform(20, 200, (21, 2))
        visibility = np.where(rng.uniform(size=21) < 0.15, 0, 2)
        rows += [
            {
                "image": image,
                "split": "val",
                "keypoint": k,
                "x": gt[k, 0],
                "y": gt[k, 1],
                "visibility": int(visibility[k]),
            }
            for k in range(21)
        ]
        predicted = gt + rng.normal(0, 3, (21, 2))
        hm, _ = codec.encode(predicted, np.ones(21, bool))
        heatmaps.append(hm)
        decoded, _ = codec.decode(hm[None])
        kp = np.concatenate([decoded[0], np.full((21, 1), 0.9, np.float32)], axis=1)
        yolo_raw.append(_raw_output({int(rng.integers(1029)): (kp, 0.8)})[0])
    table = pl.DataFrame(
        rows, schema_overrides={"keypoint": pl.Int8, "x": pl.Float32, "y": pl.Float32, "visibility": pl.Int8}
    )

    def replay(outputs):
        it = iter(outputs)
        return lambda x: np.stack([next(it) for _ in range(x.shape[0])])

    hm_metrics = evaluate_model(
        Predictor(HeatmapDecoder(codec), "test", replay(heatmaps), 224),
        table,
        raw_root,
        "val",
        "heatmap",
        tmp_path / "reports",
        batch_size=4,
    )
    yolo_metrics = evaluate_model(
        Predictor(YoloPoseDecoder(), "test", replay(yolo_raw), 224),
        table,
        raw_root,
        "val",
        "yolo",
        tmp_path / "reports",
        batch_size=4,
    )
    assert 0 < hm_metrics["pck_3px"] < 1
    for key in METRIC_KEYS:
        assert yolo_metrics[key] == pytest.approx(hm_metrics[key], abs=1e-5), key
    a = pl.read_parquet(tmp_path / "reports/predictions/heatmap_val.parquet")
    b = pl.read_parquet(tmp_path / "reports/predictions/yolo_val.parquet")
    np.testing.assert_allclose(a.select("x", "y").to_numpy(), b.select("x", "y").to_numpy(), atol=1e-4)

    missed = [r.copy() for r in yolo_raw]
    missed[2][4] = 0.0  # no confident detection in the third image
    m = evaluate_model(
        Predictor(YoloPoseDecoder(), "test", replay(missed), 224),
        table,
        raw_root,
        "val",
        "yolo",
        tmp_path / "reports",
        batch_size=4,
    )
    visible = table.filter(pl.col("visibility") > 0)
    hits_lost = compute_metrics(visible.filter(pl.col("image") == "hand-keypoints/val/images/im2.jpg"), a)[0][
        "pck_10px"
    ]
    n_third = visible.filter(pl.col("image") == "hand-keypoints/val/images/im2.jpg").height
    assert m["missed_images"] == 1 and m["n_keypoints"] == hm_metrics["n_keypoints"]
    assert m["pck_10px"] == pytest.approx(hm_metrics["pck_10px"] - hits_lost * n_third / visible.height, abs=1e-6)


# ---- offline ----------------------------------------------------------------------------
def test_pretrained_download_offline_fails_with_a_clear_message(tmp_path):
    """`yolo.pretrained: download` without internet: the stage stops at once and says what to do.
    The network is made unreachable for this process (a dead proxy, offline mode)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["yolo"]["pretrained"] = "download"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    dead = "http://127.0.0.1:9"
    env = {
        **os.environ,
        "YOLO_OFFLINE": "1",
        "HTTPS_PROXY": dead,
        "HTTP_PROXY": dead,
        "https_proxy": dead,
        "http_proxy": dead,
        "NO_PROXY": "",
        "no_proxy": "",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    proc = subprocess.run(
        [sys.executable, str(REPO / "stages/yolo_train.py")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith(
        "yolo_train failed: yolo.pretrained = download: cannot download the official yolo11n-pose.pt"
    )
    assert "yolo.pretrained = none" in message and "path" in message
    assert not list((tmp_path / "cache").rglob("*.pt"))  # no partial file left behind
    assert not (tmp_path / "models").exists()
