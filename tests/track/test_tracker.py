"""The multi-hand tracker on synthetic scenes (a perfect detector and keypoint model from
synthetic_hands): ids through a hand's life, when the detector runs, crossing hands, duplicates
(MediaPipe's rule: most keypoints coincide and the keypoint boxes overlap)."""

import numpy as np
import pytest
from synthetic_hands import boxes_of, hand, model_on, no_hand

from handkp.core.geometry import box_iou, keypoint_box
from handkp.core.roi import to_crop
from handkp.runtime import Prediction
from handkp.track.filters import OneEuroSettings
from handkp.track.tracker import HandTracker, TrackerError, best_assignment


def run(tracker, scenes, confused=False, detector=boxes_of):
    """Each frame's hands (a list of (21, 2) arrays per frame) through the tracker the way the app
    calls it -> (each frame's TrackedHands, the frames the detector ran on)."""
    outputs, detected = [], []
    for i, hands in enumerate(scenes):
        boxes = None
        if tracker.wants_detection(i):
            detected.append(i)
            boxes = detector(hands)
        rois = tracker.rois_to_run(i, boxes)
        outputs.append(tracker.update([model_on(roi, hands, confused) for roi in rois]))
    return outputs, detected


def ids(frame_hands):
    return [h.id for h in frame_hands]


def test_a_hand_enters_stays_leaves_and_comes_back_with_a_new_id():
    scenes = (
        [[] for _ in range(5)]
        + [[hand(200 + 3 * i, 300, turn=0.02 * i)] for i in range(20)]
        + [[] for _ in range(5)]
        + [[hand(400, 250, turn=1.0)] for _ in range(10)]
    )
    outputs, detected = run(HandTracker(max_hands=1, detect_every=1, smoothing=None), scenes)  # MediaPipe's cadence
    assert all(o == [] for o in outputs[:5])
    assert all(ids(o) == [0] for o in outputs[5:25])  # entered: id 0, kept while it moves and turns
    for o, hands in zip(outputs[5:25], scenes[5:25]):
        np.testing.assert_allclose(o[0].keypoints, hands[0], atol=1e-3)  # frame px, exact (no smoothing)
        np.testing.assert_allclose(o[0].box, [*hands[0].min(0), *hands[0].max(0)], atol=1e-3)
        assert o[0].presence == 1.0 and o[0].scores.shape == (21,)
    assert all(o == [] for o in outputs[25:30])  # left: its crop's presence dropped, the track ended
    assert all(ids(o) == [1] for o in outputs[30:])  # back: a new id, never a reused one
    assert detected == [0, 1, 2, 3, 4, 5, 26, 27, 28, 29, 30]  # not while the one hand was tracked


def test_the_detector_runs_every_nth_frame_while_places_are_free_and_picks_up_a_new_hand():
    a, b = hand(150, 300), hand(450, 280, turn=-0.3)
    scenes = [[a] if i < 7 else [a, b] for i in range(30)]  # b enters on frame 7
    outputs, detected = run(HandTracker(max_hands=2, detect_every=5), scenes)
    assert detected == [0, 5, 10]  # every 5th frame while one hand is tracked, then never (two tracked)
    assert all(ids(o) == [0] for o in outputs[:10])
    assert all(ids(o) == [0, 1] for o in outputs[10:])
    np.testing.assert_allclose(outputs[-1][1].keypoints, scenes[-1][1], atol=1e-3)


@pytest.mark.parametrize("confused", [False, True])
def test_crossing_hands_keep_their_ids(confused):
    """Two hands pass each other 30 px apart; ``confused``: in a crop that shows both, the model
    returns the other hand, so only the motion-consistent assignment keeps the ids apart."""
    n = 45
    left_to_right = [hand(100 + 10 * i, 300) for i in range(n)]
    right_to_left = [hand(540 - 10 * i, 330, turn=0.2) for i in range(n)]
    scenes = [[a, b] for a, b in zip(left_to_right, right_to_left)]
    outputs, detected = run(HandTracker(max_hands=2, smoothing=None), scenes, confused=confused)
    assert detected == [0]
    truth = {0: left_to_right, 1: right_to_left}  # detected in box order
    for i, o in enumerate(outputs):
        assert ids(o) == [0, 1], i
        for h in o:
            np.testing.assert_allclose(h.keypoints, truth[h.id][i], atol=1e-3)


def test_reset_forgets_every_hand_and_starts_ids_again():
    tracker = HandTracker(max_hands=2, smoothing=OneEuroSettings())
    a, b = hand(150, 300), hand(450, 280, turn=-0.3)
    outputs, detected = run(tracker, [[a, b]] * 3)
    assert [ids(o) for o in outputs] == [[0, 1]] * 3 and detected == [0]
    tracker.reset()
    moved = hand(300, 200, turn=0.5)  # elsewhere: a tracker that remembered would crop where a, b were
    assert tracker.wants_detection(0)
    rois = tracker.rois_to_run(0, boxes_of([moved]))
    assert len(rois) == 1  # the new detection only, no crop of a forgotten hand
    (new,) = tracker.update([model_on(roi, [moved]) for roi in rois])
    assert new.id == 0
    np.testing.assert_allclose(new.keypoints, moved, atol=1e-3)  # a fresh filter: nothing smoothed towards a or b


def test_a_detection_of_a_tracked_hand_is_not_a_new_hand():
    still = [[hand(300, 300)] for _ in range(6)]
    outputs, detected = run(HandTracker(max_hands=2, detect_every=1), still)
    assert detected == list(range(6)) and all(ids(o) == [0] for o in outputs)  # the box overlaps the track

    def off_centre(hands):  # IoU < 0.5 with the track's box, yet its crop shows the same hand
        return boxes_of(hands) + np.array([40.0, 0, 40.0, 0])

    outputs, _ = run(HandTracker(max_hands=2, detect_every=1), still, detector=off_centre)
    assert all(ids(o) == [0] for o in outputs)  # the model's two views of one hand are one hand


def test_a_loose_detection_of_a_tracked_hand_leaves_the_free_place_to_the_new_hand():
    """YOLO frames a hand more loosely than its keypoints' extent (here 1.7 x as wide, 1.2 x as tall,
    as this project's detector frames the multihand clips' hands): against the tracked hand's tight
    extent such a box falls below the IoU threshold. It is still that hand, so the one free place
    (up to two hands) goes to the second hand, which the detector ranks below it."""
    a, b = hand(200, 350), hand(480, 200, palm_px=20.0)

    def loose(hands):  # best first: the tracked hand, then the small new one
        out = []
        for kp in hands:
            centre, half = (kp.min(0) + kp.max(0)) / 2, (kp.max(0) - kp.min(0)) * [1.7, 1.2] / 2
            out.append(np.concatenate([centre - half, centre + half]))
        return np.array(out)

    assert box_iou(loose([a])[0], keypoint_box(a)) < 0.5  # below the threshold against the tight extent
    outputs, detected = run(
        HandTracker(max_hands=2, detect_every=1, smoothing=None), [[a]] * 3 + [[a, b]] * 3, detector=loose
    )
    assert [ids(o) for o in outputs] == [[0], [0], [0], [0, 1], [0, 1], [0, 1]]
    assert detected == [0, 1, 2, 3]  # then two are tracked: the detector rests
    np.testing.assert_allclose(outputs[-1][1].keypoints, b, atol=1e-3)


def test_a_false_detection_starts_nothing_and_spends_no_id():
    tracker = HandTracker(max_hands=2, detect_every=1)
    outputs, _ = run(tracker, [[]] * 3 + [[hand(300, 300)]] * 3, detector=lambda hands: np.array([[10.0, 10, 90, 90]]))
    assert [ids(o) for o in outputs] == [[], [], [], [], [], []]  # its crop shows no hand
    outputs, _ = run(
        HandTracker(max_hands=2, detect_every=1),
        [[]] * 3 + [[hand(300, 300)]] * 3,
        detector=lambda hands: np.vstack([[[10.0, 10, 90, 90]], boxes_of(hands)]),
    )
    assert [ids(o) for o in outputs] == [[], [], [], [0], [0], [0]]


def test_smoothing_steadies_a_jittering_still_hand():
    rng = np.random.default_rng(0)
    scenes = [[hand(300, 300) + rng.normal(0, 1.5, (21, 2))] for _ in range(90)]
    smoothed, _ = run(HandTracker(max_hands=1, smoothing=OneEuroSettings()), scenes)
    raw, _ = run(HandTracker(max_hands=1, smoothing=None), scenes)
    assert {h.id for o in smoothed for h in o} == {0}
    jitter = {
        name: np.std([o[0].keypoints for o in out[30:]], axis=0).mean()
        for name, out in (("smoothed", smoothed), ("raw", raw))
    }
    assert jitter["smoothed"] < jitter["raw"] / 2
    np.testing.assert_allclose(raw[-1][0].keypoints, scenes[-1][0], atol=1e-3)


def test_best_assignment_matches_the_most_pairs_then_the_least_cost():
    cost = np.array([[0.1, 0.2], [0.15, 5.0]])
    assert sorted(best_assignment(cost, max_cost=1.0)) == [(0, 1), (1, 0)]  # greedy would take (0, 0) and strand row 1
    assert sorted(best_assignment(np.array([[0.1, 0.3], [0.25, 0.1]]), 1.0)) == [(0, 0), (1, 1)]
    assert best_assignment(np.array([[3.0, 0.5, 2.0]]), 1.0) == [(0, 1)]
    assert sorted(best_assignment(np.array([[0.2], [0.1], [9.0]]), 1.0)) == [(1, 0)]
    assert best_assignment(np.array([[9.0]]), 1.0) == [] and best_assignment(np.zeros((0, 3)), 1.0) == []


def test_update_out_of_order_is_an_error():
    tracker = HandTracker()
    with pytest.raises(TrackerError):
        tracker.update([])
    tracker.rois_to_run(0, boxes_of([hand(300, 300)]))
    with pytest.raises(TrackerError):
        tracker.update([])
    with pytest.raises(ValueError):
        HandTracker(max_hands=7)


def test_a_followed_hand_gets_an_upright_crop_unless_told_not_to():
    """The detector's box gives the first crop (angle 0); then the hand's own keypoints do: turned
    so that it points up, or, with ``upright=False``, not turned; the keypoints come back the same."""
    scenes = [[hand(300, 260, turn=1.2)] for _ in range(3)]
    for upright, angle in ((True, -1.2), (False, 0.0)):
        tracker = HandTracker(max_hands=1, smoothing=None, upright=upright)
        angles, outputs = [], []
        for i, hands in enumerate(scenes):
            rois = tracker.rois_to_run(i, boxes_of(hands) if tracker.wants_detection(i) else None)
            angles.append(rois[0].angle)
            outputs.append(tracker.update([model_on(roi, hands) for roi in rois]))
        assert angles[0] == 0.0 and angles[1:] == pytest.approx([angle, angle], abs=1e-6)
        for o, hands in zip(outputs, scenes):
            np.testing.assert_allclose(o[0].keypoints, hands[0], atol=1e-3)


def seen_once(tracker, boxes, keypoints, presences):
    """One detection frame whose crops (one per box) show the given keypoints (frame px) with the
    given presences -> the tracked hands."""
    rois = tracker.rois_to_run(0, np.asarray(boxes, np.float64))
    assert len(rois) == len(keypoints)
    return tracker.update(
        [
            Prediction(to_crop(roi, kp), np.full(21, p, np.float32), True, p)
            for roi, kp, p in zip(rois, keypoints, presences)
        ]
    )


def side_box(box, fraction):
    """The box moved right by ``fraction`` of its width: another detection of the same hand."""
    return box + np.array([1, 0, 1, 0]) * fraction * (box[2] - box[0])


def test_two_crops_of_the_same_hand_are_one_hand_even_where_some_fingers_differ():
    """Most keypoints coincide (the palm, the ring and pinky fingers), the boxes overlap: one
    hand, the more present view (a mean distance, the old rule, would have kept two: the
    thumb's and index finger's 8 keypoints are a palm apart)."""
    a = hand(300, 300)
    other_view = a.copy()
    other_view[[1, 2, 3, 4, 6, 7, 8, 10]] += [60.0, 0.0]  # 13 of 21 keypoints coincide
    box = boxes_of([a])[0]
    for presences, kept in (((0.9, 0.8), a), ((0.7, 0.8), other_view)):
        hands = seen_once(
            HandTracker(max_hands=2, smoothing=None), [box, side_box(box, 0.4)], [a, other_view], presences
        )
        assert ids(hands) == [0]
        np.testing.assert_allclose(hands[0].keypoints, kept, atol=1e-3)
        assert hands[0].presence == max(presences)


def test_a_new_hands_crop_that_reads_a_tracked_hand_turned_is_that_hand():
    """A loose detector box beside a tracked hand (too little overlap to be taken for it) whose crop
    reads that hand turned 180°: no keypoint coincides, but the keypoint boxes overlap, so the new
    hand is the tracked one (new_hand_iou) and no second hand starts; with the rule off (1.0: only
    identical boxes) it would. Two tracked hands are never merged this way
    (test_crossing_hands_keep_their_ids)."""
    a = hand(300, 300)
    turned = 2 * a.mean(0) - a  # turned 180° about its keypoints' mean
    assert 0.3 <= box_iou(keypoint_box(a), keypoint_box(turned)) < 1.0
    box = boxes_of([a])[0]
    for new_hand_iou, expected in ((0.3, [0]), (1.0, [0, 1])):
        tracker = HandTracker(max_hands=2, detect_every=1, smoothing=None, new_hand_iou=new_hand_iou)
        assert ids(seen_once(tracker, [box], [a], [0.9])) == [0]
        rois = tracker.rois_to_run(1, np.array([side_box(box, 0.6)]))
        assert len(rois) == 2  # the tracked hand's crop, then the loose box's
        hands = tracker.update(
            [
                Prediction(to_crop(roi, kp), np.full(21, 0.9, np.float32), True, 0.9)
                for roi, kp in zip(rois, [a, turned])
            ]
        )
        assert ids(hands) == expected, new_hand_iou
        np.testing.assert_allclose(hands[0].keypoints, a, atol=1e-3)
    with pytest.raises(ValueError, match=r"new_hand_iou in \(0, 1\]"):
        HandTracker(new_hand_iou=0.0)


def test_coinciding_keypoints_with_boxes_apart_are_two_hands():
    """11 of 21 keypoints coincide (the palm, ring and pinky fingers) but the thumb's, index and
    middle fingers' lie far away, so the keypoint boxes hardly overlap: two hands by MediaPipe's
    rule (duplicate_iou); without the box rule, one."""
    a = hand(300, 300)
    far = a.copy()
    far[[1, 2, 3, 4, 6, 7, 8, 10, 11, 12]] += [400.0, 400.0]
    assert box_iou(keypoint_box(a), keypoint_box(far)) < 0.1
    box = boxes_of([a])[0]
    assert len(seen_once(HandTracker(max_hands=2), [box, side_box(box, 0.4)], [a, far], (1.0, 1.0))) == 2
    merged = seen_once(HandTracker(max_hands=2, duplicate_iou=0.0), [box, side_box(box, 0.4)], [a, far], (1.0, 1.0))
    assert len(merged) == 1
    with pytest.raises(ValueError, match="duplicate_fraction in"):
        HandTracker(duplicate_fraction=0.0)


def test_two_hands_side_by_side_touching_are_two_hands():
    """Their boxes overlap (IoU ~0.3), no keypoint of one is near the same keypoint of the other."""
    a, b = hand(250, 300), hand(300, 300, turn=0.15)
    boxes = boxes_of([a, b])
    assert 0.2 < box_iou(*(keypoint_box(k) for k in (a, b))) < 0.5
    outputs, detected = run(HandTracker(max_hands=2, smoothing=None), [[a, b]] * 5)
    assert detected == [0] and all(ids(o) == [0, 1] for o in outputs)
    for o in outputs:
        for h, truth in zip(o, (a, b)):
            np.testing.assert_allclose(h.keypoints, truth, atol=1e-3)
    assert len(seen_once(HandTracker(max_hands=2), boxes, [a, b], (1.0, 1.0))) == 2


def test_a_crop_yielding_the_neighbour_frees_its_place_for_the_detector_at_once():
    """The classic failure: on frame 3 hand 1's crop returns hand 0's keypoints. The duplicate
    is dropped, hand 1 ends, and the detector runs on frame 4 although detect_every is 5; hand 1
    comes back where it was lost and takes its id back (a new one with lost_s 0, MediaPipe's). A
    hand that merely leaves its crop waits for detect_every."""
    a, b = hand(150, 300), hand(450, 280, turn=-0.3)

    def frames(crop_of_b, lost_s=0.5):
        tracker, outputs, detected = HandTracker(max_hands=2, detect_every=5, smoothing=None, lost_s=lost_s), [], []
        for i in range(8):
            boxes = None
            if tracker.wants_detection(i):
                detected.append(i)
                boxes = boxes_of([a, b])
            rois = tracker.rois_to_run(i, boxes)
            predictions = [model_on(roi, [a, b]) for roi in rois]
            if i == 3:
                predictions[1] = crop_of_b(rois[1])
            outputs.append(tracker.update(predictions))
        return [ids(o) for o in outputs], detected

    hand_ids, detected = frames(lambda roi: Prediction(to_crop(roi, a), np.ones(21, np.float32), True, 1.0))
    assert detected == [0, 4]
    assert hand_ids == [[0, 1]] * 3 + [[0]] + [[0, 1]] * 4
    hand_ids, detected = frames(lambda roi: no_hand())
    assert detected == [0, 5]
    assert hand_ids == [[0, 1]] * 3 + [[0]] * 2 + [[0, 1]] * 3
    hand_ids, _ = frames(lambda roi: no_hand(), lost_s=0.0)
    assert hand_ids == [[0, 1]] * 3 + [[0]] * 2 + [[0, 2]] * 3


def test_a_hand_missed_for_a_few_frames_takes_its_id_back_only_near_where_it_was_expected():
    """Two hands; hand 1's crop shows no hand on frames 3-5 while it moves on at its speed. Found
    again (frame 6) where it was expected: id 1 again, not hand 0's and not a new one. Missed for
    longer than lost_s, or found far from where it was expected: a new id."""
    a = hand(150, 300)

    def hand_ids(missed, lost_s=0.5, jump=0.0):
        tracker = HandTracker(max_hands=2, detect_every=1, smoothing=None, lost_s=lost_s)
        out = []
        for i in range(12):
            b = hand(400 + 4 * i + (jump if i >= 3 + missed else 0), 280, turn=-0.3)
            boxes = boxes_of([a, b]) if tracker.wants_detection(i) else None
            rois = tracker.rois_to_run(i, boxes)
            predictions = [model_on(roi, [a, b]) for roi in rois]
            if 3 <= i < 3 + missed:
                predictions = [p if r.cx < 300 else no_hand() for p, r in zip(predictions, rois)]
            out.append(ids(tracker.update(predictions)))
        return out

    assert hand_ids(3) == [[0, 1]] * 3 + [[0]] * 3 + [[0, 1]] * 6
    assert hand_ids(3, lost_s=0.05) == [[0, 1]] * 3 + [[0]] * 3 + [[0, 2]] * 6  # 0.1 s lost: too long
    assert hand_ids(3, jump=200.0) == [[0, 1]] * 3 + [[0]] * 3 + [[0, 2]] * 6  # found far from where expected
    with pytest.raises(ValueError, match="lost_s"):
        HandTracker(lost_s=-1.0)
