"""Local linear corrections of a sharpener's prediction (the local models of pyDMS, as ridge regressions).

A tree ensemble trained on a whole tile learns one relation between reflectances and LST; in a city it changes from
one neighbourhood to the next (the same roof colour is a warm flat roof in one district, a cool pitched one in the
next). Here the coarse residual the global model leaves (observed LST minus its prediction seen through the sensor
footprint) is regressed on the standardised coarse predictors in overlapping windows of the coarse grid — a core of
``window`` x ``window`` cells and ``window // 2`` cells beyond it on every side, a ridge regression per window with
the leaf models' penalty (:func:`heattrack.kernels.linear_trees.ridge_penalty`) — and each window's model is applied
on the fine grid, its coefficients interpolated bilinearly between the window centres. A window with fewer than
``4 x (predictors + 1)`` usable cells gets no model (zero correction). Cost (a padded 10 km tile, 9 predictors:
~15 ms): the windows' normal equations from the ``(p + 1)(p + 2) / 2`` products of the coarse predictors summed by
one matrix product per side, one batched solve, and on the fine grid one compiled pass (each coefficient field
interpolated and multiplied with its predictor).
"""

from __future__ import annotations

import numpy as np

from heattrack.kernels.jit import compiled
from heattrack.kernels.linear_trees import ridge_penalty
from heattrack.kernels.lst import linear_weights


def _window_sums(maps: np.ndarray, core: int, reach: int) -> np.ndarray:
    """Sums of each map of ``(n, H, W)`` over the window of every core block (``core`` x ``core`` cells and ``reach``
    cells beyond, clipped to the grid) -> ``(n, ceil(H / core), ceil(W / core))``: ``R_y @ map @ R_x.T`` with the 0/1
    matrices of which rows (columns) each window holds (one batched matrix product)."""
    def holds(size: int) -> np.ndarray:
        start = np.arange(-(-size // core))[:, None] * core
        cell = np.arange(size)[None, :]
        return ((cell >= start - reach) & (cell < start + core + reach)).astype(maps.dtype)

    return holds(maps.shape[1]) @ maps @ holds(maps.shape[2]).T


def local_models(residual: np.ndarray, coarse_predictors: np.ndarray, usable: np.ndarray, window: int,
                 alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Ridge models of ``residual`` (coarse grid) on ``coarse_predictors`` ``(p, H, W)`` over the ``usable`` cells,
    one per window (see the module docstring). Returns their coefficients ``(p + 1, ny, nx)`` (intercept first, on
    standardised predictors) and the predictors' mean and standard deviation; None where no window can be fitted."""
    p = coarse_predictors.shape[0]
    ok = usable & np.isfinite(residual) & np.isfinite(coarse_predictors).all(axis=0)
    if window < 1 or ok.sum() < 4 * (p + 1):
        return None
    mu = coarse_predictors[:, ok].mean(axis=1)
    sd = coarse_predictors[:, ok].std(axis=1) + 1e-9
    z = np.where(ok, (coarse_predictors - mu[:, None, None]) / sd[:, None, None], 0.0)
    a = np.concatenate([ok[None].astype(np.float64), z])  # the design's rows, zero off the usable cells
    iu, ju = np.triu_indices(p + 1)
    sums = _window_sums(np.concatenate([a[iu] * a[ju], a * np.where(ok, residual, 0.0)]), window, window // 2)
    n_pairs = iu.size
    lhs = np.zeros((p + 1, p + 1) + sums.shape[1:])
    lhs[iu, ju] = sums[:n_pairs]
    lhs[ju, iu] = sums[:n_pairs]
    rhs = sums[n_pairs:]
    count = lhs[0, 0]
    fit = count >= 4 * (p + 1)
    if not fit.any():
        return None
    A = np.moveaxis(lhs[:, :, fit], 2, 0) + ridge_penalty(p + 1, 1.0)[None] * (alpha * count[fit])[:, None, None]
    coef = np.zeros((p + 1,) + fit.shape, dtype=np.float32)
    coef[:, fit] = np.linalg.solve(A, rhs[:, fit].T[..., None])[..., 0].T
    return coef, mu, sd


def apply_local_models(fine_predictors: np.ndarray, models: tuple[np.ndarray, np.ndarray, np.ndarray],
                       cells_per_window: int) -> np.ndarray:
    """The local models' correction on the fine grid ``(H, W)`` of ``fine_predictors`` ``(p, H, W)``: coefficients
    interpolated bilinearly between the window centres (``cells_per_window`` fine pixels apart; as
    :func:`heattrack.kernels.lst.upsample_bilinear`, along the columns first), the standardisation folded into them;
    NaN where a predictor is. One compiled pass over the tile (NumPy without numba: the same operations)."""
    coef, mu, sd = models
    h, w = fine_predictors.shape[1:]
    slopes = coef[1:] / sd[:, None, None].astype(np.float32)
    intercept = coef[0] - np.tensordot(mu / sd, coef[1:].astype(np.float64), axes=1).astype(np.float32)
    fields = np.concatenate([intercept[None], slopes]).astype(np.float32)
    x0, x1, wx = (v[:w] for v in linear_weights(fields.shape[2], cells_per_window))
    y0, y1, wy = (v[:h] for v in linear_weights(fields.shape[1], cells_per_window))
    along_x = fields[:, :, x0] * (1 - wx) + fields[:, :, x1] * wx  # (p + 1, windows down, W): small
    pf = np.ascontiguousarray(fine_predictors, dtype=np.float32)
    out = np.empty((h, w), dtype=np.float32)
    kernel = compiled(_apply_rows)
    if kernel is not None:
        kernel(np.ascontiguousarray(along_x), y0, y1, wy, pf, out)
        return out
    out[:] = along_x[0][y0] * (1 - wy)[:, None] + along_x[0][y1] * wy[:, None]
    for k in range(1, fields.shape[0]):
        out += (along_x[k][y0] * (1 - wy)[:, None] + along_x[k][y1] * wy[:, None]) * pf[k - 1]
    return out


def _apply_rows(along_x, y0, y1, wy, pf, out):
    """The compiled pass of :func:`apply_local_models`: row by row, each coefficient field interpolated between its
    two window rows and multiplied with its predictor, in the NumPy path's order of float32 operations."""
    h, w = out.shape
    for i in range(h):
        a, b, t = y0[i], y1[i], wy[i]
        s = np.float32(1) - t
        for j in range(w):
            out[i, j] = along_x[0, a, j] * s + along_x[0, b, j] * t
        for k in range(1, along_x.shape[0]):
            for j in range(w):
                out[i, j] += (along_x[k, a, j] * s + along_x[k, b, j] * t) * pf[k - 1, i, j]


__all__ = ["apply_local_models", "local_models"]
