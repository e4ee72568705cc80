"""Small synthetic tiles shared by the detector tests (numpy only, so tests/test_gpu.py runs on a bare GPU image)."""

from __future__ import annotations

import numpy as np


def plume_tile(n: int = 64, seed: int = 0, plume_k: float = 0.0, at=(32, 40), sigma_px: float = 3.0):
    """A small tile: NDVI stripes, an anomaly field that follows NDVI (land cover) plus noise, optional plume.
    Returns ``(anomaly_k, ndvi, red, nir)``."""
    rng = np.random.default_rng(seed)
    nd = np.clip(0.3 + 0.25 * np.sin(np.arange(n) / 5.0)[None, :] + 0.03 * rng.standard_normal((n, n)), -1, 1)
    nd = nd.astype(np.float32)
    red = (0.08 + 0.05 * (1 - nd)).astype(np.float32)
    nir = (red * (1 + nd) / (1 - nd)).astype(np.float32)
    anom = (-1.2 * (nd - nd.mean()) + 0.15 * rng.standard_normal((n, n))).astype(np.float32)
    yy, xx = np.mgrid[:n, :n]
    anom += (plume_k * np.exp(-((yy - at[0]) ** 2 + (xx - at[1]) ** 2) / (2 * sigma_px ** 2))).astype(np.float32)
    return anom, nd, red, nir
