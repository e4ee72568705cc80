"""Data Mining Sharpener (DMS, after Gao, Kustas & Anderson 2012 and pyDMS) with a guard that cannot be fooled.

1. **Predictors**: every reflectance band the source offers plus NDVI/NDBI/MNDWI
   (:func:`heattrack.kernels.predictors.predictor_stack`); red + NIR are the minimum.
2. **Aggregation through the sensor footprint**: the fine predictors are blurred with the thermal sensor's
   PSF (Gaussian, ``psf_sigma_px``) and block-averaged to the thermal grid, so they see what the coarse LST
   saw (:func:`heattrack.kernels.predictors.sensor_aggregate`), not a block mean of 10 m pixels.
3. **Model**: bagged regression trees with a ridge regression in every leaf (pyDMS / Cubist idea,
   :class:`LinearLeafTreeEnsemble`), trained on the coarse cells, applied to the fine predictors.
4. **Residual correction**: the coarse residual ``LST - sensor_aggregate(prediction)`` is added back as a
   bilinear field (pyDMS: without it DMS loses to bilinear on real scenes), then twice more the residual the
   corrected field leaves (``residual_iterations``, back-projection, since 2026-12-06).
5. **Local models** (since 2026-12-06, :mod:`heattrack.kernels.local_models`): the chosen model's coarse residual
   regressed on the predictors in windows of ``local_window`` coarse cells (500 m on Landsat's 100 m), applied on
   the fine grid before the residual correction, where that beats the model on the held-out cells by
   ``local_gain``; the model's own prediction stays the land-cover expectation the ranking reads.
6. **Guard, per tile** (:func:`holdout_check`): one coarse cell in every ``holdout_every`` x ``holdout_every``
   block is held out of training. Each held-out cell is predicted twice from its neighbours: by bilinear-like
   interpolation of the neighbours' LST (what bilinear delivers) and by the model's aggregated prediction
   plus the neighbours' interpolated residual (what DMS delivers). The model is used only if its RMSE there
   is below ``guard_ratio`` x bilinear's (strict: it must win) **and**, repeating the sharpening one scale up
   inside the tile (:func:`scale_up_check`), it is at most ``scale_up_tolerance`` (1.1) x bilinear's there (a
   sanity check against models that blow up from mixed to purer pixels: 1.3-1.9x on Momotombo); else the
   tile gets TsHARP if TsHARP passes the same checks (one scale up strictly below bilinear:
   ``tsharp_scale_up_tolerance``), else exactly bilinear. Errors and decision in ``info``.

The held-out cells are seen by the final product only through the residual correction; the model is the
one trained without them (one fit, one fine prediction per tile).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from heattrack.kernels.linear_trees import LinearLeafTreeEnsemble
from heattrack.kernels.local_models import apply_local_models, local_models
from heattrack.kernels.lst import (
    SharpenResult,
    bilinear_sharpen,
    block_mean,
    block_repeat,
    fill_nearest,
    upsample_bilinear,
)
from heattrack.kernels.predictors import sensor_aggregate, sensor_aggregate_stack


@dataclass(frozen=True)
class DMSParams:
    """Tree-ensemble, footprint and guard settings (sizes in coarse thermal pixels unless named ``_px``
    of the fine grid)."""

    n_estimators: int = 10
    max_depth: int = 4
    min_samples_leaf: int = 40
    #: most training cells per tile (drawn at random). Fewer are faster (the trees' fit is a sort per predictor per
    #: level) but cost sharpness: 4000 of a padded 10 km tile's ~10,700 were level on tuning members 0-7 at 12 km and
    #: 2 % worse on every held-out member (`benchmarks/tune_dms.py --size-km 12`), so the default keeps them all
    sample_cap: int = 20_000
    min_samples: int = 60
    #: Gaussian sigma of the thermal sensor's footprint in fine pixels (Landsat ST_B10 on 10 m: 3.6)
    psf_sigma_px: float = 3.6
    #: one coarse cell in every ``holdout_every`` x ``holdout_every`` block is held out for the guard
    holdout_every: int = 3
    #: the model must reach at most this fraction of bilinear's held-out RMSE to be used
    guard_ratio: float = 0.99
    guard: bool = True
    #: one scale up the model may be at most this many times bilinear's RMSE: a sanity check against models that
    #: blow up from mixed to purer pixels (Momotombo: 1.3-1.9x); the held-out check above is the strict one
    scale_up_tolerance: float = 1.1
    #: the same bound for the TsHARP fallback: no slack (a two-parameter NDVI fit that loses one scale up has no
    #: detail to offer in return; in the real-crop protocol on tuning members 12-47 each fallback that passed above
    #: 1.0x there delivered a field below bilinear: docs/downscaling.md)
    tsharp_scale_up_tolerance: float = 1.0
    #: ridge penalty of the leaf models (standardised predictors, per sample): correlated bands with
    #: independent 10 m noise must not get large opposing coefficients that cancel only at the coarse scale
    ridge_alpha: float = 0.3
    #: back-projections of the residual after the first correction: each adds the coarse residual left by the
    #: corrected field seen through the footprint (bilinear, like the first); 2 (since 2026-12-06) brings the field
    #: close to seeing what the sensor saw (chosen on tuning members 0-11; docs/measurements.md "10 m LST")
    residual_iterations: int = 2
    #: local models (:mod:`heattrack.kernels.local_models`): the global model's coarse residual regressed on the
    #: predictors in windows of this many coarse cells (0: none), ridge penalty ``local_alpha``; used where their
    #: held-out RMSE is below ``local_gain`` x the global model's (chosen on tuning members 0-11, 2026-12-06)
    local_window: int = 5
    local_alpha: float = 0.3
    local_gain: float = 0.97
    seed: int = 0


def local_window_cells(window_m: float, cell_m: float) -> int:
    """The local models' window in coarse cells of ``cell_m``: ``window_m`` rounded, 0 (no local models) below 3
    cells — a window of 1-2 cells and its reach hold too few cells for a model of every predictor."""
    cells = int(round(window_m / cell_m)) if cell_m > 0 else 0
    return cells if cells >= 3 else 0


def _ensemble(params: DMSParams, depth: int | None = None) -> LinearLeafTreeEnsemble:
    depth = params.max_depth if depth is None else depth
    return LinearLeafTreeEnsemble(n_estimators=params.n_estimators if depth > 0 else 1, max_depth=max(depth, 1),
                                  min_samples_leaf=params.min_samples_leaf if depth > 0 else 10**9,
                                  alpha=params.ridge_alpha, random_state=params.seed)


def _neighbour_mean(coarse: np.ndarray) -> np.ndarray:
    """Interpolation of each cell from its 8 neighbours (edge neighbours weight 2, diagonal 1), finite
    neighbours only: the value bilinear interpolation would give a cell it had not observed."""
    k = np.array([[1, 2, 1], [2, 0, 2], [1, 2, 1]], dtype=np.float32)
    ok = np.isfinite(coarse)
    num = ndimage.convolve(np.where(ok, coarse, 0.0).astype(np.float32), k, mode="constant")
    den = ndimage.convolve(ok.astype(np.float32), k, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[den < 3] = np.nan  # fewer than ~2 neighbours: not interpolable
    return out


def holdout_mask(usable: np.ndarray, every: int) -> np.ndarray:
    """Cells held out for the guard: the centre cell of every ``every`` x ``every`` block (so each has
    training neighbours on all sides)."""
    r, c = np.indices(usable.shape)
    return usable & (r % every == every // 2) & (c % every == every // 2)


def holdout_check(lst_coarse: np.ndarray, agg_pred: np.ndarray, train: np.ndarray, held: np.ndarray
                  ) -> tuple[float, float, int]:
    """RMSE (K) on the held-out cells of the model (aggregated prediction + neighbours' residual) and of
    bilinear-like interpolation of the neighbours' LST; and the number of cells compared."""
    y_train = np.where(train, lst_coarse, np.nan)
    resid = np.where(train, lst_coarse - agg_pred, np.nan)
    est_model = agg_pred + _neighbour_mean(resid)
    est_bil = _neighbour_mean(y_train)
    ok = held & np.isfinite(est_model) & np.isfinite(est_bil)
    if not ok.any():
        return float("inf"), float("inf"), 0
    e_m = float(np.sqrt(np.mean((est_model[ok] - lst_coarse[ok]) ** 2)))
    e_b = float(np.sqrt(np.mean((est_bil[ok] - lst_coarse[ok]) ** 2)))
    return e_m, e_b, int(ok.sum())


def scale_up_check(lst_coarse: np.ndarray, pc: np.ndarray, params: DMSParams, up: int = 2
                   ) -> tuple[float, float, int]:
    """The same sharpening one scale up, inside the tile: the coarse LST and predictors averaged ``up`` x
    ``up``, the model trained there and applied to the coarse predictors (residual added back), compared
    with the observed coarse LST. Returns the RMSE (K) of the model and of bilinear, and the cells compared.
    This is where a model that extrapolates badly from mixed to purer pixels shows itself."""
    h, w = (lst_coarse.shape[0] // up) * up, (lst_coarse.shape[1] // up) * up
    y, p = lst_coarse[:h, :w], pc[:, :h, :w]
    ok = np.isfinite(y) & np.isfinite(p).all(axis=0)
    y = np.where(ok, y, np.nan)
    y2 = block_mean(y, up, 0.5)
    p2 = np.stack([block_mean(np.where(ok, q, np.nan), up, 0.5) for q in p])
    fit = np.isfinite(y2) & np.isfinite(p2).all(axis=0)
    if fit.sum() < max(10, params.min_samples // (up * up)):
        return float("inf"), float("inf"), 0
    small = replace(params, min_samples_leaf=max(5, params.min_samples_leaf // (up * up)))
    model = _ensemble(small).fit(p2[:, fit].T, y2[fit])
    pred = np.full(y.shape, np.nan, dtype=np.float32)
    pred[ok] = model.predict(p[:, ok].T)
    resid = y2 - block_mean(pred, up)
    est = pred + upsample_bilinear(fill_nearest(resid), up)
    bil = upsample_bilinear(y2, up)
    cmp_ = ok & np.isfinite(est) & np.isfinite(bil) & np.isfinite(np.repeat(np.repeat(y2, up, 0), up, 1))
    if not cmp_.any():
        return float("inf"), float("inf"), 0
    e_m = float(np.sqrt(np.mean((est[cmp_] - y[cmp_]) ** 2)))
    e_b = float(np.sqrt(np.mean((bil[cmp_] - y[cmp_]) ** 2)))
    return e_m, e_b, int(cmp_.sum())


def _predict_fine(model: LinearLeafTreeEnsemble, pf: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Model predictions on the fine pixels in ``mask`` (one compiled pass over the tile), NaN elsewhere."""
    out = np.full(mask.shape, np.nan, dtype=np.float32)
    idx = np.flatnonzero(mask)
    out.reshape(-1)[idx] = model.predict_pixels(pf.reshape(pf.shape[0], -1), idx)  # a view: 7x faster than .flat
    return out


def _residual_corrected(pred_fine: np.ndarray, lst_coarse: np.ndarray, factor: int, sigma_px: float,
                        iterations: int = 0) -> np.ndarray:
    """``pred_fine`` plus the coarse residual (observed minus the prediction seen through the sensor
    footprint) as a bilinear field, then ``iterations`` times the residual the corrected field still leaves (a
    bilinear field spread over the neighbouring cells does not reproduce each cell's observation at once: iterative
    back-projection); NaN where the coarse observation is missing."""
    out = pred_fine.astype(np.float32, copy=True)
    for _ in range(1 + max(0, int(iterations))):
        resid = lst_coarse - sensor_aggregate(out, factor, sigma_px)
        if not np.isfinite(resid).any():
            break
        out += upsample_bilinear(fill_nearest(np.where(np.isfinite(resid), resid, np.nan)), factor)
    out[~np.isfinite(block_repeat(lst_coarse, factor))] = np.nan
    return out


def _candidate(name: str, cols: list[int], depth: int, tolerance: float, X, y, pf, pc, mask, lst_coarse, factor,
               params, train, held) -> dict:
    """Fit one candidate model on predictor rows ``cols``, predict the fine grid, and run both guard checks (one scale
    up at most ``tolerance`` x bilinear's RMSE)."""
    model = _ensemble(params, depth=depth).fit(X[:, cols], y)
    pred = _predict_fine(model, pf if cols == list(range(pf.shape[0])) else pf[cols], mask)  # all rows: no copy
    agg = sensor_aggregate(pred, factor, params.psf_sigma_px)
    e_m, e_b, n = holdout_check(lst_coarse, agg, train, held)
    u_m, u_b, _ = scale_up_check(lst_coarse, pc[cols], replace(params, max_depth=depth)) if params.guard \
        else (0.0, 1.0, 0)
    ok = e_m < params.guard_ratio * e_b and u_m < tolerance * u_b
    return {"name": name, "pred": pred, "agg": agg, "rmse": e_m, "rmse_bilinear": e_b, "n": n, "up": u_m,
            "up_bilinear": u_b, "passes": bool(ok)}


def _with_local_models(chosen: dict, lst_coarse, pc, pf, train, held, factor: int, params: DMSParams
                       ) -> tuple[np.ndarray, dict]:
    """The chosen candidate's fine prediction plus the local models' correction where that beats it on the held-out
    cells by ``params.local_gain`` (the models are fitted on the training cells only); else the prediction as it
    is. Returns the field and what was decided."""
    models = local_models(lst_coarse - chosen["agg"], pc, train, params.local_window, params.local_alpha)
    if models is None:
        return chosen["pred"], {"used": False, "reason": "too few cells per window"}
    corrected = chosen["pred"] + apply_local_models(pf, models, params.local_window * factor)
    e_l, _, _ = holdout_check(lst_coarse, sensor_aggregate(corrected, factor, params.psf_sigma_px), train, held)
    used = bool(e_l < params.local_gain * chosen["rmse"])
    return (corrected if used else chosen["pred"]), {"used": used, "holdout_rmse_k": round(e_l, 4)}


def dms_sharpen(
    lst_coarse: np.ndarray,
    predictors_fine: np.ndarray,
    valid_fine: np.ndarray,
    factor: int,
    params: DMSParams = DMSParams(),
    names: tuple[str, ...] | None = None,
) -> SharpenResult:
    """Sharpen ``lst_coarse`` (K, coarse grid) with ``predictors_fine`` ``(n, H, W)`` on the fine grid.

    ``valid_fine``: fine pixels that may carry LST; ``names``: predictor names (``NDVI`` among them enables
    the TsHARP candidate). Returns fine LST (K), NaN outside ``valid_fine`` and where the coarse observation
    is missing; ``info`` records the method used, the held-out RMSE of each candidate and of bilinear, and why.
    """
    rng = np.random.default_rng(params.seed)
    pf = np.asarray(predictors_fine, dtype=np.float32)
    finite = np.isfinite(pf).all(axis=0)
    mask = valid_fine & finite
    if (finite & ~valid_fine).any():  # predictors outside valid_fine must not reach the model: NaN there (a copy;
        pf = np.where(valid_fine[None], pf, np.float32(np.nan))  # predictor_stack(valid=...) makes them NaN already)
    pc = sensor_aggregate_stack(pf, factor, params.psf_sigma_px)
    usable = np.isfinite(lst_coarse) & np.isfinite(pc).all(axis=0)
    held = holdout_mask(usable, params.holdout_every) if params.guard else np.zeros_like(usable)
    train = usable & ~held
    idx = np.flatnonzero(train)
    if idx.size > params.sample_cap:
        keep = np.zeros(train.size, bool)
        keep[rng.choice(idx, size=params.sample_cap, replace=False)] = True
        fit_on = keep.reshape(train.shape)
    else:
        fit_on = train
    info: dict = {"predictors": list(names) if names else pf.shape[0], "n_train": int(fit_on.sum()),
                  "psf_sigma_px": params.psf_sigma_px}
    if fit_on.sum() < params.min_samples:
        res = bilinear_sharpen(lst_coarse, valid_fine, factor)
        return SharpenResult(res.lst, {**info, "method": "bilinear", "fallback_from": "dms",
                                       "reason": f"{int(fit_on.sum())} training cells < {params.min_samples}"})
    X, y = pc[:, fit_on].T, lst_coarse[fit_on]
    args = (X, y, pf, pc, mask, lst_coarse, factor, params, train, held)
    cands = [_candidate("dms", list(range(pf.shape[0])), params.max_depth, params.scale_up_tolerance, *args)]
    if names and "NDVI" in names and params.guard and not cands[0]["passes"]:  # TsHARP only when DMS fails
        cands.append(_candidate("tsharp", [names.index("NDVI")], 0, params.tsharp_scale_up_tolerance, *args))
    info["holdout_rmse_k"] = {c["name"]: round(c["rmse"], 4) for c in cands}
    info["holdout_rmse_k"]["bilinear"] = round(cands[0]["rmse_bilinear"], 4)
    info["scale_up_rmse_k"] = {c["name"]: round(c["up"], 4) for c in cands}
    info["scale_up_rmse_k"]["bilinear"] = round(cands[0]["up_bilinear"], 4)
    info["n_holdout"] = cands[0]["n"]
    chosen = cands[0]
    if params.guard:
        passing = [c for c in cands if c["passes"]]
        chosen = passing[0] if passing else None  # DMS when it passes; TsHARP is the fallback
        if chosen is None or chosen["name"] != "dms":
            info["fallback_from"] = "dms"
            info["reason"] = ("guard: DMS does not beat bilinear on the held-out cells or one scale up"
                              if chosen is None else "guard: DMS fails, NDVI alone (TsHARP) passes")
    if chosen is None:
        res = bilinear_sharpen(lst_coarse, valid_fine, factor)
        return SharpenResult(res.lst, {**info, "method": "bilinear"})
    fine = chosen["pred"]
    if params.local_window > 0:
        fine, info["local_models"] = _with_local_models(chosen, lst_coarse, pc, pf, train, held, factor, params)
    lst = _residual_corrected(fine, lst_coarse, factor, params.psf_sigma_px, params.residual_iterations)
    lst[~valid_fine] = np.nan
    expected = chosen["pred"].copy()
    expected[~np.isfinite(lst)] = np.nan
    return SharpenResult(lst, {**info, "method": chosen["name"]}, expected=expected)


__all__ = ["DMSParams", "LinearLeafTreeEnsemble", "dms_sharpen", "holdout_check", "holdout_mask", "local_window_cells"]
