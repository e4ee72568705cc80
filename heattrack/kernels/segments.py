"""From 10 m pixel evidence to pipe segments and hotspot blobs (no IO, no Dask).

Segments are scored through *sample points*: each segment is cut into points every ``spacing_m`` metres
(in the grid CRS); each point reads the neighbourhood maximum of the pixel evidence within the pipe buffer;
a segment's risk is the mean of its ``top_k`` highest points. Points, not segment-to-pixel pairs, make the
cost linear in network length and let a segment that crosses tile edges be scored once from every tile
it touches (each point belongs to exactly one tile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from scipy import ndimage

from heattrack.kernels.jit import compiled
from heattrack.kernels.lst import COMPILED_MIN_PX


@dataclass(frozen=True)
class SegmentPoints:
    """Sample points along pipe segments: coordinates in the grid CRS (m) and the segment's row index."""

    x: np.ndarray
    y: np.ndarray
    segment: np.ndarray

    def __len__(self) -> int:
        return int(self.x.size)


def sample_segment_points(lines: np.ndarray, spacing_m: float) -> SegmentPoints:
    """Points every ``spacing_m`` along each line (at least one per line, centred in its interval)."""
    lines = np.asarray(lines, dtype=object)
    lengths = shapely.length(lines)
    n = np.maximum(1, np.ceil(lengths / spacing_m).astype(np.int64))
    seg = np.repeat(np.arange(lines.size), n)
    starts = np.repeat(np.cumsum(n) - n, n)
    k = np.arange(seg.size) - starts
    dist = (k + 0.5) * (lengths[seg] / n[seg])
    xy = np.empty((seg.size, 2))
    simple = (shapely.get_type_id(lines) == 1) & ~shapely.is_empty(lines)  # non-empty LineStrings
    fast = simple[seg]
    if fast.any():
        xy[fast] = _interpolate_linestrings(lines[simple], np.cumsum(simple)[seg[fast]] - 1, dist[fast])
    if not fast.all():  # MultiLineStrings (parts that did not merge) and the rest: GEOS walks their parts in order
        xy[~fast] = shapely.get_coordinates(shapely.line_interpolate_point(lines[seg[~fast]], dist[~fast]))
    return SegmentPoints(xy[:, 0].copy(), xy[:, 1].copy(), seg)


def _interpolate_linestrings(lines: np.ndarray, which: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """``(n, 2)`` coordinates of the points ``dist`` along ``lines[which]`` (non-empty LineStrings): GEOS's
    ``line_interpolate_point`` to the bit, vectorised over all lines and points instead of a GEOS call per point (5x
    faster at 0.5 M points: the plan's share for a 5,000 km network; NumPy only, so the driver loads no numba). GEOS's
    walk is followed operation for operation: segment lengths ``sqrt(dx*dx + dy*dy)``, the length run up along each
    line from 0 one segment at a time, the first segment whose running end exceeds the distance, ``(p1 - p0) * frac +
    p0`` (a last-bit difference moved a point across a pixel edge and a held-out member's ROC-AUC by 1.5e-4)."""
    xy, owner = shapely.get_coordinates(lines, return_index=True)
    first = np.searchsorted(owner, np.arange(lines.size))  # each line's first vertex
    n_seg = np.diff(np.r_[first, owner.size]) - 1  # segments per line
    seg_first = np.r_[0, np.cumsum(n_seg)[:-1]]  # each line's first segment in the flat segment arrays
    keep = np.ones(owner.size, bool)
    keep[np.r_[first[1:], owner.size] - 1] = False  # a segment starts at every vertex but each line's last
    p0 = xy[keep]
    p1 = xy[np.flatnonzero(keep) + 1]
    d = p1 - p0
    seg_len = np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])
    # the running length at each segment's end, summed in order along each line (GEOS's loop): one step per segment
    # index, over the lines that have that many segments
    run_end = np.empty(seg_len.size)
    total = np.zeros(lines.size)
    active = np.flatnonzero(n_seg > 0)
    v = 0
    while active.size:
        total[active] += seg_len[seg_first[active] + v]
        run_end[seg_first[active] + v] = total[active]
        v += 1
        active = active[n_seg[active] > v]
    # per point: the number of its line's segments whose running end is <= the distance (merged sort of both)
    seg_line = np.repeat(np.arange(lines.size), n_seg)
    keys_line = np.r_[seg_line, which]
    keys_val = np.r_[run_end, dist]
    kind = np.r_[np.zeros(seg_len.size, np.int8), np.ones(which.size, np.int8)]  # at equal values segments first
    order = np.lexsort((kind, keys_val, keys_line))
    is_seg = kind[order] == 0
    segs_before = np.cumsum(is_seg) - is_seg  # segments before each entry, all lines
    pos = np.empty(order.size, np.int64)
    pos[order] = segs_before
    k = pos[seg_len.size:] - seg_first[which]  # index of the point's segment within its line
    past = k >= n_seg[which]  # at or beyond the end: GEOS returns the last vertex
    k = np.minimum(k, n_seg[which] - 1)
    g = seg_first[which] + k
    before = np.where(k > 0, run_end[np.maximum(g - 1, 0)], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = (dist - before) / seg_len[g]
    out = d[g] * frac[:, None] + p0[g]
    out = np.where((frac <= 0.0)[:, None], p0[g], out)
    out = np.where((frac >= 1.0)[:, None] | past[:, None], p1[g], out)
    return np.where((dist <= 0.0)[:, None], p0[seg_first[which]], out)


def neighbourhood_max(values: np.ndarray, radius_px: int) -> np.ndarray:
    """Maximum over a ``(2r+1)`` square window, ignoring NaN (NaN only where the whole window is NaN)."""
    if radius_px <= 0:
        return values
    filled = np.where(np.isfinite(values), values, -np.inf)
    kernel = compiled(_max_filter_rows) if filled.size >= COMPILED_MIN_PX else None
    if kernel is not None:  # float32 first: the cast keeps the order, so the maximum is the same
        out = np.empty(filled.shape, dtype=np.float32)
        kernel(filled.astype(np.float32), radius_px, out)
    else:
        out = ndimage.maximum_filter(filled, size=2 * radius_px + 1, mode="constant", cval=-np.inf).astype(np.float32)
    out[~np.isfinite(out)] = np.nan
    return out


def _max_filter_rows(a, r, out):
    """The compiled :func:`neighbourhood_max` (SciPy's ``maximum_filter`` with ``-inf`` beyond the edges, the same
    values: a maximum is exact): van Herk / Gil-Werman, three comparisons per pixel whatever the window — along each
    row, then down the columns a whole row at a time (a padded tile of 1.2 Mpx: 6 instead of 23-27 ms)."""
    h, w = a.shape
    k = 2 * r + 1
    ninf = np.float32(-np.inf)
    n_pad = ((w + 2 * r + k - 1) // k) * k  # the row padded by r on both sides, in whole windows
    p = np.full(n_pad, ninf, dtype=np.float32)
    g = np.empty(n_pad, dtype=np.float32)  # running maximum from the start of each window-long block
    b = np.empty(n_pad, dtype=np.float32)  # ... and from its end
    rows = np.empty((h, w), dtype=np.float32)
    for y in range(h):
        p[r: r + w] = a[y]
        for s in range(0, n_pad, k):
            m = ninf
            for i in range(s, s + k):
                m = max(m, p[i])
                g[i] = m
            m = ninf
            for i in range(s + k - 1, s - 1, -1):
                m = max(m, p[i])
                b[i] = m
        for x in range(w):
            rows[y, x] = max(b[x], g[x + k - 1])
    m_pad = ((h + 2 * r + k - 1) // k) * k
    gc = np.empty((m_pad, w), dtype=np.float32)
    bc = np.empty((m_pad, w), dtype=np.float32)
    run = np.empty(w, dtype=np.float32)
    for s in range(0, m_pad, k):
        for grid, order in ((gc, range(s, s + k)), (bc, range(s + k - 1, s - 1, -1))):
            run[:] = ninf
            for i in order:
                if r <= i < h + r:
                    for x in range(w):
                        run[x] = max(run[x], rows[i - r, x])
                grid[i] = run
    for y in range(h):
        for x in range(w):
            out[y, x] = max(bc[y, x], gc[y + k - 1, x])


def along_pipe_evidence(risk: np.ndarray, buffer_px: int, offpipe_radius_px: int) -> np.ndarray:
    """Pixel evidence a pipe point may claim from a 0-1 risk: :func:`on_pipe_peak` of the risk (the maximum within
    ``buffer_px``, scaled by ``min(1, m_b / m_R)`` when a higher risk peaks off the pipe within
    ``offpipe_radius_px``; ``offpipe_radius_px <= buffer_px`` disables the penalty)."""
    return on_pipe_peak(risk, buffer_px, offpipe_radius_px)


def on_pipe_peak(evidence: np.ndarray, buffer_px: int, radius_px: int) -> np.ndarray:
    """The ranking statistic's pixel field along pipes: the maximum excess (K) within ``buffer_px``, scaled by
    ``min(1, m_b / m_R)`` where a higher excess peaks off the pipe within ``radius_px`` (a hot spot centred
    elsewhere whose blurred flank reaches the pipe). Continuous and unclipped: it ranks without ties;
    non-positive values are kept as they are."""
    m_b = neighbourhood_max(evidence, buffer_px)
    if radius_px <= buffer_px:
        return m_b
    m_r = neighbourhood_max(evidence, radius_px)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(m_r > 1e-6, np.clip(m_b / m_r, 0.0, 1.0), 1.0)
    return np.where(m_b > 0, m_b * ratio, m_b).astype(np.float32)


def segment_max(point_values: np.ndarray, segment: np.ndarray, n_segments: int) -> np.ndarray:
    """Largest finite point value per segment (NaN for a segment without any)."""
    out = np.full(n_segments, -np.inf)
    ok = np.isfinite(point_values)
    np.maximum.at(out, segment[ok], point_values[ok])
    out[~np.isfinite(out)] = np.nan
    return out


def segment_window_max(point_values: np.ndarray, segment: np.ndarray, n_segments: int, window: int) -> np.ndarray:
    """Per segment, the largest mean of its finite point values over ``window`` consecutive points that lie inside
    the segment (the whole segment when it has fewer points): a scan along the pipe at the scale a leak warms it.
    ``window`` 1 is :func:`segment_max`. The points of a segment must be consecutive and in order along it (as
    :func:`sample_segment_points` makes them). NaN for a segment without a finite value. Vectorised, O(points)."""
    if window <= 1 or point_values.size == 0:
        return segment_max(point_values, segment, n_segments)
    ok = np.isfinite(point_values)
    csum = np.concatenate([[0.0], np.cumsum(np.where(ok, point_values, 0.0))])
    ccount = np.concatenate([[0], np.cumsum(ok)])
    start = np.flatnonzero(np.concatenate([[True], segment[1:] != segment[:-1]]))
    stop = np.concatenate([start[1:], [segment.size]])
    first, last = np.repeat(start, stop - start), np.repeat(stop, stop - start)
    lo = np.arange(segment.size)
    hi = lo + np.minimum(window, last - first)  # each point starts a window; the segment's length caps it
    inside = hi <= last
    hi = np.minimum(hi, last)
    count = ccount[hi] - ccount[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(inside & (count > 0), (csum[hi] - csum[lo]) / count, np.nan)
    return segment_max(means, segment, n_segments)


def segment_argmax(point_values: np.ndarray, segment: np.ndarray, n_segments: int) -> np.ndarray:
    """Index (into the points) of the largest finite value per segment; -1 for a segment without any.
    Ties go to the first point along the segment. O(n log n) in the number of points."""
    out = np.full(n_segments, -1, dtype=np.int64)
    ok = np.flatnonzero(np.isfinite(point_values))
    if ok.size == 0:
        return out
    order = ok[np.lexsort((ok, -point_values[ok], segment[ok]))]
    seg = segment[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = seg[1:] != seg[:-1]
    out[seg[first]] = order[first]
    return out


def segment_mean(point_values: np.ndarray, segment: np.ndarray, n_segments: int) -> np.ndarray:
    """Mean of the finite point values per segment (NaN for a segment without any)."""
    ok = np.isfinite(point_values)
    total = np.bincount(segment[ok], weights=point_values[ok], minlength=n_segments)
    count = np.bincount(segment[ok], minlength=n_segments)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _network_null(stat: np.ndarray) -> tuple[float, float] | None:
    """The network-wide null of a statistic: median and 1.4826 x MAD (at least 1e-6) over its finite values (most
    segments do not leak); None with fewer than two."""
    v = stat[np.isfinite(stat)]
    if v.size < 2:
        return None
    med = np.median(v)
    return med, max(1.4826 * np.median(np.abs(v - med)), 1e-6)


def network_z(stat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z-score of each segment's statistic against the network-wide null (:func:`_network_null`) and its one-sided
    Gaussian p-value. NaN stays NaN."""
    from scipy.special import ndtr

    ok = np.isfinite(stat)
    z = np.full(stat.shape, np.nan)
    if (null := _network_null(stat)) is not None:
        z[ok] = (stat[ok] - null[0]) / null[1]
    return z, np.where(ok, ndtr(-z), np.nan)


def network_level(stat: np.ndarray, z: float) -> float:
    """The statistic's value at network z ``z`` (the inverse of :func:`network_z`): e.g. the warming (K) a segment
    needed to be called new; NaN with fewer than two values."""
    null = _network_null(np.asarray(stat, dtype=float))
    return float("nan") if null is None else float(null[0] + float(z) * null[1])


def strongest_nearby(values: np.ndarray, lines: np.ndarray, candidates: np.ndarray, radius_m: float,
                     tiebreak: np.ndarray | None = None, ratio: float = 1.0, tie_within: float = 0.0) -> np.ndarray:
    """Among the ``candidates`` (bool per segment), keep only those whose ``values`` are the largest of all
    candidates within ``radius_m`` of them (one call per hot place: the ~100 m thermal footprint spreads one
    leak onto the segments next to it). Equal values (segments meeting at the same hot crossing) are decided
    by ``tiebreak`` (e.g. the segment's mean statistic: the segment whose body is warm, not the one that only
    touches the hot place), then by order; values within ``tie_within`` of each other count as equal (a
    difference below the noise cannot rank them). ``ratio`` < 1: a candidate is dropped only when a nearby one is more
    than ``1 / ratio`` times stronger (positive values: the weaker echo of a strong change, not a second change
    of its own). Returns the kept mask."""
    idx = np.flatnonzero(candidates)
    keep = candidates.copy()
    if idx.size < 2:
        return keep
    tree = shapely.STRtree(np.asarray(lines, dtype=object)[idx])
    src, dst = tree.query(np.asarray(lines, dtype=object)[idx], predicate="dwithin", distance=radius_m)
    v = np.nan_to_num(np.asarray(values, dtype=float)[idx], nan=-np.inf)
    t = np.zeros(idx.size) if tiebreak is None else np.nan_to_num(np.asarray(tiebreak, dtype=float)[idx],
                                                                   nan=-np.inf)
    equal = np.abs(v[dst] - v[src]) <= tie_within
    better = ((v[dst] > v[src]) & ~equal) | (equal & ((t[dst] > t[src]) | ((t[dst] == t[src]) & (dst < src))))
    if ratio < 1.0:
        better &= v[src] < ratio * v[dst]
    other_wins = (src != dst) & better
    keep[idx[np.unique(src[other_wins])]] = False
    return keep


def points_to_pixels(transform: Affine, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column (int) of the pixels containing points ``(x, y)`` for a north-up grid ``transform``."""
    col, row = ~transform @ (np.asarray(x), np.asarray(y))
    return np.floor(row).astype(np.int64), np.floor(col).astype(np.int64)


def sample_at_points(values: np.ndarray, transform: Affine, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Values of a raster at points (NaN for points outside it)."""
    row, col = points_to_pixels(transform, x, y)
    inside = (row >= 0) & (row < values.shape[0]) & (col >= 0) & (col < values.shape[1])
    out = np.full(row.shape, np.nan, dtype=np.float32)
    out[inside] = values[row[inside], col[inside]]
    return out


def window_max_at_points(values: np.ndarray, transform: Affine, x: np.ndarray, y: np.ndarray, radius_px: int
                         ) -> np.ndarray:
    """``sample_at_points(neighbourhood_max(values, radius_px), ...)`` without filtering the whole raster: the
    largest finite value in the ``(2r+1)`` square window around each point's pixel (cut at the raster's edges),
    NaN where the window holds none or the point lies outside. Costs (2r+1)^2 reads per point instead of two
    passes over every pixel: the cheaper path for the pipe buffer's few pixels."""
    if radius_px <= 0:
        return sample_at_points(values, transform, x, y)
    if (2 * radius_px + 1) ** 2 * np.size(x) > 4 * values.size:  # wide windows, dense points: the filter is cheaper
        return sample_at_points(neighbourhood_max(values, radius_px), transform, x, y)
    row, col = points_to_pixels(transform, x, y)
    h, w = values.shape
    inside = (row >= 0) & (row < h) & (col >= 0) & (col < w)
    r, c = row[inside], col[inside]
    best = np.full(r.size, -np.inf, dtype=np.float32)
    for dr in range(-radius_px, radius_px + 1):
        rr = r + dr
        r_ok = (rr >= 0) & (rr < h)
        rr = np.clip(rr, 0, h - 1)
        for dc in range(-radius_px, radius_px + 1):
            cc = c + dc
            v = values[rr, np.clip(cc, 0, w - 1)]
            ok = r_ok & (cc >= 0) & (cc < w) & np.isfinite(v)
            np.maximum(best, np.where(ok, v, -np.inf).astype(np.float32), out=best)
    out = np.full(row.shape, np.nan, dtype=np.float32)
    out[inside] = np.where(np.isfinite(best), best, np.nan)
    return out


def along_pipe_evidence_at_points(risk: np.ndarray, transform: Affine, x: np.ndarray, y: np.ndarray, buffer_px: int,
                                  offpipe_radius_px: int) -> np.ndarray:
    """:func:`along_pipe_evidence` read at points: the window maxima read directly where there is no off-pipe
    discount (``offpipe_radius_px <= buffer_px``, the default), else the discounted field sampled."""
    if offpipe_radius_px <= buffer_px:
        return window_max_at_points(risk, transform, x, y, buffer_px)
    return sample_at_points(along_pipe_evidence(risk, buffer_px, offpipe_radius_px), transform, x, y)


@dataclass(frozen=True)
class SegmentScores:
    """Per-segment results, arrays indexed by segment row: risk 0-1 (NaN = no data), ΔT K, clear points."""

    risk: np.ndarray
    delta_t_k: np.ndarray
    n_clear_px: np.ndarray


def score_segments(
    point_risk: np.ndarray,
    point_delta_t: np.ndarray,
    segment: np.ndarray,
    n_segments: int,
    top_k: int = 3,
) -> SegmentScores:
    """Mean of the ``top_k`` highest point risks per segment; ΔT is the largest point ΔT; NaN points skipped."""
    ok = np.isfinite(point_risk)
    seg = segment[ok]
    risk = point_risk[ok]
    order = np.lexsort((-risk, seg))
    seg_sorted = seg[order]
    first = np.searchsorted(seg_sorted, seg_sorted, side="left")
    rank_in_segment = np.arange(seg_sorted.size) - first
    top = rank_in_segment < top_k
    total = np.bincount(seg_sorted[top], weights=risk[order][top], minlength=n_segments)
    count = np.bincount(seg_sorted[top], minlength=n_segments)
    n_clear = np.bincount(seg, minlength=n_segments)
    with np.errstate(invalid="ignore", divide="ignore"):
        seg_risk = np.where(count > 0, total / count, np.nan)
    dt = np.full(n_segments, -np.inf)
    okd = ok & np.isfinite(point_delta_t)
    np.maximum.at(dt, segment[okd], point_delta_t[okd])
    dt[~np.isfinite(dt)] = np.nan
    return SegmentScores(seg_risk.astype(np.float64), dt, n_clear.astype(np.int64))


@dataclass(frozen=True)
class Blobs:
    """Connected hot blobs: peak ΔT (K), area (pixels) and centroid (fractional row, col) per blob."""

    peak_delta_t_k: np.ndarray
    peak_score: np.ndarray
    area_px: np.ndarray
    row: np.ndarray
    col: np.ndarray


def label_hotspots(score: np.ndarray, anomaly_k: np.ndarray, threshold: float, min_area_px: int = 2) -> Blobs:
    """8-connected blobs of pixels with ``score >= threshold``; blobs smaller than ``min_area_px`` dropped."""
    hot = np.nan_to_num(score, nan=0.0) >= threshold
    labels, n = ndimage.label(hot, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        empty = np.zeros(0)
        return Blobs(empty, empty, empty.astype(np.int64), empty, empty)
    # per-blob statistics over the hot pixels only (bincount / maximum.at: linear in hot pixels)
    rows, cols = np.nonzero(hot)
    lab = labels[rows, cols] - 1
    area = np.bincount(lab, minlength=n).astype(np.int64)
    peak = np.full(n, -np.inf)
    np.maximum.at(peak, lab, np.nan_to_num(anomaly_k[rows, cols], nan=-np.inf))
    peak_score = np.zeros(n)
    np.maximum.at(peak_score, lab, score[rows, cols])
    com = np.stack([np.bincount(lab, weights=rows, minlength=n) / area,
                    np.bincount(lab, weights=cols, minlength=n) / area], axis=1)
    keep = area >= min_area_px
    return Blobs(
        np.asarray(peak)[keep], np.asarray(peak_score)[keep], area[keep], com[keep, 0], com[keep, 1]
    )
