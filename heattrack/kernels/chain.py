"""The per-tile science chain on arrays: preprocessed inputs -> sharpened LST, anomaly, risk, valid.

No IO: the tile task (orchestration) reads inputs, calls :func:`compute_tile_products`, and writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from heattrack.kernels.anomaly import local_anomaly, local_background
from heattrack.kernels.detectors import DetectorParams, detect, iforest_evidence
from heattrack.kernels.dms import DMSParams, dms_sharpen, local_window_cells
from heattrack.kernels.features import ndvi
from heattrack.kernels.footprint import product_footprint
from heattrack.kernels.linear_trees import ridge_coefficients
from heattrack.kernels.lst import bilinear_sharpen, block_mean, tsharp_sharpen, upsample_bilinear
from heattrack.kernels.patches import PatchSpec, batch_for_memory
from heattrack.kernels.predictors import (
    DEFAULT_PREDICTOR_BANDS,
    predictor_stack,
    psf_blur,
    psf_blur_stack,
    sensor_aggregate,
    sharpen_20m_bands,
)


@dataclass(frozen=True)
class LinearRefit:
    """Settings of :func:`fine_landcover_fit`: most cells it is fitted on (a regular subsample beyond), the ridge
    penalty (standardised predictors, per cell), how far beyond the fitted range predictors and fit may reach, and
    the outlier cut of the second fit."""

    sample_cap: int = 20_000
    ridge_alpha: float = 0.3
    extrapolation: float = 0.25
    #: cells whose residual from the first fit lies beyond this many robust standard deviations (1.4826 x MAD) are
    #: left out of the second, final fit
    trim: float = 3.0


@dataclass(frozen=True)
class ChainParams:
    """Plain parameters of the chain, in pixels of the 10 m grid (built from the Config)."""

    thermal_factor: int = 10
    min_valid_fraction: float = 0.3
    downscale_method: str = "dms"
    tsharp_degree: int = 1
    smooth_residual: bool = True
    background_window_px: int = 50
    background_block_px: int = 5
    noise_floor_k: float = 0.3
    landcover_adjust: bool = False
    detect_on: str = "plain"
    score_z0: float = 1.0
    score_scale: float = 2.0
    rank_window_px: int = 31
    #: rank on the thermal product's own pixels (nearest-resampled) instead of the bilinear of the coarse blocks
    rank_native: bool = True
    #: on the product's own pixels, also remove what a linear regression on the footprint-blurred predictors
    #: explains of the residual (None: the sharpener's expectation only)
    rank_refit: LinearRefit | None = LinearRefit()
    #: the input is a thermal raster without optics (airborne, drone, commercial): no sharpening, rank on it directly
    direct_thermal: bool = False
    dms: DMSParams = DMSParams()
    #: the Sentinel-2 bands DMS uses as predictors when present (red and NIR always)
    dms_bands: tuple[str, ...] = DEFAULT_PREDICTOR_BANDS
    #: give the 20 m bands the 10 m bands' detail before they become predictors (predictors.sharpen_20m_bands)
    dms_sharpen_20m: bool = True
    #: estimate the thermal product's footprint per tile (kernels.footprint), at least ``dms.psf_sigma_px``
    dms_psf_from_data: bool = True
    detector: DetectorParams = DetectorParams()

    @classmethod
    def from_config(cls, cfg) -> "ChainParams":
        res = cfg.grid.resolution_m
        return cls(
            thermal_factor=cfg.thermal_factor,
            min_valid_fraction=cfg.downscale.min_valid_fraction,
            downscale_method=cfg.downscale.method,
            tsharp_degree=cfg.downscale.degree,
            smooth_residual=cfg.downscale.smooth_residual,
            background_window_px=int(round(cfg.detect.background_window_m / res)),
            background_block_px=cfg.background_block_px,
            noise_floor_k=cfg.detect.noise_floor_k,
            landcover_adjust=cfg.detect.landcover_adjust,
            detect_on=cfg.detect.input,
            score_z0=cfg.detect.score_z0,
            score_scale=cfg.detect.score_scale,
            rank_window_px=max(3, int(round(cfg.detect.rank_window_m / res))),
            rank_native=cfg.detect.rank_grid == "native",
            rank_refit=LinearRefit() if cfg.detect.rank_refit else None,
            dms=DMSParams(
                n_estimators=cfg.downscale.dms_n_estimators, max_depth=cfg.downscale.dms_max_depth,
                min_samples_leaf=cfg.downscale.dms_min_samples_leaf,
                sample_cap=cfg.downscale.dms_sample_cap, min_samples=cfg.downscale.dms_min_samples,
                psf_sigma_px=cfg.downscale.dms_psf_sigma_m / res, holdout_every=cfg.downscale.dms_holdout_every,
                guard=cfg.downscale.dms_guard, guard_ratio=cfg.downscale.dms_guard_ratio,
                scale_up_tolerance=cfg.downscale.dms_scale_up_tolerance,
                tsharp_scale_up_tolerance=cfg.downscale.dms_tsharp_scale_up_tolerance,
                residual_iterations=cfg.downscale.dms_residual_iterations,
                local_window=local_window_cells(cfg.downscale.dms_local_window_m, cfg.downscale.thermal_resolution_m),
                local_alpha=cfg.downscale.dms_local_alpha, local_gain=cfg.downscale.dms_local_gain, seed=cfg.seed),
            dms_bands=tuple(cfg.downscale.dms_bands),
            dms_sharpen_20m=cfg.downscale.dms_sharpen_20m,
            dms_psf_from_data=cfg.downscale.dms_psf_from_data,
            detector=detector_params(cfg),
        )


def detector_params(cfg) -> DetectorParams:
    """Detector parameters in pixels of the 10 m grid, from the Config."""
    d, res = cfg.detect, cfg.grid.resolution_m
    patch = PatchSpec(size=d.ae_patch_px, step=max(1, int(round(d.ae_patch_step_m / res))))
    return DetectorParams(
        method=d.method, patch=patch, ae_train_patches=d.ae_train_patches, ae_hidden=d.ae_hidden,
        ae_latent=d.ae_latent, ae_epochs=d.ae_epochs, ae_trim_fraction=d.ae_trim_fraction, device=d.device,
        max_batch=batch_for_memory(patch.n_features, d.ae_hidden, d.gpu_memory_mb),
        iforest_block_px=max(1, int(round(d.iforest_block_m / res))), iforest_estimators=d.iforest_estimators,
        weights=tuple(d.fusion_weights), z0=d.score_z0, scale=d.score_scale, seed=cfg.seed)


def landcover_expectation(expected_fine: np.ndarray, factor: int, sharpened: bool) -> np.ndarray:
    """The land-cover expectation at the scale of the LST it is subtracted from: as is for sharpened LST,
    aggregated to the thermal resolution and bilinear-interpolated for plain (bilinear) LST."""
    if sharpened:
        return expected_fine
    out = upsample_bilinear(block_mean(expected_fine, factor), factor)
    out[~np.isfinite(expected_fine)] = np.nan
    return out


@dataclass(frozen=True)
class ThermalProducts:
    """Stage 1 of the chain on one padded tile and date: LST on the 10 m grid and the local anomaly."""

    lst_10m: np.ndarray
    lst_plain: np.ndarray
    anomaly_k: np.ndarray
    sigma_k: float
    local_risk: np.ndarray
    ndvi: np.ndarray
    valid: np.ndarray
    info: dict = field(default_factory=dict)
    #: excess LST (K) the ranking statistic reads: see :func:`ranking_evidence`
    evidence_k: np.ndarray | None = None


@dataclass(frozen=True)
class TileProducts:
    """Fine-grid products of one tile (same shape as the inputs). Temperatures in K, risk 0-1."""

    lst_10m: np.ndarray
    lst_plain: np.ndarray
    anomaly_k: np.ndarray
    risk: np.ndarray
    valid: np.ndarray
    info: dict = field(default_factory=dict)
    evidence_z: dict = field(default_factory=dict)
    evidence_k: np.ndarray | None = None


def ranking_evidence(plain: np.ndarray, expected_fine: np.ndarray | None, factor: int, psf_sigma_px: float,
                     window_px: int, block: int) -> np.ndarray:
    """Excess LST (K) for the segment ranking, at the sensor's resolution.

    With a land-cover expectation (the sharpener's model of LST from the optics), the expectation is seen
    through the sensor footprint and subtracted first: what remains is heat the optics do not explain (warm
    asphalt and bright roofs are explained; a leak is not). Then the robust local background (median in a
    ``window_px`` window) is removed. Without an expectation (``detect.method: baseline`` or no fitted model)
    this is plain LST minus its local median: the simple baseline."""
    r = plain
    if expected_fine is not None and np.isfinite(expected_fine).any():
        e = upsample_bilinear(sensor_aggregate(expected_fine, factor, psf_sigma_px), factor)
        r = plain - e
    return (r - local_background(r, window_px, block)).astype(np.float32)


def native_ranking_evidence(native: np.ndarray, expected_fine: np.ndarray | None, psf_sigma_px: float,
                            window_px: int, block: int, predictors: np.ndarray | None = None,
                            refit: LinearRefit | None = None) -> np.ndarray:
    """:func:`ranking_evidence` on the thermal product's own pixels (nearest-resampled onto the fine grid): the
    land-cover expectation is seen through the sensor footprint without the coarse blocks (blurred on a grid
    twice as coarse as the fine one, bilinear back), so a leak keeps the peak the product holds. With
    ``predictors`` (the sharpener's ``(n, H, W)`` stack) and ``refit``, what the optics still explain at the
    product's own scale is removed too (:func:`fine_landcover_fit`)."""
    r = native
    if expected_fine is not None and np.isfinite(expected_fine).any():
        e = upsample_bilinear(psf_blur(block_mean(expected_fine, 2), psf_sigma_px / 2), 2)
        r = native - e
    if predictors is not None and refit is not None:
        r = r - fine_landcover_fit(r, predictors, psf_sigma_px, refit)
    return (r - local_background(r, window_px, block)).astype(np.float32)


def fine_landcover_fit(residual: np.ndarray, predictors: np.ndarray, psf_sigma_px: float, refit: LinearRefit
                       ) -> np.ndarray:
    """The part of ``residual`` (the product's pixels minus the sharpener's expectation, fine grid) that one linear
    regression on the predictors seen through the sensor footprint explains, on the fine grid (0 where it cannot
    be fitted).

    The sharpener's model is trained on the ~100 m blocks, so land-cover heat at the product's own 30 m scale
    (a warm roof or street beside the pipe) is partly left in the residual the ranking reads. Here the residual
    and the footprint-blurred predictors are averaged onto a grid twice as coarse as the fine one and a ridge
    regression on standardised predictors is fitted on up to ``refit.sample_cap`` cells (a regular subsample), then
    again without the cells it fits worst (beyond ``refit.trim`` robust standard deviations: leaks, hot roofs);
    predictors and fit are clipped to ``refit.extrapolation`` x their fitted range beyond it. A leak covers too few
    cells to move the fit, and the predictors do not see it. Cost (one padded 10 km tile, 9 predictors): a block
    mean and a footprint blur of every predictor on the 2x grid and one dot product per cell of it."""
    r2 = block_mean(residual, 2)
    p2 = psf_blur_stack(np.stack([block_mean(layer, 2) for layer in predictors]), psf_sigma_px / 2)
    flat = p2.reshape(p2.shape[0], -1)
    cells = np.flatnonzero(np.isfinite(r2).ravel() & np.isfinite(flat[0]))
    if cells.size < 500:
        return np.zeros(residual.shape, dtype=np.float32)
    cells = cells[:: -(-cells.size // refit.sample_cap)]
    X, y = flat[:, cells].astype(np.float64), r2.ravel()[cells].astype(np.float64)
    lo, hi = X.min(axis=1), X.max(axis=1)
    reach = refit.extrapolation * (hi - lo)
    mean, scale = X.mean(axis=1), X.std(axis=1) + 1e-9
    A = np.vstack([np.ones(y.size), (X - mean[:, None]) / scale[:, None]])
    coef = ridge_coefficients(A, y, refit.ridge_alpha)
    # least squares follow outliers: a strong leak or a hot roof is a handful of cells with large residuals, and
    # they must not steer the land-cover fit onto themselves. Refit once without the cells beyond trim x MAD.
    e = y - coef @ A
    dev = np.abs(e - np.median(e))
    keep = dev <= refit.trim * max(1.4826 * np.median(dev), 1e-6)
    if keep.sum() >= 500 and not keep.all():
        coef = ridge_coefficients(A[:, keep], y[keep], refit.ridge_alpha)
    w = (coef[1:] / scale).astype(np.float32)  # back to the predictors' own units
    fitted = np.full(r2.shape, np.float32(coef[0] - w.astype(np.float64) @ mean), dtype=np.float32)
    for k in range(p2.shape[0]):
        fitted += w[k] * np.clip(p2[k], np.float32(lo[k] - reach[k]), np.float32(hi[k] + reach[k]))
    y_reach = refit.extrapolation * (y.max() - y.min())
    np.clip(fitted, y.min() - y_reach, y.max() + y_reach, out=fitted)
    return upsample_bilinear(fitted, 2)[: residual.shape[0], : residual.shape[1]]


def thermal_products(
    lst_30m_on_10m: np.ndarray,
    red: np.ndarray,
    nir: np.ndarray,
    optical_clear: np.ndarray,
    params: ChainParams,
    bands: dict | None = None,
) -> ThermalProducts:
    """Mask -> coarse aggregation -> sharpening -> local anomaly on one padded tile.

    ``lst_30m_on_10m``: Landsat LST (K) nearest-resampled onto the 10 m grid, NaN where unusable;
    ``red``/``nir``: Sentinel-2 reflectance 0-1; ``optical_clear``: SCL usable-land mask; ``bands``: every
    reflectance band the source offers (Sentinel-2 names; None: red and NIR only), the DMS predictors.
    """
    if params.direct_thermal:
        return _direct_thermal_products(lst_30m_on_10m, red, nir, optical_clear, params)
    f = params.thermal_factor
    nd = ndvi(red, nir)
    valid = np.isfinite(lst_30m_on_10m) & np.isfinite(nd) & optical_clear
    lst_coarse = block_mean(np.where(valid, lst_30m_on_10m, np.nan), f, params.min_valid_fraction)
    plain = bilinear_sharpen(lst_coarse, valid, f)
    given_detail: list[str] = []  # the 20 m bands given the 10 m bands' detail (run.json)
    dms, footprint = params.dms, None  # the footprint: estimated from the scene (kernels.footprint) or as configured
    if params.downscale_method == "dms":
        read = bands or {"B04": red, "B08": nir}
        bands = sharpen_20m_bands(read, optical_clear, params.dms_bands) if params.dms_sharpen_20m else read
        stack, names = predictor_stack(bands, valid, use=params.dms_bands)
        if params.dms_psf_from_data:
            dms, footprint = product_footprint(lst_30m_on_10m, stack, valid, dms)
        fit = dms_sharpen(lst_coarse, stack, valid, f, dms, names=names)
        given_detail = [b for b in bands if bands[b] is not read[b]]
    elif params.downscale_method == "tsharp" or params.landcover_adjust:
        fit = tsharp_sharpen(lst_coarse, nd, valid, f, degree=params.tsharp_degree,
                             smooth_residual=params.smooth_residual)
    else:
        fit = None  # bilinear without land-cover adjustment needs no regression
    sharpened = params.downscale_method != "bilinear"
    lst = fit.lst if sharpened else plain.lst
    valid = valid & np.isfinite(lst)
    on_sharpened = sharpened and params.detect_on == "sharpened"
    target = lst if on_sharpened else plain.lst
    if params.landcover_adjust and fit is not None and fit.expected is not None:
        target = target - landcover_expectation(fit.expected, f, sharpened=on_sharpened)
    anom = local_anomaly(target, params.background_window_px, params.background_block_px,
                         params.noise_floor_k, params.score_z0, params.score_scale)
    info = {**(fit.info if sharpened else plain.info), "sigma_k": anom.sigma_k,
            "n_valid": int(valid.sum()), "n_coarse_valid": int(np.isfinite(lst_coarse).sum())}
    if given_detail:
        info["bands_20m_sharpened"] = given_detail
    if footprint is not None:
        info["footprint"] = footprint
    expected = fit.expected if (fit is not None and params.detector.method != "baseline") else None
    if params.rank_native and params.detector.method != "baseline":  # the baseline: always the thermal grid
        evidence = native_ranking_evidence(np.where(valid, lst_30m_on_10m, np.nan), expected, dms.psf_sigma_px,
                                           params.rank_window_px, params.background_block_px,
                                           stack if params.downscale_method == "dms" else None,  # DMS's predictors
                                           params.rank_refit)
    else:
        evidence = ranking_evidence(np.where(valid, plain.lst, np.nan), expected, f, dms.psf_sigma_px,
                                    params.rank_window_px, params.background_block_px)
    return ThermalProducts(lst, plain.lst, anom.anomaly_k, anom.sigma_k, anom.score, nd, valid, info, evidence)


def _direct_thermal_products(lst: np.ndarray, red: np.ndarray, nir: np.ndarray, optical_clear: np.ndarray,
                           params: ChainParams) -> ThermalProducts:
    """A thermal raster without optics (already fine, or nothing to sharpen it with). The LST is both ``lst_10m`` and
    ``lst_plain``; the ranking evidence is its excess over the local median in ``rank_window_px`` (computed on a
    2x coarser grid, or coarser for wide windows), the pixel risk the usual local anomaly."""
    valid = np.isfinite(lst) & optical_clear
    lst = np.where(valid, lst, np.nan).astype(np.float32)
    anom = local_anomaly(lst, params.background_window_px, params.background_block_px, params.noise_floor_k,
                         params.score_z0, params.score_scale)
    evidence = ranking_evidence(lst, None, 1, 0.0, params.rank_window_px, 2)
    info = {"method": "none", "reason": "thermal raster input: not sharpened", "sigma_k": anom.sigma_k,
            "n_valid": int(valid.sum())}
    return ThermalProducts(lst, lst, anom.anomaly_k, anom.sigma_k, anom.score, ndvi(red, nir), valid, info, evidence)


def cpu_evidence(th: ThermalProducts, red: np.ndarray, nir: np.ndarray, params: ChainParams) -> np.ndarray | None:
    """The CPU-only part of detection (Isolation Forest z for ``iforest``/``fused``, else None), run in stage 1
    so that a GPU worker's stage 2 only runs the autoencoder."""
    return iforest_evidence(th.anomaly_k, th.sigma_k, th.ndvi, red, nir, th.valid & np.isfinite(th.anomaly_k),
                            params.detector)


def detect_products(th: ThermalProducts, red: np.ndarray, nir: np.ndarray, params: ChainParams,
                    model=None, iforest_z: np.ndarray | None = None) -> tuple[TileProducts, object]:
    """Stage 2: pixel risk from ``params.detector`` (``model``: a fitted autoencoder for ``ae``/``fused``;
    None trains one on this tile; ``iforest_z``: :func:`cpu_evidence` when stage 1 computed it). Returns the
    products and the model used (None for local/iforest)."""
    risk, evidence = th.local_risk, {}
    if params.detector.method not in ("local", "residual", "baseline"):
        det, model = detect(th.anomaly_k, th.sigma_k, th.ndvi, red, nir, th.valid & np.isfinite(th.anomaly_k),
                            params.detector, model=model, iforest_z=iforest_z)
        risk, evidence = det.risk, det.z
    info = {**th.info, "detect": params.detector.method}
    return TileProducts(th.lst_10m, th.lst_plain, th.anomaly_k, risk, th.valid, info, evidence,
                        th.evidence_k), model


def compute_tile_products(
    lst_30m_on_10m: np.ndarray,
    red: np.ndarray,
    nir: np.ndarray,
    optical_clear: np.ndarray,
    params: ChainParams,
    model=None,
    bands: dict | None = None,
) -> TileProducts:
    """The whole chain on one padded tile and date (:func:`thermal_products` then :func:`detect_products`)."""
    th = thermal_products(lst_30m_on_10m, red, nir, optical_clear, params, bands)
    return detect_products(th, red, nir, params, model)[0]


def injected_attenuation(lst_30m_on_10m: np.ndarray, red: np.ndarray, nir: np.ndarray, optical_clear: np.ndarray,
                         params: ChainParams, bands: dict | None, base: ThermalProducts, plume_fwhm_px: float,
                         buffer_px: int, amp_k: float = 10.0, spacing_px: int = 30, margin_px: int = 100,
                         seed: int = 0, along_px: int = 1) -> np.ndarray:
    """Injection test of the detectability model on this tile: Gaussian plumes (FWHM ``plume_fwhm_px``, peak
    ``amp_k``) on a ``spacing_px`` grid are seen through the product's footprint (``base.info["footprint"]``, the
    tile's estimate, else ``params.dms.psf_sigma_px``), sampled like the 30 m product (3-px blocks) and added to the
    LST; the chain runs again with that footprint and each plume's gain in the ranking evidence (maximum within
    ``buffer_px``) over ``amp_k`` is returned (one value per plume on valid data): the share of a plume's peak this
    chain keeps, measured (``base``: the products without plumes). With
    ``along_px`` > 1 the gain is averaged over that many pixels of a row centred on the plume: the share the segment
    statistic's window along a pipe keeps (``along_px`` < ``spacing_px``, so the next plume stays outside)."""
    from scipy import ndimage

    n, m = lst_30m_on_10m.shape
    rng = np.random.default_rng(seed)
    ys, xs = np.meshgrid(np.arange(margin_px, n - margin_px, spacing_px), np.arange(margin_px, m - margin_px,
                                                                                      spacing_px), indexing="ij")
    ys = (ys.ravel() + rng.integers(-5, 5, ys.size)).clip(0, n - 1)
    xs = (xs.ravel() + rng.integers(-5, 5, xs.size)).clip(0, m - 1)
    s = plume_fwhm_px / 2.3548
    plume = np.zeros((n, m), np.float32)
    plume[ys, xs] = 1.0
    plume = ndimage.gaussian_filter(plume, s) * np.float32(2 * np.pi * s * s * amp_k)
    sigma = base.info.get("footprint", {}).get("psf_sigma_px", params.dms.psf_sigma_px)  # the tile's footprint
    seen = ndimage.gaussian_filter(plume, sigma) if sigma > 0 else plume
    rows, cols = np.clip((np.arange(n) // 3) * 3 + 1, 0, n - 1), np.clip((np.arange(m) // 3) * 3 + 1, 0, m - 1)
    fixed = replace(params, dms=replace(params.dms, psf_sigma_px=sigma), dms_psf_from_data=False)  # as in base
    injected = thermal_products(lst_30m_on_10m + seen[np.ix_(rows, cols)], red, nir, optical_clear, fixed, bands)
    gain = ndimage.maximum_filter(np.nan_to_num(injected.evidence_k - base.evidence_k, nan=-1e9), 2 * buffer_px + 1)
    ok = np.isfinite(base.evidence_k[ys, xs]) & np.isfinite(injected.evidence_k[ys, xs])
    if along_px > 1:  # the mean gain over a row centred on each plume (a pipe through it), valid pixels only
        offsets = np.arange(along_px) - (along_px - 1) // 2
        rows_g = gain[ys[:, None], np.clip(xs[:, None] + offsets[None, :], 0, m - 1)]
        has = rows_g > -1e8
        count = has.sum(axis=1)
        row_mean = np.where(has, rows_g, 0.0).sum(axis=1) / np.maximum(count, 1)
        ok &= count > 0
        return (row_mean[ok] / amp_k).astype(np.float32)
    return (gain[ys, xs][ok] / amp_k).astype(np.float32)
