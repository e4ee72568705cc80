"""Every method over held-out members of the simulator family, plus the real Landsat sample: the table and
power curve docs/measurements.md quotes.

    .venv/bin/python benchmarks/family.py --members 100 101 102 103 104 105 106 107 108 109 110 111 \
        --json benchmarks/results/family.json --png docs/img/family_power.png

Tuning (choice of predictor bands, ridge penalty, guard ratio, ranking window and peak radius) was done on
members 0-7 only, the statistic's window along the pipe (``segments.window_widths``) on members 0-11; report on
members >= 100 (``--members``). Each member is a 6 km city drawn by
:func:`heattrack.simulate.family_spec` (random LST physics, albedo texture, hot roads, clutter, leaks 1-15 K
with sigma 4-30 m, distractor density, clouds). For each member: one run with the defaults (``dms`` sharpening,
``residual`` ranking) and one with ``detect.method: baseline`` (the simple reference: max along the segment of
plain LST minus its 310 m median), and that baseline run's points ranked with the default's window along the pipe
(how much of the default's gain the window alone makes). Printed per member and summarised (mean, worst): 10 m LST RMSE gain over
bilinear, segment ROC-AUC of both rankings and their paired difference with its DeLong 95 % interval (per member,
and over the members: on how many the default is significantly above / below the baseline), recall of
sensor-visible leaks (footprint-blurred peak >= 0.7 K)
in the top 5 % of segments, and the power curve: share of leaks in the top 5 % by footprint-blurred peak.
Then aggregate-sharpen-compare on the real Momotombo scene (six SR bands).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from heldout import (  # benchmarks/ is the script's folder
    SEEN_RADIUS_M,
    heldout_parser,
    overrides,
    paired_columns,
    pooled_difference,
    seen_at_the_leak,
    share_interval,
    spec_overrides,
    workspace,
)

from heattrack.config import load_config
from heattrack.evaluate import (
    aggregate_sharpen_compare,
    compare_rankings,
    evaluate_run,
    read_landsat_for_asc,
    segment_metrics,
)
from heattrack.io.point_statistic import read_point_statistic
from heattrack.kernels.predictors import LANDSAT_TIRS_PSF_SIGMA_M
from heattrack.kernels.ranking import plume_attenuation
from heattrack.kernels.segments import segment_window_max
from heattrack.orchestration.run import run
from heattrack.simulate import family_spec, simulate_scene

REAL = Path(__file__).parents[1] / "tests" / "data" / "real" / "landsat-momotombo"
VISIBLE_K = 0.7
BINS_K = (0.0, 0.35, 0.7, 1.5, 3.0, 100.0)


def footprint_peak_k(amplitude_k: np.ndarray, fwhm_m: np.ndarray,
                     sigma_sensor_m: float = LANDSAT_TIRS_PSF_SIGMA_M) -> np.ndarray:
    """Peak of a Gaussian plume (peak ``amplitude_k``, ``fwhm_m``) seen through a Gaussian sensor footprint."""
    return np.asarray(amplitude_k) * np.array([plume_attenuation(sigma_sensor_m, f) for f in np.asarray(fwhm_m)])


def leak_ranks(scene: Path, out: Path) -> pd.DataFrame:
    """Each planted leak's segment rank share (rank / scored segments) and footprint-blurred peak."""
    truth = json.loads((scene / "truth" / "truth.json").read_text())
    leaks = gpd.read_file(scene / "truth" / "leaks.geojson")
    seg = gpd.read_file(out / "segments.geojson")[["segment_id", "rank"]]
    n = int(pd.to_numeric(seg["rank"], errors="coerce").notna().sum())
    df = leaks.drop(columns="geometry").merge(seg, on="segment_id", how="left")
    # one row per leaking segment (several leaks on one segment: the strongest)
    df["peak_k"] = footprint_peak_k(df["amplitude_k"], df["fwhm_m"])
    df = df.sort_values("peak_k", ascending=False).drop_duplicates("segment_id")
    df["rank_share"] = pd.to_numeric(df["rank"], errors="coerce") / max(n, 1)
    df["seen"] = seen_at_the_leak(out, leaks.loc[df.index])
    df["crs"] = truth["crs"]
    return df


def baseline_with_window(scene: Path, out: Path, window: int) -> tuple[float, float]:
    """The ``baseline`` run's points ranked with the default's window along the pipe instead of the largest point:
    how much of the default's gain the window alone makes. ROC-AUC over the scored segments and the share of the
    sensor-visible leaks in the top 5 %."""
    truth = json.loads((scene / "truth" / "truth.json").read_text())
    ps = read_point_statistic(out / "point_statistic.npz")
    stat = segment_window_max(ps.stat_k.astype(float), ps.segment, len(ps.segment_ids), window)
    seg = gpd.read_file(out / "segments.geojson").set_index("segment_id").loc[ps.segment_ids]
    is_leak = np.isin(ps.segment_ids, truth["leak_segment_ids"])
    auc = segment_metrics(stat, is_leak, seg.to_crs(truth["crs"]).geometry.length.to_numpy() / 1000.0)["roc_auc"]
    lr = leak_ranks(scene, out)
    vis = set(lr.loc[lr["peak_k"] >= VISIBLE_K, "segment_id"])
    ok = np.isfinite(stat)
    share = np.full(stat.size, np.nan)
    share[np.flatnonzero(ok)[np.argsort(-stat[ok], kind="stable")]] = np.arange(1, ok.sum() + 1) / ok.sum()
    v = np.isin(ps.segment_ids, list(vis))
    return auc, float(np.mean(np.nan_to_num(share[v], nan=1.0) <= 0.05)) if v.any() else float("nan")


def main() -> None:
    ap = heldout_parser(__doc__, 12)
    ap.add_argument("--png", type=Path, default=None)
    args = ap.parse_args()
    rows, leak_rows = [], []
    t0 = time.perf_counter()
    with workspace() as (tmp, client):
        for m in args.members:
            scene = Path(tmp) / f"m{m}"
            simulate_scene(scene, family_spec(m, size_km=args.size_km, **spec_overrides(args)))
            row = {"member": m}
            for name, over in (("default", overrides(args)), ("baseline", {"detect.method": "baseline"})):
                cfg = load_config(None, {"input.input": scene, "input.pipes": scene / "pipes.geojson", **over})
                out = Path(tmp) / f"out{m}-{name}"
                run(cfg, out, client=client)
                ev = evaluate_run(scene, out)
                lr = leak_ranks(scene, out)
                vis = lr[lr["peak_k"] >= VISIBLE_K]
                row[f"{name}_auc"] = ev["detection"]["roc_auc"]
                row[f"{name}_visible_top5"] = float((vis["rank_share"] <= 0.05).mean()) if len(vis) else float("nan")
                row[f"{name}_n_visible"] = int(len(vis))
                # a visible leak under cloud (its segment has no clear pixel: no_data, no rank) cannot be ranked by
                # any statistic on this date: the share among the scored ones separates the ranking from the sky
                scored = vis[vis["rank_share"].notna()]
                row[f"{name}_n_visible_clouded"] = int(len(vis) - len(scored))
                row[f"{name}_visible_scored_top5"] = float((scored["rank_share"] <= 0.05).mean()) if len(scored) \
                    else float("nan")
                # seen where the leak is (clear pixels at its own points): what a ranking could find on this date
                seen = vis[vis["seen"]]
                row[f"{name}_n_visible_seen"] = int(len(seen))
                row[f"{name}_visible_seen_top5"] = float((seen["rank_share"] <= 0.05).mean()) if len(seen) \
                    else float("nan")
                if name == "default":
                    d = ev["downscaling"]
                    row["lst_gain"] = d["rmse_ratio_bilinear_over_sharpened"]
                    row["rmse_bilinear_k"], row["rmse_dms_k"] = d["rmse_bilinear_k"], d["rmse_sharpened_k"]
                    row["methods"] = sorted({t["sharpen"].get("method") for t in
                                             json.loads((out / "run.json").read_text())["tile_summaries"].values()})
                lr["method"], lr["member"] = name, m
                leak_rows.append(lr.drop(columns=["crs"]))
                if name == "baseline":
                    det = json.loads((Path(tmp) / f"out{m}-default" / "run.json").read_text()).get("detectability")
                    # a pixel-risk detector (--set detect.method=local ...) has no window along the pipe
                    row["baseline_window_auc"], row["baseline_window_visible_top5"] = baseline_with_window(
                        scene, out, det["window_points"]) if det else (float("nan"), float("nan"))
            # the default's ROC-AUC minus the baseline's, paired over the same segments (DeLong): with a dozen leaks
            # per city a difference of a few hundredths is within what another draw of the leaks would give
            row.update(paired_columns(compare_rankings(scene, Path(tmp) / f"out{m}-default",
                                                       Path(tmp) / f"out{m}-baseline")))
            # TsHARP as a second reference for the 10 m LST (the NDVI regression the literature starts from)
            cfg = load_config(None, {"input.input": scene, "input.pipes": scene / "pipes.geojson",
                                     "downscale.method": "tsharp"})
            run(cfg, Path(tmp) / f"out{m}-tsharp", client=client)
            row["tsharp_lst_gain"] = evaluate_run(scene, Path(tmp) / f"out{m}-tsharp")["downscaling"][
                "rmse_ratio_bilinear_over_sharpened"]
            rows.append(row)
            print(f"member {m}: LST gain {row['lst_gain']:.2f}x ({'/'.join(row['methods'])}; TsHARP "
                  f"{row['tsharp_lst_gain']:.2f}x)  AUC default "
                  f"{row['default_auc']:.3f} baseline {row['baseline_auc']:.3f} (difference "
                  f"{row['delta_auc']:+.3f}, 95 % {row['delta_auc_ci95'][0]:+.3f} to {row['delta_auc_ci95'][1]:+.3f})"
                  f"  visible leaks in top 5 %: "
                  f"{row['default_visible_top5']:.2f} vs {row['baseline_visible_top5']:.2f} "
                  f"(n={row['default_n_visible']})", flush=True)
    df = pd.DataFrame(rows)
    leaks = pd.concat(leak_rows, ignore_index=True)
    print(f"\n{len(df)} held-out members ({time.perf_counter() - t0:.0f} s)")
    for col in ("lst_gain", "tsharp_lst_gain", "default_auc", "baseline_auc", "baseline_window_auc",
                "default_visible_top5", "baseline_visible_top5", "baseline_window_visible_top5"):
        print(f"{col:24s} mean {df[col].mean():.3f}  worst {df[col].min():.3f}")
    visible_pooled = {}
    for name in ("default", "baseline"):
        n_vis, n_cloud = int(df[f"{name}_n_visible"].sum()), int(df[f"{name}_n_visible_clouded"].sum())
        hits = (df[f"{name}_visible_top5"] * df[f"{name}_n_visible"]).sum()
        lo, hi = share_interval(hits, n_vis)
        n_seen = int(df[f"{name}_n_visible_seen"].sum())
        seen_hits = (df[f"{name}_visible_seen_top5"].fillna(0.0) * df[f"{name}_n_visible_seen"]).sum()
        visible_pooled[name] = {"hits": int(round(hits)), "n": n_vis, "share": hits / max(n_vis, 1), "ci95": [lo, hi],
                                "seen": {"hits": int(round(seen_hits)), "n": n_seen,
                                         "share": seen_hits / max(n_seen, 1),
                                         "ci95": list(share_interval(seen_hits, n_seen))}}
        print(f"{name}: visible leaks in the top 5 % pooled {hits / max(n_vis, 1):.3f} ({hits:.0f} of {n_vis}; 95 % "
              f"{lo:.2f}-{hi:.2f}); "
              f"{n_cloud} of them under cloud (segment no_data); of the scored ones "
              f"{hits / max(n_vis - n_cloud, 1):.3f}; of the {n_seen} seen where the leak is (a clear point within "
              f"{SEEN_RADIUS_M:g} m) {seen_hits / max(n_seen, 1):.3f} ({seen_hits:.0f})")
    wins = int((df["default_auc"] > df["baseline_auc"]).sum())
    print(f"default ROC-AUC above baseline on {wins} of {len(df)} members, above the baseline with the default's "
          f"window on {int((df['default_auc'] > df['baseline_window_auc']).sum())}")
    pooled = pooled_difference(df)
    print(f"default minus baseline ROC-AUC (DeLong, paired per member): significantly above on {pooled['above']}, "
          f"significantly below on {pooled['below']} of {len(df)} (95 %); over the members {pooled['mean']:+.3f} "
          f"(95 % {pooled['ci95'][0]:+.3f} to {pooled['ci95'][1]:+.3f}, p {pooled['p_value']:.1e})")
    curve = {}
    for method in ("default", "baseline"):
        sel = leaks[leaks["method"] == method]
        bins = pd.cut(sel["peak_k"], BINS_K)
        g = sel.groupby(bins, observed=False)["rank_share"]
        curve[method] = [{"peak_k": f"{iv.left:g}-{iv.right:g}", "n": int(n), "top5": float(v)}
                         for iv, n, v in zip(g.size().index, g.size().values, g.apply(lambda s: (s <= 0.05).mean()))]
        print(method, "share of leaks in the top 5 % by footprint peak:",
              ", ".join(f"{c['peak_k']} K: {c['top5']:.2f} (n={c['n']})" for c in curve[method]))
    lst, bands, product = read_landsat_for_asc(REAL)
    real = {}
    for f, e in ((3, 1), (9, 3)):
        r = aggregate_sharpen_compare(lst, bands, factor=f, eval_factor=e)
        real[f"{f}/{e}"] = {k: r[k]["rmse_k"] for k in ("bilinear", "tsharp", "dms")}
        real[f"{f}/{e}"]["dms_used"] = r["dms"]["info"].get("method")
        print(f"{product} factor {f} eval {e}: bilinear {r['bilinear']['rmse_k']:.3f} K, tsharp "
              f"{r['tsharp']['rmse_k']:.3f} K, dms {r['dms']['rmse_k']:.3f} K (used: {r['dms']['info'].get('method')})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"members": rows, "power_curve": curve, "real": real,
                                         "delta_auc_pooled": pooled, "visible_top5_pooled": visible_pooled},
                                        indent=1, default=str))
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        for method, pts in curve.items():
            ax.plot(range(len(pts)), [p["top5"] for p in pts], "o-", label=method)
        ax.set_xticks(range(len(curve["default"])), [p["peak_k"] for p in curve["default"]])
        ax.set_xlabel("leak peak seen through the Landsat footprint (K)")
        ax.set_ylabel("share of leaks in top 5 %")
        ax.set_title(f"power curve, {len(df)} held-out family members", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        args.png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.png, dpi=110)


if __name__ == "__main__":
    main()
