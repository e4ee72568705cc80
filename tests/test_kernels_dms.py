import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heattrack.kernels.dms import DMSParams, LinearLeafTreeEnsemble, dms_predictors, dms_sharpen, internal_asc
from heattrack.kernels.features import ndvi
from heattrack.kernels.lst import block_mean, tsharp_sharpen


def _scene(rng, n=120, f=10):
    """Fine red/NIR with blocky land cover; LST depends non-linearly on NDVI and on brightness."""
    yy, xx = np.mgrid[0:n, 0:n]
    patches = (np.sin(xx / 5.0) * np.cos(yy / 7.0) + 0.5 * np.sin((xx + yy) / 11.0))
    veg = np.clip(0.5 + 0.5 * patches, 0, 1).astype(np.float32)
    bright = np.clip(0.5 + 0.5 * np.cos(xx / 9.0 + yy / 13.0), 0, 1).astype(np.float32)
    red = (0.04 + 0.12 * (1 - veg) + 0.15 * bright * (1 - veg)).astype(np.float32)
    nir = (0.12 + 0.3 * veg + 0.1 * bright).astype(np.float32)
    nd = (nir - red) / (nir + red)
    truth = 285 - 12 * nd**2 + 6 * np.where(bright > 0.6, 1.0, 0.0) * (1 - veg) + rng.normal(0, 0.1, (n, n))
    return red, nir, truth.astype(np.float32)


def _land_cover_scene(rng, n=160, f=10):
    """Four cover types in 20-60 m patches whose LST is not monotone in NDVI: water (cold, NDVI < 0),
    asphalt (hot, NDVI ~0.1), bright roofs (mild, NDVI ~0.05), vegetation (cool, NDVI ~0.6)."""
    cls = np.kron(rng.integers(0, 4, (n // 3 + 1, n // 3 + 1)), np.ones((3, 3), int))[:n, :n]
    red = np.choose(cls, [0.03, 0.09, 0.30, 0.05]).astype(np.float32)
    nir = np.choose(cls, [0.02, 0.11, 0.33, 0.30]).astype(np.float32)
    lst = np.choose(cls, [276.0, 284.0, 279.0, 277.0]) + rng.normal(0, 0.2, (n, n))
    return red, nir, lst.astype(np.float32)


def test_dms_handles_continuous_vegetation_gradients(rng):
    """A smooth, non-linear NDVI relation (no discrete classes): DMS must not lose to TsHARP here either."""
    f = 10
    red, nir, truth = _scene(rng, n=200)
    valid = np.ones(truth.shape, bool)
    coarse = block_mean(truth, f)
    nd = ndvi(red, nir)
    d = dms_sharpen(coarse, dms_predictors(red, nir), valid, f, nd, DMSParams(min_samples_leaf=10, min_samples=20))
    t = tsharp_sharpen(coarse, nd, valid, f)
    rmse = lambda a: float(np.sqrt(np.mean((a - truth) ** 2)))  # noqa: E731
    assert rmse(d.lst) < rmse(t.lst)


def test_fast_lookup_prediction_matches_direct_prediction(rng):
    from heattrack.kernels.dms import _predict_fine

    red, nir, truth = _scene(rng, n=80)
    preds = dms_predictors(red, nir, n_classes=5)
    X = np.stack([block_mean(p, 10) for p in preds]).reshape(6, -1).T
    model = LinearLeafTreeEnsemble(n_estimators=3, max_depth=2, min_samples_leaf=5).fit(X, block_mean(truth, 10).ravel())
    mask = np.ones(truth.shape, bool)
    fast = _predict_fine(model, preds, mask)
    direct = model.predict(preds.reshape(6, -1).T).reshape(truth.shape)
    diff = np.abs(fast - direct)
    # NDVI quantised to 0.001: equal up to the leaf slope, except pixels within half a step of a tree split
    assert np.mean(diff < 0.02) > 0.995 and np.median(diff) < 0.005


def test_dms_recovers_nonlinear_relation_better_than_tsharp(rng):
    f = 10
    red, nir, truth = _land_cover_scene(rng)
    valid = np.ones(truth.shape, bool)
    coarse = block_mean(truth, f)
    nd = ndvi(red, nir)
    d = dms_sharpen(coarse, dms_predictors(red, nir, n_classes=4), valid, f, nd,
                    DMSParams(min_samples_leaf=10, min_samples=20, local_window_px=8))
    t = tsharp_sharpen(coarse, nd, valid, f)
    rmse = lambda a: float(np.sqrt(np.mean((a - truth) ** 2)))  # noqa: E731
    assert d.info["method"] == "dms", d.info
    assert rmse(d.lst) < 0.5 * rmse(t.lst)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 1000), cloud=st.floats(0.0, 0.4))
def test_dms_conserves_coarse_mean(seed, cloud):
    rng = np.random.default_rng(seed)
    f = 10
    red, nir, truth = _scene(rng, n=100)
    valid = rng.random(truth.shape) > cloud
    coarse = block_mean(np.where(valid, truth, np.nan), f, 0.2)
    res = dms_sharpen(coarse, dms_predictors(red, nir), valid, f, ndvi(red, nir),
                      DMSParams(min_samples_leaf=10, min_samples=20, local_window_px=6, seed=seed))
    ok = np.isfinite(coarse)
    np.testing.assert_allclose(block_mean(res.lst, f)[ok], coarse[ok], atol=2e-3)
    assert not np.isfinite(res.lst[~valid]).any()


def test_dms_is_deterministic_for_a_seed(rng):
    red, nir, truth = _scene(rng)
    coarse = block_mean(truth, 10)
    p = DMSParams(min_samples_leaf=10, min_samples=20, local_window_px=8, seed=7, local=True)
    a = dms_sharpen(coarse, dms_predictors(red, nir, seed=7), np.ones(truth.shape, bool), 10, ndvi(red, nir), p)
    b = dms_sharpen(coarse, dms_predictors(red, nir, seed=7), np.ones(truth.shape, bool), 10, ndvi(red, nir), p)
    np.testing.assert_array_equal(a.lst, b.lst)
    assert a.info["local_models"] > 1  # global + local models combined by their residuals
    np.testing.assert_allclose(block_mean(a.lst, 10), coarse, atol=2e-3)


def test_dms_falls_back_to_tsharp_with_too_few_samples(rng):
    red, nir, truth = _scene(rng, n=40)
    coarse = block_mean(truth, 10)
    res = dms_sharpen(coarse, dms_predictors(red, nir), np.ones(truth.shape, bool), 10, ndvi(red, nir),
                      DMSParams(min_samples=60))
    assert res.info["method"] == "tsharp" and res.info["fallback_from"] == "dms"
    assert "training samples" in res.info["reason"]


def test_guards_reject_dms_that_learns_noise(rng):
    """Predictors unrelated to LST: cross-validation (NDVI alone is as good) or the one-scale-up check must
    not let DMS paint them into the result."""
    n, f = 160, 10
    red = rng.uniform(0.02, 0.3, (n, n)).astype(np.float32)
    nir = rng.uniform(0.05, 0.5, (n, n)).astype(np.float32)
    yy, xx = np.mgrid[0:n, 0:n]
    truth = (285 + 3 * np.sin(xx / 30.0) + 2 * np.cos(yy / 25.0)).astype(np.float32)
    coarse = block_mean(truth, f)
    res = dms_sharpen(coarse, dms_predictors(red, nir), np.ones((n, n), bool), f, ndvi(red, nir),
                      DMSParams(min_samples_leaf=10, min_samples=20, max_depth=6))
    assert res.info["method"] in ("bilinear", "tsharp") and res.info["fallback_from"] == "dms"
    assert "cross-validation" in res.info["reason"] or "one scale up" in res.info["reason"]
    # the one-scale-up check on its own (CV-chosen depth fixed) rejects it as well
    res2 = dms_sharpen(coarse, dms_predictors(red, nir), np.ones((n, n), bool), f, ndvi(red, nir),
                       DMSParams(min_samples_leaf=10, min_samples=20, max_depth=6, depth_candidates=(6,)))
    assert set(res2.info["internal_asc_rmse_k"]) == {"bilinear", "tsharp", "dms"}
    assert res2.info["method"] in ("bilinear", "tsharp") and "one scale up" in res2.info["reason"]


def test_linear_leaf_ensemble_extrapolates_linearly_within_limits():
    x = np.linspace(0, 1, 400)[:, None]
    y = 3.0 * x[:, 0] + 1.0
    m = LinearLeafTreeEnsemble(n_estimators=3, max_depth=2, min_samples_leaf=50, extrapolation=0.25).fit(x, y)
    assert m.predict(np.array([[0.5]]))[0] == pytest.approx(2.5, abs=0.01)
    assert m.predict(np.array([[1.2]]))[0] == pytest.approx(4.6, abs=0.05)   # linear beyond the range
    assert m.predict(np.array([[9.0]]))[0] == pytest.approx(4.75, abs=0.05)  # but capped at +25 %


def test_internal_asc_returns_errors_per_method(rng):
    red, nir, truth = _scene(rng)
    pc = np.stack([block_mean(p, 10) for p in dms_predictors(red, nir)])
    out = internal_asc(block_mean(truth, 10), pc, block_mean(ndvi(red, nir), 10),
                       DMSParams(min_samples_leaf=10, min_samples=10, depth_candidates=(3,)))
    assert set(out) == {"bilinear", "tsharp", "dms"} and all(np.isfinite(v) for v in out.values())


def test_dms_predictors_are_class_memberships(rng):
    red, nir, _ = _scene(rng, n=60)
    red[0, 0] = np.nan
    p = dms_predictors(red, nir, n_classes=5, seed=1)
    assert p.shape == (6, 60, 60)
    ok = np.isfinite(p).all(axis=0)
    assert not ok[0, 0] and ok.sum() == 60 * 60 - 1
    np.testing.assert_array_equal(p[:5, ok].sum(axis=0), 1.0)
    np.testing.assert_allclose(p[5], ndvi(red, nir))  # the continuous NDVI row
    np.testing.assert_array_equal(p, dms_predictors(red, nir, n_classes=5, seed=1))  # seeded
