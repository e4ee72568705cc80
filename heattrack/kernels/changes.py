"""Season-over-season change classes (pure: arrays in, arrays out).

**Segments ranked by a statistic, both seasons with point values** (``point_statistic.npz``) use
:func:`change_class_warming`. A segment is *flagged* in a season when the one-sided Gaussian p-value of its robust z
survives Benjamini-Hochberg at ``q`` (not the run's fitted-null ``p_value``: flags from it left far fewer repaired
leaks ``resolved`` on the tuning members, docs/measurements.md). Its *warming* is the largest rise of any of its points
between the seasons (:func:`segment_warming`: the difference of the same points cancels the clutter that stays,
roofs and roads, which a segment's maximum carries both years), after the differences are smoothed over the network
at the footprint's scale (:func:`smooth_on_network`, since 2026-12-06), standardised against the network (median
and MAD). ``new``: warming z > the season's threshold (and a warming above ``min_change_k`` K), warmer than the
network median now and not flagged before; ``resolved``: cooling z > that threshold (and above ``min_change_k``) where
a flag was and is no longer (since 2026-12-05: a leak flagged both years that reads weaker is ``persistent``). The
threshold (:func:`calibrated_new_z`, since 2026-12-08) is the lower of ``new_z`` and the z above which the fitted
upper tail of the network's warming expects a given number of segments (``changes.false_new_per_100km`` times the
network's length): the clutter's change between winters has a heavier tail in some cities than in others;
``persistent``: flagged both years; ``no_data``: flagged in one season without clear data in the other (cannot
tell; a segment flagged now is in this season's ranking all the same).
The expected number of false ``new`` is estimated by the same rule with the seasons swapped
(:func:`reversed_new`: segments that cooled as much, not flagged now or before): under seasons that differ only
by noise both counts have the same distribution. An estimate, not a bound, though high in practice: on the
simulator family's held-out members 100-111 it said 10 for 3 false ``new`` (2026-12-06), and city by city it is
rough (``benchmarks/changes.py``).

**Statistic rankings without point values** (a previous season from an earlier version) use
:func:`change_class_fdr`: a segment is flagged in a season when its p-value survives Benjamini-Hochberg at
``q`` over the segments seen that season; ``new`` additionally needs a significant *increase* of z between
the winters (the difference standardised against the network-wide spread of differences, BH at ``q``),
``resolved`` a significant decrease. Under Benjamini-Hochberg the expected share of false ``new`` among the
``new`` is at most ``q``, so the expected number of false ``new`` per 100 km of pipe is at most
``q * n_new / km * 100`` (:func:`expected_false_per_100km`).

**Otherwise** (0-1 risk rankings, and hotspots) a segment (or hotspot) is **flagged** in a season when its risk is at least ``threshold`` and it had clear data
on at least ``min_dates`` date pairs. Between the previous and the current season:

* ``new``: flagged now, not flagged before (or not present / no data before);
* ``persistent``: flagged in both seasons;
* ``resolved``: flagged before, and now has enough clear data but is not flagged;
* ``stable``: flagged in neither;
* ``no_data``: flagged before but without enough clear data now (cannot tell; look again next season).

Hotspots (``orchestration/screen.py``) follow the same classes, matched by place; one that appeared where the
previous season had no clear pixel is ``no_data`` too, not ``new``.
"""

from __future__ import annotations

import numpy as np

from heattrack.kernels.null_tail import fit_tail_null
from heattrack.kernels.segments import network_z, segment_max, segment_mean

CHANGE_CLASSES = ("new", "persistent", "resolved", "no_data", "stable")


def flagged(risk: np.ndarray, n_dates: np.ndarray, threshold: float, min_dates: int) -> np.ndarray:
    """True where ``risk >= threshold`` (0-1) with clear data on at least ``min_dates`` date pairs."""
    r = np.asarray(risk, dtype=float)
    return np.isfinite(r) & (r >= threshold) & (np.asarray(n_dates) >= min_dates)


def change_class(prev_risk: np.ndarray, prev_dates: np.ndarray, cur_risk: np.ndarray, cur_dates: np.ndarray,
                 threshold: float, min_dates: int) -> np.ndarray:
    """Change class per item (see the module docstring); NaN risk = no data. Returns an array of str."""
    was = flagged(prev_risk, prev_dates, threshold, min_dates)
    now = flagged(cur_risk, cur_dates, threshold, min_dates)
    seen_now = np.isfinite(np.asarray(cur_risk, dtype=float)) & (np.asarray(cur_dates) >= min_dates)
    out = np.full(was.shape, "stable", dtype=object)
    out[now & ~was] = "new"
    out[now & was] = "persistent"
    out[was & ~now & seen_now] = "resolved"
    out[was & ~seen_now] = "no_data"
    return out.astype(str)


def benjamini_hochberg(p: np.ndarray, q: float) -> np.ndarray:
    """True where the p-value is rejected by the Benjamini-Hochberg step-up procedure at false-discovery rate
    ``q`` over the finite p-values (NaN: never rejected)."""
    p = np.asarray(p, dtype=float)
    ok = np.isfinite(p)
    out = np.zeros(p.shape, bool)
    m = int(ok.sum())
    if m == 0:
        return out
    order = np.argsort(p[ok], kind="stable")
    passed = p[ok][order] <= q * np.arange(1, m + 1) / m
    if passed.any():
        k = int(np.flatnonzero(passed).max()) + 1
        idx = np.flatnonzero(ok)[order[:k]]
        out[idx] = True
    return out


def season_flags(prev_z: np.ndarray, prev_dates: np.ndarray, cur_z: np.ndarray, cur_dates: np.ndarray, q: float,
                 min_dates: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seen (a z and at least ``min_dates`` dates) and flagged (Benjamini-Hochberg at ``q`` on the one-sided
    Gaussian p-values of the seen segments) in the previous and the current season: ``seen_prev, seen_now, was,
    now``."""
    from scipy.special import ndtr

    prev_z, cur_z = np.asarray(prev_z, dtype=float), np.asarray(cur_z, dtype=float)
    seen_prev = np.isfinite(prev_z) & (np.asarray(prev_dates) >= min_dates)
    seen_now = np.isfinite(cur_z) & (np.asarray(cur_dates) >= min_dates)
    was = benjamini_hochberg(np.where(seen_prev, ndtr(-prev_z), np.nan), q)
    now = benjamini_hochberg(np.where(seen_now, ndtr(-cur_z), np.nan), q)
    return seen_prev, seen_now, was, now


def change_class_fdr(prev_z: np.ndarray, prev_dates: np.ndarray, cur_z: np.ndarray, cur_dates: np.ndarray,
                     q: float, min_dates: int) -> np.ndarray:
    """Change class per segment from the network z of two seasons (NaN = no data), with Benjamini-Hochberg
    false-discovery control at ``q`` (see the module docstring). Returns an array of str."""
    from scipy.special import ndtr

    prev_z, cur_z = np.asarray(prev_z, dtype=float), np.asarray(cur_z, dtype=float)
    seen_prev, seen_now, was, now = season_flags(prev_z, prev_dates, cur_z, cur_dates, q, min_dates)
    both = seen_prev & seen_now
    d = network_z(np.where(both, cur_z - prev_z, np.nan))[0]  # standardised by the network's own spread
    up = benjamini_hochberg(np.where(both, ndtr(-d), np.nan), q)
    down = benjamini_hochberg(np.where(both, ndtr(d), np.nan), q)
    out = np.full(prev_z.shape, "stable", dtype=object)
    out[now & was] = "persistent"
    out[now & ~was & (up | ~seen_prev)] = "new"
    out[was & ~now & seen_now & down] = "resolved"
    out[was & ~seen_now] = "no_data"
    return out.astype(str)


def smooth_on_network(x: np.ndarray, y: np.ndarray, values: np.ndarray, sigma_m: float) -> np.ndarray:
    """Per point, the Gaussian-weighted mean (sigma ``sigma_m``, out to 2 sigma, over every point of the network
    within reach, its own included) of the finite ``values``; NaN where the point's own value is NaN. The matched
    filter for a change of the thermal footprint's scale: it averages what changes from pixel to pixel (the
    sharpener's and the sensor's noise) and keeps a bump ~100 m wide. ``sigma_m`` 0: the values unchanged.
    Cost: one KD-tree and one pass over the point pairs within 2 sigma (~10 per point at 10 m spacing, 30 m)."""
    from scipy.spatial import cKDTree

    v = np.asarray(values, dtype=float)
    if sigma_m <= 0:
        return v.copy()
    ok = np.flatnonzero(np.isfinite(v))
    out = np.full(v.shape, np.nan)
    if ok.size == 0:
        return out
    xy = np.c_[np.asarray(x, dtype=float)[ok], np.asarray(y, dtype=float)[ok]]
    pairs = cKDTree(xy).query_pairs(2.0 * sigma_m, output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    w = np.exp(-0.5 * np.sum((xy[i] - xy[j]) ** 2, axis=1) / sigma_m**2)
    vo = v[ok]
    num = vo + np.bincount(i, w * vo[j], ok.size) + np.bincount(j, w * vo[i], ok.size)
    den = 1.0 + np.bincount(i, w, ok.size) + np.bincount(j, w, ok.size)
    out[ok] = num / den
    return out


def segment_warming(prev_points: np.ndarray, cur_points: np.ndarray, segment: np.ndarray, n_segments: int,
                    xy: tuple[np.ndarray, np.ndarray] | None = None, sigma_m: float = 0.0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per segment, the largest warming and the largest cooling (K) of any of its points between two seasons'
    point values (the change smoothed over the network first, :func:`smooth_on_network`, when the points' ``xy``
    and ``sigma_m`` > 0 are given), and the mean change of its points, unsmoothed (the tie-break between segments
    that share the hottest point: the one whose body changed); NaN where no point has a value in both."""
    d = np.asarray(cur_points, dtype=float) - np.asarray(prev_points, dtype=float)
    ds = smooth_on_network(xy[0], xy[1], d, sigma_m) if xy is not None and sigma_m > 0 else d
    return segment_max(ds, segment, n_segments), segment_max(-ds, segment, n_segments), segment_mean(d, segment,
                                                                                                     n_segments)


def change_class_warming(prev_z: np.ndarray, prev_dates: np.ndarray, cur_z: np.ndarray, cur_dates: np.ndarray,
                         warming: np.ndarray, cooling: np.ndarray, q: float, min_dates: int, new_z: float,
                         min_change_k: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Change class per segment (see the module docstring) and the network z of its warming and cooling. A warming
    (cooling) must also exceed ``min_change_k`` (K): between two near-identical seasons the network's spread is tiny
    and a z alone would call a few tenths of a kelvin a change."""
    prev_z, cur_z = np.asarray(prev_z, dtype=float), np.asarray(cur_z, dtype=float)
    seen_prev, seen_now, was, now = season_flags(prev_z, prev_dates, cur_z, cur_dates, q, min_dates)
    both = seen_prev & seen_now
    z_up = network_z(np.where(both, warming, np.nan))[0]
    z_down = network_z(np.where(both, cooling, np.nan))[0]
    with np.errstate(invalid="ignore"):
        warmed = both & (z_up > new_z) & (np.asarray(warming, dtype=float) > min_change_k)
        cooled = both & (z_down > new_z) & (np.asarray(cooling, dtype=float) > min_change_k)
        out = np.full(prev_z.shape, "stable", dtype=object)
        out[now & was] = "persistent"
        out[warmed & (cur_z > 0) & ~was] = "new"
        out[cooled & was & ~now] = "resolved"  # still flagged: weaker, not gone (persistent)
    # flagged in one season without clear data in the other: cannot tell whether it changed
    out[(was & ~seen_now) | (now & ~seen_prev)] = "no_data"
    return out.astype(str), z_up, z_down


def calibrated_new_z(prev_z: np.ndarray, prev_dates: np.ndarray, cur_z: np.ndarray, cur_dates: np.ndarray,
                     warming: np.ndarray, q: float, min_dates: int, new_z: float, expected_false: float
                     ) -> tuple[float, float]:
    """The season's change threshold (network z of the warming, as :func:`change_class_warming` takes it): the lower of
    ``new_z`` and the z above which the fitted upper tail of the network's warming z (the segments seen in both
    seasons; :func:`heattrack.kernels.null_tail.fit_tail_null`, from the bulk below the top tenth, where changes
    sit) expects ``expected_false`` segments. A network whose warming has a light tail gets a lower threshold; a
    heavy tail keeps ``new_z``. Returns the threshold and the fit's expected number of segments above it (NaN
    where the tail could not be fitted: fewer than ``MIN_SEGMENTS`` seen, a degenerate bulk; then ``new_z``)."""
    seen_prev, seen_now, _, _ = season_flags(prev_z, prev_dates, cur_z, cur_dates, q, min_dates)
    z = network_z(np.where(seen_prev & seen_now, np.asarray(warming, dtype=float), np.nan))[0]
    z = z[np.isfinite(z)]
    null = fit_tail_null(z)
    if not null.fitted:
        return float(new_z), float("nan")
    threshold = float(new_z)
    if expected_false > 0:
        level = null.level(min(expected_false / z.size, 0.5))
        if np.isfinite(level):
            threshold = min(threshold, level)
    return threshold, float(z.size * null.p_value(np.array([threshold]))[0])


def reversed_new(prev_z: np.ndarray, prev_dates: np.ndarray, cur_z: np.ndarray, cur_dates: np.ndarray,
                 warming: np.ndarray, cooling: np.ndarray, q: float, min_dates: int, new_z: float,
                 min_change_k: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The segments :func:`change_class_warming` would call ``new`` with the seasons swapped, seen both years and
    flagged in neither (a repaired leak was flagged before: a real change, not a noise event): the estimate of its
    false ``new``. Returns the mask and their (cooling) z."""
    cls, z_down, _ = change_class_warming(cur_z, cur_dates, prev_z, prev_dates, cooling, warming, q, min_dates,
                                          new_z, min_change_k)
    seen_prev, _, was, _ = season_flags(prev_z, prev_dates, cur_z, cur_dates, q, min_dates)
    both = seen_prev & np.isfinite(np.asarray(cur_z, dtype=float))
    return (cls == "new") & both & ~was, z_down


def expected_false_per_100km(n_new: int, q: float, pipe_km: float) -> float:
    """Upper bound on the expected number of false ``new`` segments per 100 km of pipe under BH at ``q``."""
    return float(q * n_new / pipe_km * 100.0) if pipe_km > 0 else float("nan")


def match_points(prev_xy: np.ndarray, cur_xy: np.ndarray, radius_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Nearest previous point within ``radius_m`` (m, projected CRS) of each current point: index or -1, and
    which previous points were matched by none."""
    from scipy.spatial import cKDTree

    prev_xy = np.asarray(prev_xy, dtype=float).reshape(-1, 2)
    cur_xy = np.asarray(cur_xy, dtype=float).reshape(-1, 2)
    match = np.full(len(cur_xy), -1, dtype=np.int64)
    if len(prev_xy) and len(cur_xy):
        dist, idx = cKDTree(prev_xy).query(cur_xy, distance_upper_bound=radius_m)
        ok = np.isfinite(dist)
        match[ok] = idx[ok]
    unmatched_prev = np.ones(len(prev_xy), bool)
    unmatched_prev[match[match >= 0]] = False
    return match, unmatched_prev
