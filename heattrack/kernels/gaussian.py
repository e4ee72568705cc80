"""Gaussian blur of a float32 raster with its edges repeated: ``scipy.ndimage.gaussian_filter(a, sigma,
mode="nearest", truncate=...)`` bit for bit, about 3x faster.

SciPy copies every line of the array into a float64 buffer and filters it there, the columns one strided line at
a time. The compiled passes here filter whole rows at once (the first pass adds rows ``i - k`` and ``i + k`` for
every row ``i``, the second the shifted copies of one padded row), with SciPy's arithmetic: float64 sums in the
same order (the outermost pair of taps first, the centre tap as the start), the first pass's result rounded to
float32 before the second, the same weights. Measured on 2 cores (2026-12-07): 1200 x 1200 px at sigma 3.6 px
12 vs 34 ms, 600 x 600 at 1.8 px 1.8 vs 5.1 ms, 1206 x 1206 at 1.0 px (truncate 2) 5.6 vs 16 ms.
``tests/test_gaussian.py`` checks the equality. Arrays smaller than :data:`heattrack.kernels.lst.COMPILED_MIN_PX`
and anything but a 2-D float32 array go to SciPy itself.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from heattrack.kernels.jit import compiled
from heattrack.kernels.lst import COMPILED_MIN_PX


def gaussian_half_weights(sigma_px: float, truncate: float) -> np.ndarray:
    """SciPy's normalised Gaussian weights from the centre outwards (``w[k]``: the weight at offset ``±k``)."""
    radius = int(truncate * float(sigma_px) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (float(sigma_px) * float(sigma_px)) * x**2)
    return (phi / phi.sum())[radius:].copy()


def gaussian_blur(a: np.ndarray, sigma_px: float, truncate: float = 4.0) -> np.ndarray:
    """``a`` blurred by a Gaussian of ``sigma_px`` pixels reaching ``truncate`` sigmas, edges repeated; float32
    in, float32 out (what ``scipy.ndimage.gaussian_filter`` returns for it, to the bit)."""
    a = np.asarray(a)
    passes = (compiled(_blur_rows), compiled(_blur_cols)) if (
        a.ndim == 2 and a.dtype == np.float32 and a.size >= COMPILED_MIN_PX and sigma_px > 1e-15) else (None, None)
    if passes[0] is None or passes[1] is None:
        return ndimage.gaussian_filter(a, sigma_px, mode="nearest", truncate=truncate)
    w = gaussian_half_weights(sigma_px, truncate)
    a = np.ascontiguousarray(a)
    between, out = np.empty(a.shape, np.float32), np.empty(a.shape, np.float32)
    passes[0](a, w, between)
    passes[1](between, w, out)
    return out


def _blur_rows(a, w, out):
    """The pass along axis 0: each output row from the input rows ``i ± k`` (clamped to the array)."""
    h, width = a.shape
    r = w.size - 1
    acc = np.empty(width)
    for i in range(h):
        centre = a[i]
        for j in range(width):
            acc[j] = np.float64(centre[j]) * w[0]
        for k in range(r, 0, -1):
            up, down, wk = a[max(i - k, 0)], a[min(i + k, h - 1)], w[k]
            for j in range(width):
                acc[j] += (np.float64(up[j]) + np.float64(down[j])) * wk
        row = out[i]
        for j in range(width):
            row[j] = np.float32(acc[j])


def _blur_cols(a, w, out):
    """The pass along axis 1: each row padded with its edge values, then the shifted copies summed."""
    h, width = a.shape
    r = w.size - 1
    line = np.empty(width + 2 * r)
    acc = np.empty(width)
    for i in range(h):
        src = a[i]
        for j in range(width):
            line[r + j] = src[j]
        for k in range(r):
            line[k] = src[0]
            line[r + width + k] = src[width - 1]
        for j in range(width):
            acc[j] = line[r + j] * w[0]
        for k in range(r, 0, -1):
            left, right, wk = line[r - k: r - k + width], line[r + k: r + k + width], w[k]
            for j in range(width):
                acc[j] += (left[j] + right[j]) * wk
        row = out[i]
        for j in range(width):
            row[j] = np.float32(acc[j])


__all__ = ["gaussian_blur", "gaussian_half_weights"]
