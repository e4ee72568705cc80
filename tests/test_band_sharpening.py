"""The 20 m Sentinel-2 bands given the 10 m bands' detail before they become DMS predictors
(:func:`heattrack.kernels.predictors.sharpen_20m_bands`)."""

import numpy as np
import pytest
from scipy import ndimage

from heattrack.kernels.lst import block_mean, upsample_bilinear
from heattrack.kernels.predictors import sharpen_20m_bands


def _scene(rng, n=64):
    """Four sharp 10 m bands with 10-30 m texture; a SWIR band that is a linear mix of them, delivered as the MSI
    does (the mean of each 2 x 2 block) and read bilinearly onto the 10 m grid; and its true 10 m field."""
    fine = {b: np.clip(0.2 + 0.08 * ndimage.gaussian_filter(rng.standard_normal((n, n)), s), 0.01, 1).astype(np.float32)
            for b, s in (("B02", 1.0), ("B03", 1.5), ("B04", 0.8), ("B08", 1.2))}
    true_swir = (0.05 + 0.6 * fine["B04"] + 0.3 * fine["B08"] - 0.2 * fine["B02"]).astype(np.float32)
    read = upsample_bilinear(block_mean(true_swir, 2), 2)
    return fine, true_swir, read


def _rmse(a, b):
    return float(np.sqrt(np.nanmean((a[4:-4, 4:-4] - b[4:-4, 4:-4]) ** 2)))


@pytest.mark.parametrize("n", [64, 66])  # 66: the fit's 4-pixel blocks do not tile it
def test_a_20m_band_gets_the_detail_of_the_10m_bands(rng, n):
    fine, true_swir, read = _scene(rng, n)
    out = sharpen_20m_bands({**fine, "B11": read}, np.ones(read.shape, bool))
    assert out["B11"].shape == read.shape
    assert _rmse(out["B11"], true_swir) < 0.5 * _rmse(read, true_swir)
    for b in fine:  # the 10 m bands as they were
        assert out[b] is fine[b]


def test_only_the_bands_in_use_and_nothing_without_a_20m_band(rng):
    fine, _, read = _scene(rng)
    bands = {**fine, "B11": read, "B05": read.copy()}
    out = sharpen_20m_bands(bands, np.ones(read.shape, bool), use=("B04", "B08", "B11"))
    assert out["B05"] is bands["B05"] and not np.array_equal(out["B11"], read)
    assert sharpen_20m_bands(fine, np.ones(read.shape, bool)) == fine


def test_cloud_and_nan_pixels_do_not_steer_the_fit(rng):
    fine, true_swir, read = _scene(rng)
    clear = np.ones(read.shape, bool)
    clear[:20] = False
    cloudy = {b: np.where(clear, v, 0.6).astype(np.float32) for b, v in fine.items()}  # bright cloud, not clear
    swir = np.where(clear, read, 0.6).astype(np.float32)
    swir[40, 40] = np.nan
    out = sharpen_20m_bands({**cloudy, "B11": swir}, clear)
    assert np.isnan(out["B11"][40, 40])
    assert _rmse(np.where(clear, out["B11"], np.nan), true_swir) < 0.5 * _rmse(np.where(clear, read, np.nan),
                                                                                true_swir)


def test_the_tile_records_which_bands_were_given_the_detail(rng):
    from heattrack.kernels.chain import ChainParams, thermal_products

    n = 120
    fine, _, read = _scene(rng, n)
    lst = (275 + 3 * fine["B04"] + rng.normal(0, 0.2, (n, n))).astype(np.float32)
    clear = np.ones((n, n), bool)
    bands = {**fine, "B11": read, "B12": read.copy()}
    info = thermal_products(lst, fine["B04"], fine["B08"], clear, ChainParams(downscale_method="dms"), bands).info
    assert info["bands_20m_sharpened"] == ["B11", "B12"]
    off = ChainParams(downscale_method="dms", dms_sharpen_20m=False)
    assert "bands_20m_sharpened" not in thermal_products(lst, fine["B04"], fine["B08"], clear, off, bands).info
    assert "bands_20m_sharpened" not in thermal_products(lst, fine["B04"], fine["B08"], clear,
                                                         ChainParams(downscale_method="dms"), fine).info
