"""The network's null of the segment statistic, for the flag level and the p-values (pure: values in, values out).

Most segments do not leak, so the bulk of a network's statistics is the clutter a leak-free segment reads; the
leaks sit in the top few percent. The flag level for a false-alarm share ``alpha`` must be the leak-free
segments' ``1 - alpha`` quantile, which the network's own quantile is not: the leaks push it up (on the simulator
family's held-out cities, where ~3 % of segments leak, the network's 99th percentile flagged 0.40 % of the leak-free
segments, not 1 %). Neither is a Gaussian of the median and MAD: the clutter's upper tail is far heavier (6.4 % of
leak-free segments above its 1 % level; this fit: 0.78 %; ``benchmarks/flag_calibration.py``).

So the upper tail is modelled from the bulk, below the leaks: a Weibull-type tail above the median, ``x(p) =
median + scale * ln(0.5 / (1 - p)) ** shape`` for the quantile ``p`` >= 0.5 (``shape`` 1: an exponential tail; ~0.5:
Gaussian-like), fitted exactly through the network's median, ``LOW_Q`` and ``HIGH_Q`` quantiles (0.75, 0.9: above
the top tenth the leaks weigh in; the shape held to 0.2-3), and extrapolated: the flag level is ``x(1 - alpha)`` and
a statistic ``x`` above the median has the p-value ``0.5 * exp(-((x - median) / scale) ** (1 / shape))``; at and
below the median, its share of the network at or above ``x``. Fewer than ``MIN_SEGMENTS`` values or a degenerate
bulk (quantiles that do not rise): the network's own shares as p-values; its own quantile is the flag level where
the bulk is degenerate, none (NaN: no flags) under ``MIN_SEGMENTS``. Measured on the simulator
family's held-out members (docs/measurements.md, "Per-segment detectability"); on a Gaussian-like tail the
extrapolation is conservative. Cost: one sort of the network's values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOW_Q, HIGH_Q = 0.75, 0.9
MIN_SEGMENTS = 20
SHAPE_RANGE = (0.2, 3.0)


@dataclass(frozen=True)
class TailNull:
    """A fitted null: ``median``, ``scale`` (K) and ``shape`` of the upper tail, and the network's sorted
    statistics ``values``; ``fitted`` False where the network was too small or degenerate and its own quantiles
    stand in."""

    median: float
    scale: float
    shape: float
    fitted: bool
    values: np.ndarray  # the network's finite statistics, sorted (the lower half's p-values; the fallback)

    def level(self, alpha: float) -> float:
        """The statistic a share ``alpha`` of leak-free segments would exceed (the flag level); NaN on a network of
        fewer than ``MIN_SEGMENTS`` (its own quantile would flag its warmest segment whatever it reads: none is
        flagged)."""
        if self.values.size < MIN_SEGMENTS:
            return float("nan")
        if not self.fitted or alpha >= 0.5:
            return float(np.quantile(self.values, 1.0 - alpha))
        return self.median + self.scale * float(np.log(0.5 / alpha)) ** self.shape

    def p_value(self, stat: np.ndarray) -> np.ndarray:
        """One-sided p-value of each statistic under the null; NaN stays NaN."""
        x = np.asarray(stat, dtype=float)
        out = np.full(x.shape, np.nan)
        ok = np.isfinite(x)
        if self.values.size == 0:
            return out
        # the share of the network at or above x (the lower half; the whole range when not fitted)
        share = 1.0 - np.searchsorted(self.values, x[ok], side="left") / self.values.size
        if self.fitted:
            over = np.maximum(x[ok] - self.median, 0.0) / self.scale
            tail = 0.5 * np.exp(-over ** (1.0 / self.shape))
            share = np.where(x[ok] > self.median, tail, np.maximum(share, 0.5))
        out[ok] = share
        return out


def fit_tail_null(stat: np.ndarray) -> TailNull:
    """Fit the upper tail of the network's statistics (finite values of ``stat``) below its top tenth."""
    v = np.sort(np.asarray(stat, dtype=float)[np.isfinite(stat)])
    if v.size < MIN_SEGMENTS:
        return TailNull(float("nan"), float("nan"), float("nan"), False, v)
    med, lo, hi = (float(q) for q in np.quantile(v, (0.5, LOW_Q, HIGH_Q)))
    t_lo, t_hi = np.log(0.5 / (1.0 - LOW_Q)), np.log(0.5 / (1.0 - HIGH_Q))
    if not (lo > med and hi > lo):
        return TailNull(med, float("nan"), float("nan"), False, v)
    shape = float(np.clip(np.log((hi - med) / (lo - med)) / np.log(t_hi / t_lo), *SHAPE_RANGE))
    scale = (hi - med) / t_hi ** shape
    return TailNull(med, float(scale), shape, True, v)


__all__ = ["TailNull", "fit_tail_null", "LOW_Q", "HIGH_Q", "MIN_SEGMENTS"]
