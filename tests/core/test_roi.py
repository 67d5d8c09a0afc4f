"""The rotated ROI: frame px <-> crop px exactly (the project's pixel convention), MediaPipe's
landmarks-to-ROI (upright, palm-only, shifted to the fingers), and crops that agree with both."""

import math

import numpy as np
import pytest
from synthetic_hands import hand

from handkp.core.images import BORDER_RGB
from handkp.core.roi import (
    Roi,
    crop,
    palm_size,
    roi_from_box,
    roi_from_keypoints,
    to_crop,
    to_frame,
)

S = 224


def random_rois(rng, n=50):
    """ROIs anywhere, partly or wholly off a 640×480 frame, tiny to huge, any rotation."""
    return [
        Roi(rng.uniform(-800, 1500), rng.uniform(-800, 1300), rng.uniform(8, 3000), rng.uniform(-math.pi, math.pi))
        for _ in range(n)
    ]


def test_frame_to_crop_and_back_is_exact_to_a_hundredth_of_a_pixel():
    rng = np.random.default_rng(0)
    for roi in random_rois(rng):
        for out_size in (S, 97):
            points = np.array([roi.cx, roi.cy]) + rng.uniform(-1, 1, (21, 2)) * roi.size
            crop_px = to_crop(roi, points, out_size)
            np.testing.assert_allclose(to_frame(roi, crop_px, out_size), points, atol=0.01)
            q = rng.uniform(-50, out_size + 50, (3, 21, 2))  # (…, 2) works on any leading shape
            np.testing.assert_allclose(to_crop(roi, to_frame(roi, q, out_size), out_size), q, atol=0.01)


def test_points_go_through_the_matrix_at_pixel_centres():
    """to_crop(p) = M @ (p - 0.5) + 0.5, M the matrix given to cv2.warpAffine."""
    rng = np.random.default_rng(1)
    for roi in random_rois(rng, 10):
        m = roi.matrix(S)
        p = rng.uniform(0, 640, (5, 2))
        expected = np.array([m[:, :2] @ (x - 0.5) + m[:, 2] + 0.5 for x in p])
        np.testing.assert_allclose(to_crop(roi, p), expected, atol=1e-3)


def test_the_roi_centre_lands_at_the_crop_centre_and_its_corners_at_the_crop_corners():
    rng = np.random.default_rng(2)
    for roi in random_rois(rng, 20):
        np.testing.assert_allclose(to_crop(roi, np.array([roi.cx, roi.cy])), [S / 2, S / 2], atol=1e-3)
        c, s = math.cos(roi.angle), math.sin(roi.angle)
        corner_offsets = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)]) * roi.size / 2  # in the upright crop
        frame_corners = np.array([roi.cx, roi.cy]) + corner_offsets @ np.array([[c, -s], [s, c]])  # R^T
        np.testing.assert_allclose(to_crop(roi, frame_corners), [(0, 0), (S, 0), (S, S), (0, S)], atol=0.01)


def test_an_upright_hand_gives_angle_zero_and_a_quarter_turned_one_a_quarter_turn_back():
    assert roi_from_keypoints(hand(300, 300)).angle == pytest.approx(0.0, abs=1e-9)
    assert roi_from_keypoints(hand(300, 300, turn=math.pi / 2)).angle == pytest.approx(-math.pi / 2)  # fingers right
    assert roi_from_keypoints(hand(300, 300, turn=-math.pi / 2)).angle == pytest.approx(math.pi / 2)  # fingers left
    assert abs(roi_from_keypoints(hand(300, 300, turn=math.pi)).angle) == pytest.approx(math.pi)  # upside down


@pytest.mark.parametrize("turn", [0.0, 0.7, math.pi / 2, -2.5, math.pi])
def test_the_crop_shows_the_whole_hand_upright_and_centred_towards_the_fingers(turn):
    kp = hand(320, 240, palm_px=50, turn=turn)
    roi = roi_from_keypoints(kp)
    in_crop = to_crop(roi, kp)
    assert (
        in_crop[9, 0] == pytest.approx(in_crop[0, 0], abs=1e-3) and in_crop[9, 1] < in_crop[0, 1]
    )  # wrist -> middle MCP up
    assert ((in_crop > 0) & (in_crop < S)).all()  # the whole hand, fingertips included
    palm_centre = in_crop[[0, 5, 9, 13, 17]].mean(0)
    assert palm_centre[1] > S / 2  # the crop's centre lies beyond the palm, towards the fingers
    assert palm_size(kp) == pytest.approx(50 * 1.0, rel=0.05)  # ~ the wrist -> MCP length here
    assert roi.size == pytest.approx(3.5 * palm_size(kp))


@pytest.mark.parametrize("turn", [0.7, math.pi / 2, math.pi])
def test_a_crop_that_is_not_turned_is_the_same_square_at_angle_zero(turn):
    kp = hand(320, 240, palm_px=50, turn=turn)
    turned, kept = roi_from_keypoints(kp), roi_from_keypoints(kp, upright=False)
    assert (kept.cx, kept.cy, kept.size) == (turned.cx, turned.cy, turned.size) and kept.angle == 0.0
    in_crop = to_crop(kept, kp)
    assert ((in_crop > 0) & (in_crop < S)).all()  # still the whole hand, now as the frame shows it
    np.testing.assert_allclose(in_crop[9] - in_crop[0], (kp[9] - kp[0]) * S / kept.size, atol=1e-3)


def test_only_the_palm_places_the_roi():
    kp = hand(200, 200)
    bent = kp.copy()
    bent[[4, 8, 12, 16, 20]] = kp[[5, 9, 13, 17, 17]]  # fingertips folded onto the palm
    bent[[6, 7, 10, 11]] += 7.0
    assert roi_from_keypoints(bent) == roi_from_keypoints(kp)


def test_roi_from_box_is_the_enlarged_square_about_the_box():
    roi = roi_from_box(10, 20, 110, 60, scale=1.5)
    assert roi == Roi(60.0, 40.0, 150.0, 0.0)
    with pytest.raises(ValueError):
        roi_from_box(10, 20, 10, 60)
    with pytest.raises(ValueError):
        roi_from_keypoints(np.full((21, 2), 5.0))  # no palm extent


@pytest.mark.parametrize("angle", [0.0, math.pi / 2, math.pi, -math.pi / 2])
def test_a_one_pixel_dot_lands_on_the_pixel_the_matrix_says(angle):
    frame = np.zeros((300, 400, 3), np.uint8)
    frame[137, 251] = 255  # pixel (x 251, y 137): the continuous point (251.5, 137.5)
    roi = Roi(230.0, 150.0, float(S), angle)  # 1:1 scale, so the dot stays one pixel
    out = crop(frame, [roi])[0, :, :, 0]
    y, x = np.unravel_index(np.argmax(out), out.shape)
    expected = to_crop(roi, np.array([251.5, 137.5]))
    assert (x + 0.5, y + 0.5) == pytest.approx(tuple(expected), abs=1e-3)
    assert out[y, x] == 255


def test_a_blob_lands_where_the_matrix_says_under_any_rotation_and_scale():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:480, 0:640] + 0.5
    for _ in range(10):
        centre = rng.uniform([200, 150], [440, 330])
        blob = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * 6.0**2))
        frame = np.repeat((blob * 255).round().astype(np.uint8)[..., None], 3, axis=2)
        roi = Roi(*(centre + rng.uniform(-40, 40, 2)), rng.uniform(150, 400), rng.uniform(-math.pi, math.pi))
        out = crop(frame, [roi])[0, :, :, 0].astype(np.float64)
        cy, cx = np.mgrid[0:S, 0:S] + 0.5
        found = np.array([(out * cx).sum(), (out * cy).sum()]) / out.sum()
        np.testing.assert_allclose(found, to_crop(roi, centre), atol=0.1)


def test_crop_shapes_and_black_borders():
    frame = np.full((100, 120, 3), 200, np.uint8)
    assert crop(frame, []).shape == (0, S, S, 3)
    out = crop(frame, [Roi(60, 50, 80, 0.3), Roi(-500, -500, 50, 0.0)], out_size=64)
    assert out.shape == (2, 64, 64, 3) and out.dtype == np.uint8
    assert (out[1] == BORDER_RGB).all()  # wholly off the frame
    assert (out[0] == 200).all()  # wholly inside it
    with pytest.raises(ValueError):
        crop(frame[..., 0], [Roi(60, 50, 80, 0.0)])
