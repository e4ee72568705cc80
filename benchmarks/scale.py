"""End-to-end throughput and peak worker memory on simulated regions of several sizes.

    .venv/bin/python benchmarks/scale.py --sizes 12 24 48 --workers 2

For each size: simulate (not timed), run the full chain on a LocalCluster (``workers`` processes, one thread
each), then print 10 m pixels per second per worker end to end and per stage (read, compute, write: summed
over tiles; reduce+export+report: the driver's time after the tiles) and the peak RSS of any worker process.
One more run of the largest region keeps every ``--sparse-every``-th pipe segment only: the same tiles with an
eighth of the network, so that the driver's time can be fitted as fixed + per tile + per km of pipe (the
simulated cities carry ~2 km of pipe per km^2 on every tile; a country carries pipes on a few). Extrapolated,
not measured: one date of South Korea (1,101 tiles of 10 km, ``--network-km`` of pipe route) on 2 and 64
cores, and the weak-scaling efficiency (Amdahl) on 64 and 512 workers with that driver time as the serial
part and the steady tile tasks' seconds as the parallel part. Each worker's first tile and the injection test of
the calibration tiles are left out of the steady rate and added back as what they are: the first tile pays the
process's imports and the compiled kernels' loading (~1-2 s) once per worker, and a run tests 3 calibration tiles
whatever its size. Results also go to ``benchmarks/results/scale.json``
(``--json``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
from scipy.optimize import nnls

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
    ap.add_argument("--sparse-every", type=int, default=8,
                    help="one more run of the largest region with every Nth pipe segment only (0: none): the same "
                         "tiles with less network, so the driver's time can be split into per-tile and per-km parts")
    ap.add_argument("--network-km", type=float, default=2389.0,
                    help="pipe route length of the national extrapolation (default: Korea District Heating Corp. "
                         "alone, 2,389 km, ../shared/README.md; the national total is larger)")
    ap.add_argument("--driver-s-per-tile", type=float, default=0.0,
                    help="the driver's time per tile, measured apart (default 0: none measurable with the same city cut "
                         "into 9-81 tiles, -2.2 +- 2.8 ms, benchmarks/results/scale_tiles.json)")
    ap.add_argument("--from-json", type=Path, default=None,
                    help="recompute the summary and extrapolation from the rows of an earlier --json (no runs)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="runs of each region; every figure is the median over them (default 3)")
    ap.add_argument("--scenes", type=Path, default=None,
                    help="keep the simulated regions in this folder and reuse them on the next call (simulating the "
                         "48 km region takes ~4 min; default: a temporary folder)")
    ap.add_argument("--grid-crs", default=None,
                    help="the tile grid's CRS (default: the data's UTM zone); EPSG:5179 is the Korean national "
                    "grid of configs/south-korea.yaml, where every band is resampled")
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "scale.json")
    args = ap.parse_args()
    if args.from_json is not None:
        _report(json.loads(args.from_json.read_text())["rows"], args, load_config(None, {}))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(size, 1) for size in args.sizes]
        if args.sparse_every > 1:
            runs.append((args.sizes[-1], args.sparse_every))
        for size, every in runs:
            scene = (args.scenes or Path(tmp)) / f"scene{size:g}"
            if not (scene / "pipes.geojson").exists():
                simulate_scene(scene, SimulationSpec(size_km=size, leaks=int(size * 1.5), seed=5))
            pipes = gpd.read_file(scene / "pipes.geojson").iloc[::every]
            pipes_path = Path(tmp) / f"pipes{size:g}_{every}.gpkg"
            pipes.to_file(pipes_path)
            pipe_km = float(pipes.to_crs(pipes.estimate_utm_crs()).length.sum() / 1e3)
            cfg = load_config(None, {"input.input": scene, "input.pipes": pipes_path,
                                     "grid.tile_km": args.tile_km, "compute.n_workers": args.workers,
                                     "report.single_cog_max_mpx": args.single_cog_max_mpx,
                                     **({"grid.crs": args.grid_crs} if args.grid_crs else {})})
            repeats = []
            for rep in range(args.repeats):
                t0 = time.perf_counter()
                out = Path(tmp) / f"out{size:g}_{every}_{rep}"
                res = run(cfg, out)
                wall = time.perf_counter() - t0
                repeats.append(_row(out, res, wall, size, every, pipe_km, len(pipes), args.workers))
                print(json.dumps(repeats[-1]))
            rows.append(_median_row(repeats))
    _report(rows, args, cfg)


def _row(out: Path, res, wall: float, size: float, every: int, pipe_km: float, n_segments: int, workers: int) -> dict:
    """One run's figures (see the module docstring)."""
    info = json.loads((out / "run.json").read_text())
    tiles = info["tile_summaries"].values()
    px = sum(t["pixels"] for t in tiles)
    stage = {k: sum(t["seconds"][k] for t in tiles) for k in ("read", "compute", "write", "total")}
    export_s = wall - info["seconds_total"]
    # the steady rate leaves out each worker's first tile and the injection test of the few calibration
    # tiles (``segments.mdl_injection_tiles``, 3 per run whatever its size): both are added back per run
    inj = [t["seconds"].get("injection", 0.0) for t in tiles]
    steady = [t["seconds"]["total"] - i for t, i in zip(tiles, inj) if (t.get("process_task_index") or 0) > 0]
    # a worker's first tile may be a calibration tile: its injection test is not start-up
    first = [t["seconds"]["total"] - i for t, i in zip(tiles, inj) if t.get("process_task_index") == 0]
    return {
        "size_km": size, "pipe_every": every, "pipe_km": round(pipe_km, 1), "segments": n_segments,
        "tiles": res.n_tiles, "pixels": px, "wall_s": round(wall, 1),
        "px_per_s_per_worker_end_to_end": round(px / wall / workers),
        **{f"px_per_s_{k}": round(px / v) for k, v in stage.items()},
        "peak_worker_rss_mb": round(max(t["max_rss_mb"] for t in tiles)),
        "reduce_export_report_s": round(export_s, 1),
        "driver_s_per_tile": round(export_s / res.n_tiles, 3),
        "tile_task_s_per_tile": round(stage["total"] / res.n_tiles, 3),
        # without each worker's first tile (the process's imports and compiled kernels, ~2 s): the rate of a
        # national run, where a worker computes hundreds of tiles
        "steady_tile_task_s_per_tile": round(float(np.mean(steady)), 3) if steady else None,
        "first_tile_task_s": round(float(np.mean(first)), 3) if first else None,
        "injection_tiles": int(sum(i > 0 for i in inj)),
        "injection_s_per_calibration_tile": round(float(np.mean([i for i in inj if i > 0])), 3)
        if any(i > 0 for i in inj) else 0.0,
    }


def _median_row(repeats: list[dict]) -> dict:
    """The median of each figure over the repeats of one region (this machine's timings drift by 20-30 % between
    runs; the driver fit below is sensitive to it); ``repeats``: how many runs it is the median of."""
    out = dict(repeats[0])
    for k, v in out.items():
        if isinstance(v, float) or k.startswith(("px_per_s", "peak_worker")):
            vals = [r[k] for r in repeats if r[k] is not None]
            if vals:
                med = float(np.median(vals))
                out[k] = round(med, 3) if isinstance(v, float) else round(med)
    out["repeats"] = len(repeats)
    return out


def _report(rows: list[dict], args, cfg) -> None:
    print()
    print(f"{'size':>6} {'pipe km':>7} {'tiles':>5} {'Mpx':>6} {'wall s':>7} {'Mpx/s/worker':>12} {'read':>6} "
          f"{'compute':>8} {'write':>6} {'export s':>8} {'peak RSS MB':>11}")
    for r in rows:
        print(f"{r['size_km']:6g} {r['pipe_km']:7.0f} {r['tiles']:5d} {r['pixels'] / 1e6:6.1f} {r['wall_s']:7.1f} "
              f"{r['px_per_s_per_worker_end_to_end'] / 1e6:12.2f} {r['px_per_s_read'] / 1e6:6.2f} "
              f"{r['px_per_s_compute'] / 1e6:8.2f} {r['px_per_s_write'] / 1e6:6.2f} {r['reduce_export_report_s']:8.1f} "
              f"{r['peak_worker_rss_mb']:11d}")
    dense = [r for r in rows if r["pipe_every"] == 1]
    last = dense[-1]
    # a national run's tile tasks: the steady rate (a worker's first tile amortised over hundreds)
    parallel = last["steady_tile_task_s_per_tile"] or last["tile_task_s_per_tile"]
    serial = last["driver_s_per_tile"]
    tile_rate = last["pixels"] / last["tiles"] / parallel
    amdahl = {}
    for n in (64, 512):
        speedup = (serial + parallel) / (serial + parallel / n)
        amdahl[n] = round(speedup / n, 3)
        print(f"Amdahl at {n} workers if this small run's whole driver time grew with the tiles (a pessimistic bound, "
              f"not the estimate: see the fit below): serial {serial:.3f} s + parallel {parallel:.3f} s per tile -> "
              f"speedup {speedup:.1f}, efficiency {speedup / n:.0%}")
    # the driver's time after the tiles is part fixed (imports, figures), part per tile (records, overview, VRT)
    # and part per km of pipe (segments, vectors, the report's network layer). The simulated cities carry pipes on
    # every tile (~2 km per km^2); a country carries them on a few: fit the three parts (the sparse run separates
    # tiles from km) and extrapolate one date of South Korea (1,101 tiles of 10 km) with ``--network-km`` of pipe
    fit, national = {}, {}
    n_kr = 1101
    # besides the steady tiles: each worker's first tile pays its process's start once (in parallel on every
    # worker), and the run's calibration tiles their injection test (segments.mdl_injection_tiles per run)
    first_extra = max(0.0, (last["first_tile_task_s"] or parallel) - parallel)
    n_inject = min(cfg.segments.mdl_injection_tiles, max(1, n_kr // 10))  # as build_tasks picks them
    inject_s = n_inject * last["injection_s_per_calibration_tile"]

    def tile_seconds(cores: int) -> float:
        return (n_kr * parallel + inject_s) / cores + first_extra

    if len(rows) >= 3:
        # the per-tile part is measured on its own (the same city cut into 9-81 tiles: none measurable,
        # benchmarks/results/scale_tiles.json); fitting it from these rows, whose tiles and km grow together, let a
        # second of timing noise pass for ms per tile x 1,101 tiles
        c_tile = args.driver_s_per_tile
        A = np.array([[1.0, r["pipe_km"]] for r in rows])
        y = np.array([r["reduce_export_report_s"] - c_tile * r["tiles"] for r in rows])
        (c0, c_km), _ = nnls(A, y)  # no part of the driver's time is negative
        driver = float(c0 + c_tile * n_kr + c_km * args.network_km)
        fit = {"driver_fixed_s": round(float(c0), 2), "driver_s_per_tile": round(float(c_tile), 4),
               "driver_s_per_km": round(float(c_km), 5), "network_km": args.network_km,
               "south_korea_driver_s": round(driver, 1), "efficiency": {}, "efficiency_serial_only": {}}
        for n in (64, 512):  # the ideal (steady tiles only, perfectly spread) over the extrapolated time
            fit["efficiency"][n] = round(n_kr * parallel / n / (tile_seconds(n) + driver), 3)
            # Amdahl's law proper: the driver is the serial part; the workers' start-up is not serial (each worker
            # pays it once, in parallel) and stays in ``efficiency``
            fit["efficiency_serial_only"][n] = round(
                n_kr * parallel / n / (tile_seconds(n) - first_extra + driver), 3)
        print(f"driver time fit: {c0:.2f} s + {c_tile:.4f} s per tile + {c_km:.5f} s per km of pipe -> {driver:.1f} s "
              f"for South Korea ({n_kr} tiles, {args.network_km:g} km); Amdahl efficiency with the driver as the "
              f"serial part: {fit['efficiency_serial_only'][64]:.0%} at 64 workers, "
              f"{fit['efficiency_serial_only'][512]:.0%} at 512; counting each worker's start-up "
              f"({first_extra:.1f} s) too: {fit['efficiency'][64]:.0%} and {fit['efficiency'][512]:.0%}")
        for cores in (2, 64):
            tiles_min = tile_seconds(cores) / 60
            national[cores] = round(tiles_min + driver / 60, 1)
            print(f"South Korea, one date, {cores} cores: tiles {tiles_min:.1f} min at {tile_rate / 1e6:.2f} Mpx/s per "
                  f"worker + driver {driver:.1f} s = {national[cores]:.1f} min (extrapolated, not measured)")
    args.json.write_text(json.dumps({"workers": args.workers, "single_cog_max_mpx": args.single_cog_max_mpx,
                                     "rows": rows, "south_korea_minutes": national, "amdahl_efficiency": amdahl,
                                     "driver_fit": fit}, indent=1))
    print("written", args.json)


if __name__ == "__main__":
    main()
