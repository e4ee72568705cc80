"""The per-tile science chain on arrays: preprocessed inputs -> sharpened LST, anomaly, risk, valid.

No IO: the tile task (orchestration) reads inputs, calls :func:`compute_tile_products`, and writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from heattrack.kernels.anomaly import local_anomaly
from heattrack.kernels.dms import DMSParams, dms_predictors, dms_sharpen
from heattrack.kernels.features import ndvi
from heattrack.kernels.lst import bilinear_sharpen, block_mean, tsharp_sharpen, upsample_bilinear


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
    dms: DMSParams = DMSParams()

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
            dms=DMSParams(
                n_estimators=cfg.downscale.dms_n_estimators, max_depth=cfg.downscale.dms_max_depth,
                min_samples_leaf=cfg.downscale.dms_min_samples_leaf,
                homogeneous_fraction=cfg.downscale.dms_homogeneous_fraction,
                sample_cap=cfg.downscale.dms_sample_cap, min_samples=cfg.downscale.dms_min_samples,
                local_window_px=max(2, int(round(cfg.downscale.dms_local_window_m
                                                 / cfg.downscale.thermal_resolution_m))),
                n_classes=cfg.downscale.dms_n_classes,
                local=cfg.downscale.dms_local_models,
                ndvi_predictor=cfg.downscale.dms_ndvi_predictor,
                depth_candidates=(0, 2, 3) if cfg.downscale.dms_select_depth else (cfg.downscale.dms_max_depth,),
                seed=cfg.seed),
        )


def landcover_expectation(expected_fine: np.ndarray, factor: int, sharpened: bool) -> np.ndarray:
    """The land-cover expectation at the scale of the LST it is subtracted from: as is for sharpened LST,
    aggregated to the thermal resolution and bilinear-interpolated for plain (bilinear) LST."""
    if sharpened:
        return expected_fine
    out = upsample_bilinear(block_mean(expected_fine, factor), factor)
    out[~np.isfinite(expected_fine)] = np.nan
    return out


@dataclass(frozen=True)
class TileProducts:
    """Fine-grid products of one tile (same shape as the inputs). Temperatures in K, risk 0-1."""

    lst_10m: np.ndarray
    lst_plain: np.ndarray
    anomaly_k: np.ndarray
    risk: np.ndarray
    valid: np.ndarray
    info: dict = field(default_factory=dict)


def compute_tile_products(
    lst_30m_on_10m: np.ndarray,
    red: np.ndarray,
    nir: np.ndarray,
    optical_clear: np.ndarray,
    params: ChainParams,
) -> TileProducts:
    """Run mask -> coarse aggregation -> sharpening -> anomaly on one padded tile.

    ``lst_30m_on_10m``: Landsat LST (K) nearest-resampled onto the 10 m grid, NaN where unusable;
    ``red``/``nir``: Sentinel-2 reflectance 0-1; ``optical_clear``: SCL usable-land mask.
    """
    f = params.thermal_factor
    nd = ndvi(red, nir)
    valid = np.isfinite(lst_30m_on_10m) & np.isfinite(nd) & optical_clear
    lst_coarse = block_mean(np.where(valid, lst_30m_on_10m, np.nan), f, params.min_valid_fraction)
    plain = bilinear_sharpen(lst_coarse, valid, f)
    if params.downscale_method == "dms":
        preds = dms_predictors(np.where(valid, red, np.nan), np.where(valid, nir, np.nan),
                               n_classes=params.dms.n_classes, seed=params.dms.seed)
        if not params.dms.ndvi_predictor:
            preds = preds[: params.dms.n_classes]
        fit = dms_sharpen(lst_coarse, preds, valid, f, nd, params.dms, smooth_residual=params.smooth_residual)
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
    return TileProducts(lst, plain.lst, anom.anomaly_k, anom.score, valid, info)
