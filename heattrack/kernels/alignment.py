"""Where a pipe map lies on a fine thermal raster (pure: a raster and points in, a shift out).

A 10 m raster is read on the pipe's own pixel (``thermal.buffer_m`` 0), so a network map that is off by a pixel or
more reads the ground beside the pipe: on the simulator family's held-out cities a map shifted by 10 m dropped the
airborne ROC-AUC from 0.99 to 0.86 (docs/measurements.md, "Fine rasters read on the pipe's own pixel"). Streets and
the pipes under them are warmer than the blocks between them, so along the whole network the median excess heat peaks
where the map is right: :func:`network_shift` tries every shift in half-pixel steps within a radius and keeps the one
with the highest median, when it beats the unshifted points by a margin (the median is robust to the few leaks).
Cost: ``(4 r + 1)^2`` point samples (81 at r = 2), nothing per pixel. Measured: docs/measurements.md, "A pipe map
that is off the raster" (``benchmarks/map_offset.py``).
"""

from __future__ import annotations

import numpy as np
from affine import Affine

from heattrack.kernels.segments import sample_at_points

#: a shift must raise the network's median excess by at least this much (K) to be taken
MIN_GAIN_K = 0.1
#: shifts tried per pixel: half pixels, so a map off by half a pixel moves the points that sit near a pixel's edge
STEPS_PER_PX = 2


def network_shift(evidence: np.ndarray, transform: Affine, x: np.ndarray, y: np.ndarray, radius_px: int,
                  min_gain_k: float = MIN_GAIN_K) -> tuple[float, float, float]:
    """The shift (dx, dy in the raster's units; half-pixel steps within ``radius_px`` pixels) of the points ``x, y``
    that puts them on the highest median of ``evidence``, and the gain in K over no shift; (0, 0, 0) where no shift
    gains ``min_gain_k``, the radius is 0 or there are too few points with data (under 50)."""
    if radius_px <= 0 or np.size(x) == 0:
        return 0.0, 0.0, 0.0
    base = sample_at_points(evidence, transform, x, y)
    if np.isfinite(base).sum() < 50:
        return 0.0, 0.0, 0.0
    at_map = float(np.nanmedian(base))
    best = (0.0, 0.0, at_map)
    px, py = transform.a / STEPS_PER_PX, transform.e / STEPS_PER_PX  # the step along x and y (y < 0: north up)
    k = radius_px * STEPS_PER_PX
    # the nearest shifts first: of shifts that read the same pixels (a half step from a pixel centre reaches the
    # next pixel's edge), the smallest is kept
    for dr, dc in sorted(((r, c) for r in range(-k, k + 1) for c in range(-k, k + 1) if r or c),
                         key=lambda rc: (rc[0] ** 2 + rc[1] ** 2, rc)):
        v = sample_at_points(evidence, transform, x + dc * px, y + dr * py)
        if np.isfinite(v).sum() < 50:
            continue
        m = float(np.nanmedian(v))
        if m > best[2]:
            best = (dc * px, dr * py, m)
    gain = best[2] - at_map
    if gain < min_gain_k:
        return 0.0, 0.0, 0.0
    return best[0], best[1], gain


__all__ = ["MIN_GAIN_K", "network_shift"]
