"""Optical predictors of LST on the fine grid, and their aggregation through the thermal sensor's footprint.

The sharpener learns LST from *reflectances* (every band the source offers) and a few indices, as the Data
Mining Sharpener does in the literature (Gao et al. 2012; pyDMS). Band names are Sentinel-2's; Landsat SR
bands map onto them (:data:`LANDSAT_TO_S2`) so that one predictor set serves both. Red (B04) and NIR (B08)
are the minimum; the rest are optional and used when present.

The coarse LST is what the thermal sensor integrated: a ~100 m detector footprint blurred by optics, not a
block mean of 10 m pixels. :func:`sensor_aggregate` aggregates a fine field the same way (a Gaussian of
``sigma_px`` fine pixels, normalised over finite pixels, then the block mean), so that fine predictors and
coarse LST are compared like with like when the model is trained and when the residual is computed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from heattrack.kernels.gaussian import gaussian_blur
from heattrack.kernels.lst import block_mean

#: Sentinel-2 L2A reflective bands in wavelength order (10 m: B02 B03 B04 B08; 20 m: the rest)
S2_REFLECTIVE = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
#: the default predictor bands: the 10 m bands and the two SWIR bands (the same six Landsat OLI has). The 20 m
#: red-edge bands (B05-B07, B8A; ``downscale.dms_bands`` can add them) measured worse as predictors on the family: their
#: 20 m blur against the sharp 10 m bands makes band differences act as edge detectors at 10 m
DEFAULT_PREDICTOR_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
#: Sentinel-2 bands delivered on its 10 m grid, and those on its 20 m grid (read onto the 10 m grid bilinearly)
S2_10M_BANDS = ("B02", "B03", "B04", "B08")
S2_20M_BANDS = ("B05", "B06", "B07", "B8A", "B11", "B12")
#: sigma (10 m pixels) of a 20 m pixel read bilinearly onto the 10 m grid: a 2-pixel box (variance 1/3) and the
#: bilinear kernel (variance 2/3)
S2_20M_SIGMA_PX = 1.0
#: Landsat 8/9 OLI surface reflectance -> the Sentinel-2 band of the nearest wavelength
LANDSAT_TO_S2 = {"SR_B2": "B02", "SR_B3": "B03", "SR_B4": "B04", "SR_B5": "B08", "SR_B6": "B11", "SR_B7": "B12"}
#: standard deviation (m) of the Gaussian equivalent to the Landsat TIRS footprint as delivered in ST_B10
#: (a ~100 m detector box, sigma 29 m, convolved with ~20 m optics and the 30 m resampling: ~36 m)
LANDSAT_TIRS_PSF_SIGMA_M = 36.0
#: pixel of Landsat Collection 2 ST_B10 (m): the grid the ~100 m TIRS samples are resampled onto
LANDSAT_ST_PIXEL_M = 30.0


def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        total = a + b
        out = (a - b) / total
    np.copyto(out, np.nan, where=~np.isfinite(out) | (np.abs(total) < 1e-4))
    np.clip(out, -1.0, 1.0, out=out)
    return out.astype(np.float32, copy=False)


def predictor_stack(bands: Mapping[str, np.ndarray], valid: np.ndarray | None = None,
                    use: tuple[str, ...] | None = DEFAULT_PREDICTOR_BANDS) -> tuple[np.ndarray, tuple[str, ...]]:
    """Predictors ``(n, H, W)`` float32 and their names from reflectance bands (0-1, Sentinel-2 names).

    Every band of ``use`` (None: all of :data:`S2_REFLECTIVE`) that is present (red B04 and NIR B08
    required), then NDVI, and where the bands exist NDBI ((B11 - B08)/(B11 + B08), built-up) and MNDWI
    ((B03 - B11)/(B03 + B11), water/wet). NaN outside ``valid`` and wherever a band is not finite.
    """
    missing = [b for b in ("B04", "B08") if b not in bands]
    if missing:
        raise ValueError(f"the sharpener needs red (B04) and NIR (B08); missing {', '.join(missing)}")
    names = [b for b in S2_REFLECTIVE if b in bands and (use is None or b in use or b in ("B04", "B08"))]
    indices = [("NDVI", "B08", "B04")]
    if "B11" in bands:
        indices.append(("NDBI", "B11", "B08"))
        if "B03" in bands:
            indices.append(("MNDWI", "B03", "B11"))
    shape = np.shape(bands["B04"])
    stack = np.empty((len(names) + len(indices), *shape), dtype=np.float32)  # filled in place: no list, no np.stack
    for k, b in enumerate(names):
        stack[k] = bands[b]
    for k, (_, a, b) in enumerate(indices, start=len(names)):
        stack[k] = _nd(bands[a], bands[b])
    bad = ~np.asarray(valid, dtype=bool) if valid is not None else np.zeros(shape, dtype=bool)
    for layer in stack:
        bad |= ~np.isfinite(layer)
    np.copyto(stack, np.float32(np.nan), where=bad)  # broadcast over the layers
    return stack, tuple(names) + tuple(n for n, _, _ in indices)


def sharpen_20m_bands(bands: Mapping[str, np.ndarray], clear: np.ndarray, use: tuple[str, ...] | None = None,
                      sigma_px: float = S2_20M_SIGMA_PX, fit_block_px: int = 4) -> dict[str, np.ndarray]:
    """The 20 m bands of ``use`` (None: all present) given the 10 m bands' detail. Each is regressed on the 10 m
    bands over blocks of ``fit_block_px`` pixels (least squares on the block means of the ``clear`` pixels: at that
    scale the 20 m blur hardly matters); the fitted mix of the 10 m bands, minus that mix blurred to the 20 m bands'
    resolution (a Gaussian of ``sigma_px``), is the detail the band lacks, and is added to it. The blur is linear, so
    one blur of the mix replaces one of every 10 m band. Returns a copy of ``bands``, the other bands the same
    arrays; a band too cloudy to fit (fewer than 20 blocks per coefficient) stays as it is."""
    fine = [b for b in S2_10M_BANDS if b in bands]
    coarse = [b for b in S2_20M_BANDS if b in bands and (use is None or b in use)]
    out = dict(bands)
    if not fine or not coarse:
        return out
    clear = np.asarray(clear, dtype=bool)
    every = bool(clear.all())

    h, w = (n - n % fit_block_px for n in clear.shape)  # whole blocks (the fit needs no edge rows)

    def means(band: np.ndarray) -> np.ndarray:
        part = np.asarray(band)[:h, :w]
        return block_mean(part if every else np.where(clear[:h, :w], part, np.nan), fit_block_px, 0.5).ravel()

    x = np.stack([means(bands[b]) for b in fine])
    x_ok = np.isfinite(x).all(axis=0)
    fitted, coefs = [], []
    for b in coarse:
        y = means(bands[b])
        ok = np.isfinite(y) & x_ok
        if ok.sum() >= 20 * (len(fine) + 1):  # else too cloudy to fit: the band stays as it is
            design = np.column_stack([np.ones(int(ok.sum())), x[:, ok].T.astype(np.float64)])
            # normal equations (a few predictors, tens of thousands of blocks); lstsq copes with collinear bands
            gram, rhs = design.T @ design, design.T @ y[ok].astype(np.float64)
            coefs.append(np.linalg.lstsq(gram, rhs, rcond=None)[0][1:])
            fitted.append(b)
    if not fitted:
        return out
    # the fitted mixes of the 10 m bands, one per 20 m band, blurred together (one normaliser for all)
    mixes = np.zeros((len(fitted), *np.shape(bands[fine[0]])), dtype=np.float32)
    for j, coef in enumerate(coefs):
        for c, f in zip(coef, fine):
            mixes[j] += np.float32(c) * np.asarray(bands[f], dtype=np.float32)
    if not every:  # the detail from clear pixels only: a cloud's edge is not the band's detail
        np.copyto(mixes, np.float32(np.nan), where=~clear)  # broadcast over the bands (faster than a boolean index)
    if np.isfinite(mixes).all():  # all clear, no nodata (the common case): no normaliser needed
        detail = mixes - np.stack([gaussian_blur(layer, sigma_px, truncate=2.0) for layer in mixes])
    else:
        detail = mixes - psf_blur_stack(mixes, sigma_px, truncate=2.0)
        np.copyto(detail, np.float32(0.0), where=~np.isfinite(detail))
    for b, d in zip(fitted, detail):
        out[b] = np.asarray(bands[b], dtype=np.float32) + d
    return out


def psf_blur(fine: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur of ``fine`` normalised over its finite pixels (NaN where nothing finite is near, and
    where the input is NaN)."""
    return psf_blur_stack(np.asarray(fine)[None], sigma_px)[0]


def psf_blur_stack(stack: np.ndarray, sigma_px: float, truncate: float = 3.0) -> np.ndarray:
    """:func:`psf_blur` of every layer of ``(n, H, W)`` over the pixels where all layers are finite (NaN elsewhere):
    the normaliser is blurred once for the stack (``truncate``: the kernel's reach in sigmas)."""
    if sigma_px <= 0:
        return np.asarray(stack, dtype=np.float32)
    ok = np.isfinite(stack).all(axis=0)
    den = gaussian_blur(ok.astype(np.float32), sigma_px, truncate=truncate)
    out = np.empty(stack.shape, dtype=np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        for k, layer in enumerate(stack):
            num = gaussian_blur(np.where(ok, layer, np.float32(0.0)).astype(np.float32, copy=False), sigma_px,
                                truncate=truncate)
            np.divide(num, den, out=out[k])
    np.copyto(out, np.float32(np.nan), where=~ok | (den < 1e-3))
    return out


def _step(factor: int, sigma_px: float) -> int:
    """Largest divisor of ``factor`` at most ``sigma_px / 0.7``: the blur can run on a grid that much coarser
    (the footprint still spans >= 0.7 of its pixels) at 1/step^2 of the cost."""
    limit = max(1.0, sigma_px / 0.7)
    return max(d for d in range(1, factor + 1) if factor % d == 0 and d <= limit)


def sensor_aggregate(fine: np.ndarray, factor: int, sigma_px: float, min_valid_fraction: float = 0.0
                     ) -> np.ndarray:
    """What a thermal sensor with a Gaussian footprint of ``sigma_px`` fine pixels would report for each
    coarse pixel of ``fine``: the footprint blur, then the block mean over finite pixels. The blur runs on an
    intermediate grid ``_step`` times coarser than ``fine`` (block means first; for the 10 m grid and Landsat's
    ~36 m footprint: 50 m), which changes the result by far less than the footprint's own uncertainty."""
    k = _step(factor, sigma_px)
    mid = block_mean(fine, k) if k > 1 else fine
    return block_mean(psf_blur(mid, sigma_px / k), factor // k, min_valid_fraction)


def sensor_aggregate_stack(stack: np.ndarray, factor: int, sigma_px: float) -> np.ndarray:
    """:func:`sensor_aggregate` of every layer of ``(n, H, W)`` -> ``(n, H/f, W/f)``."""
    return np.stack([sensor_aggregate(layer, factor, sigma_px) for layer in stack])


__all__ = ["DEFAULT_PREDICTOR_BANDS", "LANDSAT_ST_PIXEL_M", "LANDSAT_TIRS_PSF_SIGMA_M", "LANDSAT_TO_S2", "S2_REFLECTIVE", "predictor_stack", "psf_blur", "psf_blur_stack",
           "sensor_aggregate", "sensor_aggregate_stack"]
