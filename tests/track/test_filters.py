"""The One Euro filter: the paper's update, still points steadied, fast motion followed, and the
edge cases (first sample, NaN, repeated or backward time)."""

import math

import numpy as np
import pytest

from handkp.track.filters import OneEuroFilter, smoothing_factor

FPS = 30.0


def run(f, samples, fps=FPS):
    return np.array([f(x, i / fps) for i, x in enumerate(samples)])


def test_smoothing_factor_is_the_papers():
    for fc, dt in [(1.0, 1 / 30), (0.1, 0.5), (25.0, 0.001)]:
        tau = 1 / (2 * math.pi * fc)
        assert smoothing_factor(fc, dt) == pytest.approx(1 / (1 + tau / dt))


def test_one_step_follows_the_papers_update():
    f = OneEuroFilter(min_cutoff=1.5, beta=0.1, d_cutoff=2.0)
    x0, x1, dt = np.array([[10.0, -4.0]]), np.array([[13.0, -2.0]]), 0.04
    assert (f(x0, 1.0) == x0).all()  # the first sample as it is
    speed = smoothing_factor(2.0, dt) * (x1 - x0) / dt  # dx̂ = α_d · dx, from dx̂_prev = 0
    cutoff = 1.5 + 0.1 * np.abs(speed)
    np.testing.assert_allclose(f(x1, 1.0 + dt), x0 + smoothing_factor(cutoff, dt) * (x1 - x0))


def test_a_constant_signal_stays_constant():
    kp = np.random.default_rng(0).uniform(0, 640, (21, 2))
    out = run(OneEuroFilter(), [kp] * 50)
    np.testing.assert_allclose(out, np.broadcast_to(kp, out.shape), rtol=0, atol=1e-9)


def test_a_noisy_still_point_jitters_much_less():
    rng = np.random.default_rng(1)
    noisy = 100.0 + rng.normal(0, 2.0, (300, 21, 2))  # 2 px of jitter on a still hand
    out = run(OneEuroFilter(), noisy)
    assert out[30:].var() < noisy[30:].var() / 5
    assert abs(out[30:].mean() - 100.0) < 0.5


def test_a_fast_ramp_lags_less_with_a_larger_beta():
    ramp = [np.array([[300.0 * i / FPS, 0.0]]) for i in range(60)]  # 300 px/s for 2 s
    lag = {
        beta: 300.0 * 59 / FPS - run(OneEuroFilter(min_cutoff=1.0, beta=beta), ramp)[-1, 0, 0]
        for beta in (0.0, 0.01, 0.05)
    }
    assert lag[0.0] > 3 * lag[0.01] > 3 * lag[0.05] > 0
    assert lag[0.0] == pytest.approx(
        300.0 * (1 / smoothing_factor(1.0, 1 / FPS) - 1) / FPS, rel=0.05
    )  # the steady lag v·dt·(1-α)/α


def test_every_element_is_its_own_channel():
    rng = np.random.default_rng(2)
    signal = rng.normal(0, 5, (40, 2)).cumsum(0)
    together = run(OneEuroFilter(beta=0.2), signal)
    for k in range(2):
        np.testing.assert_allclose(together[:, k], run(OneEuroFilter(beta=0.2), signal[:, k]))


def test_nan_resets_repeated_time_holds_and_time_going_back_restarts():
    f = OneEuroFilter()
    f(np.array([0.0]), 0.0)
    smoothed = f(np.array([10.0]), 0.1)
    assert 0 < smoothed[0] < 10
    assert (f(np.array([50.0]), 0.1) == smoothed).all()  # dt = 0: nothing new
    assert (f(np.array([20.0]), 0.05) == 20.0).all()  # dt < 0: a new stream starts here
    assert np.isnan(f(np.array([np.nan]), 0.2)).all()  # a lost hand passes through …
    assert (f(np.array([7.0]), 0.3) == 7.0).all()  # … and the next sample starts afresh
    f.reset()
    assert (f(np.array([-3.0]), 0.4) == -3.0).all()
    with pytest.raises(ValueError):
        f(np.zeros(3), 0.5)
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=0.0)
