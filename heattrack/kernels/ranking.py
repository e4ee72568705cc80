"""The segment ranking statistic and each segment's detectability (pure: point values in, per-segment arrays out).

**Statistic** (``detect.method`` residual / baseline): per date, a segment's largest mean excess (K) over a window
of consecutive points along the pipe (the points read :func:`heattrack.kernels.segments.on_pipe_peak`; the window,
:func:`scan_window_points`, is ``segments.window_widths`` x the width at which the sensor sees a 20 m plume: ~230 m
for Landsat, ~30 m for a 10 m raster; the whole segment when shorter), averaged over the dates with data; a robust
z-score (network median and 1.4826 x MAD over all segments with data: most do not leak) and a p-value from the
null's upper tail fitted to the network's bulk (:mod:`heattrack.kernels.null_tail`). Through a ~100 m footprint a
leak warms 100-200 m of pipe while the clutter at single points is largely independent, so the mean over that
stretch carries the leak with less clutter than its largest point (tuned on family members 0-7, docs/measurements.md).

**Detectability** ``mdl_k``: the smallest peak excess (K, at 10 m) of a leak plume of ``plume_fwhm_m`` (20 m) that,
placed on the segment, would lift it to the flag level ``T``: the ``1 - alpha`` quantile of that fitted null
(``segments.mdl_alpha``: the share of leak-free segments flagged, the false-alarm share). The sensor sees the plume
through its footprint, so only a share ``a = s_l^2 / (s_l^2 + s_s^2)`` of its peak reaches the evidence (2-D
Gaussians of sigmas ``s_l`` plume, ``s_s`` sensor: 0.05 for Landsat's ~36 m, 0.9 for a 10 m airborne raster;
:func:`chain_attenuation` follows the data path) and the window keeps the mean of the plume's profile along it,
expected over where the leak sits on the segment (:func:`segment_shares`: its ends cut the window). A leak adds
``a x peak`` to the evidence where it sits; the evidence a leak would sit on is the median point value of the network
around the segment (not of the segment itself, which its own leak raises), so ``mdl_k = max(0, T - median) / a``: 0
where that clutter already reaches ``T``. ``mdl_k_m2`` is the plume's excess-heat integral at that peak (peak x 2 pi
s_l^2, K m^2).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from heattrack.kernels.lst import nanmean_layers
from heattrack.kernels.null_tail import TailNull, fit_tail_null
from heattrack.kernels.segments import network_z, segment_mean, segment_window_max


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


def box_sigma(width: float) -> float:
    """The Gaussian sigma of a square footprint ``width`` wide (the same variance: width / sqrt 12), in the unit of
    ``width``: heattrack's ``psf_m`` of a thermal raster is such a width."""
    return width / np.sqrt(12.0)


def plume_attenuation(sensor_sigma_m: float, plume_fwhm_m: float = 20.0) -> float:
    """Share of a Gaussian plume's peak that survives a Gaussian sensor footprint (2-D)."""
    s_l2 = (plume_fwhm_m / 2.3548) ** 2
    return float(s_l2 / (s_l2 + sensor_sigma_m**2))


def chain_profile(psf_sigma_px: float, factor: int, plume_fwhm_px: float, buffer_px: int = 2, window_px: int = 0,
                  half_px: int = 0, nearest: bool = False) -> np.ndarray:
    """See :func:`_chain_profile` (computed once per process for each set of arguments: the plan and the reduction
    ask for the same chains; ~20 ms each)."""
    return _chain_profile(float(psf_sigma_px), int(factor), float(plume_fwhm_px), int(buffer_px), window_px,
                          int(half_px), bool(nearest)).copy()


@functools.lru_cache(maxsize=64)
def _chain_profile(psf_sigma_px: float, factor: int, plume_fwhm_px: float, buffer_px: int, window_px: float,
                   half_px: int, nearest: bool = False) -> np.ndarray:
    """The ranking evidence a Gaussian plume of unit peak (FWHM ``plume_fwhm_px`` fine pixels) leaves along a straight
    pipe through its centre: ``2 half_px + 1`` values, the plume's centre in the middle. The same path as the data:
    the sensor footprint (Gaussian ``psf_sigma_px``), the block mean to the thermal grid (``factor``; 1 = none) and
    bilinear interpolation back (``nearest``: each block's value repeated instead, a product's own pixels read as
    they are), the local median in a ``window_px`` window removed (0: none; a plume as wide as half
    the window lifts its own background), the maximum within ``buffer_px``. Averaged over plume positions inside a
    block (a plume at a block corner is split between four blocks)."""
    from scipy import ndimage

    from heattrack.kernels.lst import block_mean, upsample_bilinear

    # a window many plume widths across has a median of ~0 around the plume (its tails are below 1e-9 of the peak
    # there): cap it, so a wide window does not cost a 2-D median filter hundreds of pixels across
    window_px = min(window_px, (int(8 * (plume_fwhm_px + 3 * psf_sigma_px + 2 * factor)) | 1)) if window_px else 0
    pad = int(np.ceil(window_px / (2 * factor))) + 1 if window_px else 0  # blocks around the plume for the median
    pad = max(pad, int(np.ceil((half_px + buffer_px) / factor)))
    n = factor * (9 + 2 * pad)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    s = plume_fwhm_px / 2.3548
    out = []
    for dy, dx in ((0.5, 0.5), (0.25, 0.25), (0.5, 0.0), (0.0, 0.0)):
        cy, cx = factor * (4 + pad + dy), factor * (4 + pad + dx)
        plume = np.exp(-((yy + 0.5 - cy) ** 2 + (xx + 0.5 - cx) ** 2) / (2 * s * s)).astype(np.float32)
        seen = ndimage.gaussian_filter(plume, psf_sigma_px, mode="constant") if psf_sigma_px > 0 else plume
        if factor > 1 and nearest:
            seen = np.repeat(np.repeat(block_mean(seen, factor), factor, axis=0), factor, axis=1)
        elif factor > 1:
            seen = upsample_bilinear(block_mean(seen, factor), factor)
        r = int(cy)
        if window_px:  # the median only where the rows the maximum reads need it: those rows' windows lie inside
            h = (int(window_px) | 1) // 2  # the cut, so they are the same as on the whole array
            lo, hi = max(0, r - buffer_px - h), min(n, r + buffer_px + h + 1)
            med = ndimage.median_filter(seen[lo:hi], size=int(window_px) | 1, mode="constant")
            keep = slice(max(0, r - buffer_px), min(n, r + buffer_px + 1))
            seen = seen[keep] - med[keep.start - lo: keep.stop - lo]
            r -= keep.start
        row = ndimage.maximum_filter(seen, 2 * buffer_px + 1)[r]
        out.append(row[int(cx) - half_px: int(cx) + half_px + 1].astype(float))
    return np.mean(out, axis=0)


def window_shares(profile: np.ndarray, lengths_px) -> np.ndarray:
    """For each window length (pixels along the pipe), the largest mean of ``profile`` (:func:`chain_profile`) over
    that many consecutive values: the share of the plume's peak that
    :func:`heattrack.kernels.segments.segment_window_max` keeps (length 1: the profile's peak)."""
    csum = np.concatenate([[0.0], np.cumsum(profile)])
    out = []
    for n in np.atleast_1d(lengths_px):
        n = int(min(max(n, 1), profile.size))
        out.append(float(np.max(csum[n:] - csum[:-n]) / n))
    return np.asarray(out)


def chain_attenuation(psf_sigma_px: float, factor: int, plume_fwhm_px: float, buffer_px: int = 2,
                      window_px: int = 0, along_px: int = 1, nearest: bool = False) -> float:
    """Share of a Gaussian plume's peak that the ranking keeps (:func:`chain_profile`), at the plume's centre
    (``along_px`` 1) or as the mean over ``along_px`` pixels along the pipe (the segment statistic's window)."""
    prof = chain_profile(psf_sigma_px, factor, plume_fwhm_px, buffer_px, window_px, half_px=max(along_px, 1) + 4,
                         nearest=nearest)
    return float(window_shares(prof, along_px)[0])


def scan_window_points(peak_attenuation: float, plume_fwhm_m: float, widths: float, spacing_m: float) -> int:
    """The segment statistic's window along the pipe, in sample points: ``widths`` x the width at which the chain
    sees a ``plume_fwhm_m`` plume. A Gaussian plume seen through a Gaussian path keeps the share
    ``a = s_plume^2 / s_seen^2`` of its peak, so it is seen ``plume_fwhm_m / sqrt(a)`` wide (Landsat: ~150 m; a 10 m
    raster: ~22 m). At least one point (``widths`` 0: the largest single point)."""
    if widths <= 0 or not np.isfinite(peak_attenuation) or peak_attenuation <= 0:
        return 1
    return max(1, int(round(widths * plume_fwhm_m / np.sqrt(peak_attenuation) / spacing_m)))


def segment_shares(chain: dict, plume_fwhm_px: float, window_pts: int, spacing_px: float, n_points: np.ndarray,
                   exact_up_to: int = 120) -> tuple[np.ndarray, float]:
    """The share of a plume's peak the segment statistic keeps on segments of ``n_points`` sample points
    (``spacing_px`` apart), **expected over the plume's position along the segment** (uniform: where a leak sits is
    unknown): the statistic's best window must lie inside the segment, so a plume near an end, or a segment shorter
    than the plume's trace, keeps less than a centred window. Returns the per-segment shares and the share of a
    window centred on the plume far from the ends (what the injection test measures, :func:`chain_attenuation` with
    ``along_px``). Exact up to ``exact_up_to`` points; beyond, the ends' loss shrinks as ``1 / n``."""
    w = max(1, int(window_pts))
    half = int(np.ceil((w + 4) * spacing_px)) + 4
    prof = chain_profile(plume_fwhm_px=plume_fwhm_px, half_px=half, **chain)
    mid = prof.size // 2
    k = np.arange(-half, half + 1)
    at = np.round(k * spacing_px).astype(int) + mid
    pts = np.where((at >= 0) & (at < prof.size), prof[np.clip(at, 0, prof.size - 1)], 0.0)
    pts = pts[np.abs(k * spacing_px) <= half]  # the profile at the points around the plume, centre in the middle
    c = pts.size // 2
    centred = float(window_shares(pts, w)[0])
    cap = min(int(exact_up_to), max(int(np.max(n_points, initial=1)), 1))
    exact = np.zeros(cap + 1)
    for n in range(1, cap + 1):
        x = np.arange(n)
        j = np.arange(n)[None, :] - x[:, None] + c  # point j of the segment, plume centred at point x
        v = np.where((j >= 0) & (j < pts.size), pts[np.clip(j, 0, pts.size - 1)], 0.0)
        we = min(w, n)
        cs = np.concatenate([np.zeros((n, 1)), np.cumsum(v, axis=1)], axis=1)
        exact[n] = float(np.mean(np.max(cs[:, we:] - cs[:, :-we], axis=1) / we))
    n = np.maximum(np.asarray(n_points, dtype=int), 1)
    far = centred - (centred - exact[cap]) * cap / np.maximum(n, cap)
    return np.where(n <= cap, exact[np.minimum(n, cap)], far), centred


@dataclass(frozen=True)
class SegmentStatistic:
    """Per segment: ``stat_k`` (K, the mean over dates of ``per_date_k``), network ``z`` and ``p_value``,
    ``mean_k``/``median_k`` of its points, dates with data, detectability ``mdl_k`` (K) and ``mdl_k_m2`` (K m^2);
    and the flag level."""

    stat_k: np.ndarray
    per_date_k: np.ndarray  # (dates, segments): each date's largest window mean of its points
    z: np.ndarray
    p_value: np.ndarray
    mean_k: np.ndarray
    median_k: np.ndarray
    n_dates: np.ndarray
    mdl_k: np.ndarray
    mdl_k_m2: np.ndarray
    flag_level_k: float
    attenuation: float
    #: ``stat_k`` is relative to the clutter of the network around each segment (``relative_to_base``): a leak-free
    #: segment reads ~0, so ``mdl_k`` is the flag level over the attenuation (here and for a pipe anywhere)
    relative_to_base: bool = False
    #: the fitted null the flag level and p-values come from (:mod:`heattrack.kernels.null_tail`)
    null: TailNull | None = None

    @property
    def flagged(self) -> np.ndarray:
        """Per segment: a statistic at or above the flag level (p <= alpha); False without data."""
        return np.nan_to_num(self.stat_k, nan=-np.inf) >= self.flag_level_k

    def null_summary(self, alpha: float) -> dict:
        """What run.json states about the flags: the null's parameters, the segments at or above the flag level
        and how many of them would be leak-free at the stated false-alarm share (``alpha`` x scored segments)."""
        n = self.null
        return {"fitted": bool(n is not None and n.fitted),
                **({"median_k": round(n.median, 4), "scale_k": round(n.scale, 4), "shape": round(n.shape, 3)}
                   if n is not None and n.fitted else {}),
                "flagged": int(self.flagged.sum()),
                "expected_false_flags": round(alpha * int(np.isfinite(self.stat_k).sum()), 1)}


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
    attenuation = np.asarray(attenuation, dtype=float)
    scaled = per_date / (attenuation[:, None] if attenuation.ndim == 1 else attenuation)
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
                      point_base_by_date: np.ndarray | None = None, window_pts=1,
                      short_gain: np.ndarray | None = None, relative_to_base: bool = False) -> SegmentStatistic:
    """The ranking statistic and detectability of every segment from its points' values ``(dates, points)``.
    ``attenuation``: the share of a ``plume_fwhm_m`` plume's peak the evidence keeps (:func:`chain_attenuation`,
    or the Gaussian footprint model :func:`plume_attenuation`); one per date when the dates come from sensors
    that see a plume differently (a mixed run): then the dates are combined by :func:`combine_dates` and the
    statistic is in K of the plume's peak (attenuation 1). ``point_err_by_date``: the source's LST uncertainty (K)
    at the points, where it has one (ECOSTRESS ``LST_err``): a segment's dates are also weighted by ``1 / err^2``
    of their median along the segment (:func:`error_weights`). ``point_base_by_date``: the clutter a leak would sit
    on at each point (the tile tasks' :func:`network_neighbourhood_median`); ``median_k``, the base of ``mdl_k``, is
    its median along the segment. Without it, the points' own values (a segment's own median, which its leak
    raises). ``window_pts`` (one, or one per date): a date's statistic is the segment's largest mean over that many
    consecutive points (:func:`heattrack.kernels.segments.segment_window_max`; 1: its largest point), and
    ``attenuation`` is then the share of the peak a window centred on the plume keeps; ``short_gain``
    ``(dates or 1, segments)``: the factor on it for each segment (:func:`segment_shares` over that share: a segment
    shorter than the plume's trace keeps more of the peak, one whose ends cut the window less).
    ``relative_to_base``: the statistic is taken relative to that base (the segment's largest window mean minus the
    median clutter of the network around it): heat that lies along the whole network there — hot roads over the
    pipes, seen sharply by a fine thermal raster — cancels, a leak's local peak does not; ``mdl_k`` is then the flag
    level over the attenuation."""
    windows = np.broadcast_to(np.asarray(window_pts, dtype=np.int64), (len(point_stat_by_date),))
    per_date = np.stack([segment_window_max(d, segment, n_segments, int(w))
                         for d, w in zip(point_stat_by_date, windows)])
    means = np.stack([segment_mean(d, segment, n_segments) for d in point_stat_by_date])
    base = point_stat_by_date if point_base_by_date is None else point_base_by_date
    # a point counts where it has a value of its own (under cloud it has no clutter to sit on)
    base = np.where(np.isfinite(point_stat_by_date), base, np.nan)
    medians = np.stack([segment_median(d, segment, n_segments) for d in base])
    att = np.broadcast_to(np.asarray(attenuation, dtype=float), (len(per_date),))
    att_seg = att[:, None] * (1.0 if short_gain is None else np.asarray(short_gain, dtype=float))
    mult = error_weights(None if point_err_by_date is None else
                         np.stack([segment_median(d, segment, n_segments) for d in point_err_by_date]))
    if np.ptp(att) > 0:  # sensors of different detectability
        stat, w = combine_dates(per_date, att_seg, multipliers=mult)
        mean, median = combine_dates(means, att_seg, w, mult)[0], combine_dates(medians, att_seg, w, mult)[0]
        a = 1.0
    elif mult is not None:  # one sensor with its own per-pixel uncertainty
        stat, mean, median = _weighted(per_date, mult), _weighted(means, mult), _weighted(medians, mult)
        a = np.broadcast_to(att_seg[0], (n_segments,))
    else:
        stat, mean, median = nanmean_layers(per_date), nanmean_layers(means), nanmean_layers(medians)
        a = np.broadcast_to(att_seg[0], (n_segments,))
    if relative_to_base:
        stat = stat - median
    z = network_z(stat)[0]
    ok = np.isfinite(stat)
    # the flag level and p-values from the null's upper tail fitted to the network's bulk, below the leaks
    # (kernels.null_tail: the network's own quantile flags far fewer leak-free segments than alpha, a Gaussian
    # of the median and MAD far more)
    null = fit_tail_null(stat)
    level, p = null.level(alpha), null.p_value(stat)
    mdl = np.where(ok, np.maximum(level - (0.0 if relative_to_base else median), 0.0) / a, np.nan)
    area = 2.0 * np.pi * (plume_fwhm_m / 2.3548) ** 2
    return SegmentStatistic(stat, per_date, z, p, mean, median, np.isfinite(per_date).sum(axis=0).astype(np.int64), mdl,
                            mdl * area, float(level), 1.0 if np.ptp(att) > 0 else float(att[0]), relative_to_base,
                            null)


def network_share_visible(mdl_k: np.ndarray, length_m: np.ndarray, peaks_k=(3.0, 5.0, 10.0)) -> dict[str, float]:
    """Share of the scored network length where a leak of each peak (K) would reach the flag level."""
    ok = np.isfinite(mdl_k)
    total = float(length_m[ok].sum())
    return {f"{k:g}": (float(length_m[ok & (mdl_k <= k)].sum()) / total if total > 0 else float("nan"))
            for k in peaks_k}


__all__ = ["SegmentStatistic", "box_sigma", "chain_attenuation", "chain_profile", "scan_window_points",
           "segment_shares", "window_shares", "combine_dates", "error_weights", "network_neighbourhood_median",
           "network_share_visible", "plume_attenuation", "segment_median", "segment_statistic"]
