"""The thermal product's footprint estimated from the scene (kernels/footprint.py: the estimate and
product_footprint)."""

import numpy as np
import pytest
from conftest import REAL
from scipy import ndimage

from heattrack.kernels.dms import DMSParams
from heattrack.kernels.footprint import (
    FOOTPRINT_CANDIDATES,
    estimate_footprint_sigma,
    footprint_scales,
    product_footprint,
)

SENSOR_PX = 3.6  # Landsat TIRS's 36 m on 10 m pixels
CANDIDATES = tuple(k * SENSOR_PX for k in FOOTPRINT_CANDIDATES)


def _scene(sigma_px, n=256, seed=0, noise_k=0.05):
    """Four textured 'bands' (land cover at 10-60 m scales), and LST = a linear mix of them seen through a
    Gaussian footprint of ``sigma_px``, sampled on 30 m pixels (3-px blocks), plus a smooth field and noise."""
    rng = np.random.default_rng(seed)
    bands = np.stack([ndimage.gaussian_filter(rng.standard_normal((n, n)), s) * 10 for s in (1.0, 1.5, 2.5, 4.0)])
    mix = np.tensordot(np.array([1.5, -2.0, 1.0, 0.8]), bands, axes=1)
    lst = 290 + ndimage.gaussian_filter(mix, sigma_px)
    lst = lst[(np.arange(n) // 3 * 3 + 1).clip(0, n - 1)][:, (np.arange(n) // 3 * 3 + 1).clip(0, n - 1)]
    lst += ndimage.gaussian_filter(rng.standard_normal((n, n)), 40) * 30 + noise_k * rng.standard_normal((n, n))
    return lst.astype(np.float32), bands.astype(np.float32)


@pytest.mark.parametrize("true_px", [3.6, 5.0, 6.5])
def test_the_footprint_the_scene_was_seen_through_is_found(true_px):
    lst, bands = _scene(true_px)
    valid = np.ones(lst.shape, bool)
    est = estimate_footprint_sigma(lst, bands, valid, CANDIDATES, **footprint_scales(SENSOR_PX))
    assert est.sigma_px is not None and est.r2 > 0.5
    # the 30 m pixels add their own box (sigma 0.87 px) in quadrature; read within 12 %
    assert est.sigma_px == pytest.approx(np.hypot(true_px, 0.87), rel=0.12)
    assert len(est.residual) == len(CANDIDATES) and min(est.residual) == pytest.approx(1 - est.r2)


def test_clouds_and_nan_do_not_move_the_estimate():
    lst, bands = _scene(5.0, seed=1)
    clear = np.ones(lst.shape, bool)
    cloud = np.zeros(lst.shape, bool)
    cloud[40:90, 60:140] = True
    cloud[180:200, 10:60] = True
    lst_c = np.where(cloud, 255.0, lst).astype(np.float32)  # a cold cloud top, masked by QA
    a = estimate_footprint_sigma(lst, bands, clear, CANDIDATES, **footprint_scales(SENSOR_PX))
    b = estimate_footprint_sigma(lst_c, bands, ~cloud, CANDIDATES, **footprint_scales(SENSOR_PX))
    c = estimate_footprint_sigma(np.where(cloud, np.nan, lst), bands, clear & np.isfinite(np.where(cloud, np.nan, 1)),
                                 CANDIDATES, **footprint_scales(SENSOR_PX))
    assert b.sigma_px == pytest.approx(a.sigma_px, rel=0.06) and c.sigma_px == pytest.approx(b.sigma_px, rel=1e-6)


def test_no_land_cover_signal_keeps_the_sensors_footprint():
    rng = np.random.default_rng(3)
    _, bands = _scene(4.0)
    lst = (290 + rng.standard_normal(bands.shape[1:])).astype(np.float32)  # heat unrelated to the optics
    est = estimate_footprint_sigma(lst, bands, np.ones(lst.shape, bool), CANDIDATES, **footprint_scales(SENSOR_PX))
    assert est.sigma_px is None
    dms, record = product_footprint(lst, bands, np.ones(lst.shape, bool), DMSParams(psf_sigma_px=SENSOR_PX))
    assert dms.psf_sigma_px == SENSOR_PX and record["source"] == "configured"
    few = np.zeros(lst.shape, bool)
    few[:20, :20] = True  # too few cells to tell
    assert estimate_footprint_sigma(lst, bands, few, CANDIDATES).sigma_px is None


def test_product_footprint_never_below_the_sensors():
    lst, bands = _scene(2.0)  # sharper than TIRS could see: the candidates start at the sensor's footprint
    dms, record = product_footprint(lst, bands, np.ones(lst.shape, bool), DMSParams(psf_sigma_px=SENSOR_PX))
    assert record["source"] == "estimated" and dms.psf_sigma_px == pytest.approx(SENSOR_PX)
    lst, bands = _scene(6.0, n=250)  # a tile that is not a whole number of working cells
    dms, record = product_footprint(lst, bands, np.ones(lst.shape, bool), DMSParams(psf_sigma_px=SENSOR_PX))
    assert dms.psf_sigma_px == record["psf_sigma_px"] and 5.0 < dms.psf_sigma_px < 7.2


def test_real_landsat_product_is_wider_than_the_tirs_footprint():
    """Momotombo (real Landsat 8 C2L2, 30 m pixels): the optics match ST_B10 best through a footprint wider than
    TIRS's 36 m (Collection 2 resamples ~100 m samples onto 30 m): measured 60-70 m (docs/downscaling.md)."""
    from heattrack.evaluate import read_landsat_for_asc
    from heattrack.kernels.predictors import predictor_stack

    st, bands, _ = read_landsat_for_asc(REAL / "landsat-momotombo")
    stack, _ = predictor_stack(bands, np.isfinite(st))
    valid = np.isfinite(st) & np.isfinite(stack).all(axis=0)
    sensor = 36.0 / 30.0
    est = estimate_footprint_sigma(st, stack, valid, tuple(k * sensor for k in FOOTPRINT_CANDIDATES),
                                   **footprint_scales(sensor))
    assert est.sigma_px is not None and 50.0 < 30.0 * est.sigma_px < 80.0
