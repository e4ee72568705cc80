"""What the held-out benchmarks (family, sensors, changes, independent cities) share: the simulator-family members
they report on (100 and up; the defaults were tuned on 0-11), a workspace with one Dask client for all their runs,
and the 95 % intervals their figures are given with (paired ROC-AUC differences pooled over cities, Wilson shares,
Poisson counts)."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from heattrack.config import load_config
from heattrack.orchestration.cluster import make_client

if TYPE_CHECKING:
    import geopandas as gpd
    import numpy as np

FIRST_HELD_OUT = 100


def heldout_parser(doc: str, n_members: int) -> argparse.ArgumentParser:
    """``--members`` (default: the first ``n_members`` held-out ones), ``--size-km`` and ``--json``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--members", type=int, nargs="+", default=list(range(FIRST_HELD_OUT, FIRST_HELD_OUT + n_members)))
    ap.add_argument("--size-km", type=float, default=6.0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="a configuration override for the runs with the default method (repeatable; as "
                    "`heattrack run --set`), e.g. to try a setting on tuning members")
    ap.add_argument("--spec", dest="specs", action="append", default=[], metavar="FIELD=VALUE",
                    help="a SimulationSpec field for every member (repeatable), e.g. tirs_sample_m=100: Landsat's "
                    "thermal samples every 100 m resampled onto 30 m, as Collection 2 delivers them")
    return ap


def _parsed(options: list[str]) -> dict:
    from heattrack.config import parse_set_option

    return dict(parse_set_option(s) for s in options)


def spec_overrides(args: argparse.Namespace) -> dict:
    """The ``--spec FIELD=VALUE`` options as :func:`heattrack.simulate.family_spec` keyword arguments."""
    return _parsed(args.specs)


def overrides(args: argparse.Namespace) -> dict:
    """The ``--set KEY=VALUE`` options as a dict of dotted keys (values parsed as YAML)."""
    return _parsed(args.sets)


@contextmanager
def workspace(keep: Path | None = None) -> Iterator[tuple[Path, object]]:
    """A folder for the scenes and runs (``keep``, else a temporary one) and a Dask client on the default cluster."""
    with tempfile.TemporaryDirectory() as tmp, make_client(load_config(None, {}).compute) as client:
        yield Path(keep or tmp), client


def seen_over_needed(amplitude_k, fwhm_m, length_m, mdl_k, det: dict, res_m: float = 10.0,
                     spacing_m: float = 10.0):
    """Per planted leak: its peak as the run's segment statistic sees it (the chain's share of a plume of the leak's
    own width over the statistic's window along the pipe, expected over the leak's position on its segment,
    :func:`heattrack.kernels.ranking.segment_shares`; scaled by the run's injection test where it ran) over what its
    segment needed to reach the flag level (``mdl_k`` x the share a 20 m plume keeps there). 1 = exactly at the
    segment's ``mdl_k``. ``det``: run.json's detectability."""
    from functools import lru_cache

    import numpy as np

    from heattrack.kernels.ranking import segment_shares

    window = int(det.get("window_points", 1))

    @lru_cache(maxsize=None)
    def share(fwhm: float, n: int) -> tuple[float, float]:
        seg, centred = segment_shares(det["chain"], fwhm / res_m, window, spacing_m / res_m, np.array([n]))
        return float(seg[0]), centred

    pts = np.maximum(np.ceil(np.asarray(length_m, dtype=float) / spacing_m).astype(int), 1)
    ref = det["plume_fwhm_m"]
    measured = det["attenuation"] / share(ref, 1)[1]  # the injection test against the model (1 without one)
    seen = np.array([share(round(float(f), 1), int(n))[0] for f, n in zip(np.asarray(fwhm_m, dtype=float), pts)])
    need = np.asarray(mdl_k, dtype=float) * np.array([share(ref, int(n))[0] for n in pts]) * measured
    return seen * measured * np.asarray(amplitude_k, dtype=float) / np.maximum(need, 1e-9)


#: a leak counts as seen on the date when its own segment has a clear point (a statistic) within this distance
SEEN_RADIUS_M = 30.0


def seen_at_the_leak(out: Path, leaks: gpd.GeoDataFrame) -> np.ndarray:
    """Per leak: whether the run's statistic has a value (clear pixels) at a point of the leak's own segment within
    ``SEEN_RADIUS_M`` of the leak. A segment partly under cloud is scored from its clear part, so a leak under the
    cloud is ranked by pixels that do not see it: no statistic can find it on this date."""
    import geopandas as gpd
    import numpy as np

    from heattrack.io.point_statistic import read_point_statistic

    ps = read_point_statistic(out / "point_statistic.npz")
    grid = gpd.read_file(out / "segments.gpkg", rows=1).crs
    where = leaks.to_crs(grid).geometry
    index = {sid: i for i, sid in enumerate(ps.segment_ids)}
    stat = np.asarray(ps.stat_k, dtype=float)
    seen = []
    for sid, pt in zip(leaks["segment_id"], where):
        own = ps.segment == index.get(sid, -1)
        near = np.hypot(ps.x[own] - pt.x, ps.y[own] - pt.y) <= SEEN_RADIUS_M
        seen.append(bool(np.isfinite(stat[own][near]).any()))
    return np.array(seen, dtype=bool)


def paired_columns(cmp: dict) -> dict:
    """A city's row entries from :func:`heattrack.evaluate.compare_rankings` (default minus baseline): the columns
    :func:`pooled_difference` reads."""
    return {"delta_auc": cmp["delta"], "delta_auc_se": cmp["se"], "delta_auc_ci95": [cmp["ci_low"], cmp["ci_high"]],
            "delta_auc_p": cmp["p_value"]}


def pooled_difference(df) -> dict:
    """The members' paired ROC-AUC differences (``delta_auc``, ``delta_auc_se``, ``delta_auc_ci95``) summarised: on
    how many members the 95 % interval lies above / below 0, and their mean with its interval and two-sided p-value
    (the members are independent cities: the variances add)."""
    import numpy as np
    from scipy.special import ndtr

    d, se = df["delta_auc"].to_numpy(float), df["delta_auc_se"].to_numpy(float)
    lo, hi = np.array([c[0] for c in df["delta_auc_ci95"]]), np.array([c[1] for c in df["delta_auc_ci95"]])
    ok = np.isfinite(d) & np.isfinite(se)
    mean, s = float(d[ok].mean()), float(np.sqrt(np.sum(se[ok] ** 2)) / max(ok.sum(), 1))
    return {"above": int((lo > 0).sum()), "below": int((hi < 0).sum()), "members": int(ok.sum()), "mean": mean,
            "se": s, "ci95": [mean - 1.96 * s, mean + 1.96 * s],
            "p_value": float(2 * ndtr(-abs(mean) / s)) if s > 0 else float("nan")}


def share_interval(hits: float, n: int) -> list[float]:
    """The 95 % Wilson interval of a share of ``hits`` in ``n`` (e.g. visible leaks in the top 5 %): how far another
    draw of as many leaks could move it."""
    from scipy.stats import binomtest

    if n <= 0:
        return [float("nan"), float("nan")]
    ci = binomtest(int(round(hits)), int(n)).proportion_ci(0.95, method="wilson")
    return [float(ci.low), float(ci.high)]


def count_interval(k: int) -> list[float]:
    """The exact (Garwood) 95 % interval of the mean of a Poisson count observed as ``k`` (e.g. false ``new`` on
    the held-out network): the rate per 100 km is it over the network's length."""
    from scipy.stats import chi2

    return [float(chi2.ppf(0.025, 2 * k) / 2) if k > 0 else 0.0, float(chi2.ppf(0.975, 2 * k + 2) / 2)]
