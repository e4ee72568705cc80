"""The segment statistic's window along the pipe: the scan over consecutive points, its width per sensor, the share
of a plume it keeps (model and injection test) and the detectability it implies (pure kernels, small arrays)."""

import numpy as np
import pytest

from heattrack.kernels.ranking import (
    chain_attenuation,
    chain_profile,
    scan_window_points,
    segment_shares,
    segment_statistic,
    window_shares,
)
from heattrack.kernels.segments import segment_max, segment_window_max

LANDSAT = {"psf_sigma_px": 3.6, "factor": 10, "buffer_px": 2, "window_px": 31}
AIRBORNE = {"psf_sigma_px": 0.29, "factor": 1, "buffer_px": 1, "window_px": 11}


def test_window_max_matches_a_brute_force_scan(rng):
    lengths = rng.integers(1, 30, 200)
    seg = np.repeat(np.arange(lengths.size), lengths)
    v = rng.normal(size=seg.size)
    v[rng.random(seg.size) < 0.1] = np.nan
    v[seg == 5] = np.nan  # a segment without data
    for w in (1, 3, 7, 25):
        got = segment_window_max(v, seg, lengths.size + 1, w)
        assert np.isnan(got[-1]) and np.isnan(got[5])
        for s in range(lengths.size):
            x = v[seg == s]
            n = min(w, x.size)
            means = [np.nanmean(x[i:i + n]) for i in range(x.size - n + 1) if np.isfinite(x[i:i + n]).any()]
            if means:
                assert got[s] == pytest.approx(max(means))
    np.testing.assert_array_equal(segment_window_max(v, seg, lengths.size, 1), segment_max(v, seg, lengths.size))


def test_a_localised_warm_stretch_beats_a_single_hot_point():
    """A single hot point (noise, a chimney) wins the largest-point statistic; a leak warms a stretch of the pipe
    as wide as the sensor sees it, and that wins the window."""
    seg = np.repeat([0, 1], 40)
    v = np.zeros(80)
    v[10] = 3.0  # one hot point on segment 0
    v[40 + 15: 40 + 25] = 1.5  # a 100 m warm stretch on segment 1
    assert segment_window_max(v, seg, 2, 1)[0] > segment_window_max(v, seg, 2, 1)[1]
    assert segment_window_max(v, seg, 2, 9)[1] > segment_window_max(v, seg, 2, 9)[0]


def test_the_window_follows_the_width_at_which_the_sensor_sees_a_plume():
    landsat = scan_window_points(chain_attenuation(plume_fwhm_px=2.0, **LANDSAT), 20.0, 1.5, 10.0)
    airborne = scan_window_points(chain_attenuation(plume_fwhm_px=2.0, **AIRBORNE), 20.0, 1.5, 10.0)
    assert 18 <= landsat <= 28 and 2 <= airborne <= 4  # ~230 m against ~30 m
    assert scan_window_points(0.02, 20.0, 0.0, 10.0) == 1  # widths 0: the largest point, as before


def test_window_shares_are_the_profile_means_and_one_point_is_the_peak_model():
    prof = chain_profile(plume_fwhm_px=2.0, half_px=20, **LANDSAT)
    assert prof.size == 41 and abs(int(np.argmax(prof)) - 20) <= 3  # block positions skew it a little
    assert window_shares(prof, 1)[0] == pytest.approx(prof.max())
    assert chain_attenuation(plume_fwhm_px=2.0, **LANDSAT) == pytest.approx(prof.max())
    long = window_shares(chain_profile(plume_fwhm_px=2.0, half_px=40, **LANDSAT), [1, 5, 11, 23])
    assert np.all(np.diff(long) < 0)  # a longer window averages in more of the flanks
    assert long[-1] == pytest.approx(chain_attenuation(plume_fwhm_px=2.0, along_px=23, **LANDSAT))
    assert 0.6 < long[-1] / long[0] < 0.9


def test_segment_shares_are_the_statistic_of_a_plume_expected_over_its_position(rng):
    """``segment_shares`` is what the statistic of a noise-free segment reads for a plume of unit peak, averaged over
    the plume's position (each sample point in turn); far from the ends of a long segment it is the centred window."""
    w = 23
    prof = chain_profile(plume_fwhm_px=2.0, half_px=60, **LANDSAT)
    n_pts = np.array([1, 6, 15, 23, 40])
    got, centred = segment_shares(LANDSAT, 2.0, w, 1.0, n_pts)
    assert centred == pytest.approx(chain_attenuation(plume_fwhm_px=2.0, along_px=w, **LANDSAT))
    for n, share in zip(n_pts, got):
        seg = np.zeros(n, dtype=np.int64)
        reads = [segment_window_max(prof[60 - x: 60 - x + n], seg, 1, w)[0] for x in range(n)]
        assert share == pytest.approx(np.mean(reads), rel=0.02), n
    assert got[0] == pytest.approx(prof[60]) and got[2] < got[0] and got[-1] < centred
    far, _ = segment_shares(LANDSAT, 2.0, w, 1.0, np.array([120, 2000]), exact_up_to=120)
    assert far[0] < far[1] < centred and centred - far[1] < 0.1 * (centred - far[0])


def test_a_plume_of_mdl_k_lifts_a_long_segment_to_the_flag_level(rng):
    """The statistic keeps the centred share of a plume mid-way on a long segment; mdl_k is what it says there."""
    n_seg, per = 300, 60
    seg = np.repeat(np.arange(n_seg), per)
    pts = rng.normal(0.0, 0.05, seg.size)
    w = 23
    shares, centred = segment_shares(LANDSAT, 2.0, w, 1.0, np.full(n_seg, per))
    prof = chain_profile(plume_fwhm_px=2.0, half_px=20, **LANDSAT)

    def stat(v):
        return segment_statistic(v[None], seg, n_seg, centred, alpha=0.01, window_pts=w,
                                 short_gain=(shares / centred)[None])

    i = 7
    pts[seg == i] = 0.0  # its own clutter flat at the network's median level: the plume alone decides
    base = stat(pts)
    for factor, flagged in ((1.1, True), (0.6, False)):
        bumped = pts.copy()
        bumped[i * per + 10: i * per + 51] += factor * base.mdl_k[i] * prof  # mid-way: a little above the expectation
        assert (stat(bumped).stat_k[i] >= base.flag_level_k) == flagged, factor
    assert 0.85 < shares[0] / centred < 1.0  # a 600 m segment: its ends cost a little of the window


def test_the_injection_test_measures_the_windowed_share_the_model_predicts(smooth_tile_chain):
    from heattrack.kernels.chain import injected_attenuation

    lst, red, nir, clear, params, base = smooth_tile_chain
    kw = dict(plume_fwhm_px=2.0, buffer_px=2, margin_px=60)
    peak = np.median(injected_attenuation(lst, red, nir, clear, params, None, base, **kw))
    windowed = np.median(injected_attenuation(lst, red, nir, clear, params, None, base, along_px=23, **kw))
    model = chain_attenuation(plume_fwhm_px=2.0, along_px=23, **{**LANDSAT, "window_px": params.rank_window_px})
    assert windowed < peak
    assert 0.7 < windowed / model < 1.1


def test_chain_profile_is_cached_and_callers_get_their_own_copy():
    a = chain_profile(plume_fwhm_px=2.0, half_px=20, **LANDSAT)
    a[:] = -1.0
    b = chain_profile(plume_fwhm_px=2.0, half_px=20, **LANDSAT)
    assert np.all(b >= 0) and b.max() > 0


def test_on_the_products_own_pixels_the_injection_test_measures_what_the_native_model_predicts(smooth_tile_chain):
    """``detect.rank_grid: native``: the ranking reads ST_B10's 30 m pixels, so plumes injected through the
    footprint keep about what the native model (footprint, 3-px pixels read as they are, local median, buffer
    maximum) predicts, and more than twice what the thermal-grid chain (100 m blocks, bilinear) keeps."""
    from dataclasses import replace

    from heattrack.kernels.chain import injected_attenuation, thermal_products

    lst, red, nir, clear, params, _ = smooth_tile_chain
    native = replace(params, rank_native=True, detector=replace(params.detector, method="residual"))
    base = thermal_products(lst, red, nir, clear, native)
    kw = dict(plume_fwhm_px=2.0, buffer_px=2, margin_px=60, along_px=14)
    got = float(np.median(injected_attenuation(lst, red, nir, clear, native, None, base, **kw)))
    model = chain_attenuation(plume_fwhm_px=2.0, along_px=14, nearest=True,
                              **{**LANDSAT, "factor": 3, "window_px": params.rank_window_px})
    thermal = chain_attenuation(plume_fwhm_px=2.0, along_px=14, **{**LANDSAT, "window_px": params.rank_window_px})
    assert 0.75 < got / model < 1.25
    assert got > 2.0 * thermal
