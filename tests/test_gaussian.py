"""The compiled Gaussian blur (kernels/gaussian.py) equals SciPy's ``gaussian_filter(mode="nearest")`` to the bit."""

import numpy as np
import pytest
from scipy import ndimage

from heattrack.kernels.gaussian import gaussian_blur, gaussian_half_weights
from heattrack.kernels.predictors import psf_blur_stack


def _field(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (280 + 15 * rng.standard_normal(shape)).astype(np.float32)


@pytest.mark.parametrize(("shape", "sigma", "truncate"), [
    ((300, 301), 3.6, 3.0),   # Landsat's footprint on 10 m pixels
    ((257, 300), 1.8, 3.0),   # the same on the 20 m grid of the fine-scale fit
    ((290, 290), 1.0, 2.0),   # the 20 m bands' blur
    ((256, 400), 0.3, 3.0),   # a radius of 1 px
    ((600, 120), 9.0, 4.0),   # a kernel longer than a tenth of the rows
    ((4096, 17), 9.0, 4.0),   # a kernel wider than the rows (the padding repeats the edge beyond them)
])
def test_blur_equals_scipy_to_the_bit(shape, sigma, truncate):
    a = _field(shape)
    got = gaussian_blur(a, sigma, truncate=truncate)
    want = ndimage.gaussian_filter(a, sigma, mode="nearest", truncate=truncate)
    assert got.dtype == np.float32
    assert np.array_equal(got, want)


def test_nan_spreads_as_in_scipy_and_strided_input_is_read_right():
    a = _field((400, 400), seed=1)
    a[100:110, 50:60] = np.nan
    assert np.array_equal(gaussian_blur(a, 2.0, 3.0), ndimage.gaussian_filter(a, 2.0, mode="nearest", truncate=3.0),
                          equal_nan=True)
    view = _field((600, 700), seed=2)[::2, 5:605]  # not contiguous
    assert np.array_equal(gaussian_blur(view, 1.5, 3.0),
                          ndimage.gaussian_filter(view, 1.5, mode="nearest", truncate=3.0))


def test_small_and_float64_arrays_go_to_scipy_with_the_same_result():
    small = _field((40, 50))
    assert np.array_equal(gaussian_blur(small, 2.0, 3.0),
                          ndimage.gaussian_filter(small, 2.0, mode="nearest", truncate=3.0))
    wide = _field((300, 300)).astype(np.float64)
    out = gaussian_blur(wide, 2.0, 3.0)
    assert out.dtype == np.float64
    assert np.array_equal(out, ndimage.gaussian_filter(wide, 2.0, mode="nearest", truncate=3.0))


def test_weights_are_normalised_and_reach_truncate_sigmas():
    w = gaussian_half_weights(3.6, 3.0)
    assert w.size - 1 == int(3.0 * 3.6 + 0.5)
    assert w[0] + 2 * w[1:].sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(np.diff(w) < 0)


def test_psf_blur_stack_keeps_its_meaning():
    """Normalised over the pixels where every layer is finite, NaN where a layer is not: a constant stays itself
    next to a hole."""
    stack = np.full((2, 300, 300), 5.0, dtype=np.float32)
    stack[1, 100:120, 100:120] = np.nan
    out = psf_blur_stack(stack, 3.6)
    assert np.isnan(out[:, 100:120, 100:120]).all()
    assert np.allclose(out[:, 95, 95], 5.0, atol=1e-5) and np.allclose(out[:, 200, 200], 5.0, atol=1e-5)
