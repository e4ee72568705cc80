"""Thermal anomaly scores on the 10 m grid: excess temperature over a robust local background.

``local_anomaly`` is the ``detect.method: local`` detector. Cost is dominated by one median filter run on a
grid ``block`` times coarser than 10 m (a 500 m window at 50 m is 11 x 11 px on 1/25 of the pixels):
:func:`median_filter_nearest`, ~25 ms on a padded 10 km tile's 220 x 220 cells (SciPy's 45-70 ms).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from heattrack.kernels.jit import compiled
from heattrack.kernels.lst import block_mean, fill_nearest, upsample_bilinear

#: arrays from this many pixels take the compiled median (loading it from numba's cache costs ~0.2 s once per
#: process: a tile worker's coarse grids are ~48,000 cells, the driver's few-thousand-pixel calls stay with SciPy)
COMPILED_MEDIAN_MIN_PX = 1 << 14


@dataclass(frozen=True)
class AnomalyResult:
    """``anomaly_k``: K above the local background; ``score``: 0-1 evidence; ``sigma_k``: robust spread used."""

    anomaly_k: np.ndarray
    score: np.ndarray
    sigma_k: float


def robust_sigma(values: np.ndarray) -> float:
    """1.4826 x median absolute deviation of the finite values (NaN if there are none)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return float("nan")
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def z_to_score(z: np.ndarray, z0: float = 1.0, scale: float = 2.0) -> np.ndarray:
    """Map a z-score to 0-1 evidence: 0 up to ``z0``, then ``1 - exp(-(z - z0) / scale)``; NaN stays NaN."""
    with np.errstate(invalid="ignore"):
        s = 1.0 - np.exp(-np.clip(z - z0, 0.0, None) / scale)
    return s.astype(np.float32)


def local_background(lst: np.ndarray, window_px: int, block: int) -> np.ndarray:
    """Median of ``lst`` in a ``window_px`` (10 m pixels) square window, computed on a ``block``-times
    coarser grid and interpolated back. NaNs are ignored (filled from the nearest valid block first). A window over
    25 blocks is computed on a coarser grid (10, 5 or 4 pixels, the first that divides ``lst``): a 51-block median
    filter costs ~10 s on a 1100 px tile, a 1 km median needs no 20 m detail."""
    if window_px > 25 * block:
        block = next((b for b in (10, 5, 4) if b > block and all(n % b == 0 for n in lst.shape)), block)
    coarse = block_mean(lst, block)
    if not np.isfinite(coarse).any():
        return np.full(lst.shape, np.nan, dtype=np.float32)
    size = max(3, int(round(window_px / block)) | 1)
    bg = median_filter_nearest(fill_nearest(coarse), size)
    return upsample_bilinear(bg, block)


def median_filter_nearest(values: np.ndarray, size: int) -> np.ndarray:
    """``scipy.ndimage.median_filter(values, size, mode="nearest")`` for an odd ``size``, the same values: compiled
    (a sorted window slid along each row) for finite arrays of at least :data:`COMPILED_MEDIAN_MIN_PX` pixels, SciPy
    otherwise (NaN, small arrays, even sizes, no numba)."""
    kernel = compiled(_sliding_median_rows) if (
        size % 2 == 1 and size >= 3 and values.size >= COMPILED_MEDIAN_MIN_PX and values.dtype.kind == "f"
        and np.isfinite(values).all()) else None
    if kernel is None:
        return ndimage.median_filter(values, size=size, mode="nearest")
    out = np.empty(values.shape, dtype=values.dtype)
    kernel(np.pad(values, size // 2, mode="edge"), size, out)
    return out


def _sliding_median_rows(padded, k, out):
    """The compiled loop of :func:`median_filter_nearest` over the edge-padded ``padded``. Per output row, each padded
    column's ``k`` values of the window's rows are sorted once (insertion sort); the window's ``k x k`` values are kept
    sorted, and each step right merges the entering column into them while dropping the leaving one (one pass over
    the window, both columns sorted). The median is the middle of the sorted window: the value SciPy's selection
    picks. Finite values only (a NaN is never found again to be dropped)."""
    h, w = out.shape
    n = k * k
    mid = n // 2
    win = np.empty(n, dtype=padded.dtype)
    nxt = np.empty(n, dtype=padded.dtype)
    cols = np.empty((padded.shape[1], k), dtype=padded.dtype)
    for i in range(h):
        for j in range(padded.shape[1]):
            for a in range(k):
                x = padded[i + a, j]
                b = a
                while b > 0 and cols[j, b - 1] > x:
                    cols[j, b] = cols[j, b - 1]
                    b -= 1
                cols[j, b] = x
        c = 0
        for b in range(k):
            for a in range(k):
                win[c] = cols[b, a]
                c += 1
        win.sort()
        out[i, 0] = win[mid]
        for j in range(1, w):
            gone, come = cols[j - 1], cols[j - 1 + k]
            g = e = q = 0
            for p in range(n):
                v = win[p]
                if g < k and v == gone[g]:  # the leaving column's next value (both sorted): dropped
                    g += 1
                    continue
                while e < k and come[e] < v:
                    nxt[q] = come[e]
                    q += 1
                    e += 1
                nxt[q] = v
                q += 1
            while e < k:
                nxt[q] = come[e]
                q += 1
                e += 1
            win, nxt = nxt, win
            out[i, j] = win[mid]


def local_anomaly(
    lst: np.ndarray,
    window_px: int = 50,
    block: int = 5,
    noise_floor_k: float = 0.3,
    z0: float = 1.0,
    scale: float = 2.0,
) -> AnomalyResult:
    """Excess LST (K) over the local median background and its 0-1 score.

    ``lst`` in K on the 10 m grid (NaN = unusable). The spread is the tile's robust sigma of the anomaly,
    floored at ``noise_floor_k`` so a very uniform scene does not turn sensor noise into alarms.
    """
    lst = np.asarray(lst, dtype=np.float32)
    anomaly = lst - local_background(lst, window_px, block)
    sigma = robust_sigma(anomaly)
    sigma = max(sigma if np.isfinite(sigma) else 0.0, noise_floor_k)
    score = z_to_score(anomaly / sigma, z0=z0, scale=scale)
    return AnomalyResult(anomaly.astype(np.float32), score, float(sigma))
