"""Are the flags calibrated? On held-out family members, the share of leak-free segments each flag level marks
against the stated false-alarm share ``alpha`` (``segments.mdl_alpha``), and the share of leak-free segments
among those Benjamini-Hochberg flags at q = 0.05 on the segments' p-values: the run's null (an upper tail fitted
to the network's bulk, ``kernels/null_tail.py``) beside the two it replaced, the network's own quantile and a
Gaussian of the median and MAD, for the default ranking and the simple ``baseline``.

    .venv/bin/python benchmarks/flag_calibration.py --json benchmarks/results/flag_calibration.json

The run's own flags at alpha 1 % are its segments' ``flagged`` column; the other alphas are the same fit of the run's
statistics (what a run with that ``segments.mdl_alpha`` computes). Per city the count of flagged leak-free
segments is binomial (a few hundred segments, ~1-5 expected at 1 %), so the check is pooled over the members, with
the number of cities inside the binomial 90 % band of an exactly calibrated level.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from heldout import heldout_parser, overrides, spec_overrides, workspace  # benchmarks/ is the script's folder
from scipy.special import ndtr, ndtri
from scipy.stats import binom

from heattrack.config import load_config
from heattrack.kernels.changes import benjamini_hochberg
from heattrack.kernels.null_tail import fit_tail_null
from heattrack.kernels.segments import network_z
from heattrack.orchestration.run import run
from heattrack.simulate import family_spec, simulate_scene

ALPHAS = (0.005, 0.01, 0.02, 0.05)
NULLS = ("fitted tail (run)", "network quantile", "Gaussian median/MAD")


def levels(stat: np.ndarray, alpha: float) -> dict[str, float]:
    ok = stat[np.isfinite(stat)]
    med = float(np.median(ok))
    mad = 1.4826 * float(np.median(np.abs(ok - med)))
    return {NULLS[0]: fit_tail_null(stat).level(alpha), NULLS[1]: float(np.quantile(ok, 1 - alpha)),
            NULLS[2]: med + float(ndtri(1 - alpha)) * mad}


def p_values(stat: np.ndarray) -> dict[str, np.ndarray]:
    n = np.isfinite(stat).sum()
    rank = np.argsort(np.argsort(-np.nan_to_num(stat, nan=-np.inf)))  # 0 for the largest
    return {NULLS[0]: fit_tail_null(stat).p_value(stat),
            NULLS[1]: np.where(np.isfinite(stat), (rank + 1) / max(n, 1), np.nan),
            NULLS[2]: ndtr(-network_z(stat)[0])}


def member_counts(segments: Path, leaks: set[str]) -> dict:
    import geopandas as gpd

    s = gpd.read_file(segments)
    stat = s["stat_k"].to_numpy(float)
    free = ~s["segment_id"].isin(leaks).to_numpy() & np.isfinite(stat)
    out = {"leak_free": int(free.sum()), "run_level_flags": int(s.loc[free, "flagged"].sum())}  # the run's own
    for a in ALPHAS:
        out[f"{a:g}"] = {k: int((stat[free] > v).sum()) for k, v in levels(stat, a).items()}
    out["bh"] = {}
    for k, p in p_values(stat).items():
        flagged = benjamini_hochberg(p, 0.05)
        out["bh"][k] = [int(flagged.sum()), int((flagged & free).sum())]
    return out


def summary(per_member: list[dict]) -> dict:
    res = {}
    n_free = np.array([m["leak_free"] for m in per_member])
    for a in ALPHAS:
        lo, hi = binom.ppf(0.05, n_free, a), binom.ppf(0.95, n_free, a)
        for k in NULLS:
            c = np.array([m[f"{a:g}"][k] for m in per_member])
            # the cities resampled (2,000 draws): leak-free segments of one city are not independent draws, the
            # cities are — how far another set of as many cities could move the pooled share
            boot = np.random.default_rng(0).integers(0, len(c), (2000, len(c)))
            shares = c[boot].sum(axis=1) / n_free[boot].sum(axis=1) / a
            res.setdefault(k, {})[f"{a:g}"] = {"pooled_share": float(c.sum() / n_free.sum()),
                                              "pooled_over_alpha": float(c.sum() / n_free.sum() / a),
                                              "pooled_over_alpha_ci95_cities": [float(q) for q in
                                                                                np.quantile(shares, [0.025, 0.975])],
                                              "per_city_min": float((c / n_free).min()),
                                              "per_city_max": float((c / n_free).max()),
                                              "cities_in_binomial_band": int(((c >= lo) & (c <= hi)).sum())}
    for k in NULLS:
        f = np.array([m["bh"][k] for m in per_member]).sum(axis=0)
        res[k]["bh_q05"] = {"flagged": int(f[0]), "leak_free": int(f[1]),
                            "leak_free_share": float(f[1] / max(f[0], 1))}
    return res


def main() -> None:
    ap = heldout_parser(__doc__, 12)
    args = ap.parse_args()
    t0 = time.perf_counter()
    results: dict = {"members": args.members, "alphas": list(ALPHAS), "methods": {}}
    with workspace() as (tmp, client):
        per = {"residual": [], "baseline": []}
        for m in args.members:
            scene = Path(tmp) / f"m{m}"
            simulate_scene(scene, family_spec(m, size_km=args.size_km, **spec_overrides(args)))
            leaks = set(json.loads((scene / "truth" / "truth.json").read_text())["leak_segment_ids"])
            for method in per:
                cfg = load_config(None, {"input.input": scene, "input.pipes": scene / "pipes.geojson",
                                         **overrides(args), "detect.method": method})
                out = Path(tmp) / f"out{m}-{method}"
                run(cfg, out, client=client)
                per[method].append(member_counts(out / "segments.gpkg", leaks))
                c = per[method][-1]
                print(f"member {m}, {method}: leak-free {c['leak_free']}, flagged at the run's level (alpha 1 %) "
                      f"{c['run_level_flags']}", flush=True)
    for method, rows in per.items():
        results["methods"][method] = {"per_member": rows, "summary": summary(rows)}
        print(f"\n{method}, {len(rows)} held-out members ({time.perf_counter() - t0:.0f} s); leak-free segments "
              f"flagged (pooled share / alpha; per city min-max; cities inside the binomial 90 % band):")
        for k, s in results["methods"][method]["summary"].items():
            cells = "; ".join(f"{a}: {v['pooled_share']:.2%} ({v['pooled_over_alpha']:.2f}x, 95 % over the cities "
                              f"{v['pooled_over_alpha_ci95_cities'][0]:.2f}-{v['pooled_over_alpha_ci95_cities'][1]:.2f}x; "
                              f"{v['per_city_min']:.1%}-{v['per_city_max']:.1%}; {v['cities_in_binomial_band']} in band)"
                              for a, v in s.items() if a != "bh_q05")
            bh = s["bh_q05"]
            print(f"  {k}: {cells}\n    Benjamini-Hochberg q 0.05: {bh['flagged']} flagged, {bh['leak_free']} "
                  f"leak-free ({bh['leak_free_share']:.0%})")
        run_flags = sum(r["run_level_flags"] for r in rows) / sum(r["leak_free"] for r in rows)
        print(f"  the runs' own flag level (alpha 1 %): {run_flags:.2%} of leak-free segments flagged")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
