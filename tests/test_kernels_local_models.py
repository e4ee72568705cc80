"""Local models of the sharpener (kernels/local_models.py): window sums, the fitted relation, the compiled pass, and
what they add to DMS where the optics-LST relation changes across a tile."""

import numpy as np

from heattrack.kernels.dms import DMSParams, dms_sharpen, local_window_cells
from heattrack.kernels.local_models import _window_sums, apply_local_models, local_models
from heattrack.kernels.lst import block_mean
from heattrack.kernels.predictors import predictor_stack


def test_window_sums_are_the_sums_over_each_blocks_window(rng):
    maps = rng.normal(size=(3, 23, 17))
    got = _window_sums(maps, 5, 2)
    for by in range(5):
        for bx in range(4):
            y0, y1 = max(0, 5 * by - 2), min(23, 5 * by + 7)
            x0, x1 = max(0, 5 * bx - 2), min(17, 5 * bx + 7)
            np.testing.assert_allclose(got[:, by, bx], maps[:, y0:y1, x0:x1].sum(axis=(1, 2)))


def test_local_models_recover_a_relation_that_changes_across_the_grid(rng):
    """Residual = +2 x predictor on the left half, -2 x on the right: each window's slope has its half's sign."""
    x = rng.normal(size=(1, 40, 40))
    slope = np.where(np.arange(40)[None, :] < 20, 2.0, -2.0)
    resid = slope * x[0] + rng.normal(0, 0.05, (40, 40))
    coef, mu, sd = local_models(resid, x, np.ones((40, 40), bool), 5, 0.01)
    s = coef[1] / sd[0]
    assert (s[:, :3] > 1.8).all() and (s[:, -3:] < -1.8).all()
    assert local_models(resid, x, np.zeros((40, 40), bool), 5, 0.01) is None  # nothing usable: no models


def test_the_compiled_pass_is_the_numpy_one(rng, monkeypatch):
    import heattrack.kernels.local_models as lm

    models = (rng.normal(size=(4, 6, 7)).astype(np.float32), rng.normal(size=3), rng.uniform(0.5, 2, 3))
    pf = rng.normal(size=(3, 57, 66)).astype(np.float32)
    pf[1, 5, 5] = np.nan
    fast = apply_local_models(pf, models, 10)
    monkeypatch.setattr(lm, "compiled", lambda fn: None)
    slow = apply_local_models(pf, models, 10)
    np.testing.assert_array_equal(fast, slow)
    assert np.isnan(fast[5, 5]) and np.isfinite(fast).sum() == fast.size - 1


def test_window_in_metres_engages_only_where_it_holds_enough_cells():
    assert local_window_cells(500, 100) == 5 and local_window_cells(500, 270) == 0 and local_window_cells(0, 100) == 0


def test_dms_with_local_models_where_the_relation_changes_across_the_tile(rng):
    """The same reflectance means 3x the cooling in the west as in the east (two districts): one global model averages
    them, the local models put each district's relation back; they are recorded, and off they change nothing."""
    n, f = 300, 10
    yy, xx = np.mgrid[0:n, 0:n]
    nd = np.clip(0.4 + 0.25 * np.sin(xx / 12.0) * np.cos(yy / 17.0) + rng.normal(0, 0.03, (n, n)), 0.02, 0.9)
    west = xx < n // 2
    truth = (285 + np.where(west, -9.0, -3.0) * nd + rng.normal(0, 0.1, (n, n))).astype(np.float32)
    red = (0.12 - 0.08 * nd).astype(np.float32)
    nir = (red * (1 + nd) / (1 - nd)).astype(np.float32)
    stack, names = predictor_stack({"B04": red, "B08": nir})
    valid = np.ones((n, n), bool)
    coarse = block_mean(truth, f)
    rmse = {}
    for lw in (0, 5):
        res = dms_sharpen(coarse, stack, valid, f, DMSParams(local_window=lw), names=names)
        rmse[lw] = float(np.sqrt(np.nanmean((res.lst - truth) ** 2)))
        if lw:
            assert res.info["local_models"]["used"] and res.info["local_models"]["holdout_rmse_k"] > 0
        else:
            assert "local_models" not in res.info
    assert rmse[5] < 0.95 * rmse[0], rmse
