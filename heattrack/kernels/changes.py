"""Season-over-season change classes (pure: arrays in, arrays out).

A segment (or hotspot) is **flagged** in a season when its risk is at least ``threshold`` and it had clear data
on at least ``min_dates`` date pairs. Between the previous and the current season:

* ``new``: flagged now, not flagged before (or not present / no data before);
* ``persistent``: flagged in both seasons;
* ``resolved``: flagged before, and now has enough clear data but is not flagged;
* ``stable``: flagged in neither;
* ``no_data``: flagged before but without enough clear data now (cannot tell; look again next season).
"""

from __future__ import annotations

import numpy as np

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
