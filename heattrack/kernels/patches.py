"""Patch features on the 10 m grid for the learned detectors (no IO, no Dask).

A *patch* is a ``size`` x ``size`` window sampled every ``step`` pixels around a centre pixel (``size=5``,
``step=3``: a 130 m window at 10 m, about the TIRS footprint plus a ring of context). Channels:

0. thermal anomaly z: ``anomaly_k / sigma`` (K over the local background, divided by the tile's robust spread);
1. NDVI (unitless, -1..1);
2. brightness: mean of red and NIR reflectance (0-1), scaled by 4 so its spread is comparable to NDVI's.

NaN (cloud, no data) is replaced by 0 in every channel: a neutral value for z, "bare" for NDVI; the
detectors never score an invalid centre pixel (the caller masks it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

N_CHANNELS = 3
BRIGHTNESS_SCALE = 4.0


@dataclass(frozen=True)
class PatchSpec:
    """Patch geometry in pixels of the 10 m grid."""

    size: int = 5
    step: int = 3

    @property
    def n_features(self) -> int:
        return N_CHANNELS * self.size * self.size

    @property
    def radius_px(self) -> int:
        return (self.size // 2) * self.step


def feature_stack(anomaly_z: np.ndarray, ndvi: np.ndarray, red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """(3, H, W) float32 channel stack with NaN replaced by 0 (see the module docstring)."""
    bright = BRIGHTNESS_SCALE * 0.5 * (np.asarray(red, np.float32) + np.asarray(nir, np.float32))
    stack = np.stack([np.asarray(anomaly_z, np.float32), np.asarray(ndvi, np.float32), bright])
    return np.nan_to_num(stack, nan=0.0, posinf=0.0, neginf=0.0)


def patch_rows(stack: np.ndarray, spec: PatchSpec, row0: int, row1: int) -> np.ndarray:
    """Patch vectors of every pixel in rows ``row0:row1``: shape ``(n_rows * W, n_features)``, float32.

    The stack is edge-padded so border pixels get patches too. Memory is ``n_rows * W * n_features * 4``
    bytes, so callers iterate over row bands (:func:`iter_patch_bands`).
    """
    r = spec.radius_px
    c, h, w = stack.shape
    band = stack[:, max(0, row0 - r): min(h, row1 + r), :]
    pad_top = r - (row0 - max(0, row0 - r))
    pad_bot = r - (min(h, row1 + r) - row1)
    band = np.pad(band, ((0, 0), (pad_top, pad_bot), (r, r)), mode="edge")
    win = sliding_window_view(band, (2 * r + 1, 2 * r + 1), axis=(1, 2))[:, :, :, :: spec.step, :: spec.step]
    # win: (C, n_rows, W, size, size) -> (n_rows * W, C * size * size)
    return np.ascontiguousarray(win.transpose(1, 2, 0, 3, 4)).reshape((row1 - row0) * w, -1)


def iter_patch_bands(stack: np.ndarray, spec: PatchSpec, max_patches: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(row0, row1, patches)`` bands of at most ``max_patches`` patches each, top to bottom."""
    h, w = stack.shape[1:]
    rows = max(1, max_patches // max(w, 1))
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        yield r0, r1, patch_rows(stack, spec, r0, r1)


def sample_patches(stack: np.ndarray, spec: PatchSpec, where: np.ndarray, n: int,
                   rng: np.random.Generator) -> np.ndarray:
    """``n`` (or fewer) patches centred on random pixels where ``where`` is True, (n, n_features) float32."""
    rows, cols = np.nonzero(where)
    if rows.size == 0:
        return np.zeros((0, spec.n_features), np.float32)
    pick = rng.choice(rows.size, size=min(n, rows.size), replace=False)
    pick.sort()
    r = spec.radius_px
    padded = np.pad(stack, ((0, 0), (r, r), (r, r)), mode="edge")
    offs = np.arange(-r, r + 1, spec.step)
    rr = rows[pick][:, None, None] + r + offs[None, :, None]
    cc = cols[pick][:, None, None] + r + offs[None, None, :]
    out = padded[:, rr, cc]  # (C, n, size, size)
    return np.ascontiguousarray(out.transpose(1, 0, 2, 3)).reshape(pick.size, -1).astype(np.float32)


def centre_thermal_index(spec: PatchSpec) -> np.ndarray:
    """Indices, in a patch vector, of the thermal channel's central 3 x 3 samples (or 1 x 1 for size < 3)."""
    s = spec.size
    c = s // 2
    k = 1 if s >= 3 else 0
    idx = [(0 * s + i) * s + j for i in range(c - k, c + k + 1) for j in range(c - k, c + k + 1)]
    return np.asarray(idx, dtype=np.int64)


def batch_for_memory(n_features: int, hidden: int, memory_mb: float) -> int:
    """Largest inference batch whose activations fit ``memory_mb`` (float32; input, hidden layers and
    reconstruction, x3 for temporaries), rounded down to a multiple of 1024, at least 1024."""
    per_patch = 4 * (2 * n_features + 4 * hidden) * 3
    return max(1024, int(memory_mb * 2**20 / per_patch) // 1024 * 1024)
