"""ROC-AUC intervals and the paired difference of two rankings (heattrack.kernels.roc, heattrack.evaluate)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import ndtr
from sklearn.metrics import roc_auc_score

from heattrack.errors import InputError
from heattrack.evaluate import compare_rankings, segment_metrics
from heattrack.kernels.roc import auc_interval, delong, paired_auc_difference


def _pairwise(score: np.ndarray, positive: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The definition, O(positives x negatives): AUC and each item's structural component."""
    x, y = score[positive], score[~positive]
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    return float(psi.mean()), psi.mean(axis=1), psi.mean(axis=0)


def test_delong_is_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(4):
        positive = rng.random(250) < 0.12
        a = np.round(rng.normal(size=250) + positive, 1)  # rounded: many ties within and across the classes
        b = np.round(0.5 * a + rng.normal(size=250), 1)
        auc, cov = delong(np.stack([a, b]), positive)
        (auc_a, pa, na), (auc_b, pb, nb) = _pairwise(a, positive), _pairwise(b, positive)
        expected = np.cov(np.stack([pa, pb])) / positive.sum() + np.cov(np.stack([na, nb])) / (~positive).sum()
        np.testing.assert_allclose(auc, [auc_a, auc_b], atol=1e-12)
        np.testing.assert_allclose(cov, expected, atol=1e-12)
        assert auc[0] == pytest.approx(roc_auc_score(positive, a), abs=1e-12)


def test_interval_covers_the_true_auc_at_its_level():
    """Binormal scores (leaks shifted by d): the true AUC is Phi(d / sqrt 2); 95 % intervals cover it ~95 % of the
    time."""
    rng = np.random.default_rng(0)
    d = 1.0
    true = float(ndtr(d / np.sqrt(2.0)))
    positive = np.r_[np.ones(40, bool), np.zeros(400, bool)]
    covered = []
    for _ in range(300):
        score = rng.normal(size=positive.size) + d * positive
        auc, lo, hi = auc_interval(score, positive)
        covered.append(lo <= true <= hi)
    assert 0.91 <= np.mean(covered) <= 0.99


def test_paired_difference_sign_spread_and_significance():
    rng = np.random.default_rng(5)
    positive = rng.random(600) < 0.05
    noise = rng.normal(size=600)
    good, poor = noise + 2.0 * positive, noise + 0.3 * positive + 0.8 * rng.normal(size=600)
    same = paired_auc_difference(good, good, positive)
    assert same["delta"] == 0 and same["se"] == 0 and same["p_value"] == 1.0
    d = paired_auc_difference(good, poor, positive)
    assert d["delta"] > 0 and d["ci_low"] > 0 and d["p_value"] < 0.01
    assert d["auc_a"] == pytest.approx(roc_auc_score(positive, good))
    r = paired_auc_difference(poor, good, positive)
    assert r["delta"] == pytest.approx(-d["delta"]) and r["se"] == pytest.approx(d["se"])
    # pairing: the difference is known better than either AUC alone when both rankings share the noise
    assert d["se"] < np.hypot(*(np.diff(auc_interval(s, positive)[1:])[0] / 3.92 for s in (good, poor)))
    # items one ranking did not score are left out of both
    holes = poor.copy()
    holes[:50] = np.nan
    assert paired_auc_difference(good, holes, positive)["n_items"] == 550
    # too few leaks: no difference can be stated
    assert np.isnan(paired_auc_difference(good, poor, np.eye(1, 600, 0, dtype=bool)[0])["delta"])


def test_segment_metrics_carry_the_interval():
    positive = np.r_[np.ones(10, bool), np.zeros(90, bool)]
    score = np.r_[np.linspace(1, 2, 10), np.linspace(0, 1.5, 90)]
    m = segment_metrics(score, positive, np.ones(100))
    lo, hi = m["roc_auc_ci95"]
    assert lo < m["roc_auc"] < hi <= 1.0


def test_compare_rankings_of_two_runs(tmp_path):
    """Two runs' segments.geojson of one scene, ranked differently: the difference of their ranks' ROC-AUC."""
    ids = [f"DH-{i:03d}" for i in range(60)]
    leaks = ids[:6]
    (tmp_path / "scene" / "truth").mkdir(parents=True)
    truth = {"leak_segment_ids": leaks, "crs": "EPSG:32652"}
    (tmp_path / "scene" / "truth" / "truth.json").write_text(json.dumps(truth))

    def write(name: str, ranks: list) -> None:
        feats = [{"type": "Feature", "properties": {"segment_id": i, "rank": r}, "geometry": None}
                 for i, r in zip(ids, ranks)]
        (tmp_path / name).mkdir()
        (tmp_path / name / "segments.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))

    write("a", list(range(1, 61)))  # the leaks ranked first
    write("b", list(range(60, 0, -1))[:59] + [None])  # the leaks ranked last; one segment without data
    c = compare_rankings(tmp_path / "scene", tmp_path / "a", tmp_path / "b")
    assert c["auc_a"] == 1.0 and c["auc_b"] == 0.0 and c["delta"] == 1.0 and c["n_items"] == 59
    with pytest.raises(InputError, match="holds no finished run"):
        compare_rankings(tmp_path / "scene", tmp_path / "a", tmp_path / "missing")
