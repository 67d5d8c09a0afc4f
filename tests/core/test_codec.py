import numpy as np
import pytest

from handkp.core.codec import HeatmapCodec, codec_for_model


@pytest.mark.parametrize("heatmap_size,sigma", [(56, 2.0), (112, 2.0), (28, 1.5), (56, 3.0)])
def test_round_trip_within_a_tenth_of_a_pixel(heatmap_size, sigma):
    codec = HeatmapCodec(224, heatmap_size, sigma)
    points = np.random.default_rng(0).uniform(0, 224, size=(500, 2))
    heatmaps, weights = codec.encode(points, np.ones(len(points), bool))
    decoded, scores = codec.decode(heatmaps[None])
    assert weights.min() == 1
    assert np.abs(decoded[0] - points).max() < 0.1
    assert scores.min() > 0.5


def test_no_half_pixel_bias_at_cell_centres_and_edges():
    codec = HeatmapCodec(224, 56, 2.0)
    points = np.array([[2.0, 2.0], [0.3, 223.7], [112.0, 112.0], [113.5, 50.25]])
    decoded, _ = codec.decode(codec.encode(points, np.ones(4, bool))[0][None])
    np.testing.assert_allclose(decoded[0], points, atol=0.1)


def test_unlabelled_keypoints_get_zero_weight_and_outside_ones_keep_the_part_inside():
    """Only unlabelled keypoints are left out of the loss. A keypoint outside the image keeps its
    weight and its target is the in-image tail of its Gaussian (peaking on the border), nothing
    when far out, so the network learns to show no peak for it."""
    codec = HeatmapCodec(224, 56, 2.0)
    points = np.array([[50.0, 50.0], [60.0, 60.0], [-5.0, 30.0], [30.0, 224.0], [-60.0, 30.0]])
    heatmaps, weights = codec.encode(points, np.array([True, False, True, True, True]))
    assert weights.tolist() == [1, 0, 1, 1, 1]
    assert heatmaps[0].max() > 0.9 and heatmaps[1].max() == 0
    left = np.unravel_index(heatmaps[2].argmax(), heatmaps[2].shape)
    below = np.unravel_index(heatmaps[3].argmax(), heatmaps[3].shape)
    assert 0 < heatmaps[2].max() < 0.9 and left[1] == 0  # 1.25 px left of the image: first column
    assert 0 < heatmaps[3].max() < 1 and below[0] == 55  # on the bottom edge: last row
    assert heatmaps[4].max() < 1e-6  # 60 px out: nothing


def test_an_image_without_a_hand_has_empty_maps_that_all_count():
    heatmaps, weights = HeatmapCodec(224, 56, 2.0).empty(21)
    assert heatmaps.shape == (21, 56, 56) and heatmaps.dtype == np.float32 and heatmaps.max() == 0
    assert weights.tolist() == [1] * 21


def test_heatmap_size_follows_the_number_of_upsampling_steps():
    assert codec_for_model({"deconv_layers": 3}, {"sigma": 2}).heatmap_size == 56
    assert codec_for_model({"deconv_layers": 4}, {"sigma": 2}).heatmap_size == 112
    assert codec_for_model({"deconv_layers": 2}, {"sigma": 2}).stride == 8
