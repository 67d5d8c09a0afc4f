"""The shared geometry: keypoint boxes, their IoU, and affines on continuous px that move pixels
as OpenCV does (pixel i is the point i + 0.5)."""

import math

import cv2
import numpy as np
import pytest

from handkp.core.geometry import (
    box_iou,
    keypoint_box,
    map_points,
    pixel_matrix,
    rotation,
    similarity,
    warp_points,
)


def test_iou_of_known_boxes():
    a = np.array([0.0, 0.0, 10.0, 10.0])
    assert box_iou(a, a) == 1.0
    assert box_iou(a, [5.0, 0.0, 15.0, 10.0]) == pytest.approx(1 / 3)  # half of each overlaps
    assert box_iou(a, [2.0, 2.0, 7.0, 7.0]) == pytest.approx(0.25)  # one inside the other
    assert box_iou(a, [10.0, 0.0, 20.0, 10.0]) == 0.0  # touching: no area in common
    assert box_iou(a, [30.0, 30.0, 40.0, 40.0]) == 0.0
    assert box_iou([1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]) == 0.0  # an empty union: 0, not NaN
    many = np.array([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [30.0, 30.0, 40.0, 40.0]])
    np.testing.assert_allclose(box_iou(a, many), [1.0, 1 / 3, 0.0])
    assert box_iou(many[:, None], many[None]).shape == (3, 3)


def test_keypoint_box_of_all_or_of_the_visible_points():
    points = np.array([[3.0, 9.0], [-2.0, 4.0], [7.0, 1.0]])
    np.testing.assert_array_equal(keypoint_box(points), [-2.0, 1.0, 7.0, 9.0])
    np.testing.assert_array_equal(keypoint_box(points, np.array([True, False, True])), [3.0, 1.0, 7.0, 9.0])
    np.testing.assert_array_equal(keypoint_box(points, np.zeros(3, bool)), [-2.0, 1.0, 7.0, 9.0])  # none visible
    assert keypoint_box(points).dtype == np.float64
    assert keypoint_box(points, dtype=np.float32).dtype == np.float32


def test_rotation_turns_clockwise_on_screen():
    # y down: +x turned a quarter turn points down the screen (+y).
    np.testing.assert_allclose(rotation(math.pi / 2) @ [1.0, 0.0], [0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(rotation(0.3, 2.0), 2.0 * rotation(0.3))


def test_similarity_on_continuous_px_and_as_a_warp_matrix_on_pixel_indices():
    # p' = 2 (p - (10, 20)) + (112, 112): the centre lands at the position.
    cont = similarity(2.0, 0.0, (10.0, 20.0), (112.0, 112.0))
    np.testing.assert_array_equal(cont, [[2.0, 0.0, 92.0], [0.0, 2.0, 72.0]])
    np.testing.assert_array_equal(map_points(cont, [10.0, 20.0]), [112.0, 112.0])
    # Pixel indices: t' = t + A (0.5, 0.5) - 0.5, both ways of writing it.
    expected = [[2.0, 0.0, 92.5], [0.0, 2.0, 72.5]]
    np.testing.assert_array_equal(pixel_matrix(cont), expected)
    np.testing.assert_array_equal(similarity(2.0, 0.0, (10.0, 20.0), 112.0, pixel_centres=True), expected)
    rng = np.random.default_rng(0)
    for _ in range(20):
        scale, angle = rng.uniform(0.1, 5), rng.uniform(-4, 4)
        centre, position = rng.uniform(-99, 99, 2), rng.uniform(0, 300, 2)
        cont = similarity(scale, angle, centre, position)
        m = similarity(scale, angle, centre, position, pixel_centres=True)
        np.testing.assert_allclose(m, pixel_matrix(cont), atol=1e-9)
        p = rng.uniform(-50, 300, (7, 2))
        np.testing.assert_allclose(warp_points(m, p), map_points(cont, p), atol=1e-9)


def test_a_pixel_moves_where_warp_points_puts_its_centre():
    """cv2.warpAffine with the pixel matrix moves pixel (x 5, y 3), centre (5.5, 3.5), to the pixel
    whose centre is the affine's image of that point: a quarter turn about (8, 8) to (20, 10)."""
    image = np.zeros((16, 16), np.uint8)
    image[3, 5] = 255
    cont = similarity(1.0, math.pi / 2, (8.0, 8.0), (20.0, 10.0))
    centre = map_points(cont, [5.5, 3.5])
    np.testing.assert_allclose(centre, [24.5, 7.5], atol=1e-9)
    m = pixel_matrix(cont)
    np.testing.assert_allclose(warp_points(m, [5.5, 3.5]), centre, atol=1e-9)
    out = cv2.warpAffine(image, m, (32, 16), flags=cv2.INTER_NEAREST)
    assert list(zip(*np.nonzero(out))) == [(7, 24)]  # row y 7, column x 24
