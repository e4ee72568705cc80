"""Pixel evidence of a leak from four detectors, and their fusion into one 0-1 risk (no IO, no Dask).

Every detector yields a **robust z-score** per 10 m pixel (positive = anomalously warm), so they share one
scale before fusion:

* ``local``: excess LST over a robust local background, divided by the tile's robust spread
  (:func:`heattrack.kernels.anomaly.local_anomaly`);
* ``ae``: the autoencoder's signed centre thermal residual (:mod:`heattrack.kernels.autoencoder`), robust-z
  normalised over the tile's valid pixels;
* ``iforest``: scikit-learn Isolation Forest on block features (thermal z, its 3x3 block contrast, NDVI,
  brightness) at ``iforest_block_px`` (50 m by default: the thermal information is ~100 m, and scoring
  25x fewer samples keeps the forest cheap), one-sided (only warm blocks count), robust-z normalised,
  bilinear back to 10 m;
* ``fused``: the weighted mean of the three z-scores, re-normalised by its own robust spread
  (a calibrated average: each input counts by its weight, not by its raw spread).

The z-score is mapped to risk with :func:`heattrack.kernels.anomaly.z_to_score`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from heattrack.kernels.anomaly import robust_sigma, z_to_score
from heattrack.kernels.lst import block_mean, fill_nearest, upsample_bilinear
from heattrack.kernels.patches import PatchSpec, centre_thermal_index, feature_stack, sample_patches

DETECT_METHODS = ("local", "ae", "iforest", "fused")  # pixel-risk detectors (residual/baseline: chain.py)


@dataclass(frozen=True)
class DetectorParams:
    """Detector settings (pixels of the 10 m grid)."""

    method: str = "local"
    patch: PatchSpec = PatchSpec()
    ae_train_patches: int = 20000
    ae_hidden: int = 32
    ae_latent: int = 6
    ae_epochs: int = 25
    ae_trim_fraction: float = 0.02
    device: str = "auto"
    max_batch: int = 65536
    iforest_block_px: int = 5
    iforest_estimators: int = 100
    iforest_sample: int = 20000
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # local, ae, iforest
    z0: float = 1.0
    scale: float = 2.0
    seed: int = 0


@dataclass
class DetectResult:
    """``risk`` 0-1 per pixel (NaN outside ``valid``) and the per-detector z-scores it came from."""

    risk: np.ndarray
    z: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def robust_z(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(values - median) / (1.4826 MAD) over ``valid`` pixels; NaN outside ``valid``."""
    v = values[valid & np.isfinite(values)]
    out = np.full(values.shape, np.nan, np.float32)
    if v.size == 0:
        return out
    med = float(np.median(v))
    sig = robust_sigma(v)
    sig = sig if np.isfinite(sig) and sig > 1e-6 else float(np.std(v)) or 1.0
    out[valid] = (values[valid] - med) / sig
    return out


def train_autoencoder(patches: np.ndarray, params: DetectorParams):
    """Fit a :class:`~heattrack.kernels.autoencoder.PatchAutoencoder` on patch vectors with ``params``'s
    sizes, device and seed (per tile here, on pooled tiles in ``heattrack train``)."""
    from heattrack.kernels.autoencoder import AEParams, PatchAutoencoder

    return PatchAutoencoder(
        AEParams(hidden=params.ae_hidden, latent=params.ae_latent, epochs=params.ae_epochs,
                 trim_fraction=params.ae_trim_fraction, seed=params.seed),
        centre_thermal_index(params.patch), device=params.device, max_batch=params.max_batch,
    ).fit(patches)


def ae_residual(model, anomaly_z: np.ndarray, ndvi: np.ndarray, red: np.ndarray, nir: np.ndarray,
                valid: np.ndarray, params: DetectorParams) -> tuple[np.ndarray, object]:
    """Autoencoder residual (z units) for every pixel; trains a model on the tile's valid patches when
    ``model`` is None. Returns ``(residual, model)``."""
    stack = feature_stack(anomaly_z, ndvi, red, nir)
    if model is None:
        rng = np.random.default_rng(params.seed)
        model = train_autoencoder(sample_patches(stack, params.patch, valid, params.ae_train_patches, rng), params)
    return model.score_stack(stack, params.patch), model


def iforest_score(anomaly_z: np.ndarray, ndvi: np.ndarray, red: np.ndarray, nir: np.ndarray,
                  valid: np.ndarray, params: DetectorParams) -> np.ndarray:
    """One-sided Isolation Forest anomaly score on ``iforest_block_px`` blocks, bilinear to the 10 m grid
    (NaN where no block data). Higher = more isolated *and* warm."""
    from sklearn.ensemble import IsolationForest

    b = params.iforest_block_px
    z = np.where(valid, anomaly_z, np.nan)
    zb = block_mean(z, b, 0.3)
    ok = np.isfinite(zb)
    if ok.sum() < 32:
        return np.full(anomaly_z.shape, np.nan, np.float32)
    zf = fill_nearest(zb)
    contrast = zf - ndimage.uniform_filter(zf, size=3, mode="nearest")
    nd = fill_nearest(block_mean(np.where(valid, ndvi, np.nan), b))
    br = fill_nearest(block_mean(np.where(valid, 0.5 * (red + nir), np.nan), b))
    feats = np.stack([zf, contrast, nd, br], axis=-1)[ok]
    rng = np.random.default_rng(params.seed)
    fit_rows = feats if feats.shape[0] <= params.iforest_sample else feats[
        np.sort(rng.choice(feats.shape[0], params.iforest_sample, replace=False))]
    forest = IsolationForest(n_estimators=params.iforest_estimators, max_samples=min(256, fit_rows.shape[0]),
                             random_state=params.seed, n_jobs=1).fit(fit_rows)
    score = np.full(zb.shape, np.nan, np.float32)
    s = -forest.score_samples(feats)  # higher = more anomalous, ~0.3-0.8
    s = np.where(feats[:, 0] > 0, s, np.min(s))  # one-sided: cold or average blocks are not leaks
    score[ok] = s
    fine = upsample_bilinear(fill_nearest(score), b)
    fine[~valid] = np.nan
    return fine


def iforest_evidence(anomaly_k: np.ndarray, sigma_k: float, ndvi: np.ndarray, red: np.ndarray, nir: np.ndarray,
                     valid: np.ndarray, params: DetectorParams) -> np.ndarray | None:
    """The Isolation Forest's robust z map for ``iforest``/``fused`` (None for other methods). CPU-only work:
    the tile graph runs it in the CPU stage and hands it to :func:`detect`, so a GPU worker only runs the
    autoencoder."""
    if params.method not in ("iforest", "fused"):
        return None
    z_local = np.where(valid, anomaly_k / sigma_k, np.nan).astype(np.float32)
    return robust_z(iforest_score(z_local, ndvi, red, nir, valid, params), valid)


def detect(anomaly_k: np.ndarray, sigma_k: float, ndvi: np.ndarray, red: np.ndarray, nir: np.ndarray,
           valid: np.ndarray, params: DetectorParams, model=None,
           iforest_z: np.ndarray | None = None) -> tuple[DetectResult, object]:
    """Run ``params.method`` on one (padded) tile. ``anomaly_k``: K over the local background; ``sigma_k``:
    its robust spread (K). ``iforest_z``: :func:`iforest_evidence` when already computed. Returns the result
    and the autoencoder used (trained here if ``model`` is None and the method needs one)."""
    if params.method not in DETECT_METHODS:
        raise ValueError(f"unknown detect.method {params.method!r}; choose one of {', '.join(DETECT_METHODS)}")
    z_local = np.where(valid, anomaly_k / sigma_k, np.nan).astype(np.float32)
    zs: dict[str, np.ndarray] = {"local": z_local}
    if params.method in ("ae", "fused"):
        res, model = ae_residual(model, z_local, ndvi, red, nir, valid, params)
        zs["ae"] = robust_z(res, valid)
    if params.method in ("iforest", "fused"):
        zs["iforest"] = (iforest_z if iforest_z is not None
                         else iforest_evidence(anomaly_k, sigma_k, ndvi, red, nir, valid, params))
    if params.method == "fused":
        w = dict(zip(("local", "ae", "iforest"), params.weights))
        total = sum(w[k] * np.nan_to_num(zs[k]) for k in zs) / sum(w[k] for k in zs)
        z = robust_z(total.astype(np.float32), valid)
    else:
        z = zs[params.method]
    risk = z_to_score(z, params.z0, params.scale)
    risk[~valid] = np.nan
    return DetectResult(risk, zs, {"method": params.method}), model


def ae_examples(model, anomaly_z: np.ndarray, ndvi: np.ndarray, red: np.ndarray, nir: np.ndarray,
                rows: np.ndarray, cols: np.ndarray, spec: PatchSpec) -> tuple[np.ndarray, np.ndarray]:
    """Input and reconstructed patches at pixels ``(rows, cols)``: two arrays (k, 3, size, size) for the report's
    "input vs reconstruction vs error" figure."""
    stack = feature_stack(anomaly_z, ndvi, red, nir)
    where = np.zeros(anomaly_z.shape, bool)
    where[rows, cols] = True
    X = sample_patches(stack, spec, where, int(where.sum()), np.random.default_rng(0))
    shape = (X.shape[0], stack.shape[0], spec.size, spec.size)
    return X.reshape(shape), model.reconstruct(X).reshape(shape)
