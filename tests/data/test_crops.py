"""Training samples like the tracker's crops (handkp.data.crops, handkp.data.augment): where a
crop puts the hand, its jitter, other hands pasted beside the hand, and that all of it switched
off leaves the samples as they were."""

import math
from dataclasses import replace

import numpy as np
import pytest
from synthetic_hands import hand

from handkp.core.codec import HeatmapCodec
from handkp.core.roi import (
    BOX_SCALE,
    DETECTOR_BOX_SCALE,
    MIDDLE_MCP,
    PALM_KEYPOINTS,
    PALM_SCALE,
    WRIST,
    palm_size,
    roi_from_keypoints,
    to_crop,
)
from handkp.data.augment import AugmentConfig, augment, random_affine, random_roi, warp
from handkp.data.crops import detector_roi, paste_hand, sample_grid
from handkp.model import batches
from handkp.model.batches import HeatmapDataset

S = 224
BLUE, RED = (0, 0, 255), (255, 0, 0)
# Geometry and photometry off: a sample is the source image, unless a new operation acts.
STILL = dict(rotation_deg=0.0, scale=(1.0, 1.0), translate=0.0, flip=0.0, colour=0.0, blur=0.0)
# A crop exactly where the tracker puts it: no jitter.
EXACT_CROP = dict(STILL, crop=1.0, crop_shift=0.0, crop_scale=(1.0, 1.0), crop_angle_deg=0.0)


def flat(colour, n=1) -> np.ndarray:
    return np.broadcast_to(np.array(colour, np.uint8), (n, S, S, 3)).copy()


def labelled(kp: np.ndarray, visible: np.ndarray | None = None) -> np.ndarray:
    """(21, 3) float32 keypoints with visibility 2 (or 0 where ``visible`` is False)."""
    vis = np.full(21, 2.0) if visible is None else np.where(visible, 2.0, 0.0)
    return np.concatenate([kp, vis[:, None]], axis=1).astype(np.float32)


def axis_angle(kp: np.ndarray) -> float:
    """The direction of the wrist -> middle MCP axis, radians (atan2 of y down)."""
    d = kp[MIDDLE_MCP] - kp[WRIST]
    return math.atan2(d[1], d[0])


# ---- tracker-like crops ------------------------------------------------------------------------
def test_an_upright_crop_puts_the_hand_upright_at_the_centre_at_the_rois_size():
    kp = hand(140, 90, palm_px=30, turn=2.0).astype(np.float32)  # fingers pointing down-left
    cfg = AugmentConfig(**EXACT_CROP, crop_from_box=0.0)
    out, out_kp = augment(flat(BLUE)[0], kp, cfg, np.random.default_rng(0))
    np.testing.assert_allclose(out_kp, to_crop(roi_from_keypoints(kp), kp), atol=1e-3)  # where the ROI maps them
    assert out_kp[WRIST, 1] > out_kp[MIDDLE_MCP, 1] + 50  # the wrist below the middle MCP ...
    assert abs(out_kp[WRIST, 0] - out_kp[MIDDLE_MCP, 0]) < 1e-3  # ... straight below
    assert palm_size(out_kp) == pytest.approx(S / PALM_SCALE, rel=1e-4)  # 3.5 palms across the crop
    palm = out_kp[list(PALM_KEYPOINTS)]
    palm_centre = (palm.min(0) + palm.max(0)) / 2  # half a palm below the centre: the fingers above
    np.testing.assert_allclose(palm_centre, [S / 2, S / 2 + 0.5 * S / PALM_SCALE], atol=1e-3)


def test_a_box_crop_keeps_the_hands_rotation_and_frames_its_box():
    kp = hand(110, 150, palm_px=35, turn=2.0).astype(np.float32)
    cfg = AugmentConfig(**EXACT_CROP, crop_from_box=1.0)
    _, out_kp = augment(flat(BLUE)[0], kp, cfg, np.random.default_rng(0))
    assert axis_angle(out_kp) == pytest.approx(axis_angle(kp), abs=1e-4)  # not turned
    side = (kp.max(0) - kp.min(0)).max() * DETECTOR_BOX_SCALE * BOX_SCALE  # the box's side, then roi_from_box's
    assert (out_kp.max(0) - out_kp.min(0)).max() == pytest.approx(S / side * (kp.max(0) - kp.min(0)).max(), rel=1e-4)
    np.testing.assert_allclose((out_kp.max(0) + out_kp.min(0)) / 2, [S / 2, S / 2], atol=1e-3)  # the box centred


def test_a_hand_without_a_labelled_palm_gets_a_box_crop():
    kp = hand(110, 120, palm_px=30, turn=-1.0).astype(np.float32)
    visible = np.ones(21, bool)
    visible[13] = False
    kp[13] = 0.0  # an unlabelled keypoint's coordinates mean nothing (the labels hold 0, 0)
    cfg = AugmentConfig(**EXACT_CROP, crop_from_box=0.0)
    _, out_kp = augment(flat(BLUE)[0], kp, cfg, np.random.default_rng(0), visible)
    assert axis_angle(out_kp) == pytest.approx(axis_angle(kp), abs=1e-4)
    np.testing.assert_allclose(out_kp[visible], to_crop(detector_roi(kp, visible), kp)[visible], atol=1e-3)


def test_crop_jitter_stays_in_its_ranges_and_fills_them():
    kp = hand(112, 140, palm_px=32, turn=0.4)
    visible = np.ones(21, bool)
    cfg = AugmentConfig(crop=1.0, crop_from_box=0.0, crop_shift=0.1, crop_scale=(0.8, 1.25), crop_angle_deg=15.0)
    base = roi_from_keypoints(kp)
    rois = [random_roi(cfg, kp, visible, np.random.default_rng(s)) for s in range(400)]
    shift = np.array([[r.cx - base.cx, r.cy - base.cy] for r in rois]) / base.size
    factor = np.array([r.size / base.size for r in rois])
    turn = np.degrees([math.remainder(r.angle - base.angle, 2 * math.pi) for r in rois])
    assert np.abs(shift).max() <= 0.1 + 1e-9 and np.abs(shift).max() > 0.095
    assert factor.min() >= 0.8 - 1e-9 and factor.max() <= 1.25 + 1e-9 and factor.min() < 0.82 and factor.max() > 1.22
    assert np.abs(turn).max() <= 15 + 1e-9 and np.abs(turn).max() > 14.5
    box = [
        random_roi(AugmentConfig(crop_from_box=1.0, crop_angle_deg=15.0), kp, visible, np.random.default_rng(s))
        for s in range(50)
    ]
    assert max(abs(math.degrees(r.angle)) for r in box) <= 15 + 1e-9  # a box ROI: angle 0, then the jitter


def test_a_mirrored_crop_is_the_crop_mirrored():
    kp = hand(100, 150, palm_px=30, turn=0.7).astype(np.float32)
    image = np.random.default_rng(1).integers(0, 256, size=(S, S, 3), dtype=np.uint8)
    plain, plain_kp = augment(image, kp, AugmentConfig(**EXACT_CROP, crop_from_box=0.0), np.random.default_rng(0))
    flipped, flipped_kp = augment(
        image, kp, AugmentConfig(**{**EXACT_CROP, "flip": 1.0}, crop_from_box=0.0), np.random.default_rng(0)
    )
    np.testing.assert_allclose(flipped_kp[:, 0], S - plain_kp[:, 0], atol=1e-3)
    np.testing.assert_allclose(flipped_kp[:, 1], plain_kp[:, 1], atol=1e-3)
    assert np.abs(flipped[:, ::-1].astype(int) - plain).mean() < 1.0  # bilinear rounding only


def test_crops_take_their_own_angle_jitter_and_whole_images_turn_to_180():
    kp = hand(112, 150, palm_px=30).astype(np.float32)
    image = flat(BLUE)[0]
    crop = AugmentConfig(**{**EXACT_CROP, "rotation_deg": 180.0}, crop_from_box=0.0)
    for s in range(10):  # rotation_deg does not turn a crop
        _, out_kp = augment(image, kp, crop, np.random.default_rng(s))
        assert axis_angle(out_kp) == pytest.approx(-math.pi / 2, abs=1e-4)
    whole = AugmentConfig(**{**STILL, "rotation_deg": 180.0})
    angles, lengths = [], []
    for s in range(200):
        _, out_kp = augment(image, kp, whole, np.random.default_rng(s))
        angles.append(math.degrees(math.remainder(axis_angle(out_kp) + math.pi / 2, 2 * math.pi)))
        lengths.append(np.linalg.norm(out_kp[MIDDLE_MCP] - out_kp[WRIST]))
    assert max(np.abs(angles)) > 170 and min(np.abs(angles)) < 10  # turned anywhere up to ± 180
    np.testing.assert_allclose(lengths, 30.0, atol=1e-3)  # a rotation: sizes kept


# ---- other hands -------------------------------------------------------------------------------
def test_a_pasted_hand_lies_where_it_is_put_in_front_of_or_behind_the_hand():
    kp = hand(80, 150, palm_px=30)
    other_kp = hand(120, 170, palm_px=45)
    other = (flat(RED)[0], other_kp, np.ones(21, bool))
    centre = kp[list(PALM_KEYPOINTS)].mean(0)
    visible = np.ones(21, bool)

    def red(image, p):
        x, y = int(p[0]), int(p[1])
        return image[y, x, 0] > 200 and image[y, x, 2] < 60

    put = centre + (70, 0)
    beside = paste_hand(flat(BLUE)[0], kp, visible, other, 1.0, (70.0, 0.0), 0.0, behind=False)
    assert red(beside, put) and not red(beside, centre) and not red(beside, (5, 5))
    # scaled to the hand's palm (30 / 45): its middle finger's middle about one palm above its palm centre
    finger = ((other_kp[10] + other_kp[11]) / 2 - other_kp[list(PALM_KEYPOINTS)].mean(0)) * 30 / 45
    tip = (other_kp[12] - other_kp[list(PALM_KEYPOINTS)].mean(0)) * 30 / 45
    assert red(beside, put + finger) and not red(beside, put - finger) and not red(beside, put + 1.25 * tip)
    turned = paste_hand(flat(BLUE)[0], kp, visible, other, 1.0, (70.0, 0.0), math.pi, behind=False)
    assert red(turned, put - finger) and not red(turned, put + finger)  # turned half round: fingers down
    front = paste_hand(flat(BLUE)[0], kp, visible, other, 1.0, (5.0, 0.0), 0.0, behind=False)
    behind = paste_hand(flat(BLUE)[0], kp, visible, other, 1.0, (5.0, 0.0), 0.0, behind=True)
    assert red(front, centre) and not red(behind, centre)  # crossing: over the hand, or under it


def test_pasted_hands_come_from_other_items_and_leave_the_targets_as_they_are():
    codec = HeatmapCodec(S, 56, 2.0)
    kp = np.stack([labelled(hand(100 + 5 * i, 150, palm_px=28 + i)) for i in range(4)])
    pixels = np.concatenate([flat(BLUE), flat(RED, 3)])
    cfg = AugmentConfig(**STILL, other_hand=1.0, other_hand_distance=(0.3, 0.6))
    ds = HeatmapDataset(pixels, kp, codec, cfg, seed=5)
    reddish = 0
    for epoch in range(6):
        ds.epoch = epoch
        image, heatmaps, weights = ds.sample(0)
        expected = codec.encode(kp[0, :, :2], kp[0, :, 2] > 0)
        assert np.array_equal(heatmaps, expected[0]) and np.array_equal(weights, expected[1])
        red = (image[..., 0] > 128) & (image[..., 2] < 128)
        reddish += red.any()
        if red.any():  # near the hand: within the farthest distance plus the other hand's reach
            ys, xs = np.nonzero(red)
            centre = kp[0, list(PALM_KEYPOINTS), :2].mean(0)
            hand_size = 2.15 * 28  # the synthetic hand's keypoint extent: 2.15 palms tall
            assert np.hypot(xs + 0.5 - centre[0], ys + 0.5 - centre[1]).min() < 0.6 * hand_size + 2.2 * 1.4 * 28
    assert reddish >= 5  # nearly every sample shows another hand (some fall outside the image)
    _, hand_free_heatmaps, _ = HeatmapDataset(pixels, kp, codec, cfg, seed=5, negative_fraction=1.0).sample(0)
    assert hand_free_heatmaps.max() == 0

    crossing = HeatmapDataset(pixels, kp, codec, replace(cfg, other_hand_distance=(0.0, 0.05)), seed=5)
    covered = []
    for epoch in range(12):  # right over the hand: in front of it (its palm red) or behind it (blue)
        crossing.epoch = epoch
        image = crossing.sample(0)[0]
        x, y = kp[0, list(PALM_KEYPOINTS), :2].mean(0).astype(int)
        covered.append(bool(image[y, x, 0] > 128))
    assert 3 <= sum(covered) <= 9


def test_the_donor_is_never_the_sample_itself_and_is_large_enough(monkeypatch):
    kp = np.stack([labelled(hand(100, 150, palm_px=20 + 4 * i)) for i in range(6)])
    kp[5, 0, 2] = 0.0  # item 5's wrist unlabelled: never a donor
    ds = HeatmapDataset(flat(BLUE, 6), kp, HeatmapCodec(S, 56, 2.0), AugmentConfig(other_hand=1.0), seed=0)
    palms = lambda other: round(palm_size(other[1]))  # noqa: E731  item j has a palm of 20 + 4 j px
    for i in range(6):
        drawn = {palms(ds.donor(i, np.random.default_rng(s))) for s in range(200)}
        assert drawn == {20 + 4 * j for j in range(5) if j != i}
    monkeypatch.setattr(batches, "MIN_DONORS", 2)
    for i in range(6):
        drawn = {palms(ds.donor(i, np.random.default_rng(s), min_palm=29.0)) for s in range(200)}
        assert drawn == {20 + 4 * j for j in (3, 4) if j != i}  # palms of 29 px or more, or the 2 largest
    lonely = HeatmapDataset(flat(BLUE, 1), kp[:1], HeatmapCodec(S, 56, 2.0), AugmentConfig(other_hand=1.0), seed=0)
    assert lonely.donor(0, np.random.default_rng(0)) is None


def test_each_sample_asks_for_a_hand_other_than_its_own():
    kp = np.stack([labelled(hand(100, 150, palm_px=20 + 2 * i)) for i in range(5)])
    ds = HeatmapDataset(flat(BLUE, 5), kp, HeatmapCodec(S, 56, 2.0), AugmentConfig(other_hand=1.0), seed=1)
    asked, draw = [], ds.donor

    def spy(i, rng, min_palm=0.0):
        other = draw(i, rng, min_palm)
        asked.append((i, round(palm_size(other[1]))))
        return other

    ds.donor = spy
    for i in range(5):
        ds.sample(i)
        assert asked[-1][0] == i and asked[-1][1] != 20 + 2 * i


def test_hand_free_samples_get_no_other_hand():
    kp = np.stack([labelled(hand(100, 150, palm_px=25))] * 3)
    ds = HeatmapDataset(flat(BLUE, 3), kp, HeatmapCodec(S, 56, 2.0), AugmentConfig(other_hand=1.0), 0, 1.0)
    ds.donor = lambda *args: pytest.fail("a hand-free sample drew another hand")
    for i in range(3):
        assert ds.sample(i)[1].max() == 0


# ---- switched off, reproducible ----------------------------------------------------------------
def test_switched_off_the_new_operations_draw_nothing():
    """crop = other_hand = 0: the whole-image warp from the very draws it took before (and the
    rest of augment after it), whatever the new ranges say and whatever donor is offered."""
    kp = hand(110, 140, palm_px=30).astype(np.float32)
    image = np.random.default_rng(2).integers(0, 256, size=(S, S, 3), dtype=np.uint8)
    odd = dict(crop_from_box=1.0, crop_shift=0.5, crop_scale=(0.5, 2.0), other_hand_distance=(0.0, 3.0))
    cfg = AugmentConfig(rotation_deg=180, colour=0.0, blur=0.0, **odd)
    for s in range(5):
        a, b = np.random.default_rng(s), np.random.default_rng(s)
        got = augment(image, kp, cfg, a, np.ones(21, bool), lambda *args: pytest.fail("donor drawn"))
        want = warp(image, kp, random_affine(cfg, S, b))
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        assert a.random() == b.random()  # the same number of draws


def test_switched_off_samples_are_those_of_the_old_settings_and_a_function_of_seed_epoch_index():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(5, S, S, 3), dtype=np.uint8)
    kp = np.stack(
        [
            labelled(hand(*rng.uniform(80, 150, 2), palm_px=rng.uniform(20, 40), turn=rng.uniform(-3, 3)))
            for _ in range(5)
        ]
    )
    codec = HeatmapCodec(S, 56, 2.0)
    old = AugmentConfig(noise=0.5, jpeg=0.5, occlusion=0.5, motion_blur=0.5, gamma=0.5, low_light=0.5)
    new = replace(old, crop_from_box=1.0, crop_shift=0.4, crop_scale=(0.5, 2.0), other_hand_scale=(0.2, 3.0))
    a, b = HeatmapDataset(pixels, kp, codec, old, 3, 0.3), HeatmapDataset(pixels, kp, codec, new, 3, 0.3)
    for epoch in (0, 2):
        a.epoch = b.epoch = epoch
        for i in range(5):
            assert all(np.array_equal(x, y) for x, y in zip(a.sample(i), b.sample(i)))

    on = replace(old, crop=0.7, other_hand=0.7)
    first, second = HeatmapDataset(pixels, kp, codec, on, 3, 0.2), HeatmapDataset(pixels, kp, codec, on, 3, 0.2)
    first.epoch = 1
    in_order = [first.sample(i) for i in range(5)]
    second.epoch = 4
    later = {i: second.sample(i) for i in reversed(range(5))}  # another epoch first, another order
    second.epoch = 1
    for i in reversed(range(5)):
        assert all(np.array_equal(x, y) for x, y in zip(in_order[i], second.sample(i)))
    assert all(not np.array_equal(in_order[i][0], later[i][0]) for i in range(5))


# ---- settings and the preview grid -------------------------------------------------------------
@pytest.mark.parametrize(
    "setting", [{"crop": 1.5}, {"other_hand": -0.1}, {"crop_scale": (1.2, 0.8)}, {"other_hand_scale": (0.0, 1.0)}]
)
def test_bad_settings_are_refused_by_name(setting):
    with pytest.raises(ValueError, match=f"train.augment.{next(iter(setting))}"):
        AugmentConfig(**setting)


def test_the_preview_grid_tiles_samples_with_their_keypoints_dotted():
    images = [flat(c)[0] for c in (BLUE, RED, (0, 255, 0))]
    kp = hand(100, 150, palm_px=30)
    visible = np.ones(21, bool)
    visible[8] = False
    grid = sample_grid(images, [kp, None, kp], [visible] * 3, columns=2)
    assert grid.shape == (2 * S, 2 * S, 3)
    assert tuple(grid[S + 5, 5]) == (0, 255, 0) and tuple(grid[5, S + 5]) == RED and not grid[S:, S:].any()
    wrist = np.floor(kp[WRIST]).astype(int)
    assert tuple(grid[wrist[1], wrist[0]]) == (255, 255, 255)  # the palm's colour
    tip = np.floor(kp[8]).astype(int)
    assert tuple(grid[tip[1], tip[0]]) == BLUE  # unlabelled: no dot
    assert (grid[S:, :S] != (0, 255, 0)).any(axis=2).sum() > 300 and not (grid[:S, S:] != RED).any()
