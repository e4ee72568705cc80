"""Optical predictors on the 10 m grid."""

from __future__ import annotations

import numpy as np


def ndvi(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """Normalised difference vegetation index from red and NIR reflectance (0-1); NaN where undefined."""
    red = np.asarray(red, dtype=np.float32)
    nir = np.asarray(nir, dtype=np.float32)
    denom = nir + red
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (nir - red) / denom
    out[~np.isfinite(out) | (np.abs(denom) < 1e-4)] = np.nan
    return np.clip(out, -1.0, 1.0)
