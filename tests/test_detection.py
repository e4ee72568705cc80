"""Detectors: autoencoder, Isolation Forest, fusion, saved models, off-pipe penalty, GPU resource placement."""

from __future__ import annotations

import numpy as np
import pytest
from tiles import plume_tile as _scene

from heattrack.kernels.autoencoder import AEParams, PatchAutoencoder
from heattrack.kernels.detectors import DetectorParams, detect, robust_z
from heattrack.kernels.patches import (
    PatchSpec,
    batch_for_memory,
    centre_thermal_index,
    feature_stack,
    patch_rows,
    sample_patches,
)
from heattrack.kernels.segments import along_pipe_evidence


def test_patch_rows_match_sampled_patches():
    anom, nd, red, nir = _scene(20)
    stack = feature_stack(anom, nd, red, nir)
    spec = PatchSpec(size=3, step=2)
    allp = patch_rows(stack, spec, 0, 20)
    where = np.zeros((20, 20), bool)
    where[7, 11] = True
    one = sample_patches(stack, spec, where, 1, np.random.default_rng(0))
    np.testing.assert_array_equal(one[0], allp[7 * 20 + 11])
    # the centre thermal sample of a patch is the pixel itself
    ci = centre_thermal_index(PatchSpec(size=3, step=2))
    assert allp[7 * 20 + 11][ci[len(ci) // 2]] == pytest.approx(anom[7, 11])


def test_autoencoder_separates_an_injected_plume():
    clean = _scene(64, seed=1)
    spec = PatchSpec(size=5, step=2)
    stack = feature_stack(clean[0] / 0.15, *clean[1:])
    X = sample_patches(stack, spec, np.ones((64, 64), bool), 3000, np.random.default_rng(0))
    model = PatchAutoencoder(AEParams(epochs=30, seed=0), centre_thermal_index(spec), device="cpu").fit(X)
    anom, nd, red, nir = _scene(64, seed=2, plume_k=1.5)
    stack = feature_stack(anom / 0.15, nd, red, nir)
    res = model.score_samples(patch_rows(stack, spec, 0, 64)).reshape(64, 64)
    # the plume centre is among the most anomalous pixels; land-cover stripes are explained by NDVI
    assert res[32, 40] > np.quantile(res, 0.98)
    ring = np.ones((64, 64), bool)
    ring[24:41, 32:49] = False
    assert res[32, 40] > 3 * np.abs(res[ring]).mean()


def test_autoencoder_state_round_trip(tmp_path):
    from heattrack.io.models import load_count, load_model, read_model_file, save_model

    anom, nd, red, nir = _scene(48, seed=3)
    spec = PatchSpec()
    stack = feature_stack(anom, nd, red, nir)
    X = sample_patches(stack, spec, np.ones((48, 48), bool), 800, np.random.default_rng(0))
    model = PatchAutoencoder(AEParams(epochs=3), centre_thermal_index(spec), device="cpu").fit(X)
    path = save_model(tmp_path / "ae.pt", model, {"signature": {"x": 1}}, {"n_patches": 800})
    payload = read_model_file(path)
    assert payload["format_version"] == 1 and payload["config"]["signature"] == {"x": 1}
    before = load_count()
    loaded = load_model(path, "cpu")
    again = load_model(path, "cpu")
    assert loaded is again and load_count() == before + 1  # one load per process, then cached
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))


def test_foreign_or_missing_model_file_is_a_clear_error(tmp_path):
    from heattrack.errors import InputError
    from heattrack.io.models import read_model_file

    with pytest.raises(InputError, match="does not exist"):
        read_model_file(tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(InputError, match="not a heattrack model"):
        read_model_file(tmp_path / "bad.pt")


@pytest.mark.parametrize("method", ["iforest", "fused"])
def test_detectors_are_deterministic_with_a_seed(method):
    anom, nd, red, nir = _scene(60, seed=4, plume_k=1.0)
    valid = np.ones(anom.shape, bool)
    p = DetectorParams(method=method, ae_train_patches=1500, ae_epochs=4, iforest_block_px=2, seed=7)
    a, _ = detect(anom, 0.15, nd, red, nir, valid, p)
    b, _ = detect(anom, 0.15, nd, red, nir, valid, p)
    np.testing.assert_array_equal(a.risk, b.risk)
    assert np.isfinite(a.risk).all() and (a.risk >= 0).all() and (a.risk <= 1).all()


def test_fused_score_flags_the_plume():
    anom, nd, red, nir = _scene(64, seed=5, plume_k=1.5)
    res, _ = detect(anom, 0.15, nd, red, nir, np.ones(anom.shape, bool),
                    DetectorParams(method="fused", ae_train_patches=2000, ae_epochs=20, iforest_block_px=2))
    assert res.risk[32, 40] > np.quantile(res.risk, 0.97)
    assert set(res.z) == {"local", "ae", "iforest"}


def test_robust_z_ignores_invalid_pixels():
    v = np.array([[1.0, 2.0, 3.0, 1000.0]], np.float32)
    z = robust_z(v, np.array([[True, True, True, False]]))
    assert np.isnan(z[0, 3]) and z[0, 1] == 0.0


def test_a_far_distractor_does_not_raise_any_segment_risk():
    """Pipe points along row 10; a hot spot 30 px (300 m) away changes no pipe point's evidence."""
    anom, nd, red, nir = _scene(64, seed=6)
    valid = np.ones(anom.shape, bool)
    p = DetectorParams(method="local")
    base, _ = detect(anom, 0.15, nd, red, nir, valid, p)
    hot, _ = detect(_scene(64, seed=6, plume_k=4.0, at=(50, 32))[0], 0.15, nd, red, nir, valid, p)
    ev_base = along_pipe_evidence(base.risk, 2, 8)[10]
    ev_hot = along_pipe_evidence(hot.risk, 2, 8)[10]
    assert hot.risk[50, 32] > 0.9
    assert (ev_hot <= ev_base + 1e-6).all()


def test_off_pipe_penalty_lowers_a_nearby_hot_spot_but_not_an_on_pipe_one():
    risk = np.zeros((40, 40), np.float32)
    yy, xx = np.mgrid[:40, :40]
    off = np.exp(-((yy - 16) ** 2 + (xx - 20) ** 2) / 8.0).astype(np.float32)  # peaks 6 px off the pipe (row 10)
    on = np.exp(-((yy - 10) ** 2 + (xx - 20) ** 2) / 8.0).astype(np.float32)  # peaks on the pipe
    plain_off = along_pipe_evidence(off, 2, 0)[10, 20]
    pen_off = along_pipe_evidence(off, 2, 8)[10, 20]
    assert pen_off < 0.5 * plain_off
    assert along_pipe_evidence(on, 2, 8)[10, 20] == pytest.approx(along_pipe_evidence(on, 2, 0)[10, 20])
    assert along_pipe_evidence(risk, 2, 8).max() == 0.0


def test_inference_batch_is_bounded_by_the_memory_budget():
    b = batch_for_memory(75, 32, 64.0)
    assert 1024 <= b and b * 4 * (2 * 75 + 4 * 32) * 3 <= 64 * 2**20
    assert batch_for_memory(75, 32, 2048.0) > b


def test_patches_cut_on_the_device_score_like_host_patches():
    anom, nd, red, nir = _scene(37, seed=4, plume_k=1.0)
    spec = PatchSpec(size=5, step=3)
    stack = feature_stack(anom / 0.15, nd, red, nir)
    X = sample_patches(stack, spec, np.ones((37, 37), bool), 800, np.random.default_rng(0))
    # max_batch 100 patches < 3 rows of 37: many bands, edge padding at top, bottom and both sides
    model = PatchAutoencoder(AEParams(epochs=3, seed=0), centre_thermal_index(spec), device="cpu",
                             max_batch=100).fit(X)
    host = model.score_samples(patch_rows(stack, spec, 0, 37)).reshape(37, 37)
    np.testing.assert_array_equal(model.score_stack(stack, spec), host)  # auto on CPU: the host cut
    np.testing.assert_allclose(model.score_stack(stack, spec, cut="device"), host, rtol=1e-5, atol=1e-6)


def test_isolation_forest_evidence_from_the_cpu_stage_gives_the_same_fused_risk():
    from heattrack.kernels.detectors import iforest_evidence

    anom, nd, red, nir = _scene(60, seed=5, plume_k=1.5)
    valid = np.ones(anom.shape, bool)
    valid[:4] = False
    p = DetectorParams(method="fused", patch=PatchSpec(size=5, step=2), device="cpu", ae_epochs=3,
                       ae_train_patches=2000, seed=0)
    once = detect(anom, 0.15, nd, red, nir, valid, p)[0]
    iz = iforest_evidence(anom, 0.15, nd, red, nir, valid, p)
    split = detect(anom, 0.15, nd, red, nir, valid, p, iforest_z=iz)[0]
    np.testing.assert_array_equal(split.risk, once.risk)
    assert iforest_evidence(anom, 0.15, nd, red, nir, valid, DetectorParams(method="ae")) is None
