import numpy as np
import pytest

from handkp.codec import HeatmapCodec, codec_for_model


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


def test_invisible_and_outside_keypoints_get_zero_weight_and_empty_maps():
    codec = HeatmapCodec(224, 56, 2.0)
    points = np.array([[50.0, 50.0], [60.0, 60.0], [-5.0, 30.0], [30.0, 224.0]])
    heatmaps, weights = codec.encode(points, np.array([True, False, True, True]))
    assert weights.tolist() == [1, 0, 0, 0]
    assert heatmaps[1:].max() == 0 and heatmaps[0].max() > 0.9


def test_heatmap_size_follows_the_number_of_upsampling_steps():
    assert codec_for_model({"deconv_layers": 3}, {"sigma": 2}).heatmap_size == 56
    assert codec_for_model({"deconv_layers": 4}, {"sigma": 2}).heatmap_size == 112
    assert codec_for_model({"deconv_layers": 2}, {"sigma": 2}).stride == 8
