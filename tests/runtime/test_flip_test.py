"""The flip test (``load_predictor(..., flip_test=True)``): the heatmaps of an image and of its
mirror image, mirrored back, averaged before the decode."""

from __future__ import annotations

import json

import numpy as np
import pytest
from standin_models import standin_yolo_onnx, tiny_heatmap_onnx, yolo_raw

from handkp.core.codec import HeatmapCodec
from handkp.core.errors import ModelLoadError
from handkp.core.images import read_rgb
from handkp.runtime import load_predictor
from handkp.runtime.decoders import HeatmapDecoder
from handkp.runtime.predictor import Predictor


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    return tiny_heatmap_onnx(tmp_path_factory.mktemp("flip"))


@pytest.fixture(scope="module")
def images(tiny_dataset) -> list[np.ndarray]:
    """Four of the tiny fixture's val images."""
    return [read_rgb(p) for p in sorted((tiny_dataset / "hand-keypoints" / "val" / "images").glob("*.jpg"))[:4]]


def pooled(x: np.ndarray) -> np.ndarray:
    """A stand-in network that commutes with mirroring exactly: each 4×4 block's mean of the
    red channel, as 21 identical 56×56 heatmaps."""
    n = x.shape[0]
    cells = x[:, 0].reshape(n, 56, 4, 56, 4).mean(axis=(2, 4)) / 255.0
    return np.repeat(cells[:, None], 21, axis=1).astype(np.float32)


def test_a_network_that_commutes_with_mirroring_gives_its_own_heatmaps(images):
    """Mirroring back lands every heatmap column where it belongs: for such a network the mean
    equals the single pass (a shift by a column, or no mirroring back, would not)."""
    x = np.stack([np.moveaxis(im, -1, 0) for im in images]).astype(np.float32)
    single = Predictor(HeatmapDecoder(HeatmapCodec()), "numpy", pooled, 224)
    np.testing.assert_allclose(single.flip_tested().infer(x), single.infer(x), atol=1e-6)
    assert not np.allclose(pooled(x[..., ::-1].copy()), pooled(x))  # the images are not symmetric themselves


def test_the_mirror_image_gets_the_mirrored_keypoints(tiny_onnx, images):
    """The flip test is mirror-symmetric by construction, whatever the weights: the keypoints of
    the mirrored image are those of the image, mirrored (x -> 224 - x), to numerical precision."""
    predictor = load_predictor(tiny_onnx, flip_test=True)
    assert predictor.flip_test and not load_predictor(tiny_onnx).flip_test
    for image in images:
        kp = predictor.predict(image).keypoints
        mirrored = predictor.predict(np.ascontiguousarray(image[:, ::-1])).keypoints
        np.testing.assert_allclose(mirrored[:, 0], 224.0 - kp[:, 0], atol=1e-3)
        np.testing.assert_allclose(mirrored[:, 1], kp[:, 1], atol=1e-3)
    plain = load_predictor(tiny_onnx)
    image = images[0]
    mean = (
        plain.infer(plain.preprocess(image)[0]) + plain.infer(plain.preprocess(image[:, ::-1].copy())[0])[..., ::-1]
    ) / 2
    np.testing.assert_allclose(predictor.infer(predictor.preprocess(image)[0]), mean, atol=1e-6)


def test_a_yolo_model_has_no_flip_test(tmp_path):
    path = standin_yolo_onnx(tmp_path / "yolo.onnx", yolo_raw([(112.0, 112.0, 80.0, 80.0)], [0.9]))
    with pytest.raises(ModelLoadError, match=f"{path}: the flip test averages heatmaps"):
        load_predictor(path, flip_test=True)


def test_the_live_app_takes_the_flip_test(tiny_onnx, tiny_dataset, images, tmp_path, capsys):
    """``live --flip-test``: the keypoints of the flip-tested predictor; a YOLO model is a model
    error (exit 4) naming the file."""
    from handkp.__main__ import main as cli_main
    from handkp.app import errors

    folder = tiny_dataset / "hand-keypoints" / "val" / "images"
    out = tmp_path / "flip.jsonl"
    assert (
        cli_main(
            [
                "live",
                "--source",
                str(folder),
                "--model",
                str(tiny_onnx),
                "--flip-test",
                "--detector",
                "none",
                "--headless",
                "--max-frames",
                "2",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    expected = load_predictor(tiny_onnx, flip_test=True)
    for line, image in zip(out.read_text().splitlines(), images):
        np.testing.assert_allclose(json.loads(line)["keypoints"], expected.predict(image).keypoints, atol=1e-4)
    yolo = standin_yolo_onnx(tmp_path / "yolo.onnx", yolo_raw([(112.0, 112.0, 80.0, 80.0)], [0.9]))
    capsys.readouterr()
    assert (
        cli_main(["live", "--source", str(folder), "--model", str(yolo), "--flip-test", "--headless"])
        == errors.EXIT_MODEL
    )
    assert f"{yolo}: the flip test averages heatmaps" in capsys.readouterr().err
