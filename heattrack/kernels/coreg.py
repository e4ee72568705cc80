"""Sub-pixel shift between two images of the same ground (phase correlation), for Landsat/Sentinel-2
coregistration. Pure numpy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Shift:
    """``moving`` appears displaced by (dy, dx) pixels relative to ``reference`` (+dx: features lie further
    right / east in ``moving``, +dy: further down / south). ``peak``: normalised correlation peak height
    (0-1; ~1 for a clean translation, small when the images do not match)."""

    dy: float
    dx: float
    peak: float


def _prep(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    ok = np.isfinite(a)
    a = np.where(ok, a - (a[ok].mean() if ok.any() else 0.0), 0.0)
    wy = np.hanning(a.shape[0])[:, None]
    wx = np.hanning(a.shape[1])[None, :]
    return a * wy * wx


def phase_correlation_shift(reference: np.ndarray, moving: np.ndarray) -> Shift:
    """Translation of ``moving`` relative to ``reference`` (same shape, NaN = no data) by phase correlation
    with a Hann window and a parabolic sub-pixel refinement of the peak."""
    if reference.shape != moving.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {moving.shape}")
    f0 = np.fft.fft2(_prep(reference))
    f1 = np.fft.fft2(_prep(moving))
    cross = f1 * np.conj(f0)
    cross /= np.maximum(np.abs(cross), 1e-12)
    corr = np.fft.ifft2(cross).real
    iy, ix = np.unravel_index(np.argmax(corr), corr.shape)
    peak = float(corr[iy, ix])

    def refine(cm: float, c0: float, cp: float) -> float:
        den = cm - 2 * c0 + cp
        return 0.0 if abs(den) < 1e-12 else 0.5 * (cm - cp) / den

    h, w = corr.shape
    sy = iy + refine(corr[(iy - 1) % h, ix], corr[iy, ix], corr[(iy + 1) % h, ix])
    sx = ix + refine(corr[iy, (ix - 1) % w], corr[iy, ix], corr[iy, (ix + 1) % w])
    if sy > h / 2:
        sy -= h
    if sx > w / 2:
        sx -= w
    return Shift(float(sy), float(sx), peak)
