"""The low-resolution operation of the training augmentation: a far hand's few pixels, enlarged."""

import numpy as np
import pytest

from handkp.data.augment import AugmentConfig, augment, resized

# Every other operation off and the warp the identity: what comes out is the low-resolution step alone.
STILL = dict(rotation_deg=0.0, scale=(1.0, 1.0), translate=0.0, flip=0.0, colour=0.0, blur=0.0)


def blob(size: int, centre: tuple[float, float], sigma: float = 3.0) -> np.ndarray:
    """A grey Gaussian spot at continuous px ``centre`` (pixel i spans [i, i + 1))."""
    y, x = np.mgrid[0:size, 0:size] + 0.5
    spot = np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * sigma**2))
    return np.repeat((spot * 255).astype(np.uint8)[..., None], 3, axis=2)


def centroid(image: np.ndarray) -> np.ndarray:
    w = image[..., 0].astype(np.float64)
    y, x = np.mgrid[0 : w.shape[0], 0 : w.shape[1]] + 0.5
    return np.array([(w * x).sum(), (w * y).sum()]) / w.sum()


def test_a_far_hand_loses_its_detail_and_keeps_its_keypoints_where_they_were():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(224, 224, 3), dtype=np.uint8)  # detail at every pixel
    kp = rng.uniform(20, 200, size=(21, 2)).astype(np.float32)
    cfg = AugmentConfig(**STILL, low_resolution=1.0, low_resolution_side=(40, 40))
    out, out_kp = augment(image, kp, cfg, np.random.default_rng(1))
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_allclose(out_kp, kp, atol=1e-4)
    # 40 of 224 px: the pixel-to-pixel differences of the noise nearly vanish
    detail = lambda a: np.abs(np.diff(a.astype(np.float32), axis=1)).mean()  # noqa: E731
    assert detail(out) < 0.2 * detail(image)
    off, _ = augment(image, kp, AugmentConfig(**STILL), np.random.default_rng(1))
    np.testing.assert_array_equal(off, image)  # the identity warp of the same settings, switched off


@pytest.mark.parametrize("side", [40, 56, 97])
def test_the_round_trip_keeps_a_spot_on_its_keypoint(side):
    """Down to ``side`` and back: the spot's centre moves by less than a tenth of a px, so the
    labels need no change (pixel-centre conventions of both resizes agree)."""
    centre = (101.3, 57.8)
    out = resized(resized(blob(224, centre, sigma=6.0), side), 224)
    assert np.abs(centroid(out) - centre).max() < 0.1


def test_the_side_is_drawn_in_its_range():
    """Each draw's detail lies between that of the range's two ends, and the draws differ."""
    image = np.random.default_rng(0).integers(0, 256, size=(224, 224, 3), dtype=np.uint8)
    kp = np.zeros((21, 2), np.float32)

    def detail(side_range, seed):
        cfg = AugmentConfig(**STILL, low_resolution=1.0, low_resolution_side=side_range)
        out = augment(image, kp, cfg, np.random.default_rng(seed))[0].astype(np.float32)
        return float(np.abs(np.diff(out, axis=1)).mean())

    low, high = detail((40, 40), 0), detail((160, 160), 0)
    drawn = [detail((40, 160), seed) for seed in range(20)]
    assert low < high and all(low - 1e-6 <= d <= high + 1e-6 for d in drawn)
    assert max(drawn) - min(drawn) > 0.5 * (high - low)


@pytest.mark.parametrize(
    "settings", [{"low_resolution": 1.5}, {"low_resolution_side": (0, 40)}, {"low_resolution_side": (80, 40)}]
)
def test_bad_low_resolution_settings_are_refused_by_name(settings):
    key = next(iter(settings))
    with pytest.raises(ValueError, match=f"train.augment.{key}"):
        AugmentConfig(**settings)
