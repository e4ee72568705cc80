import numpy as np
import pytest
import shapely
from affine import Affine

from heattrack.kernels.anomaly import local_anomaly, median_filter_nearest, robust_sigma, z_to_score
from heattrack.kernels.chain import ChainParams, compute_tile_products
from heattrack.kernels.features import ndvi
from heattrack.kernels.segments import (
    label_hotspots,
    neighbourhood_max,
    sample_at_points,
    sample_segment_points,
    score_segments,
)


def _plume(n, r, c, amp, sigma_px):
    yy, xx = np.mgrid[0:n, 0:n]
    return amp * np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * sigma_px**2))


def test_local_anomaly_finds_injected_plume(rng):
    n = 100
    lst = (275 + rng.normal(0, 0.2, (n, n)) + _plume(n, 60, 40, 3.0, 2.5)).astype(np.float32)
    lst[5:15, 70:90] = np.nan  # a cloud
    res = local_anomaly(lst, window_px=30, block=5)
    assert res.anomaly_k[60, 40] == pytest.approx(3.0, abs=0.5)
    assert res.score[60, 40] > 0.8
    background = np.ones((n, n), bool)
    background[50:70, 30:50] = False
    assert np.nanpercentile(res.score[background], 95) < 0.3
    assert np.isnan(res.anomaly_k[10, 80]) and np.isnan(res.score[10, 80])
    assert 0.15 < res.sigma_k < 0.35 or res.sigma_k == 0.3


@pytest.mark.parametrize("size", [3, 7, 11])
def test_compiled_median_filter_is_scipys(rng, size):
    """The background's median (compiled from 16,384 px) gives SciPy's values: a smooth field with ties (a flat patch,
    repeated values) and a noisy one; NaN, small arrays and even sizes go to SciPy itself."""
    from scipy import ndimage

    smooth = (270 + np.cumsum(rng.normal(0, 0.3, (150, 140)), axis=1)).astype(np.float32)
    smooth[40:55, 60:80] = 271.0
    noisy = np.round(270 + rng.normal(0, 2, (140, 150)), 1).astype(np.float32)  # rounded: many equal values
    for field in (smooth, noisy, noisy.astype(np.float64)):
        ref = ndimage.median_filter(field, size=size, mode="nearest")
        got = median_filter_nearest(field, size)
        assert got.dtype == field.dtype
        np.testing.assert_array_equal(got, ref)
    holed = smooth.copy()
    holed[3, 4] = np.nan
    np.testing.assert_array_equal(median_filter_nearest(holed, size), ndimage.median_filter(holed, size=size,
                                                                                            mode="nearest"))


def test_score_is_monotone_and_bounded():
    z = np.array([-5, 0, 1, 2, 4, 8, 50, np.nan])
    s = z_to_score(z)
    assert s[0] == 0 and s[2] == 0 and np.all(np.diff(s[:-1]) >= 0) and s[-2] <= 1 and np.isnan(s[-1])


def test_robust_sigma_ignores_outliers(rng):
    v = rng.normal(0, 1, 10_000)
    v[:50] = 100
    assert robust_sigma(v) == pytest.approx(1.0, rel=0.05)
    assert np.isnan(robust_sigma(np.array([np.nan])))


def test_ndvi_range_and_undefined():
    out = ndvi(np.array([0.05, 0.0, 0.2]), np.array([0.45, 0.0, 0.2]))
    assert out[0] == pytest.approx(0.8) and np.isnan(out[1]) and out[2] == 0


def test_sample_segment_points_spacing():
    lines = np.array([shapely.LineString([(0, 0), (100, 0)]), shapely.LineString([(0, 0), (3, 4)])])
    pts = sample_segment_points(lines, 10.0)
    assert np.bincount(pts.segment).tolist() == [10, 1]
    np.testing.assert_allclose(pts.x[:10], np.arange(5, 100, 10))
    assert (pts.x[10], pts.y[10]) == pytest.approx((1.5, 2.0))


def test_sample_segment_points_match_geos_on_every_line_kind(rng):
    """The compiled walk along LineStrings gives GEOS's points to the bit, also with a repeated vertex and a
    zero-length line; MultiLineStrings (parts that did not merge) keep GEOS's walk over their parts."""
    lines = [shapely.LineString(np.cumsum(rng.normal(0, 40, (int(rng.integers(2, 7)), 2)), axis=0))
             for _ in range(200)]
    lines[3] = shapely.LineString([(0, 0), (0, 0), (30, 40), (30, 40), (60, 0)])
    lines += [shapely.LineString([(5, 5), (5, 5)]),
              shapely.MultiLineString([[(0, 0), (25, 0)], [(100, 100), (100, 160)]])]
    lines = np.array(lines, dtype=object)
    pts = sample_segment_points(lines, 10.0)
    n = np.bincount(pts.segment, minlength=lines.size)
    k = np.arange(pts.segment.size) - np.repeat(np.cumsum(n) - n, n)
    dist = (k + 0.5) * (shapely.length(lines)[pts.segment] / n[pts.segment])
    ref = shapely.get_coordinates(shapely.line_interpolate_point(lines[pts.segment], dist))
    np.testing.assert_array_equal(np.c_[pts.x, pts.y], ref)
    assert (pts.x[pts.segment == lines.size - 1] >= 100).sum() == 6  # the second part of the multiline


def test_a_network_of_only_multilinestrings_is_sampled():
    """A network whose every feature is a MultiLineString of parts that do not merge (a GIS export that groups
    pipes) has no LineString for the vectorised walk: it is sampled by GEOS alone (it raised IndexError)."""
    lines = np.array([shapely.MultiLineString([[(0, 0), (25, 0)], [(100, 100), (100, 160)]]),
                      shapely.MultiLineString([[(0, 50), (40, 50)], [(300, 0), (300, 30)]])], dtype=object)
    pts = sample_segment_points(lines, 10.0)
    assert np.bincount(pts.segment).tolist() == [9, 7]
    assert (pts.x[pts.segment == 1] == 300).sum() == 3 and np.isfinite(pts.x).all()


def test_neighbourhood_max_ignores_nan():
    a = np.full((5, 5), np.nan, dtype=np.float32)
    a[2, 2] = 1.0
    out = neighbourhood_max(a, 1)
    assert out[1, 1] == 1 and np.isnan(out[0, 0])


@pytest.mark.parametrize("radius", [1, 2, 6, 17])
def test_compiled_neighbourhood_max_equals_scipys_maximum_filter(radius):
    """Tiles take the compiled window maximum (van Herk / Gil-Werman); it must give SciPy's ``maximum_filter`` exactly:
    NaN holes and a NaN band, windows reaching past every edge, a float64 input, sizes not a multiple of the window."""
    from scipy import ndimage

    from heattrack.kernels.lst import COMPILED_MIN_PX

    rng = np.random.default_rng(radius)
    for shape, dtype in (((301, 257), np.float32), ((256, 263), np.float64)):
        a = rng.normal(0, 1, shape).astype(dtype)
        a[rng.random(shape) < 0.3] = np.nan
        a[40:90] = np.nan
        a[:, -3:] = np.inf
        assert a.size >= COMPILED_MIN_PX
        filled = np.where(np.isfinite(a), a, -np.inf)
        want = ndimage.maximum_filter(filled, size=2 * radius + 1, mode="constant", cval=-np.inf).astype(np.float32)
        want[~np.isfinite(want)] = np.nan
        got = neighbourhood_max(a, radius)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want)


def test_sample_at_points_outside_is_nan():
    t = Affine(10, 0, 0, 0, -10, 100)
    v = np.arange(100, dtype=np.float32).reshape(10, 10)
    out = sample_at_points(v, t, np.array([5.0, 95.0, 500.0]), np.array([95.0, 5.0, 5.0]))
    assert out[0] == 0 and out[1] == 99 and np.isnan(out[2])


def test_score_segments_top_k_and_no_data():
    risk = np.array([0.9, 0.1, 0.5, 0.7, np.nan, np.nan])
    dt = np.array([3.0, 0.1, 1.0, 2.0, np.nan, np.nan])
    seg = np.array([0, 0, 0, 0, 1, 1])
    s = score_segments(risk, dt, seg, n_segments=3, top_k=2)
    assert s.risk[0] == pytest.approx(0.8) and np.isnan(s.risk[1]) and np.isnan(s.risk[2])
    assert s.delta_t_k[0] == 3.0 and s.n_clear_px.tolist() == [4, 0, 0]


def test_label_hotspots():
    score = np.zeros((20, 20), dtype=np.float32)
    anom = np.zeros((20, 20), dtype=np.float32)
    score[2:5, 2:5] = 0.9
    anom[3, 3] = 4.0
    score[15, 15] = 0.95  # single pixel: below min area
    b = label_hotspots(score, anom, 0.6, min_area_px=2)
    assert b.area_px.tolist() == [9] and b.peak_delta_t_k[0] == 4.0 and (b.row[0], b.col[0]) == (3.0, 3.0)


def test_chain_on_small_tile_sharpens_and_flags_plume(rng):
    n, f = 200, 10
    yy, xx = np.mgrid[0:n, 0:n]
    nd = (0.4 + 0.3 * np.sin(xx / 7.0) * np.cos(yy / 9.0)).astype(np.float32)
    red = (0.1 - 0.05 * nd).astype(np.float32)
    nir = red * (1 + nd) / (1 - nd)
    truth = 290 - 6 * nd + _plume(n, 100, 100, 8.0, 3.0)
    # sensor: 100 m blocks on the 10 m grid (what a nearest-resampled coarse product looks like)
    from heattrack.kernels.lst import block_mean, block_repeat
    obs = block_repeat(block_mean(truth.astype(np.float32), f), f)
    from heattrack.kernels.dms import DMSParams

    params = ChainParams(background_window_px=60, dms=DMSParams(psf_sigma_px=0.0))  # a block-mean "sensor"
    prod = compute_tile_products(obs, red, nir, np.ones((n, n), bool), params)
    assert prod.valid.all() and prod.info["method"] == "dms"
    # the residual is added back as a smooth field: block means stay close to the observation
    assert np.mean(np.abs(block_mean(prod.lst_10m, f) - block_mean(obs, f))) < 0.1
    assert np.sqrt(np.mean((prod.lst_10m - truth) ** 2)) < np.sqrt(np.mean((prod.lst_plain - truth) ** 2))
    peak = np.unravel_index(np.nanargmax(prod.risk), prod.risk.shape)
    assert abs(peak[0] - 100) <= 15 and abs(peak[1] - 100) <= 15


def test_segment_scoring_scales_to_a_national_network(rng):
    """100,000 segments (~15,000 km): sampling and scoring are vectorised (no per-segment Python loop)."""
    import time

    n = 100_000
    x0 = rng.uniform(0, 500_000, n)
    y0 = rng.uniform(0, 500_000, n)
    ang = rng.uniform(0, 2 * np.pi, n)
    length = rng.uniform(30, 300, n)
    lines = shapely.linestrings(np.stack([np.stack([x0, y0], 1),
                                          np.stack([x0 + length * np.cos(ang), y0 + length * np.sin(ang)], 1)], 1))
    t0 = time.perf_counter()
    pts = sample_segment_points(lines, 10.0)
    risk = rng.random(len(pts)).astype(np.float32)
    risk[rng.random(len(pts)) < 0.1] = np.nan
    s = score_segments(risk, risk * 3, pts.segment, n, top_k=3)
    elapsed = time.perf_counter() - t0
    assert len(pts) == int(np.maximum(1, np.ceil(length / 10)).sum())
    for k in rng.integers(0, n, 20):  # brute force on a few segments
        r = risk[pts.segment == k]
        r = np.sort(r[np.isfinite(r)])[::-1][:3]
        assert (np.isnan(s.risk[k]) and r.size == 0) or s.risk[k] == pytest.approx(r.mean(), rel=1e-6)
    assert elapsed < 60, f"scoring 100k segments took {elapsed:.1f} s"


def test_window_max_at_points_equals_the_filtered_raster_sampled(rng):
    """The point path reads the same window maxima as filtering the whole raster: NaN ignored, windows cut at the
    edges, NaN for an all-NaN window and for points outside the raster."""
    from affine import Affine

    from heattrack.kernels.segments import neighbourhood_max, sample_at_points, window_max_at_points

    a = rng.normal(size=(40, 50)).astype(np.float32)
    a[rng.random(a.shape) < 0.4] = np.nan
    a[10:16, 20:26] = np.nan  # an all-NaN window at its centre
    t = Affine(10, 0, 1000, 0, -10, 5000)
    x = np.r_[rng.uniform(990, 1510, 300), 1230.0, 900.0]
    y = np.r_[rng.uniform(4590, 5010, 300), 4870.0, 4800.0]
    for r in (0, 1, 2, 4, 12):  # 12: wide enough that the whole-raster filter is the cheaper path
        want = sample_at_points(neighbourhood_max(a, r), t, x, y)
        got = window_max_at_points(a, t, x, y, r)
        np.testing.assert_array_equal(got, want)
    assert np.isnan(window_max_at_points(a, t, x, y, 2)[-2:]).all()  # all-NaN window; outside the raster
