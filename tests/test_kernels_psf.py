"""The effective-resolution estimate from an image's own power spectrum (kernels/psf.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from heattrack.kernels.psf import estimate_footprint, radial_power_spectrum


def power_law_field(n: int, beta: float, seed: int) -> np.ndarray:
    """A random scene whose power spectrum falls as f**-beta (cities and fields are close to beta 2)."""
    rng = np.random.default_rng(seed)
    f = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.rfftfreq(n)[None, :])
    amp = np.where(f > 0, f, np.inf) ** (-beta / 2)
    spec = amp * (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape))
    field = np.fft.irfft2(spec, s=(n, n))
    return field / field.std()


@pytest.mark.parametrize("sigma", [0.0, 2.0, 4.0])
@pytest.mark.parametrize("beta", [1.5, 2.5])
def test_the_footprint_of_a_blurred_scene_is_recovered(sigma, beta):
    scene = power_law_field(256, beta, seed=int(10 * sigma + beta))
    img = (ndimage.gaussian_filter(scene, sigma) if sigma else scene)
    img = img + np.random.default_rng(1).normal(0, 0.01 * img.std(), img.shape)  # a white noise floor
    est = estimate_footprint(img)
    assert est is not None and est.window_px == 256
    assert abs(est.sigma_px - sigma) <= max(0.15 * sigma, 0.5), est
    assert est.box_width_px == pytest.approx(np.sqrt(12) * est.sigma_px)


def test_gaps_are_filled_but_a_mostly_empty_or_flat_or_small_image_gives_no_estimate():
    img = ndimage.gaussian_filter(power_law_field(128, 2.0, seed=3), 3.0)
    holed = img.copy()
    holed[10:20, 10:20] = np.nan  # 0.6 %: filled with the nearest value
    est = estimate_footprint(holed)
    assert est is not None and abs(est.sigma_px - 3.0) <= 0.6
    sparse = img.copy()
    sparse[:, :40] = np.nan  # 31 % missing
    assert estimate_footprint(sparse) is None
    assert estimate_footprint(np.full((128, 128), 271.0)) is None
    assert estimate_footprint(np.random.default_rng(0).normal(size=(128, 128))) is None  # noise: no structure
    assert estimate_footprint(img[:50, :50]) is None


def test_radial_spectrum_of_white_noise_is_flat():
    f, p = radial_power_spectrum(np.random.default_rng(0).normal(size=(256, 256)))
    assert f[0] > 0 and f[-1] < 0.5 and np.all(np.diff(f) > 0)
    mid, high = p[(f > 0.1) & (f < 0.3)].mean(), p[f >= 0.3].mean()
    assert mid / high == pytest.approx(1.0, abs=0.1)
    blurred = radial_power_spectrum(ndimage.gaussian_filter(np.random.default_rng(0).normal(size=(256, 256)), 1.0))[1]
    assert blurred[f >= 0.3].mean() < 0.1 * blurred[(f > 0.1) & (f < 0.3)].mean()
