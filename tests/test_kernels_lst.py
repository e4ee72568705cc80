import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heattrack.kernels.lst import (
    bilinear_sharpen,
    block_mean,
    block_median,
    block_repeat,
    conserve_coarse,
    nan_median_filter,
    tsharp_fit,
    tsharp_sharpen,
    upsample_bilinear,
)


def test_block_mean_ignores_nan_and_applies_min_fraction():
    a = np.ones((4, 4), dtype=np.float32)
    a[:2, :2] = [[1, 3], [np.nan, np.nan]]
    out = block_mean(a, 2, min_valid_fraction=0.5)
    assert out[0, 0] == 2.0 and out[1, 1] == 1.0
    assert np.isnan(block_mean(a, 2, min_valid_fraction=0.75)[0, 0])
    with pytest.raises(ValueError):
        block_mean(np.ones((5, 4)), 2)


def test_block_median_equals_numpy_nanmedian_per_block(rng):
    a = rng.normal(size=(12, 18)).astype(np.float32)
    a[rng.random(a.shape) < 0.3] = np.nan
    a[:3, :3] = np.nan  # one block without any finite pixel
    out = block_median(a, 3)
    ref = np.array([[np.nan if np.isnan(b := a[i:i + 3, j:j + 3]).all() else np.nanmedian(b)
                     for j in range(0, 18, 3)] for i in range(0, 12, 3)])
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    assert np.isnan(out[0, 0])
    with pytest.raises(ValueError):
        block_median(np.ones((5, 4)), 2)


def test_block_mean_equals_numpy_nanmean_per_block_in_float64(rng):
    """The strided-add block mean is the float64 mean of each block's finite float32 values."""
    a = (280 + rng.normal(size=(20, 30))).astype(np.float32)
    a[rng.random(a.shape) < 0.2] = np.nan
    for f in (2, 5, 10):
        ref = np.array([[np.nanmean(a[i:i + f, j:j + f].astype(np.float64)) if np.isfinite(a[i:i + f, j:j + f]).any()
                         else np.nan for j in range(0, 30, f)] for i in range(0, 20, f)]).astype(np.float32)
        np.testing.assert_array_equal(block_mean(a, f), ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_block_mean_is_bit_identical_to_the_numpy_path(rng, monkeypatch, dtype):
    """The compiled loop sums in the NumPy path's order: the same float32 means, NaN where too few are finite
    (strided views and infinities included)."""
    import heattrack.kernels.lst as lst

    a = (280 + 3 * rng.normal(size=(60, 90))).astype(dtype)
    a[rng.random(a.shape) < 0.3] = np.nan
    a[0, 0], a[1, 1] = np.inf, -np.inf
    cases = [(a, f, m) for f in (1, 3, 5, 10) for m in (0.0, 0.3, 1.0)] + [(a[:, ::2][:, :40], 5, 0.0)]
    monkeypatch.setattr(lst, "COMPILED_MIN_PX", 0)  # small arrays take the NumPy path by default
    fast = [lst.block_mean(x, f, m) for x, f, m in cases]
    assert lst.compiled(lst._block_mean_rows) is not None  # numba is a dependency: the compiled path ran
    monkeypatch.setattr(lst, "compiled", lambda fn: None)
    for (x, f, m), got in zip(cases, fast):
        want = lst.block_mean(x, f, m)
        assert got.dtype == want.dtype == np.float32
        np.testing.assert_array_equal(got, want)


def test_nan_median_filter_equals_a_windowed_nanmedian(rng):
    a = rng.normal(size=(9, 11)).astype(np.float32)
    a[rng.random(a.shape) < 0.3] = np.nan
    a[:4, :4] = np.nan  # a corner window without any finite value
    out = nan_median_filter(a, 3)
    for i in range(9):
        for j in range(11):
            w = a[max(0, i - 1): i + 2, max(0, j - 1): j + 2]
            want = np.nanmedian(w) if np.isfinite(w).any() else np.nan
            np.testing.assert_allclose(out[i, j], want, rtol=1e-6)
    assert np.isnan(out[0, 0])
    np.testing.assert_array_equal(nan_median_filter(a, 1), a)


def test_upsample_bilinear_constant_and_ramp():
    c = np.full((4, 5), 7.0, dtype=np.float32)
    assert np.allclose(upsample_bilinear(c, 3), 7.0)
    ramp = np.arange(6, dtype=np.float32)[None, :].repeat(4, 0)
    up = upsample_bilinear(ramp, 4)
    # interior fine pixels lie on the line through coarse pixel centres
    x = (np.arange(24) + 0.5) / 4 - 0.5
    inner = (x >= 0) & (x <= 5)
    assert np.allclose(up[5, inner], x[inner], atol=1e-5)


def test_upsample_fills_nan_from_neighbours():
    c = np.ones((3, 3), dtype=np.float32)
    c[1, 1] = np.nan
    assert np.isfinite(upsample_bilinear(c, 2)).all()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), factor=st.sampled_from([2, 3, 5, 10]), cloud=st.floats(0.0, 0.6),
       smooth=st.booleans())
def test_sharpening_conserves_coarse_mean(seed, factor, cloud, smooth):
    """The law: aggregating the sharpened LST gives back the observed coarse LST wherever it exists."""
    rng = np.random.default_rng(seed)
    n = 8 * factor
    ndvi = rng.uniform(-0.1, 0.8, (n, n)).astype(np.float32)
    valid = rng.random((n, n)) > cloud
    truth = 290 - 8 * ndvi + rng.normal(0, 0.7, (n, n))
    coarse = block_mean(np.where(valid, truth, np.nan), factor, 0.2)
    res = tsharp_sharpen(coarse, ndvi, valid, factor, smooth_residual=smooth)
    back = block_mean(res.lst, factor)
    ok = np.isfinite(coarse)
    assert np.isfinite(back[ok]).all()
    np.testing.assert_allclose(back[ok], coarse[ok], atol=2e-3)
    assert not np.isfinite(res.lst[~valid]).any()


def test_conserve_coarse_leaves_unobserved_blocks_nan():
    fine = np.ones((4, 4), dtype=np.float32)
    coarse = np.array([[2.0, np.nan], [3.0, 4.0]], dtype=np.float32)
    out = conserve_coarse(fine, coarse, 2)
    assert np.isnan(out[:2, 2:]).all()
    np.testing.assert_allclose(block_mean(out, 2)[[0, 1, 1], [0, 0, 1]], [2, 3, 4], atol=1e-5)


def test_tsharp_recovers_linear_relation_and_beats_bilinear(rng):
    f, n = 10, 100
    yy, xx = np.mgrid[0:n, 0:n]
    ndvi = (0.4 + 0.35 * np.sin(xx / 4.0) * np.cos(yy / 5.0)).astype(np.float32)
    truth = (295.0 - 10.0 * ndvi).astype(np.float32)
    valid = np.ones((n, n), bool)
    coarse = block_mean(truth, f)
    coef = tsharp_fit(coarse, block_mean(ndvi, f))
    assert coef[1] == pytest.approx(-10.0, rel=1e-3) and coef[0] == pytest.approx(295.0, abs=0.05)
    sharp = tsharp_sharpen(coarse, ndvi, valid, f).lst
    plain = bilinear_sharpen(coarse, valid, f).lst
    rmse = lambda a: float(np.sqrt(np.mean((a - truth) ** 2)))  # noqa: E731
    assert rmse(sharp) < 0.05 < rmse(plain)


def test_tsharp_falls_back_to_bilinear_without_ndvi_contrast():
    ndvi = np.full((20, 20), 0.3, dtype=np.float32)
    coarse = np.arange(4, dtype=np.float32).reshape(2, 2) + 280
    res = tsharp_sharpen(coarse, ndvi, np.ones((20, 20), bool), 10)
    assert res.info == {"method": "bilinear", "fallback_from": "tsharp"}
    np.testing.assert_allclose(block_mean(res.lst, 10), coarse, atol=0.6)


def test_block_repeat_roundtrip():
    c = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(block_mean(block_repeat(c, 4), 4), c)


def test_compiled_upsample_bilinear_is_bit_identical_to_the_numpy_path(rng, monkeypatch):
    import heattrack.kernels.lst as lst

    c = (280 + 5 * rng.normal(size=(23, 17))).astype(np.float32)
    c[rng.random(c.shape) < 0.2] = np.nan
    cases = [(c, f) for f in (1, 2, 3, 10)] + [(c.astype(np.float64), 5), (c[::2, ::3], 4)]
    monkeypatch.setattr(lst, "COMPILED_MIN_PX", 0)
    fast = [lst.upsample_bilinear(x, f) for x, f in cases]
    assert lst.compiled(lst._bilinear_rows) is not None
    monkeypatch.setattr(lst, "compiled", lambda fn: None)
    for (x, f), got in zip(cases, fast):
        want = lst.upsample_bilinear(x, f)
        assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_compiled_fill_nearest_picks_scipys_pixel_ties_included(rng, monkeypatch):
    """fill_nearest's compiled feature transform must fill every pixel from the same finite pixel as SciPy's
    ``distance_transform_edt``: random holes, finite pixels on a lattice (many equally near ones), a cloud in a
    corner, a few isolated finite pixels, columns and rows without any."""
    from scipy import ndimage

    import heattrack.kernels.lst as lst

    monkeypatch.setattr(lst, "COMPILED_MIN_PX", 0)
    checked = 0
    for trial in range(160):
        h, w = rng.integers(1, 70, 2)
        kind = trial % 4
        if kind == 0:
            bad = rng.random((h, w)) < rng.uniform(0.05, 0.99)
        elif kind == 1:
            bad = np.ones((h, w), bool)
            bad[rng.integers(0, 3)::rng.integers(2, 9), rng.integers(0, 3)::rng.integers(2, 9)] = False
        elif kind == 2:
            bad = np.zeros((h, w), bool)
            bad[rng.integers(0, h):, :] = True
            bad[:, : rng.integers(0, w)] = True
        else:
            bad = np.ones((h, w), bool)
            bad[rng.integers(0, h, 3), rng.integers(0, w, 3)] = False
        if bad.all() or not bad.any():
            continue
        a = np.where(bad, np.nan, np.arange(h * w, dtype=np.float32).reshape(h, w))  # each value names its pixel
        idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
        np.testing.assert_array_equal(lst.fill_nearest(a), a[tuple(idx)])
        checked += 1
    assert checked > 120 and lst.compiled(lst._nearest_fill) is not None


def test_small_arrays_never_load_the_compiled_loops():
    """The driver's detectability model runs these kernels on a few thousand pixels: that must not pay numba's
    import and cache load (~0.6 s per process)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np\nfrom heattrack.kernels import lst\n"
            "a = np.ones((90, 90), np.float32)\nlst.block_mean(a, 3)\nlst.upsample_bilinear(a[:30, :30], 3)\n"
            "print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
