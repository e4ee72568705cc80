"""ROC-AUC with its sampling uncertainty, and the paired difference of two rankings of the same segments (pure:
scores in, numbers out).

ROC-AUC is a two-sample U-statistic: the share of (leak, leak-free) pairs in which the leak scores higher, ties
counting half. DeLong, DeLong & Clarke-Pearson (1988) estimate its variance from each item's *structural component*
(for a leak, the share of leak-free items it outscores; for a leak-free item, the share of leaks that outscore it):
``var = var(leak components) / n_leaks + var(leak-free components) / n_leak_free``. Computed from midranks as Sun &
Xu (2014) do: one sort per score, no resampling, no pairwise matrix. Two rankings of the same items are *paired*:
their components covary, and the difference of the two AUCs gets its own variance — the test of "does the default
rank this city's leaks better than the simple baseline", where a city with a dozen leaks leaves a wide interval.
The intervals are normal approximations (DeLong's); with a handful of leaks they are rough, and say so by their width.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x`` along the last axis, ties given the mean of the ranks they span."""
    order = np.argsort(x, axis=-1, kind="stable")
    xs = np.take_along_axis(x, order, axis=-1)
    out = np.empty(x.shape, dtype=float)
    for k in range(x.shape[0]):
        v = xs[k]
        # first position of each run of equal values, and its length: every member gets the run's mean rank
        start = np.flatnonzero(np.r_[True, v[1:] != v[:-1]])
        length = np.diff(np.r_[start, v.size])
        mean_rank = start + (length + 1) / 2.0
        out[k, order[k]] = np.repeat(mean_rank, length)
    return out


def delong(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ROC-AUC of each row of ``scores`` ``(k, n)`` (higher = more suspicious) against the boolean ``positive``
    ``(n,)``, and their DeLong covariance ``(k, k)``. Needs at least two positives and two negatives."""
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    pos = np.asarray(positive, dtype=bool)
    m, n = int(pos.sum()), int((~pos).sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs at least 2 positives and 2 negatives (got {m} and {n})")
    x, y = s[:, pos], s[:, ~pos]
    tx, ty, tz = _midranks(x), _midranks(y), _midranks(np.concatenate([x, y], axis=1))
    auc = tz[:, :m].sum(axis=1) / (m * n) - (m + 1.0) / (2.0 * n)
    v_pos = (tz[:, :m] - tx) / n  # per positive: the share of negatives it outscores
    v_neg = 1.0 - (tz[:, m:] - ty) / m  # per negative: the share of positives that outscore it
    cov = np.atleast_2d(np.cov(v_pos)) / m + np.atleast_2d(np.cov(v_neg)) / n
    return auc, cov


def auc_interval(score: np.ndarray, positive: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """ROC-AUC of the finite ``score`` values and its DeLong interval at ``level``, clipped to [0, 1]; NaNs where
    there are fewer than two positives or negatives."""
    s = np.asarray(score, dtype=float)
    ok = np.isfinite(s)
    pos = np.asarray(positive, dtype=bool)[ok]
    if pos.sum() < 2 or (~pos).sum() < 2:
        return float("nan"), float("nan"), float("nan")
    auc, cov = delong(s[ok][None], pos)
    half = float(ndtri(0.5 + level / 2.0) * np.sqrt(max(cov[0, 0], 0.0)))
    return float(auc[0]), max(0.0, float(auc[0]) - half), min(1.0, float(auc[0]) + half)


def paired_auc_difference(score_a: np.ndarray, score_b: np.ndarray, positive: np.ndarray,
                          level: float = 0.95) -> dict:
    """ROC-AUC of ranking ``a`` minus that of ranking ``b`` of the same items (finite in both), with its DeLong
    standard error, the interval at ``level`` and the two-sided p-value of no difference (normal approximation).
    NaNs where there are fewer than two positives or negatives."""
    a, b = np.asarray(score_a, dtype=float), np.asarray(score_b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    pos = np.asarray(positive, dtype=bool)[ok]
    nan = float("nan")
    out = {"n_items": int(ok.sum()), "n_positive": int(pos.sum())}
    if pos.sum() < 2 or (~pos).sum() < 2:
        return {**out, "auc_a": nan, "auc_b": nan, "delta": nan, "se": nan, "ci_low": nan, "ci_high": nan,
                "p_value": nan}
    auc, cov = delong(np.stack([a[ok], b[ok]]), pos)
    delta = float(auc[0] - auc[1])
    se = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1], 0.0)))
    half = float(ndtri(0.5 + level / 2.0)) * se
    p = float(2.0 * ndtr(-abs(delta) / se)) if se > 0 else (1.0 if delta == 0 else 0.0)
    return {**out, "auc_a": float(auc[0]), "auc_b": float(auc[1]), "delta": delta, "se": se,
            "ci_low": delta - half, "ci_high": delta + half, "p_value": p}


__all__ = ["auc_interval", "delong", "paired_auc_difference"]
