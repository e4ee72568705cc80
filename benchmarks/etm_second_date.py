"""A second date from Landsat 7 in a Landsat 8/9 winter (2013-2022, when both flew): held-out family cities screened
from one Landsat + Sentinel-2 date, from that date plus an ETM+ ``ST_B6`` date with its scan-line gaps in one mixed
run (``INPUT/thermal/``: each date ranked its own way, combined per segment by its detectability), and from two
Landsat + Sentinel-2 dates (the reference a second Landsat 8/9 date would give); and the simple baseline ranking on
the mixed input.

    .venv/bin/python benchmarks/etm_second_date.py --json benchmarks/results/etm_second_date.json

Each city is simulated with two dates as Landsat 9 saw them (``landsat/`` + ``sentinel2/`` per date) and, its twin,
as ETM+ saw the same two days (``landsat_mission LE07``, ``slc_off_gap``, 0.22 by default); the mixed run takes the
first Landsat 9 date and the twin's second ETM+ date. Segment ROC-AUC and the share of the sensor-visible leaks
(footprint peak >= 0.7 K through TIRS) in the top 5 % of segments.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from family import VISIBLE_K, leak_ranks  # benchmarks/ is the script's folder
from heldout import heldout_parser, workspace
from landsat_alone import st_dates_folder

from heattrack.config import load_config
from heattrack.evaluate import evaluate_run
from heattrack.orchestration.run import run
from heattrack.simulate import family_spec, simulate_scene

RUNS = ("one_date", "with_etm", "two_dates", "with_etm_baseline")


def _link(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        (dst / f.name).symlink_to(f.resolve())


def main() -> None:
    ap = heldout_parser(__doc__, 12)
    ap.add_argument("--slc-off-gap", type=float, default=0.22, help="the ETM+ date's scan-line gaps (0: none)")
    args = ap.parse_args()
    rows = []
    t0 = time.perf_counter()
    with workspace() as (tmp, client):
        for m in args.members:
            scene, twin = Path(tmp) / f"m{m}", Path(tmp) / f"m{m}-LE07"
            simulate_scene(scene, family_spec(m, size_km=args.size_km, dates=2))
            simulate_scene(twin, family_spec(m, size_km=args.size_km, dates=2, landsat_mission="LE07",
                                             slc_off_gap=args.slc_off_gap))
            first, second = sorted(p for p in scene.iterdir() if (p / "landsat").is_dir())
            etm = sorted(twin.glob("*/landsat/*_ST_B6.TIF"))[1]
            one = Path(tmp) / f"m{m}-one"
            for sub in ("landsat", "sentinel2"):
                _link(first / sub, one / sub)
            mixed = Path(tmp) / f"m{m}-mixed"
            for sub in ("landsat", "sentinel2"):
                _link(first / sub, mixed / sub)
            st_dates_folder([etm], mixed)
            inputs = {"one_date": one, "with_etm": mixed, "two_dates": scene, "with_etm_baseline": mixed}
            row: dict = {"member": m}
            for name in RUNS:
                over = {"input.input": inputs[name], "input.pipes": scene / "pipes.geojson",
                        **({"detect.method": "baseline"} if name.endswith("baseline") else {})}
                out = Path(tmp) / f"out{m}-{name}"
                run(load_config(None, over), out, client=client)
                row[f"{name}_auc"] = evaluate_run(scene, out)["detection"]["roc_auc"]
                vis = (lr := leak_ranks(scene, out))[lr["peak_k"] >= VISIBLE_K]
                row[f"{name}_visible_top5"] = float((vis["rank_share"] <= 0.05).sum())
                row["n_visible"] = int(len(vis))
            rows.append(row)
            print(f"member {m}: " + ", ".join(f"{k} {row[k + '_auc']:.3f}" for k in RUNS), flush=True)
    n_vis = sum(r["n_visible"] for r in rows)
    summary = {"members": args.members, "slc_off_gap": args.slc_off_gap, "seconds": round(time.perf_counter() - t0)}
    for k in RUNS:
        aucs = [r[f"{k}_auc"] for r in rows]
        hits = sum(r[f"{k}_visible_top5"] for r in rows)
        summary[k] = {"auc_mean": float(np.mean(aucs)), "auc_worst": float(np.min(aucs)),
                      "visible_top5": hits / max(n_vis, 1), "visible_hits": int(hits), "n_visible": n_vis}
        print(f"{k:18s} ROC-AUC {np.mean(aucs):.3f} (worst {np.min(aucs):.3f}); visible leaks in the top 5 % "
              f"{hits / max(n_vis, 1):.2f} ({hits:.0f} of {n_vis})")
    for k in ("one_date", "two_dates", "with_etm_baseline"):
        d = np.array([r["with_etm_auc"] - r[f"{k}_auc"] for r in rows])
        summary[f"with_etm_minus_{k}"] = {"mean": float(d.mean()), "above": int((d > 0).sum()), "n": len(d)}
        print(f"with_etm minus {k}: {d.mean():+.3f}, above on {(d > 0).sum()} of {len(d)}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "members": rows}, indent=1))


if __name__ == "__main__":
    main()
