"""The effective resolution of a thermal image, estimated from the image itself (pure: arrays in, numbers out).

A thermal raster says its pixel size, not its footprint: an ECOSTRESS 70 m tile or a Landsat 100 m band
resampled onto 10 m pixels looks like 10 m data. The radially averaged power spectrum of the image tells them
apart. It is modelled as a scene with a power-law spectrum seen through a Gaussian footprint of ``sigma``
pixels, plus white noise::

    P(f) = c * f**-beta * exp(-4 pi^2 sigma^2 f^2) + N        (f in cycles per pixel, up to 0.5)

and fitted on a grid of ``sigma`` (0-15 px, step 0.1) and ``beta`` (0.5-4), with ``c, N >= 0`` solved by least
squares relative to ``P`` for every grid point at once, keeping the point of least squared log error.

What it measures is the finest scale at which *the image* has structure. On held-out simulated cities
(``benchmarks/psf_estimate.py``, 10 m pixels, 0.1 K noise) it reads 69-76 m for a 70 m footprint and 97-104 m
for 100 m, and 0-14 m for sharp 10 m data. Near the pixel scale it cannot separate footprints: on the real
Landsat 8 sample (30 m pixels) ST_B10, whose TIRS footprint is ~100 m, reads 94 m and the 30 m OLI band SR_B4
73 m. So it is a check against rasters resampled onto much finer pixels (the thermal source uses it from 4 pixels
up), not a replacement for a sensor's stated footprint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heattrack.kernels.lst import fill_nearest

#: the estimate is made on at most this many pixels square (the centre of the image) and at least this many
MAX_WINDOW_PX = 512
MIN_WINDOW_PX = 64


@dataclass(frozen=True)
class PsfEstimate:
    """A fitted Gaussian footprint: ``sigma_px`` (pixels), the scene's spectral slope ``beta`` and the share of
    the power at the highest frequencies that is white noise; ``window_px``: the side of the window fitted."""

    sigma_px: float
    beta: float
    noise_share: float
    window_px: int

    @property
    def box_width_px(self) -> float:
        """Width (pixels) of the square footprint of the same variance (heattrack's ``psf_m`` convention)."""
        return float(np.sqrt(12.0) * self.sigma_px)


def radial_power_spectrum(img: np.ndarray, n_bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of a (NaN-free) image under a Hann window: bin centres (cycles per pixel,
    ``4 / n`` to 0.5) and the mean power in each bin (NaN for an empty bin)."""
    a = np.asarray(img, dtype=np.float64)
    a = a - a.mean()
    h, w = a.shape
    spec = np.abs(np.fft.rfft2(a * np.outer(np.hanning(h), np.hanning(w)))) ** 2
    f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])
    edges = np.linspace(4.0 / min(h, w), 0.5, n_bins + 1)  # above the Hann window's notch at DC
    which = np.digitize(f.ravel(), edges) - 1
    inside = (which >= 0) & (which < n_bins)
    total = np.bincount(which[inside], weights=spec.ravel()[inside], minlength=n_bins)
    count = np.bincount(which[inside], minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        power = np.where(count > 0, total / count, np.nan)
    return 0.5 * (edges[1:] + edges[:-1]), power


def fit_gaussian_footprint(freq: np.ndarray, power: np.ndarray, max_sigma_px: float = 15.0
                           ) -> tuple[float, float, float, float]:
    """Fit the module's spectrum model; returns ``(sigma_px, beta, noise_share, scene_share)``: the white noise's
    share of the model at the highest frequency, and the scene's share at the lowest (near 0: the image is noise
    without structure, and no footprint can be read from it)."""
    ok = np.isfinite(power) & (power > 0)
    f, p = freq[ok], power[ok]
    sig, beta = np.meshgrid(np.arange(0.0, max_sigma_px + 1e-9, 0.1), np.arange(0.5, 4.01, 0.25), indexing="ij")
    sig, beta = sig.ravel()[:, None], beta.ravel()[:, None]
    shape = f ** -beta * np.exp(-4.0 * np.pi**2 * sig**2 * f**2)  # (grid, bins)
    a1, a2 = shape / p, np.broadcast_to(1.0 / p, shape.shape)  # relative to the measured power: each bin alike
    s11, s12, s22 = (a1 * a1).sum(1), (a1 * a2).sum(1), (a2 * a2).sum(1)
    b1, b2 = a1.sum(1), a2.sum(1)
    det = s11 * s22 - s12**2
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (b1 * s22 - b2 * s12) / det
        n = (b2 * s11 - b1 * s12) / det
        # a negative part: the best of the two one-part fits instead
        c_only, n_only = np.where(s11 > 0, b1 / s11, 0.0), b2 / s22
    neg = ~(np.isfinite(c) & np.isfinite(n) & (c >= 0) & (n >= 0))
    err_c = ((a1 * c_only[:, None] - 1.0) ** 2).sum(1)
    err_n = ((a2 * n_only[:, None] - 1.0) ** 2).sum(1)
    use_c = err_c <= err_n
    c = np.where(neg, np.where(use_c, c_only, 0.0), c)
    n = np.where(neg, np.where(use_c, 0.0, n_only), n)
    model = c[:, None] * shape + n[:, None]
    err = ((np.log(np.maximum(model, 1e-12 * p.max())) - np.log(p)) ** 2).sum(1)
    k = int(np.argmin(err))
    top, low = model[k, -1], model[k, 0]
    return (float(sig[k, 0]), float(beta[k, 0]), float(n[k] / top) if top > 0 else 1.0,
            float(1.0 - n[k] / low) if low > 0 else 0.0)


def estimate_footprint(img: np.ndarray, min_valid: float = 0.9) -> PsfEstimate | None:
    """The effective footprint of ``img`` (2-D, NaN = no data), from its central window of at most
    ``MAX_WINDOW_PX`` pixels square; None when the window is smaller than ``MIN_WINDOW_PX``, less than
    ``min_valid`` of it is finite (gaps are filled with the nearest value), or it is flat or noise alone."""
    a = np.asarray(img, dtype=np.float64)
    h, w = a.shape
    n = min(h, w, MAX_WINDOW_PX)
    if n < MIN_WINDOW_PX:
        return None
    r0, c0 = (h - n) // 2, (w - n) // 2
    win = a[r0:r0 + n, c0:c0 + n]
    ok = np.isfinite(win)
    if ok.mean() < min_valid:
        return None
    if not ok.all():
        win = fill_nearest(win)
    freq, power = radial_power_spectrum(win)
    if int((np.isfinite(power) & (power > 0)).sum()) < 8:  # a flat image has no spectrum to fit
        return None
    sigma, beta, noise, scene = fit_gaussian_footprint(freq, power)
    if scene < 0.5:  # noise at every frequency: no scene structure whose blur could be measured
        return None
    return PsfEstimate(sigma_px=sigma, beta=beta, noise_share=noise, window_px=n)


__all__ = ["PsfEstimate", "estimate_footprint", "fit_gaussian_footprint", "radial_power_spectrum"]
