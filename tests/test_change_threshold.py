"""The season's change threshold calibrated on the network's own warming tail (``changes.false_new_per_100km``):
pure kernel, small arrays."""

import numpy as np

from heattrack.kernels.changes import calibrated_new_z, change_class_warming


def _season(n: int) -> tuple:
    """Previous z, dates, current z, dates of ``n`` segments seen in both seasons, none flagged."""
    return np.zeros(n), np.ones(n), np.zeros(n), np.ones(n)


def test_a_light_tailed_network_gets_a_lower_threshold_and_about_the_false_calls_it_expects(rng):
    n, expected = 3000, 2.0
    over, fitted_sum = [], []
    for _ in range(30):  # pure noise: every segment above the threshold is a false call
        warming = rng.normal(0.3, 0.2, n)
        z_used, fitted = calibrated_new_z(*_season(n), warming, 0.05, 1, 5.5, expected)
        assert z_used < 5.5  # a Gaussian's tail is far lighter than new_z assumes
        z = (warming - np.median(warming)) / (1.4826 * np.median(np.abs(warming - np.median(warming))))
        over.append(int((z > z_used).sum()))
        fitted_sum.append(fitted)
    assert np.allclose(fitted_sum, expected)  # below new_z the threshold is the level of the expected count
    # the fit extrapolates the bulk's tail: on a Gaussian it is conservative (no more false calls than it expects)
    assert 0.0 <= np.mean(over) <= 1.5 * expected, over


def test_a_heavy_tailed_network_keeps_new_z_and_says_what_it_expects_there(rng):
    n = 3000
    warming = rng.standard_t(2, n) * 0.2  # roofs and roads that change between winters: a heavy tail
    z_used, fitted = calibrated_new_z(*_season(n), warming, 0.05, 1, 5.5, 2.0)
    assert z_used == 5.5 and fitted > 2.0  # the cap holds; the tail expects more than the target above it
    # a larger budget never raises the threshold; none (0) is new_z alone
    z_small = calibrated_new_z(*_season(n), rng.normal(0, 1, n), 0.05, 1, 5.5, 1.0)[0]
    assert calibrated_new_z(*_season(n), rng.normal(0, 1, n), 0.05, 1, 5.5, 0.0)[0] == 5.5
    assert calibrated_new_z(*_season(n), rng.normal(0, 1, n), 0.05, 1, 5.5, 10.0)[0] <= z_small


def test_too_few_segments_seen_in_both_seasons_keep_new_z(rng):
    prev_z, prev_n, cur_z, cur_n = _season(500)
    cur_n[15:] = 0  # seen in the current season on 15 segments only (cloud)
    z_used, fitted = calibrated_new_z(prev_z, prev_n, cur_z, cur_n, rng.normal(0, 1, 500), 0.05, 1, 5.5, 2.0)
    assert z_used == 5.5 and np.isnan(fitted)


def test_the_calibrated_threshold_calls_a_new_leak_that_new_z_misses(rng):
    n = 3000
    warming = rng.normal(0.3, 0.2, n)
    warming[7] = 0.3 + 5.0 * 0.2  # network z ~5: above the calibrated level, below new_z
    prev_z, prev_n, cur_z, cur_n = _season(n)
    cur_z[7] = 1.0  # warmer than the network's median now
    args = (prev_z, prev_n, cur_z, cur_n, warming, -warming)
    z_used, _ = calibrated_new_z(prev_z, prev_n, cur_z, cur_n, warming, 0.05, 1, 5.5, 2.0)
    assert z_used < 4.8
    fixed = change_class_warming(*args, 0.05, 1, 5.5)[0]
    calibrated = change_class_warming(*args, 0.05, 1, z_used)[0]
    assert fixed[7] == "stable" and calibrated[7] == "new"
