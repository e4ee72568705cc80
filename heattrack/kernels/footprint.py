"""The thermal product's effective footprint, estimated from the scene: how wide a Gaussian must blur the optical
predictors for them to match the thermal pixels best.

A sensor's footprint (Landsat TIRS: a ~100 m detector, Gaussian sigma ~36 m) is not the whole blur a delivered
product carries: Collection 2 samples TIRS about every 100 m and resamples the samples onto 30 m pixels by cubic
convolution, and the retrieval adds its own (emissivity from coarser data). Sharpening aggregates the 10 m predictors
"the way the sensor saw the scene" and the ranking removes the land-cover expectation seen the same way; a blur that
is too narrow leaves land-cover edges in both. Here, on a coarse working grid, the thermal pixels and every
predictor are high-passed (what a ``highpass_px`` Gaussian leaves: the scale at which land cover and footprint
interact), and the thermal detail is regressed on the predictors' detail blurred by each candidate sigma; the
sigma with the smallest residual (refined by a parabola through its neighbours) is the product's. Masked pixels
neither enter the fit nor put edges into the detail (they are filled with their valid surroundings, a normalised
convolution); blurs are products in Fourier space on a zero-padded grid, so each candidate costs one inverse FFT of
every predictor on the working grid.

On simulated scenes it reads ~40 m where the product samples the footprint at every 30 m pixel (truth: 35 m + the
30 m pixel) and 48-56 m where it samples every 100 m and resamples (as Collection 2); on the real Landsat 8
Momotombo scene 60-70 m (``tests/test_footprint.py``, docs/downscaling.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from heattrack.kernels.dms import DMSParams
from heattrack.kernels.lst import block_mean


@dataclass(frozen=True)
class FootprintEstimate:
    """``sigma_px``: the estimated Gaussian sigma (fine pixels), None where the scene does not tell (too few valid
    cells, or the optics explain under ``min_r2`` of the thermal detail); ``r2``: the share of the high-passed
    thermal detail the best candidate explains; ``candidates_px`` / ``residual``: the curve it was read from."""

    sigma_px: float | None
    r2: float
    candidates_px: tuple[float, ...]
    residual: tuple[float, ...]


def estimate_footprint_sigma(thermal: np.ndarray, predictors: np.ndarray, valid: np.ndarray,
                             candidates_px: tuple[float, ...], highpass_px: float = 10.0, grid: int = 4,
                             sample_cap: int = 20_000, min_r2: float = 0.05, min_cells: int = 500
                             ) -> FootprintEstimate:
    """The Gaussian sigma (fine pixels) among ``candidates_px`` (ascending) through which ``predictors``
    ``(n, H, W)`` (NaN where not ``valid``, as :func:`~heattrack.kernels.predictors.predictor_stack` gives them)
    explain ``thermal`` ``(H, W)`` best at the scales under ``highpass_px``, on ``valid`` pixels;
    worked out on a ``grid`` x coarser grid, fitted on up to ``sample_cap`` cells. The minimum is refined by a
    parabola through its neighbours (not beyond the candidates' range)."""
    cand = tuple(float(c) for c in candidates_px)
    h, w = (valid.shape[0] // grid) * grid, (valid.shape[1] // grid) * grid  # whole cells of the working grid
    y = block_mean(np.where(valid, thermal, np.nan)[:h, :w], grid)
    X = np.stack([block_mean(np.ascontiguousarray(p[:h, :w]), grid) for p in predictors])  # NaN where not valid
    m = np.isfinite(y) & np.isfinite(X).all(axis=0)
    keep = ndimage.binary_erosion(m, iterations=2)  # cells whose blurs are not mostly filled in
    if keep.sum() < min_cells:
        return FootprintEstimate(None, 0.0, cand, ())
    ny, nx = m.shape
    pad = int(np.ceil(3.0 * (cand[-1] ** 2 + highpass_px ** 2) ** 0.5 / grid)) + 2
    shape = (sfft.next_fast_len(ny + 2 * pad, real=True), sfft.next_fast_len(nx + 2 * pad, real=True))
    f2 = (np.fft.fftfreq(shape[0], grid)[:, None] ** 2 + np.fft.rfftfreq(shape[1], grid)[None, :] ** 2
          ).astype(np.float32)

    def transfer(sigma: float) -> np.ndarray:  # a Gaussian of sigma fine pixels, in Fourier space
        return np.exp(np.float32(-2.0 * np.pi ** 2 * sigma ** 2) * f2)

    def spatial(spec: np.ndarray) -> np.ndarray:
        return sfft.irfft2(spec, s=shape, workers=1)[..., :ny, :nx]

    # masked cells filled with the valid cells' smooth surroundings (normalised convolution at the high-pass
    # scale), so that no edge of a cloud or of the tile enters the detail below
    layers = np.where(m, np.concatenate([y[None], X]), 0.0).astype(np.float32)
    layers -= np.array([la[m].mean() for la in layers], dtype=np.float32)[:, None, None] * m
    smooth = transfer(highpass_px)
    weight = spatial(sfft.rfft2(m.astype(np.float32), s=shape, workers=1) * smooth)
    fill = spatial(sfft.rfft2(layers, s=shape, workers=1) * smooth) / np.maximum(weight, np.float32(1e-3))
    layers = np.where(m, layers, fill)
    F = sfft.rfft2(layers, s=shape, workers=1)
    cells = np.flatnonzero(keep.ravel())
    cells = cells[:: -(-cells.size // sample_cap)]
    target = spatial(F[0] * (1 - smooth)).ravel()[cells].astype(np.float64)
    total = float(np.sum((target - target.mean()) ** 2))
    residual = []
    for s in cand:
        # the predictors through a footprint of s, less their own smooth part (a Gaussian of s then of
        # highpass_px is one Gaussian of their root sum of squares): the detail the footprint leaves
        band = transfer(s) - transfer((s * s + highpass_px * highpass_px) ** 0.5)
        detail = spatial(F[1:] * band).reshape(X.shape[0], -1)[:, cells].astype(np.float64)
        A = np.vstack([np.ones(cells.size), detail])
        coef = np.linalg.lstsq(A @ A.T, A @ target, rcond=None)[0]  # the normal equations (a handful of predictors)
        residual.append(float(np.sum((target - coef @ A) ** 2)) / max(total, 1e-12))
    r = np.array(residual)
    i = int(np.argmin(r))
    r2 = 1.0 - float(r[i])
    if r2 < min_r2:
        return FootprintEstimate(None, r2, cand, tuple(residual))
    sigma = cand[i]
    if 0 < i < len(cand) - 1:  # parabola through the minimum and its neighbours
        (x0, x1, x2), (y0, y1, y2) = cand[i - 1: i + 2], r[i - 1: i + 2]
        den = (x0 - x1) * (x0 - x2) * (x1 - x2)
        a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / den
        b = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / den
        if a > 0:
            sigma = float(np.clip(-b / (2 * a), x0, x2))
    return FootprintEstimate(sigma, r2, cand, tuple(residual))


#: the footprints tried, as multiples of the sensor's (the product's is at least the sensor's)
FOOTPRINT_CANDIDATES = (1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.4)


def footprint_scales(sensor_sigma_px: float) -> dict:
    """The estimate's working grid and high-pass scale for a sensor footprint of ``sensor_sigma_px`` pixels: ~40 m
    cells and a 100 m high-pass for Landsat's 36 m (10 m pixels: 4 and 10 px; 30 m pixels: 1 and 3.3 px)."""
    return {"grid": max(1, int(round(sensor_sigma_px * 40.0 / 36.0))), "highpass_px": sensor_sigma_px * 100.0 / 36.0}


def product_footprint(lst_30m_on_10m: np.ndarray, stack: np.ndarray, valid: np.ndarray, dms: DMSParams
                      ) -> tuple[DMSParams, dict | None]:
    """``dms`` with the thermal product's footprint as this tile's scene shows it (:func:`estimate_footprint_sigma`;
    the sensor's ``dms.psf_sigma_px`` where the scene does not tell), and the record for ``run.json``."""
    if dms.psf_sigma_px <= 0:  # a plain block mean: no footprint to widen, nothing to record
        return dms, None
    candidates = tuple(k * dms.psf_sigma_px for k in FOOTPRINT_CANDIDATES)
    est = estimate_footprint_sigma(lst_30m_on_10m, stack, valid, candidates, **footprint_scales(dms.psf_sigma_px))
    if est.sigma_px is None:
        return dms, {"source": "configured", "r2": round(est.r2, 3), "psf_sigma_px": dms.psf_sigma_px}
    sigma = round(est.sigma_px, 3)
    return replace(dms, psf_sigma_px=sigma), {"source": "estimated", "r2": round(est.r2, 3), "psf_sigma_px": sigma}


__all__ = ["FOOTPRINT_CANDIDATES", "FootprintEstimate", "estimate_footprint_sigma", "footprint_scales",
           "product_footprint"]
