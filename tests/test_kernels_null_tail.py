"""The segment statistic's null: the flag level holds the false-alarm share of leak-free segments near alpha where
the network's own quantile (leaks in its top) and a Gaussian of median and MAD (a heavy clutter tail) do not."""

from __future__ import annotations

import numpy as np
import pytest

from heattrack.kernels.null_tail import MIN_SEGMENTS, fit_tail_null
from heattrack.kernels.segments import network_z


def _network(rng, n_free=20000, leak_share=0.01):
    """Leak-free statistics with a right-skewed, heavier-than-Gaussian tail (a gamma: not the fitted family),
    and 1 % leaks far in the top."""
    free = rng.gamma(2.0, 0.15, n_free)
    leaks = np.quantile(free, 0.999) + rng.uniform(0.0, 2.0, int(leak_share * n_free))
    return free, np.concatenate([free, leaks])


@pytest.mark.parametrize("alpha", [0.005, 0.01, 0.02, 0.05])
def test_the_flag_level_holds_the_leak_free_share_near_alpha(rng, alpha):
    free, network = _network(rng)
    level = fit_tail_null(network).level(alpha)
    share = float((free > level).mean())
    # a gamma's tail is a little lighter than its bulk's extrapolation: conservative, within a factor of 2 (at 1 %:
    # 0.61-0.82x over ten seeds)
    assert alpha / 2 <= share <= alpha * 1.5, share
    if alpha <= 0.01:  # what it replaces: the network's own quantile flags far fewer leak-free segments (the
        # leaks fill its top), a Gaussian of the median and MAD far more (the clutter's tail is heavier)
        assert (free > np.quantile(network, 1 - alpha)).mean() < alpha / 1.5
        assert (network_z(network)[1][: free.size] < alpha).mean() > alpha * 1.5


def test_p_values_are_the_level_read_backwards(rng):
    free, network = _network(rng)
    null = fit_tail_null(network)
    p = null.p_value(network)
    order = np.argsort(network)
    assert np.all(np.diff(p[order]) <= 1e-12)  # a larger statistic is never less surprising
    assert null.p_value(np.array([null.level(0.01)]))[0] == pytest.approx(0.01)
    assert null.p_value(np.array([np.median(network)]))[0] == pytest.approx(0.5, abs=0.01)
    assert np.isnan(null.p_value(np.array([np.nan, 1.0]))[0])
    # leak-free p-values are near uniform in the tail: p < 0.05 for about 5 % of them
    assert 0.05 / 1.5 <= (null.p_value(free) < 0.05).mean() <= 0.05 * 1.5


def test_a_small_network_has_no_flag_level_and_a_flat_one_falls_back_to_its_own_quantiles():
    few = np.arange(MIN_SEGMENTS - 1, dtype=float)
    null = fit_tail_null(few)
    # its own quantile would flag its warmest segment whatever it reads (one segment: always): none is flagged
    assert not null.fitted and np.isnan(null.level(0.1)) and np.isnan(fit_tail_null(np.array([3.0])).level(0.01))
    assert null.p_value(np.array([MIN_SEGMENTS - 2.0]))[0] == pytest.approx(1 / (MIN_SEGMENTS - 1))  # its share
    flat = np.concatenate([np.zeros(100), [1.0, 2.0]])  # the bulk does not rise: no tail to fit
    null = fit_tail_null(flat)
    assert not null.fitted and null.level(0.01) == pytest.approx(np.quantile(flat, 0.99))
    assert null.p_value(np.array([2.0]))[0] == pytest.approx(1 / 102)
    assert np.isnan(fit_tail_null(np.full(5, np.nan)).level(0.01))


def test_the_run_states_what_it_could_see_by_length_of_the_ranked_network():
    """The run summary's line: shares of the ranked network's length with mdl_k at or below 3 / 5 / 10 K; unranked
    segments and those without mdl_k (a network too small for its null) left out; nothing to say without any."""
    import geopandas as gpd

    from heattrack.orchestration.reduce import detectability_note

    seg = gpd.GeoDataFrame({"mdl_k": [2.0, 4.0, 8.0, 30.0, 1.0, np.nan], "length_m": [100.0, 100.0, 200.0, 600.0,
                                                                                        5000.0, 100.0],
                            "status": ["ok", "ok", "ok", "ok", "no_data", "ok"]})
    note = detectability_note(seg, 20.0)
    assert "plume is 20 m wide" in note and "10% of the ranked network at a 3 K peak, 20% at 5 K, 40% at 10 K" in note
    assert "median mdl_k 6.0 K" in note
    seg.loc[0, "length_m"] = 1.0  # 1 of 901 m: under 1 %
    assert "under 1% of the ranked network at a 3 K peak" in detectability_note(seg, 20.0)
    assert detectability_note(seg.assign(mdl_k=np.nan), 20.0) is None
    assert detectability_note(seg.drop(columns="mdl_k"), 20.0) is None
