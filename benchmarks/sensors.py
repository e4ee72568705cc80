"""What each sensor can see: the same held-out family cities screened from Landsat (100 m thermal by day,
sharpened with Sentinel-2), from a simulated ECOSTRESS night pass (70 m L2T LSTE tile in thermal/: night-time
land-cover contrast, 0.3 K noise, no optics) and from an airborne-like LST raster (the true 10 m LST + 0.1 K noise
in thermal/, no Landsat, no optics), with the default ranking. Segment ROC-AUC, the share of leaks in the top 5 % per leak strength, the
network share where a 3 / 5 / 10 K leak would be flagged, and the calibration of the per-segment detectability
``mdl_k``: of the leaks whose footprint-seen peak reaches the segment's mdl_k (scaled to the leak's own width),
the share the run flags (statistic at the flag level), against the share of leak-free segments flagged
(alpha = 0.01).

    .venv/bin/python benchmarks/sensors.py --json benchmarks/results/sensors.json --png docs/img/mdl_calibration.png
    .venv/bin/python benchmarks/sensors.py --plot-from benchmarks/results/sensors.json --png docs/img/mdl_calibration.png
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from heldout import (  # benchmarks/ is the script's folder
    heldout_parser,
    overrides,
    pooled_difference,
    seen_over_needed,
    workspace,
)

from heattrack.config import load_config
from heattrack.evaluate import compare_rankings, evaluate_run
from heattrack.orchestration.run import run
from heattrack.simulate import family_spec, simulate_scene

BINS_K = (1.0, 3.0, 6.0, 10.0, 15.0)
SENSORS = ("landsat", "ecostress", "airborne")


def ratio_half_flagged(ratio: np.ndarray, flagged: np.ndarray) -> float:
    """The leak peak (as a multiple of its segment's mdl_k) at which half the leaks are flagged: a logistic fit of
    flagged on log(ratio). mdl_k is calibrated where this is 1 (the issue asks within a factor 1.5)."""
    from sklearn.linear_model import LogisticRegression

    ok = np.isfinite(ratio) & (ratio > 0)
    if ok.sum() < 10 or len(np.unique(flagged[ok])) < 2:
        return float("nan")
    fit = LogisticRegression(C=1e6).fit(np.log(ratio[ok])[:, None], flagged[ok].astype(int))
    return float(np.exp(-fit.intercept_[0] / fit.coef_[0, 0]))


def plot_calibration(calib: dict, dest: Path) -> None:
    """The mdl_k calibration plot: per sensor, the share of planted leaks flagged by (leak peak seen / mdl_k), with
    the leak count per bin; a calibrated mdl_k flags half the leaks at 1x (the dotted line) and most above it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for k, (sensor, c) in enumerate(calib.items()):
        bins = list(c["flagged_by_peak_over_mdl"])
        share = [c["flagged_by_peak_over_mdl"][b][1] for b in bins]
        x = np.arange(len(bins)) + (k - 1) * 0.27
        half = c.get("ratio_half_flagged", float("nan"))
        ax.bar(x, share, width=0.27, label=f"{sensor} (half flagged at {half:.2f}x mdl_k; leak-free flagged "
                                            f"{c['leak_free_flagged_pooled']:.1%} pooled, alpha 1 %)")
        for xi, b in zip(x, bins):
            ax.text(xi, c["flagged_by_peak_over_mdl"][b][1] + 0.02, f"n={c['flagged_by_peak_over_mdl'][b][0]}",
                    ha="center", fontsize=7)
    ax.set_xticks(np.arange(len(bins)), [f"{b}x" for b in bins])
    ax.axhline(0.5, color="0.5", linestyle=":")
    ax.set_xlabel("leak peak seen by the chain / the segment's mdl_k")
    ax.set_ylabel("share of planted leaks flagged")
    ax.set_ylim(0, 1.1)
    ax.set_title("mdl_k calibration on six held-out family cities")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = heldout_parser(__doc__, 6)
    ap.add_argument("--png", type=Path, default=None, help="write the mdl_k calibration plot here")
    ap.add_argument("--plot-from", type=Path, default=None, help="only plot, from a JSON this script wrote")
    args = ap.parse_args()
    if args.plot_from:
        plot_calibration(json.loads(args.plot_from.read_text())["detectability"], args.png)
        return
    import geopandas as gpd
    import pandas as pd

    rows, leak_rows = [], []
    t0 = time.perf_counter()
    # --set applies to both rankings here: the fine-raster windows (thermal.*) are what both remove
    over = overrides(args)
    with workspace() as (tmp, client):
        for m in args.members:
            row = {"member": m}
            for sensor in SENSORS:
                scene = Path(tmp) / f"m{m}-{sensor}"
                simulate_scene(scene, family_spec(m, size_km=args.size_km, sensor=sensor))
                cfg = load_config(None, {"input.input": scene, "input.pipes": scene / "pipes.geojson", **over})
                out = Path(tmp) / f"out{m}-{sensor}"
                run(cfg, out, client=client)
                row[sensor] = evaluate_run(scene, out)["detection"]["roc_auc"]
                # the simple baseline ranking on the same input, for the table
                base_cfg = load_config(None, {"input.input": scene, "input.pipes": scene / "pipes.geojson", **over,
                                              "detect.method": "baseline"})
                run(base_cfg, Path(tmp) / f"out{m}-{sensor}-baseline", client=client)
                row[f"{sensor}_baseline"] = evaluate_run(scene, Path(tmp) / f"out{m}-{sensor}-baseline")[
                    "detection"]["roc_auc"]
                det = json.loads((out / "run.json").read_text())["detectability"]
                row[f"{sensor}_share_visible"] = det["network_share_visible"]
                leaks = gpd.read_file(scene / "truth" / "leaks.geojson").drop(columns="geometry")
                seg = gpd.read_file(out / "segments.gpkg")  # grid CRS, metres
                n = int(pd.to_numeric(seg["rank"], errors="coerce").notna().sum())
                cols = ["segment_id", "rank", "stat_k", "mdl_k", "length_m", "flagged"]
                df = leaks.merge(pd.DataFrame(seg[cols]), on="segment_id", how="left").sort_values("amplitude_k",
                                                                                                   ascending=False)
                df = df.drop_duplicates("segment_id")
                df["top5"] = pd.to_numeric(df["rank"], errors="coerce") / max(n, 1) <= 0.05
                df["sensor"] = sensor
                # the leak as the statistic sees it against what the segment needs (mdl_k of a 20 m plume)
                df["ratio"] = seen_over_needed(df["amplitude_k"], df["fwhm_m"], df["length_m"], df["mdl_k"], det)
                df["pred_visible"] = df["ratio"] >= 1.0
                df = df[df["stat_k"].notna()]
                df["flagged"] = df["flagged"].astype(bool)
                leak_rows.append(df[["amplitude_k", "fwhm_m", "top5", "sensor", "ratio", "pred_visible", "flagged"]])
                leaky = seg["segment_id"].isin(leaks["segment_id"])
                clean = seg[~leaky & seg["stat_k"].notna()]
                flags = clean["flagged"].to_numpy(bool)
                row[f"{sensor}_false_flag_share"] = float(flags.mean())
                row[f"{sensor}_false_flags"] = [int(flags.sum()), len(clean)]
                # of those, the segments that touch a leaking one (a leak at a junction warms its neighbour too)
                touch = clean.geometry.distance(seg.geometry[leaky].union_all()).to_numpy() <= 1.0
                row[f"{sensor}_false_flags_touching_a_leak"] = [int(flags[touch].sum()), int(touch.sum())]
            # paired over the same segments (DeLong): each sensor's default against its baseline, and the finer
            # thermal data against Landsat (the same city, pipes and leaks: one truth for all three)
            landsat_scene = Path(tmp) / f"m{m}-landsat"
            for a, b in [(sn, f"{sn}-baseline") for sn in SENSORS] + [(sn, "landsat") for sn in SENSORS[1:]]:
                c = compare_rankings(landsat_scene, Path(tmp) / f"out{m}-{a}", Path(tmp) / f"out{m}-{b}")
                row[f"delta_{a}_vs_{b}"] = {"delta": c["delta"], "se": c["se"], "ci95": [c["ci_low"], c["ci_high"]],
                                            "p_value": c["p_value"]}
            rows.append(row)
            print(f"member {m}: segment ROC-AUC " + ", ".join(
                f"{sn} {row[sn]:.3f} (baseline {row[sn + '_baseline']:.3f})" for sn in SENSORS), flush=True)
    df = pd.DataFrame(rows)
    leaks = pd.concat(leak_rows, ignore_index=True)
    print(f"\n{len(df)} held-out members ({time.perf_counter() - t0:.0f} s): ROC-AUC mean (worst), default | "
          "baseline ranking: " + "; ".join(
              f"{sn} {df[sn].mean():.3f} ({df[sn].min():.3f}) | {df[sn + '_baseline'].mean():.3f} "
              f"({df[sn + '_baseline'].min():.3f})" for sn in SENSORS))
    paired = {}
    for key in [k for k in rows[0] if k.startswith("delta_")]:
        d = pd.DataFrame({"delta_auc": [r[key]["delta"] for r in rows], "delta_auc_se": [r[key]["se"] for r in rows],
                          "delta_auc_ci95": [r[key]["ci95"] for r in rows]})
        paired[key] = pooled_difference(d)
        p = paired[key]
        print(f"{key[6:].replace('_vs_', ' minus ')} ROC-AUC over the members {p['mean']:+.3f} (95 % "
              f"{p['ci95'][0]:+.3f} to {p['ci95'][1]:+.3f}); significantly above on {p['above']}, below on "
              f"{p['below']} of {p['members']}")
    calib = {}
    for sensor in SENSORS:
        sel = leaks[leaks["sensor"] == sensor]
        vis, inv = sel[sel["pred_visible"]], sel[~sel["pred_visible"]]
        share = {k: float(np.mean([r[f"{sensor}_share_visible"][k] for r in rows])) for k in ("3", "5", "10")}
        # (flagged, scored) leak-free segments, summed over the cities: all of them, and those touching a leak
        false, near = (np.sum(df[f"{sensor}_{k}"].tolist(), axis=0)
                       for k in ("false_flags", "false_flags_touching_a_leak"))
        calib[sensor] = {"predicted_visible": int(len(vis)), "flagged_if_predicted_visible": float(vis["flagged"].mean())
                         if len(vis) else float("nan"), "predicted_invisible": int(len(inv)),
                         "flagged_if_predicted_invisible": float(inv["flagged"].mean()) if len(inv) else float("nan"),
                         "leak_free_flagged": float(df[f"{sensor}_false_flag_share"].mean()),
                         # pooled over the cities: the family's false-alarm share (the mean above weights small
                         # cities, with a few flags each, as much as large ones)
                         "leak_free_flagged_pooled": float(false[0] / false[1]),
                         # the flagged leak-free segments that touch a leaking one, and the share flagged among the
                         # leak-free segments that touch none
                         "leak_free_flagged_touching_a_leak": int(near[0]),
                         "leak_free_flagged_pooled_not_touching": float((false[0] - near[0]) / (false[1] - near[1])),
                         "network_share_visible": share}
        calib[sensor]["ratio_half_flagged"] = ratio_half_flagged(sel["ratio"].to_numpy(float),
                                                                 sel["flagged"].to_numpy(bool))
        g = sel.groupby(pd.cut(sel["ratio"], [0, 0.5, 1, 2, 4, np.inf], right=False), observed=False)["flagged"]
        calib[sensor]["flagged_by_peak_over_mdl"] = {f"{iv.left:g}-{iv.right:g}": [int(n), float(v)] for iv, n, v in
                                                     zip(g.size().index, g.size().values, g.mean().values)}
        c = calib[sensor]
        print(f"{sensor}: share flagged by (leak peak / mdl_k): " + ", ".join(
            f"{k}: {v[1]:.2f} (n={v[0]})" for k, v in c["flagged_by_peak_over_mdl"].items()))
        print(f"{sensor}: half the leaks are flagged at {c['ratio_half_flagged']:.2f} x their segment's mdl_k "
              "(logistic fit; calibrated: 1)")
        print(f"{sensor}: network share where a 3 / 5 / 10 K leak would be flagged: {share['3']:.2f} / "
              f"{share['5']:.2f} / {share['10']:.2f}; leaks predicted visible (peak >= mdl_k): "
              f"{c['predicted_visible']}, flagged {c['flagged_if_predicted_visible']:.2f}; predicted invisible: "
              f"{c['predicted_invisible']}, flagged {c['flagged_if_predicted_invisible']:.2f}; leak-free segments "
              f"flagged {c['leak_free_flagged_pooled']:.4f} pooled, {c['leak_free_flagged']:.4f} mean of the cities "
              f"(alpha 0.01); {c['leak_free_flagged_touching_a_leak']} of those flags touch a leaking segment, the "
              f"leak-free segments touching none: {c['leak_free_flagged_pooled_not_touching']:.4f} flagged")
    curve = {}
    for sensor in SENSORS:
        sel = leaks[leaks["sensor"] == sensor]
        g = sel.groupby(pd.cut(sel["amplitude_k"], BINS_K), observed=False)["top5"]
        curve[sensor] = [{"amplitude_k": f"{iv.left:g}-{iv.right:g}", "n": int(c), "top5": float(v)}
                         for iv, c, v in zip(g.size().index, g.size().values, g.mean().values)]
        print(sensor, "share of leaks in the top 5 % by peak ΔT at 10 m:",
              ", ".join(f"{c['amplitude_k']} K: {c['top5']:.2f} (n={c['n']})" for c in curve[sensor]))
    if args.json:
        args.json.write_text(json.dumps({"members": rows, "power_curve": curve, "detectability": calib,
                                         "paired_auc": paired}, indent=1,
                                        default=float))
    if args.png:
        plot_calibration(calib, args.png)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
