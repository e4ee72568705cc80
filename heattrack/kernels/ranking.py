"""The segment ranking statistic and each segment's detectability (pure: point values in, per-segment arrays out).

**Statistic** (``detect.method`` residual / baseline): per date, a segment's largest point excess (K; the points
read :func:`heattrack.kernels.segments.on_pipe_peak`), averaged over the dates with data; a z-score against the
network-wide null (median and 1.4826 x MAD over all segments with data: most do not leak) and its one-sided
Gaussian p-value.

**Detectability** ``mdl_k``: the smallest peak excess (K, at 10 m) of a leak plume of ``plume_fwhm_m`` (20 m)
that, placed on the segment, would lift it to the flag level ``T``: the network's ``1 - alpha`` quantile of the
statistic (``segments.mdl_alpha``: the share of segments flagged; most are leak-free, so about the false-alarm
share). The sensor sees the plume through its footprint, so only a share
``a = s_l^2 / (s_l^2 + s_s^2)`` of its peak reaches the statistic (2-D Gaussians of sigmas ``s_l`` plume,
``s_s`` sensor: 0.05 for Landsat's ~36 m, 0.9 for a 10 m airborne raster). A leak adds ``a x peak`` to the
evidence where it sits; the evidence a leak would sit on is the median point value of the network around the
segment (not of the segment itself, which its own leak raises), so ``mdl_k = max(0, T - median) / a``: 0 where
that clutter already reaches ``T``. ``mdl_k_m2`` is the plume's excess-heat integral at that peak
(peak x 2 pi s_l^2, K m^2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heattrack.kernels.lst import nanmean_layers
from heattrack.kernels.segments import network_z, segment_max, segment_mean


def _grouped_median(group: np.ndarray, values: np.ndarray, rank: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of ``values`` per ``group`` (0..n_groups-1; NaN for an empty group), given each value's ``rank``
    among all values (ties in any order): one sort on the integer key (group, rank)."""
    order = np.argsort(group.astype(np.int64) * (int(rank.max()) + 1 if rank.size else 1) + rank)
    g, v = group[order], values[order]
    count = np.bincount(g, minlength=n_groups)
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    out = np.full(n_groups, np.nan)
    has = count > 0
    lo = first[has] + (count[has] - 1) // 2
    hi = first[has] + count[has] // 2
    out[has] = 0.5 * (v[lo] + v[hi])
    return out


def _ranks(v: np.ndarray) -> np.ndarray:
    rank = np.empty(v.size, dtype=np.int64)
    rank[np.argsort(v)] = np.arange(v.size)
    return rank


def segment_median(point_values: np.ndarray, segment: np.ndarray, n_segments: int) -> np.ndarray:
    """Median of the finite point values per segment (NaN for a segment without any); vectorised."""
    ok = np.isfinite(point_values)
    v = point_values[ok]
    return _grouped_median(segment[ok], v, _ranks(v), n_segments)


def network_neighbourhood_median(point_values: np.ndarray, x: np.ndarray, y: np.ndarray, cell_m: float
                                 ) -> np.ndarray:
    """Per point: the median of the finite values of every network point in the 3 x 3 cells of ``cell_m`` around
    the point's cell (a ``3 cell_m`` square window of the network, not of the image). A leak raises the points within
    its footprint; this median over ~1 km of pipe barely moves, so it is the clutter a leak would sit on without the
    leak itself (a segment's own median contains its leak: on the simulator family that made ``mdl_k`` optimistic).
    Vectorised: each finite value is counted in the (up to 9) neighbouring cells that hold points, then one sort
    (O(n log n); a tile task runs it on its own points and its halo's)."""
    ok = np.isfinite(point_values)
    out = np.full(point_values.shape, np.nan)
    if not ok.any():
        return out
    ix = np.floor(np.asarray(x, dtype=float) / cell_m).astype(np.int64)
    iy = np.floor(np.asarray(y, dtype=float) / cell_m).astype(np.int64)
    ix, iy = ix - ix.min() + 1, iy - iy.min() + 1
    width = int(ix.max()) + 2
    own = iy * width + ix
    cells = np.unique(own)  # the cells that hold points: the only ones asked for
    d = np.array([dy * width + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1)], dtype=np.int64)
    v = point_values[ok]
    keys = (own[ok][None, :] + d[:, None]).ravel()
    pos = np.minimum(np.searchsorted(cells, keys), cells.size - 1)
    hit = cells[pos] == keys
    med = _grouped_median(pos[hit], np.tile(v, 9)[hit], np.tile(_ranks(v), 9)[hit], cells.size)
    out[:] = med[np.searchsorted(cells, own)]
    return out


def plume_attenuation(sensor_sigma_m: float, plume_fwhm_m: float = 20.0) -> float:
    """Share of a Gaussian plume's peak that survives a Gaussian sensor footprint (2-D)."""
    s_l2 = (plume_fwhm_m / 2.3548) ** 2
    return float(s_l2 / (s_l2 + sensor_sigma_m**2))


def chain_attenuation(psf_sigma_px: float, factor: int, plume_fwhm_px: float, buffer_px: int = 2,
                      window_px: int = 0) -> float:
    """Share of a Gaussian plume's peak (FWHM ``plume_fwhm_px`` fine pixels) that the ranking evidence keeps,
    through the same path as the data: the sensor footprint (Gaussian ``psf_sigma_px``), the block mean to the
    thermal grid (``factor``; 1 = none) and bilinear interpolation back, the local median in a ``window_px`` window
    removed (0: none; a plume as wide as half the window lifts its own background), the maximum within
    ``buffer_px``. Averaged over plume positions inside a block (a plume at a block corner is split between four
    blocks)."""
    from scipy import ndimage

    from heattrack.kernels.lst import block_mean, upsample_bilinear

    pad = int(np.ceil(window_px / (2 * factor))) + 1 if window_px else 0  # blocks around the plume for the median
    n = factor * (9 + 2 * pad)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    s = plume_fwhm_px / 2.3548
    out = []
    for dy, dx in ((0.5, 0.5), (0.25, 0.25), (0.5, 0.0), (0.0, 0.0)):
        cy, cx = factor * (4 + pad + dy), factor * (4 + pad + dx)
        plume = np.exp(-((yy + 0.5 - cy) ** 2 + (xx + 0.5 - cx) ** 2) / (2 * s * s)).astype(np.float32)
        seen = ndimage.gaussian_filter(plume, psf_sigma_px, mode="constant") if psf_sigma_px > 0 else plume
        if factor > 1:
            seen = upsample_bilinear(block_mean(seen, factor), factor)
        if window_px:
            seen = seen - ndimage.median_filter(seen, size=int(window_px) | 1, mode="constant")
        out.append(float(ndimage.maximum_filter(seen, 2 * buffer_px + 1)[int(cy), int(cx)]))
    return float(np.mean(out))


@dataclass(frozen=True)
class SegmentStatistic:
    """Per segment: ``stat_k`` (K, the mean over dates of ``per_date_k``), network ``z`` and ``p_value``, ``mean_k``/``median_k`` of its points, dates
    with data, detectability ``mdl_k`` (K) and ``mdl_k_m2`` (K m^2); and the network null and flag level."""

    stat_k: np.ndarray
    per_date_k: np.ndarray  # (dates, segments): each date's largest point value
    z: np.ndarray
    p_value: np.ndarray
    mean_k: np.ndarray
    median_k: np.ndarray
    n_dates: np.ndarray
    mdl_k: np.ndarray
    mdl_k_m2: np.ndarray
    flag_level_k: float
    attenuation: float


def error_weights(err_by_date: np.ndarray | None) -> np.ndarray | None:
    """Per (date, segment) weight multipliers from the source's own LST uncertainty (``err_by_date`` K, e.g. the
    median ECOSTRESS ``LST_err`` along each segment): ``1 / err^2``; a date without an uncertainty for a segment
    gets the segment's median over the dates that have one (neutral), a segment without any gets 1 on every
    date. None when there is nothing to weight (no uncertainty, or one date)."""
    if err_by_date is None or len(err_by_date) < 2 or not np.isfinite(err_by_date).any():
        return None
    e = np.where(np.isfinite(err_by_date) & (err_by_date > 0), err_by_date, np.nan)
    has = np.isfinite(e).any(axis=0)
    fill = np.ones(e.shape[1])
    with np.errstate(all="ignore"):
        fill[has] = np.nanmedian(e[:, has], axis=0)
    e = np.where(np.isfinite(e), e, fill[None, :])
    return np.where(has[None, :], 1.0 / np.maximum(e, 1e-3) ** 2, 1.0)


def _weighted(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean over the first axis (dates) of the finite values with positive weight; NaN where none."""
    ok = np.isfinite(values) & (weights > 0)
    num = np.where(ok, values * weights, 0.0).sum(axis=0)
    den = np.where(ok, weights, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def combine_dates(per_date: np.ndarray, attenuation: np.ndarray,
                  weights: np.ndarray | None = None, multipliers: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Dates of different sensors on one scale: each date's values divided by its ``attenuation`` (an estimate
    of the leak's peak K), weighted by the inverse square of that date's robust spread over the network (its
    detectability: a date that sees leaks ten times fainter than its clutter counts a hundred times less), or
    by ``weights``; ``multipliers`` (dates, columns): per-column factors on those weights (:func:`error_weights`).
    Returns the weighted mean over the dates with data, per column, and the per-date weights."""
    scaled = per_date / attenuation[:, None]
    w = np.zeros(len(scaled)) if weights is None else np.asarray(weights, dtype=float)
    for d, row in enumerate(scaled if weights is None else ()):
        v = row[np.isfinite(row)]
        if v.size >= 2:
            mad = 1.4826 * float(np.median(np.abs(v - np.median(v))))
            w[d] = 1.0 / max(mad, 1e-6) ** 2
    return _weighted(scaled, w[:, None] if multipliers is None else w[:, None] * multipliers), w


def segment_statistic(point_stat_by_date: np.ndarray, segment: np.ndarray, n_segments: int,
                      attenuation: float | np.ndarray, alpha: float = 0.01,
                      plume_fwhm_m: float = 20.0, point_err_by_date: np.ndarray | None = None,
                      point_base_by_date: np.ndarray | None = None) -> SegmentStatistic:
    """The ranking statistic and detectability of every segment from its points' values ``(dates, points)``.
    ``attenuation``: the share of a ``plume_fwhm_m`` plume's peak the evidence keeps (:func:`chain_attenuation`,
    or the Gaussian footprint model :func:`plume_attenuation`); one per date when the dates come from sensors
    that see a plume differently (a mixed run): then the dates are combined by :func:`combine_dates` and the
    statistic is in K of the plume's peak (attenuation 1). ``point_err_by_date``: the source's LST uncertainty (K)
    at the points, where it has one (ECOSTRESS ``LST_err``): a segment's dates are also weighted by ``1 / err^2``
    of their median along the segment (:func:`error_weights`). ``point_base_by_date``: the clutter a leak would sit
    on at each point (the tile tasks' :func:`network_neighbourhood_median`); ``median_k``, the base of ``mdl_k``, is
    its median along the segment. Without it, the points' own values (a segment's own median, which its leak
    raises)."""
    per_date = np.stack([segment_max(d, segment, n_segments) for d in point_stat_by_date])
    means = np.stack([segment_mean(d, segment, n_segments) for d in point_stat_by_date])
    base = point_stat_by_date if point_base_by_date is None else point_base_by_date
    # a point counts where it has a value of its own (under cloud it has no clutter to sit on)
    base = np.where(np.isfinite(point_stat_by_date), base, np.nan)
    medians = np.stack([segment_median(d, segment, n_segments) for d in base])
    att = np.broadcast_to(np.asarray(attenuation, dtype=float), (len(per_date),))
    mult = error_weights(None if point_err_by_date is None else
                         np.stack([segment_median(d, segment, n_segments) for d in point_err_by_date]))
    if np.ptp(att) > 0:  # sensors of different detectability
        stat, w = combine_dates(per_date, att, multipliers=mult)
        mean, median = combine_dates(means, att, w, mult)[0], combine_dates(medians, att, w, mult)[0]
        a = 1.0
    elif mult is not None:  # one sensor with its own per-pixel uncertainty
        stat, mean, median = _weighted(per_date, mult), _weighted(means, mult), _weighted(medians, mult)
        a = float(att[0])
    else:
        stat, mean, median, a = nanmean_layers(per_date), nanmean_layers(means), nanmean_layers(medians), float(att[0])
    z, p = network_z(stat)
    ok = np.isfinite(stat)
    # the flag level is the network's own (1 - alpha) quantile: most segments do not leak, so this holds the
    # false-alarm share near alpha whatever the shape of the clutter (the Gaussian z level did not: on the
    # simulator family 6.4 % of leak-free segments exceeded the 1 % Gaussian level under Landsat)
    level = float(np.quantile(stat[ok], 1.0 - alpha)) if ok.sum() >= 2 else float("nan")
    mdl = np.where(ok, np.maximum(level - median, 0.0) / a, np.nan)
    area = 2.0 * np.pi * (plume_fwhm_m / 2.3548) ** 2
    return SegmentStatistic(stat, per_date, z, p, mean, median, np.isfinite(per_date).sum(axis=0).astype(np.int64), mdl,
                            mdl * area, float(level), a)


def network_share_visible(mdl_k: np.ndarray, length_m: np.ndarray, peaks_k=(3.0, 5.0, 10.0)) -> dict[str, float]:
    """Share of the scored network length where a leak of each peak (K) would reach the flag level."""
    ok = np.isfinite(mdl_k)
    total = float(length_m[ok].sum())
    return {f"{k:g}": (float(length_m[ok & (mdl_k <= k)].sum()) / total if total > 0 else float("nan"))
            for k in peaks_k}


__all__ = ["SegmentStatistic", "chain_attenuation", "combine_dates", "error_weights", "network_neighbourhood_median",
           "network_share_visible", "plume_attenuation", "segment_median", "segment_statistic"]
