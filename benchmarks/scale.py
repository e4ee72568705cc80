"""End-to-end throughput and peak worker memory on simulated regions of several sizes.

    .venv/bin/python benchmarks/scale.py --sizes 12 24 48 --workers 2

For each size: simulate (not timed), run the full chain on a LocalCluster (``workers`` processes, one thread
each), then print 10 m pixels per second per worker end to end and per stage (read, compute, write: summed
over tiles; reduce+export+report: the driver's time after the tiles), the peak RSS of any worker process,
and the wall time one date of South Korea (1.10e9 px, 1,101 tiles of 10 km) would take at the largest
region's rate on 2 and on 64 cores, assuming linear scaling (not measured at that size). Weak-scaling view
(Amdahl): the serial part is the driver's time after the tiles (reduce, exports, report) per tile, the parallel
part the tile tasks' seconds; their ratio predicts the efficiency on 64 and 512 workers. Results also go to
``benchmarks/results/scale.json`` (``--json``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from heattrack.config import load_config
from heattrack.orchestration.run import run
from heattrack.simulate import SimulationSpec, simulate_scene


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[12.0, 24.0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tile-km", type=float, default=10.0)
    ap.add_argument("--single-cog-max-mpx", type=float, default=0.0,
                    help="report.single_cog_max_mpx of the runs; 0 (default) = the exports of a national run, which "
                         "is far above the 100 Mpx default: per-tile COGs + VRT, no single-process COG")
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "scale.json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            scene = Path(tmp) / f"scene{size:g}"
            simulate_scene(scene, SimulationSpec(size_km=size, leaks=int(size * 1.5), seed=5))
            cfg = load_config(None, {"input.input": scene, "input.pipes": scene / "pipes.geojson",
                                     "grid.tile_km": args.tile_km, "compute.n_workers": args.workers,
                                     "report.single_cog_max_mpx": args.single_cog_max_mpx})
            t0 = time.perf_counter()
            res = run(cfg, Path(tmp) / f"out{size:g}")
            wall = time.perf_counter() - t0
            info = json.loads((Path(tmp) / f"out{size:g}" / "run.json").read_text())
            tiles = info["tile_summaries"].values()
            px = sum(t["pixels"] for t in tiles)
            stage = {k: sum(t["seconds"][k] for t in tiles) for k in ("read", "compute", "write", "total")}
            export_s = wall - info["seconds_total"]
            rows.append({
                "size_km": size, "tiles": res.n_tiles, "pixels": px, "wall_s": round(wall, 1),
                "px_per_s_per_worker_end_to_end": round(px / wall / args.workers),
                **{f"px_per_s_{k}": round(px / v) for k, v in stage.items()},
                "peak_worker_rss_mb": round(max(t["max_rss_mb"] for t in tiles)),
                "reduce_export_report_s": round(export_s, 1),
                "driver_s_per_tile": round(export_s / res.n_tiles, 3),
                "tile_task_s_per_tile": round(stage["total"] / res.n_tiles, 3),
            })
            print(json.dumps(rows[-1]))
    print()
    print(f"{'size':>6} {'tiles':>5} {'Mpx':>6} {'wall s':>7} {'Mpx/s/worker':>12} {'read':>6} {'compute':>8} "
          f"{'write':>6} {'export s':>8} {'peak RSS MB':>11}")
    for r in rows:
        print(f"{r['size_km']:6g} {r['tiles']:5d} {r['pixels'] / 1e6:6.1f} {r['wall_s']:7.1f} "
              f"{r['px_per_s_per_worker_end_to_end'] / 1e6:12.2f} {r['px_per_s_read'] / 1e6:6.2f} "
              f"{r['px_per_s_compute'] / 1e6:8.2f} {r['px_per_s_write'] / 1e6:6.2f} {r['reduce_export_report_s']:8.1f} "
              f"{r['peak_worker_rss_mb']:11d}")
    last = rows[-1]
    tile_rate = last["px_per_s_total"]  # per worker, tile tasks only
    export_rate = last["pixels"] / max(last["reduce_export_report_s"], 1e-9)  # driver, single process
    national = {}
    for cores in (2, 64):
        tiles_min = 1.10e9 / (tile_rate * cores) / 60
        export_min = 1.10e9 / export_rate / 60
        national[cores] = round(tiles_min + export_min, 1)
        print(f"South Korea, one date, {cores} cores: tiles {tiles_min:.0f} min at {tile_rate / 1e6:.2f} Mpx/s per "
              f"worker + reduce/export/report {export_min:.0f} min on the driver = {tiles_min + export_min:.0f} min "
              "(extrapolated linearly from the largest region)")
    serial, parallel = last["driver_s_per_tile"], last["tile_task_s_per_tile"]
    amdahl = {}
    for n in (64, 512):
        speedup = (serial + parallel) / (serial + parallel / n)
        amdahl[n] = round(speedup / n, 3)
        print(f"Amdahl at {n} workers: serial {serial:.3f} s + parallel {parallel:.3f} s per tile -> speedup "
              f"{speedup:.1f}, efficiency {speedup / n:.0%}")
    # the driver's time is part fixed (imports, figures) and part per tile (records, vectors): fit both over the
    # sizes and extrapolate the one-date national run (1,101 tiles) with that fit
    fit = {}
    if len(rows) >= 2:
        b, a = np.polyfit([r["tiles"] for r in rows], [r["reduce_export_report_s"] for r in rows], 1)
        n_kr = 1101
        driver = a + b * n_kr
        fit = {"driver_fixed_s": round(float(a), 2), "driver_s_per_tile": round(float(b), 4),
               "south_korea_driver_s": round(float(driver), 1), "efficiency": {}}
        for n in (64, 512):
            work = n_kr * parallel / n
            fit["efficiency"][n] = round(work / (work + driver), 3)
        print(f"driver time fit over the sizes: {a:.1f} s + {b:.3f} s per tile -> {driver:.0f} s for South Korea; "
              f"efficiency at 64 workers {fit['efficiency'][64]:.0%}, at 512 {fit['efficiency'][512]:.0%}")
    args.json.write_text(json.dumps({"workers": args.workers, "single_cog_max_mpx": args.single_cog_max_mpx,
                                     "rows": rows, "south_korea_minutes": national, "amdahl_efficiency": amdahl,
                                     "driver_fit": fit}, indent=1))
    print("written", args.json)


if __name__ == "__main__":
    main()
