"""The refine pass (``load_predictor(..., refine=True)``, ``Predictor.refined``): the hand found
on the whole image (letterboxed), then the model again on the hand's upright crop placed from
those keypoints (MediaPipe's landmarks -> ROI -> landmarks), keypoints back in image px.

A STAND-IN model that knows where each of its inputs came from: the image's background encodes
its own coordinates (R: x, G: y, B: a fixed code), so from any input (the letterboxed image or a
rotated crop) the stand-in fits the affine input px -> image px and returns a known hand's
keypoints in input px, shifted by a fixed error in input px (so a pass's keypoints say which
input they came from), with its presence = the input's scale (input px per image px).

Also the real network code (a tiny random-weight export: refine with the flip test, ``python -m
handkp evaluate --refine``), a YOLO file refusing, and the released model on small hands (skipped
until release/heatmap.onnx exists)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import REPO, TINY_ZIP
from standin_models import standin_yolo_onnx, tiny_heatmap_onnx, yolo_raw
from synthetic_hands import hand

from handkp.__main__ import main as cli_main
from handkp.core.errors import ModelLoadError
from handkp.core.images import read_rgb
from handkp.core.keypoints import IMAGE_SIZE, NUM_KEYPOINTS
from handkp.core.metrics import compute_metrics
from handkp.core.roi import crop, roi_from_keypoints, to_crop, to_frame
from handkp.data.archive import DatasetArchive
from handkp.data.cache import ImageCache, write_image_cache
from handkp.data.dataset import keypoint_table, parse_label, validate_dataset
from handkp.evaluate.evaluation import predict_images, rounded
from handkp.runtime import Prediction, Predictor, load_predictor
from handkp.runtime.decoders import rgb_to_nchw

CODE = 200  # B of the encoded background (the letterbox and crop borders are BORDER_RGB, black)
ERROR = np.array([3.0, -2.0], np.float32)  # the stand-in's error, input px
W, H = 672, 504  # letterboxed to 224: a third, whole pixel blocks (INTER_AREA exact)
FIT = 0.3  # px: how well the stand-in knows where its input came from (the encoding's quantisation)
TRUTH = hand(300, 330, palm_px=70, turn=0.6).astype(np.float32)  # the hand the stand-in "sees", image px


def encoded() -> np.ndarray:
    """RGB (H, W, 3): R = ⌊x · 256 / W⌋, G = ⌊y · 256 / H⌋ (x, y: pixel centres), B = CODE."""
    out = np.empty((H, W, 3), np.uint8)
    out[..., 0] = np.floor((np.arange(W) + 0.5) * 256 / W)[None, :]
    out[..., 1] = np.floor((np.arange(H) + 0.5) * 256 / H)[:, None]
    out[..., 2] = CODE
    return out


class StandinDecoder:
    """raw (1, 1 + 2K): presence (<= 0: no hand, NaN keypoints), then the K keypoints in input px."""

    kind, pad_value = "heatmap", (0, 0, 0)
    to_input = staticmethod(rgb_to_nchw)

    @staticmethod
    def decode(raw, box):
        presence = float(raw[0, 0])
        if presence <= 0:
            return Prediction(
                np.full((NUM_KEYPOINTS, 2), np.nan, np.float32), np.zeros(NUM_KEYPOINTS, np.float32), False, 0.0
            )
        kp = box.to_image(raw[0, 1:].reshape(NUM_KEYPOINTS, 2))
        return Prediction(kp, np.full(NUM_KEYPOINTS, presence, np.float32), True, presence)


class Standin:
    """The stand-in backend (module docstring): an input without the encoded background holds no
    hand. ``calls``: each call's input; ``finds``: per call, whether it finds the hand at all
    (default: always)."""

    def __init__(self, finds: list[bool] | None = None):
        self.finds = finds
        self.calls: list[np.ndarray] = []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls.append(x.copy())
        out = np.zeros((len(x), 1 + 2 * NUM_KEYPOINTS), np.float32)
        if self.finds is not None and not self.finds[len(self.calls) - 1]:
            return out
        for n, chw in enumerate(x):
            rgb = np.moveaxis(chw, 0, -1)
            v, u = np.nonzero(np.abs(rgb[..., 2] - CODE) < 1)
            if len(u) < 100:
                continue
            src = np.stack([u + 0.5, v + 0.5, np.ones(len(u))], 1)
            dst = np.stack([(rgb[v, u, 0] + 0.5) * W / 256, (rgb[v, u, 1] + 0.5) * H / 256], 1)
            to_image = np.vstack([np.linalg.lstsq(src, dst, rcond=None)[0].T, [0, 0, 1]])  # input px -> encoded px
            back = np.linalg.inv(to_image)
            out[n, 0] = np.sqrt(abs(np.linalg.det(back[:2, :2])))  # input px per image px
            out[n, 1:] = (TRUTH @ back[:2, :2].T + back[:2, 2] + ERROR).reshape(-1)
        return out


def standin(**kw) -> Predictor:
    return Predictor(StandinDecoder(), "stand-in", Standin(**kw), IMAGE_SIZE)


def expected_refined(image: np.ndarray, first: Prediction) -> tuple[np.ndarray, float]:
    """(keypoints, presence) the second pass should give: the stand-in on the crop of the ROI
    that the first pass's keypoints place."""
    roi = roi_from_keypoints(first.keypoints, upright=True)
    return to_frame(roi, to_crop(roi, TRUTH) + ERROR), IMAGE_SIZE / roi.size


def test_the_second_pass_runs_on_the_hands_crop_and_gives_image_px():
    image = encoded()
    plain, refined = standin(), standin()
    first = plain.predict(image)
    box_scale = IMAGE_SIZE / W  # the letterbox's
    np.testing.assert_allclose(first.keypoints, TRUTH + ERROR / box_scale, atol=FIT)  # the stand-in is what it says
    got = refined.refined().predict(image)

    calls = refined.run.calls
    assert [c.shape for c in calls] == [(1, 3, IMAGE_SIZE, IMAGE_SIZE)] * 2
    roi = roi_from_keypoints(first.keypoints, upright=True)
    assert roi.angle == pytest.approx(-0.6, abs=0.01)  # the hand turned upright in its crop
    np.testing.assert_array_equal(calls[1], rgb_to_nchw(crop(image, [roi])))  # pass 2: the hand's crop
    keypoints, presence = expected_refined(image, first)
    np.testing.assert_allclose(got.keypoints, keypoints, atol=FIT)  # pass 2's keypoints, in image px
    assert got.presence == pytest.approx(presence, rel=1e-3) and got.scores[0] == pytest.approx(presence, rel=1e-3)
    assert np.abs(got.keypoints - TRUTH).max() < 4.0 < np.abs(first.keypoints - TRUTH).max()  # closer than pass 1


def test_a_shifted_image_gives_shifted_keypoints():
    """The image pasted into a larger canvas (another letterbox, other crop borders): the refined
    keypoints move with it (the stand-in sees the hand where the encoded pixels put it)."""
    image = encoded()
    canvas = np.zeros((H + 150, W + 250, 3), np.uint8)
    canvas[60 : 60 + H, 170 : 170 + W] = image
    at_home = standin().refined().predict(image)
    got = standin().refined().predict(canvas)
    np.testing.assert_allclose(got.keypoints - [170, 60], at_home.keypoints, atol=FIT)
    np.testing.assert_allclose(got.keypoints - [170, 60], TRUTH, atol=4.0)


def test_a_batch_refines_in_one_call_and_a_miss_keeps_the_first_pass():
    """predict_batch: pass 1 on every image in one call, pass 2 on the crops of the images whose
    hand was found in one more; an image without a hand (pass 1) keeps pass 1, no crop; a second
    pass that finds no hand keeps pass 1."""
    image, blank = encoded(), np.full((H, W, 3), 90, np.uint8)
    finds = [True, True]
    predictor = standin(finds=finds).refined()
    got = predictor.predict_batch([image, blank, image])
    assert [c.shape[0] for c in predictor.run.calls] == [3, 2]  # one call per pass; no crop of the blank image
    assert not got[1].found and np.isnan(got[1].keypoints).all()
    first = standin().predict(image)
    for p in (got[0], got[2]):
        np.testing.assert_allclose(p.keypoints, expected_refined(image, first)[0], atol=FIT)

    predictor.run.calls.clear()
    finds[1] = False  # the second pass finds nothing: pass 1 stays
    got = predictor.predict(image)
    assert len(predictor.run.calls) == 2
    np.testing.assert_allclose(got.keypoints, first.keypoints, atol=1e-4)
    assert got.presence == pytest.approx(first.presence)


def test_without_a_hand_there_is_no_second_pass():
    """Pass 1 finds no hand: its prediction, one backend call."""
    predictor = standin(finds=[False]).refined()
    got = predictor.predict(encoded())
    assert not got.found and len(predictor.run.calls) == 1


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    return tiny_heatmap_onnx(tmp_path_factory.mktemp("refine"))


def test_refine_with_the_flip_test_flip_tests_both_passes(tiny_onnx, tiny_dataset):
    """The real network code (a tiny random-weight export): four backend calls per image (each
    pass and its mirror), and the keypoints of the flip-tested model on the crop that the
    flip-tested first pass places."""
    image = read_rgb(sorted((tiny_dataset / "hand-keypoints" / "val" / "images").glob("*.jpg"))[0])
    both = load_predictor(tiny_onnx, flip_test=True, refine=True)
    assert both.flip_test and both.refine
    assert both.flip_tested().refine and both.refined().flip_test
    inputs = []
    spy = Predictor(both.decoder, both.backend, lambda x: inputs.append(x.copy()) or both.run(x), both.input_size)
    got = spy.flip_tested().refined().predict(image)
    flip = load_predictor(tiny_onnx, flip_test=True)
    first = flip.predict(image)
    roi = roi_from_keypoints(first.keypoints, upright=True)
    cut = crop(image, [roi])
    assert len(inputs) == 4
    np.testing.assert_array_equal(inputs[2], rgb_to_nchw(cut))
    np.testing.assert_array_equal(inputs[3], inputs[2][..., ::-1])  # the crop's mirror image
    second = flip.predict_crops(cut)[0]
    np.testing.assert_allclose(got.keypoints, to_frame(roi, second.keypoints), atol=1e-3)
    np.testing.assert_allclose(both.predict(image).keypoints, got.keypoints, atol=1e-3)
    assert got.presence == pytest.approx(second.presence, abs=1e-6)
    plain = load_predictor(tiny_onnx)
    assert not np.allclose(plain.refined().predict(image).keypoints, got.keypoints, atol=1e-2)  # flip made a difference


def test_a_yolo_model_has_no_refine_pass(tmp_path):
    path = standin_yolo_onnx(tmp_path / "yolo.onnx", yolo_raw([(112.0, 112.0, 80.0, 80.0)], [0.9]))
    with pytest.raises(ModelLoadError, match=f"{path}: the refine pass .* not a yolo model"):
        load_predictor(path, refine=True)
    with pytest.raises(ModelLoadError, match="the refine pass"):
        load_predictor(path).refined()


RELEASED = REPO / "release" / "heatmap.onnx"


@pytest.mark.skipif(not RELEASED.is_file(), reason="no released model (release/heatmap.onnx) yet")
def test_the_released_model_finds_small_hands_better_refined(tiny_dataset):
    """The trained model on the fixture's val hands shrunk to half size in a 480 × 360 picture
    (a hand of ~50 px; letterboxed to 224 it spans ~25 px, too small for the network): the
    second pass, on the hand's crop, finds many more of the keypoints within 10 px (of the
    224-px image)."""
    half = IMAGE_SIZE // 2

    val = tiny_dataset / "hand-keypoints" / "val"
    rng = np.random.default_rng(0)
    pictures, truths = [], []
    for path in sorted((val / "images").glob("*.jpg")):
        label = parse_label((val / "labels" / f"{path.stem}.txt").read_text(), IMAGE_SIZE, 1)[0]
        picture = np.full((360, 480, 3), 90, np.uint8)
        x, y = int(rng.integers(0, 480 - half)), int(rng.integers(0, 360 - half))
        picture[y : y + half, x : x + half] = cv2.resize(read_rgb(path), (half, half), interpolation=cv2.INTER_AREA)
        pictures.append(picture)
        truths.append(np.column_stack([label[:, :2] / 2 + [x, y], label[:, 2]]))
    plain = load_predictor(RELEASED, threads=1)

    def pck_10px(predictions):
        errors = [2 * np.linalg.norm(p.keypoints - t[:, :2], axis=1)[t[:, 2] > 0] for p, t in zip(predictions, truths)]
        return float(np.mean(np.concatenate(errors) <= 10))

    single, refined = pck_10px(plain.predict_batch(pictures)), pck_10px(plain.refined().predict_batch(pictures))
    assert refined >= single + 0.15, (single, refined)


def test_python_m_handkp_evaluate_refine(tiny_onnx, tmp_path, capsys):
    """``python -m handkp evaluate --refine``: says so, and its metrics are those of the refined
    predictor over the split (the tiny fixture prepared as the prepare stage does)."""
    with DatasetArchive(TINY_ZIP) as archive:
        table = keypoint_table(validate_dataset(archive, IMAGE_SIZE, 1)[0], 0.1, 0)
        write_image_cache(table, archive, tmp_path / "images", IMAGE_SIZE)
    table.write_parquet(tmp_path / "keypoints.parquet")
    base = ["evaluate", "--model", str(tiny_onnx), "--table", str(tmp_path / "keypoints.parquet")]
    base += ["--images", str(tmp_path / "images"), "--batch-size", "8"]
    metrics = {}
    for extra, said in (([], " on val"), (["--refine"], " with the refine pass on val")):
        assert cli_main([*base, *extra, "--json", str(tmp_path / "m.json")]) == 0
        assert f"{tiny_onnx}{said} (32 images)" in capsys.readouterr().out
        metrics[bool(extra)] = json.loads((tmp_path / "m.json").read_text())
    gt = table.filter(table["split"] == "val")
    names = gt["image"].unique().sort().to_list()
    refined = predict_images(load_predictor(tiny_onnx).refined(), names, ImageCache(tmp_path / "images"), 8)
    assert metrics[True] == rounded(compute_metrics(gt, refined)[0]) != metrics[False]
    assert cli_main([*base, "--flip-test", "--refine"]) == 0
    assert "with the flip test and the refine pass on val" in capsys.readouterr().out
