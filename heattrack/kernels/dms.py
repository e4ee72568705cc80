"""Data Mining Sharpener (DMS, after Gao, Kustas & Anderson 2012 and pyDMS).

Regression-tree ensembles (bagged trees with a linear model in each leaf, as in pyDMS) learn LST from fine
optical predictors aggregated to the thermal resolution:

1. predictors on the 10 m grid (``dms_predictors``): the pixel's spectral class, found by k-means on
   standardised (red, NIR, NDVI) of the tile's clear pixels, as a one-hot membership, plus NDVI itself.
   Averaged over the valid fine pixels of a coarse pixel they are that pixel's *class fractions* and mean
   NDVI, so a linear leaf model is the linear-mixing law of emitted radiance (mixed-pixel LST ~ area-weighted
   class LST) and the NDVI term keeps continuous vegetation gradients that classes alone would quantise.
   Measured (docs/downscaling.md): raw red/NIR/NDVI/texture predictors were worse than TsHARP (they
   extrapolate badly from mixed coarse pixels to pure fine ones); classes alone were best on the city
   simulator but worse than TsHARP on a continuous-vegetation scene; classes + NDVI beat TsHARP on both;
2. training samples: clear coarse pixels whose predictors are homogeneous inside the pixel (lowest
   coefficients of variation, ``homogeneous_fraction``), capped at ``sample_cap`` (random, seeded);
3. a **global** ensemble over the whole (padded) tile, its tree depth chosen among ``depth_candidates`` by
   spatial cross-validation (``select_depth``), and optional **local** ensembles in overlapping moving windows
   (``local_window_px`` coarse pixels, half-window stride; ``local``, off by default: measured no gain);
4. global and local fine predictions combined per pixel with weights 1/r^2, r being each model's smoothed
   coarse residual there (the better-fitting model dominates locally);
4b. two do-no-harm guards, recorded in ``info``: a linear NDVI-only model (TsHARP's) competes in the
   cross-validation and wins ties (then the tile uses TsHARP), and ``internal_asc`` repeats the sharpening one
   scale up (coarse LST aggregated 2x, sharpened back): if DMS is more than ``self_check_tolerance`` (1.5)
   times worse there than bilinear, the tile uses the better of TsHARP and bilinear. On the real Momotombo
   scene, where LST follows elevation and an eruption, they keep DMS from being 3.5-4.9x worse than bilinear;
5. the residual correction of :func:`heattrack.kernels.lst.conserve_coarse`: the coarse residual is added
   back as a smooth field plus the exact per-block remainder, so the 10 m result aggregates to the observed
   coarse LST (energy conservation) without printing coarse-pixel blocks.

Too few usable samples -> TsHARP (which itself falls back to bilinear), reported in ``info``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from heattrack.kernels.features import ndvi
from heattrack.kernels.lst import (
    SharpenResult,
    block_mean,
    conserve_coarse,
    fill_nearest,
    tsharp_sharpen,
    upsample_bilinear,
)


@dataclass(frozen=True)
class DMSParams:
    """Tree-ensemble and sampling settings (sizes in coarse thermal pixels)."""

    n_estimators: int = 10
    max_depth: int = 3
    min_samples_leaf: int = 100
    homogeneous_fraction: float = 0.8
    sample_cap: int = 20_000
    min_samples: int = 60
    local_window_px: int = 60
    local: bool = False
    n_classes: int = 8
    ndvi_predictor: bool = True
    #: tree depths tried per tile by spatial cross-validation at the thermal resolution (0: one linear model)
    depth_candidates: tuple[int, ...] = (0, 2, 3)
    self_check: bool = True
    #: DMS is kept unless, one scale up, its RMSE exceeds bilinear's (doing nothing) by this factor
    self_check_tolerance: float = 1.5
    seed: int = 0


def dms_predictors(red: np.ndarray, nir: np.ndarray, n_classes: int = 8, seed: int = 0,
                   sample: int = 50_000) -> np.ndarray:
    """Predictor stack ``(n_classes + 1, H, W)`` float32: one-hot spectral-class memberships, then NDVI.

    Classes: k-means (scikit-learn ``MiniBatchKMeans``, seeded) on standardised red, NIR (reflectance 0-1)
    and NDVI of at most ``sample`` clear pixels. Averaged to the thermal resolution the memberships are
    class fractions and the NDVI row is the mean NDVI, so both mix linearly; the NDVI row keeps continuous
    gradients (e.g. vegetation vigour) that discrete classes would quantise. NaN where red/NIR/NDVI are not
    finite.
    """
    from sklearn.cluster import MiniBatchKMeans

    nd = ndvi(red, nir)
    X = np.stack([red, nir, nd]).reshape(3, -1).T.astype(np.float64)
    ok = np.isfinite(X).all(axis=1)
    out = np.full((n_classes + 1, X.shape[0]), np.nan, dtype=np.float32)
    out[n_classes, ok] = nd.reshape(-1)[ok]
    if ok.sum() < 2 * n_classes:
        return out.reshape(n_classes + 1, *red.shape)
    mu, sd = X[ok].mean(axis=0), X[ok].std(axis=0) + 1e-9
    Z = (X[ok] - mu) / sd
    rng = np.random.default_rng(seed)
    fit_idx = rng.choice(Z.shape[0], size=min(sample, Z.shape[0]), replace=False)
    km = MiniBatchKMeans(n_clusters=n_classes, random_state=seed, n_init=3, batch_size=4096).fit(Z[fit_idx])
    labels = km.predict(Z)
    out[:n_classes, ok] = (labels[None, :] == np.arange(n_classes)[:, None]).astype(np.float32)
    return out.reshape(n_classes + 1, *red.shape)


def _block_std(fine: np.ndarray, factor: int) -> np.ndarray:
    m = block_mean(fine, factor)
    m2 = block_mean(fine * fine, factor)
    return np.sqrt(np.clip(m2 - m * m, 0, None))


class LinearLeafTreeEnsemble:
    """Bagged regression trees with a ridge regression in every leaf (the pyDMS / Cubist idea).

    A plain tree predicts a constant per leaf, so it cannot extrapolate: pure 10 m pixels lie outside the
    range of the mixed coarse pixels it was trained on. A linear model per leaf keeps the tree's
    partition (non-linear, land-cover specific) and extrapolates linearly like TsHARP does.
    scikit-learn estimator API: ``fit(X, y)``, ``predict(X)``, parameters in ``__init__``.
    """

    def __init__(self, n_estimators: int = 10, max_depth: int = 5, min_samples_leaf: int = 40,
                 alpha: float = 1e-3, extrapolation: float = 0.25, random_state: int = 0):
        self.n_estimators = n_estimators
        self.extrapolation = extrapolation
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.alpha = alpha
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> "LinearLeafTreeEnsemble":
        from sklearn.tree import DecisionTreeRegressor

        rng = np.random.default_rng(self.random_state)
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        self.mean_, self.scale_ = X.mean(axis=0), X.std(axis=0) + 1e-9
        lo, hi = X.min(axis=0), X.max(axis=0)
        self.x_lo_ = lo - self.extrapolation * (hi - lo)
        self.x_hi_ = hi + self.extrapolation * (hi - lo)
        Z = (X - self.mean_) / self.scale_
        self.y_range_ = (float(y.min()), float(y.max()))
        self.members_ = []
        n = y.size
        for _ in range(self.n_estimators):
            idx = rng.integers(0, n, n) if self.n_estimators > 1 else np.arange(n)
            tree = DecisionTreeRegressor(max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
                                         random_state=int(rng.integers(2**31)))
            tree.fit(Z[idx], y[idx])
            leaves = tree.apply(Z[idx])
            n_nodes = tree.tree_.node_count
            coef = np.zeros((n_nodes, Z.shape[1] + 1))
            for leaf in np.unique(leaves):
                sel = leaves == leaf
                A = np.hstack([np.ones((sel.sum(), 1)), Z[idx][sel]])
                reg = self.alpha * sel.sum() * np.eye(A.shape[1])
                reg[0, 0] = 0.0
                coef[leaf] = np.linalg.solve(A.T @ A + reg, A.T @ y[idx][sel])
            self.members_.append((tree, coef))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        # pure fine pixels reach beyond the mixed coarse pixels seen in training: extrapolate linearly, but
        # only ``extrapolation`` x the training range of each predictor, and the result at most that far in LST
        X = np.clip(np.asarray(X, dtype=np.float64), self.x_lo_, self.x_hi_)
        Z = (X - self.mean_) / self.scale_
        out = np.zeros(Z.shape[0])
        for tree, coef in self.members_:
            c = coef[tree.apply(Z)]
            out += c[:, 0] + np.einsum("ij,ij->i", c[:, 1:], Z)
        out /= len(self.members_)
        lo, hi = self.y_range_
        margin = self.extrapolation * (hi - lo)
        return np.clip(out, lo - margin, hi + margin)


def _ensemble(params: DMSParams, n_estimators: int | None = None, depth: int | None = None
              ) -> LinearLeafTreeEnsemble:
    depth = params.max_depth if depth is None else depth
    return LinearLeafTreeEnsemble(n_estimators=n_estimators or params.n_estimators, max_depth=max(depth, 1),
                                  min_samples_leaf=params.min_samples_leaf if depth > 0 else 10**9,
                                  random_state=params.seed)


def select_depth(X: np.ndarray, y: np.ndarray, rows: np.ndarray, cols: np.ndarray, params: DMSParams,
                 block: int = 8, folds: int = 3, ndvi: np.ndarray | None = None) -> tuple[int, dict]:
    """Tree depth by spatial k-fold cross-validation on the coarse samples (folds = diagonal bands of
    ``block`` x ``block`` coarse-pixel blocks, so neighbours are not split across train/test). Among depths
    within 2 % of the best RMSE the shallowest wins. With ``ndvi`` (the coarse NDVI of the samples) a linear
    NDVI-only model (what TsHARP fits) competes too, as the simplest candidate: if it is within 2 % of the
    best, -1 is returned and the caller uses TsHARP."""
    fold = ((rows // block) + (cols // block)) % folds
    scores = {}
    if ndvi is not None:
        se, n = 0.0, 0
        for k in range(folds):
            tr, te = fold != k, fold == k
            if tr.sum() < params.min_samples or te.sum() == 0:
                continue
            coef = np.polyfit(ndvi[tr], y[tr], 1)
            se += float(np.sum((np.polyval(coef, ndvi[te]) - y[te]) ** 2))
            n += int(te.sum())
        scores[-1] = np.sqrt(se / n) if n else np.inf
    for depth in params.depth_candidates:
        se, n = 0.0, 0
        for k in range(folds):
            tr, te = fold != k, fold == k
            if tr.sum() < params.min_samples or te.sum() == 0:
                continue
            m = _ensemble(params, n_estimators=max(3, params.n_estimators // 3), depth=depth).fit(X[tr], y[tr])
            se += float(np.sum((m.predict(X[te]) - y[te]) ** 2))
            n += int(te.sum())
        scores[depth] = np.sqrt(se / n) if n else np.inf
    best = min(scores.values())
    chosen = min(d for d, v in scores.items() if v <= 1.02 * best)
    return chosen, {("ndvi_linear" if d < 0 else str(d)): round(float(v), 4) for d, v in scores.items()}


#: NDVI step of the lookup fast path (a leaf slope of 10 K per NDVI unit -> at most 0.005 K error; a pixel
#: within half a step of a tree split may land in the neighbouring leaf)
LOOKUP_STEP = 0.001


def _onehot_rows(X: np.ndarray) -> int:
    """Number of leading rows of ``X`` (features x samples) that form a one-hot code (0 if none)."""
    b = 0
    while b < X.shape[0] and ((X[b] == 0) | (X[b] == 1)).all():
        b += 1
    for k in range(b, 1, -1):
        if (X[:k].sum(axis=0) == 1).all():
            return k
    return 0


def _predict_fine(model, pred_fine: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Model predictions on the fine pixels in ``mask``.

    Fast path for class memberships (+ at most one continuous row, NDVI): every fine pixel is one of n
    classes with an NDVI quantised to ``LOOKUP_STEP``, so the model is evaluated once per distinct
    (class, NDVI) pair and looked up, instead of once per pixel."""
    out = np.full(mask.shape, np.nan, dtype=np.float32)
    if not mask.any():
        return out
    X = pred_fine[:, mask]
    k = _onehot_rows(X)
    extra = X.shape[0] - k
    if k and extra == 0:
        out[mask] = model.predict(np.eye(k)).astype(np.float32)[np.argmax(X, axis=0)]
    elif k and extra == 1:
        cls = np.argmax(X[:k], axis=0).astype(np.int64)
        q = np.round(X[k] / LOOKUP_STEP).astype(np.int64)
        key = cls * 1_000_000 + (q - q.min())
        uniq, inverse = np.unique(key, return_inverse=True)
        rows = np.zeros((uniq.size, k + 1))
        rows[np.arange(uniq.size), uniq // 1_000_000] = 1.0
        rows[:, k] = ((uniq % 1_000_000) + q.min()) * LOOKUP_STEP
        out[mask] = model.predict(rows).astype(np.float32)[inverse]
    else:
        out[mask] = model.predict(X.T).astype(np.float32)
    return out


def _training_mask(lst_coarse: np.ndarray, pred_coarse: np.ndarray, cv: np.ndarray, params: DMSParams,
                   rng: np.random.Generator) -> np.ndarray:
    ok = np.isfinite(lst_coarse) & np.isfinite(pred_coarse).all(axis=0) & np.isfinite(cv)
    if ok.sum() > 0 and params.homogeneous_fraction < 1.0:
        thr = np.quantile(cv[ok], params.homogeneous_fraction)
        ok &= cv <= thr
    idx = np.flatnonzero(ok)
    if idx.size > params.sample_cap:
        keep = rng.choice(idx, size=params.sample_cap, replace=False)
        ok = np.zeros_like(ok)
        ok.flat[keep] = True
    return ok


def _corrected(pred: np.ndarray | None, coarse: np.ndarray, factor: int) -> np.ndarray:
    if pred is None:
        return np.full((coarse.shape[0] * factor, coarse.shape[1] * factor), np.nan, dtype=np.float32)
    return conserve_coarse(pred, coarse, factor)


def internal_asc(lst_coarse: np.ndarray, predictors_coarse: np.ndarray, ndvi_coarse: np.ndarray,
                 params: DMSParams, factor: int = 2) -> dict[str, float]:
    """Scale-invariance self-check inside one tile: aggregate the coarse LST ``factor`` times more, sharpen
    it back to the coarse grid with each method (predictors aggregated to the coarse grid), and return the
    RMSE (K) of each against the coarse observation. A method that cannot beat bilinear one scale up is not
    trusted one scale down."""
    h, w = (lst_coarse.shape[0] // factor) * factor, (lst_coarse.shape[1] // factor) * factor
    y = lst_coarse[:h, :w]
    pc = predictors_coarse[:, :h, :w]
    nd = ndvi_coarse[:h, :w]
    valid = np.isfinite(y) & np.isfinite(pc).all(axis=0) & np.isfinite(nd)
    yc = block_mean(np.where(valid, y, np.nan), factor, 0.5)
    truth = np.where(valid, y, np.nan)
    out = {}
    small = replace(params, local=False, min_samples_leaf=max(10, params.min_samples_leaf // (factor * factor)))
    candidates = {
        "bilinear": lambda: upsample_bilinear(yc, factor),
        "tsharp": lambda: tsharp_sharpen(yc, nd, valid, factor).lst,
        "dms": lambda: _corrected(_dms_core(yc, pc, valid, factor, small)[0], yc, factor),
    }
    for name, fn in candidates.items():
        est = fn()
        ok = np.isfinite(est) & np.isfinite(truth)
        out[name] = float(np.sqrt(np.mean((est[ok] - truth[ok]) ** 2))) if ok.any() else float("inf")
    return out


def dms_sharpen(
    lst_coarse: np.ndarray,
    predictors_fine: np.ndarray,
    valid_fine: np.ndarray,
    factor: int,
    ndvi_fine: np.ndarray,
    params: DMSParams = DMSParams(),
    smooth_residual: bool = True,
) -> SharpenResult:
    """Sharpen ``lst_coarse`` (K, coarse grid) with ``predictors_fine`` ``(n, H, W)`` on the fine grid.

    ``ndvi_fine`` serves the TsHARP fallback and the self-check.
    ``valid_fine``: fine pixels that may carry LST. Returns fine LST (K), NaN outside ``valid_fine`` and
    where the coarse observation is missing; ``info`` says which models ran or why it fell back.
    """
    rng = np.random.default_rng(params.seed)
    pf = np.where(valid_fine[None], predictors_fine, np.nan).astype(np.float32)
    combined, info, pc = _dms_core(lst_coarse, pf, valid_fine, factor, params, rng)
    if combined is not None and params.self_check:
        chosen = replace(params, max_depth=info["depth"], depth_candidates=(info["depth"],))
        asc = internal_asc(lst_coarse, pc, block_mean(np.where(valid_fine, ndvi_fine, np.nan), factor), chosen)
        info["internal_asc_rmse_k"] = {k: round(v, 4) for k, v in asc.items()}
        if asc["dms"] > params.self_check_tolerance * asc["bilinear"]:
            best = min(("tsharp", "bilinear"), key=asc.get)
            combined, info["fallback_from"] = None, "dms"
            info["reason"] = (f"one scale up DMS is {asc['dms'] / asc['bilinear']:.1f}x worse than bilinear"
                              if np.isfinite(asc["dms"]) else "too few samples for the one-scale-up check")
            info["method"] = best
    if combined is None:
        if info.get("method") == "bilinear":
            from heattrack.kernels.lst import bilinear_sharpen

            res = bilinear_sharpen(lst_coarse, valid_fine, factor)
        else:
            res = tsharp_sharpen(lst_coarse, ndvi_fine, valid_fine, factor,
                                 smooth_residual=smooth_residual)
        return SharpenResult(res.lst, {**res.info, **info, "method": res.info["method"]}, expected=res.expected)
    expected = combined.copy()
    lst = conserve_coarse(combined, lst_coarse, factor, smooth=smooth_residual)
    expected[~np.isfinite(lst)] = np.nan
    return SharpenResult(lst, info, expected=expected)


def _dms_core(lst_coarse, pf, valid_fine, factor, params, rng=None):
    """Global (+ local) ensembles -> combined fine prediction before residual correction.

    Returns ``(prediction or None, info, coarse predictors)``; None when there are too few samples."""
    rng = rng if rng is not None else np.random.default_rng(params.seed)
    mask_fine = valid_fine & np.isfinite(pf).all(axis=0)
    pc = np.stack([block_mean(p, factor) for p in pf])
    # homogeneity: mean coefficient of variation of the predictors inside each coarse pixel
    cv = np.mean([_block_std(p, factor) / np.maximum(np.abs(m), 1e-3) for p, m in zip(pf, pc)], axis=0)
    train = _training_mask(lst_coarse, pc, cv, params, rng)
    if train.sum() < params.min_samples:
        return None, {"fallback_from": "dms", "reason": f"{int(train.sum())} training samples < "
                      f"{params.min_samples}"}, pc
    X, y = pc[:, train].T, lst_coarse[train]
    depth, cv_scores = params.max_depth, None
    if len(params.depth_candidates) > 1:
        r, c = np.nonzero(train)
        depth, cv_scores = select_depth(X, y, r, c, params, ndvi=X[:, -1] if params.ndvi_predictor else None)
        if depth < 0:
            return None, {"fallback_from": "dms", "cv_rmse_k": cv_scores,
                          "reason": "cross-validation: NDVI alone explains the coarse LST as well"}, pc
    params = replace(params, max_depth=depth, depth_candidates=(depth,))
    model = _ensemble(params).fit(X, y)
    glob = _predict_fine(model, pf, mask_fine)
    info = {"method": "dms", "n_train": int(train.sum()), "local_models": 0, "depth": depth, "cv_rmse_k": cv_scores}
    combined = glob
    if params.local:
        local = _local_predictions(lst_coarse, pc, pf, mask_fine, cv, factor, params, rng)
        if local is not None:
            pred_l, n_models = local
            info["local_models"] = n_models
            combined = _combine_by_residual(glob, pred_l, lst_coarse, factor)
    return combined, info, pc


def _local_predictions(lst_coarse, pc, pf, mask_fine, cv, factor, params, rng):
    """Blend of local ensembles in overlapping windows (triangular weights), or None if none could fit."""
    hc, wc = lst_coarse.shape
    win = min(params.local_window_px, hc, wc)
    if win >= max(hc, wc) and win == hc == wc:
        return None  # a single window is the global model
    step = max(1, win // 2)
    starts_r = sorted({*range(0, max(hc - win, 0) + 1, step), max(hc - win, 0)})
    starts_c = sorted({*range(0, max(wc - win, 0) + 1, step), max(wc - win, 0)})
    acc = np.zeros(mask_fine.shape, dtype=np.float64)
    wsum = np.zeros(mask_fine.shape, dtype=np.float64)
    tri = np.minimum(np.arange(win * factor) + 0.5, win * factor - np.arange(win * factor) - 0.5)
    tri = (tri / tri.max()).astype(np.float64)
    n_models = 0
    n_est = max(5, params.n_estimators // 2)
    for r0 in starts_r:
        for c0 in starts_c:
            sl_c = (slice(r0, r0 + win), slice(c0, c0 + win))
            train = _training_mask(lst_coarse[sl_c], pc[(slice(None), *sl_c)], cv[sl_c], params, rng)
            if train.sum() < params.min_samples:
                continue
            model = _ensemble(params, n_est).fit(pc[(slice(None), *sl_c)][:, train].T, lst_coarse[sl_c][train])
            sl_f = (slice(r0 * factor, (r0 + win) * factor), slice(c0 * factor, (c0 + win) * factor))
            m = mask_fine[sl_f]
            pred = _predict_fine(model, pf[(slice(None), *sl_f)], m)
            w = np.outer(tri, tri)[: m.shape[0], : m.shape[1]] * m
            acc[sl_f] += np.nan_to_num(pred, nan=0.0) * w
            wsum[sl_f] += w
            n_models += 1
    if n_models == 0:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (acc / wsum).astype(np.float32)
    out[wsum == 0] = np.nan
    return out, n_models


def _combine_by_residual(glob: np.ndarray, loc: np.ndarray, lst_coarse: np.ndarray, factor: int) -> np.ndarray:
    """Per-pixel weights 1/r^2 from each model's smoothed coarse residual (global where local is missing)."""
    def resid2(pred):
        r = lst_coarse - block_mean(pred, factor)
        r2 = fill_nearest(r * r)
        r2 = np.where(np.isfinite(r2), r2, np.nanmean(r2) if np.isfinite(r2).any() else 1.0)
        return np.maximum(upsample_bilinear(ndimage.uniform_filter(r2, 3), factor), 1e-4)

    wg = 1.0 / resid2(glob)
    wl = 1.0 / resid2(np.where(np.isfinite(loc), loc, glob))
    out = np.where(np.isfinite(loc), (wg * glob + wl * loc) / (wg + wl), glob).astype(np.float32)
    return out


__all__ = ["DMSParams", "LinearLeafTreeEnsemble", "dms_predictors", "dms_sharpen", "internal_asc"]
