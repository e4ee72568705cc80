"""Autoencoder on a CUDA device: same answers as on the CPU. Runs only where torch sees a GPU (never in CI);
on a GPU machine: ``pytest --noconftest -m gpu tests/test_gpu.py`` (needs numpy, scipy, scikit-learn, torch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiles import plume_tile

from heattrack.kernels.autoencoder import AEParams, PatchAutoencoder, resolve_device
from heattrack.kernels.detectors import DetectorParams, detect
from heattrack.kernels.patches import PatchSpec, centre_thermal_index, feature_stack, patch_rows, sample_patches

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


def test_auto_device_is_cuda_here():
    assert resolve_device("auto") == "cuda"


def test_cuda_inference_equals_cpu_inference_of_the_same_weights():
    spec = PatchSpec(size=5, step=2)
    anom, nd, red, nir = plume_tile(64, 1)
    X = sample_patches(feature_stack(anom / 0.15, nd, red, nir), spec, np.ones((64, 64), bool), 3000,
                       np.random.default_rng(0))
    model = PatchAutoencoder(AEParams(epochs=10, seed=0), centre_thermal_index(spec), device="cuda").fit(X)
    assert next(model.net_.parameters()).is_cuda
    anom, nd, red, nir = plume_tile(64, 2, plume_k=1.5)
    rows = patch_rows(feature_stack(anom / 0.15, nd, red, nir), spec, 0, 64)
    on_gpu = model.score_samples(rows)
    on_cpu = model.to("cpu").score_samples(rows)
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-4, atol=1e-4)
    res = on_gpu.reshape(64, 64)
    assert res[32, 40] > np.quantile(res, 0.98)


def test_fused_detection_on_cuda_flags_the_plume_like_on_cpu():
    anom, nd, red, nir = plume_tile(60, 3, plume_k=2.0)  # a multiple of the 5 px IF block
    valid = np.ones(anom.shape, bool)
    out = {}
    for dev in ("cpu", "cuda"):
        p = DetectorParams(method="fused", patch=PatchSpec(size=5, step=2), device=dev, ae_epochs=10,
                           ae_train_patches=3000, max_batch=1024, seed=0)
        out[dev] = detect(anom, 0.15, nd, red, nir, valid, p)[0].risk
    for risk in out.values():
        assert risk[32, 40] > np.quantile(risk, 0.97)
    # training differs only by floating-point order between devices: the maps agree closely
    assert np.corrcoef(out["cpu"].ravel(), out["cuda"].ravel())[0, 1] > 0.95
