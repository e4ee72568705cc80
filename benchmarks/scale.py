"""End-to-end throughput and peak worker memory on simulated regions of several sizes.

    .venv/bin/python benchmarks/scale.py --sizes 12 24 --workers 2

For each size: simulate (not timed), run the full chain on a LocalCluster (``workers`` processes, one thread
each), then print 10 m pixels per second per worker end to end and per stage (read, compute, write: summed
over tiles), and the peak RSS of any worker process.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from heattrack.config import load_config
from heattrack.orchestration.run import run
from heattrack.simulate import SimulationSpec, simulate_scene


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[12.0, 24.0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tile-km", type=float, default=10.0)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            scene = Path(tmp) / f"scene{size:g}"
            simulate_scene(scene, SimulationSpec(size_km=size, leaks=int(size * 1.5), seed=5))
            cfg = load_config(None, {"input.input": scene, "input.pipes": scene / "pipes.geojson",
                                     "grid.tile_km": args.tile_km, "compute.n_workers": args.workers})
            t0 = time.perf_counter()
            res = run(cfg, Path(tmp) / f"out{size:g}")
            wall = time.perf_counter() - t0
            info = json.loads((Path(tmp) / f"out{size:g}" / "run.json").read_text())
            tiles = info["tile_summaries"].values()
            px = sum(t["pixels"] for t in tiles)
            stage = {k: sum(t["seconds"][k] for t in tiles) for k in ("read", "compute", "write", "total")}
            rows.append({
                "size_km": size, "tiles": res.n_tiles, "pixels": px, "wall_s": round(wall, 1),
                "px_per_s_per_worker_end_to_end": round(px / wall / args.workers),
                **{f"px_per_s_{k}": round(px / v) for k, v in stage.items()},
                "peak_worker_rss_mb": round(max(t["max_rss_mb"] for t in tiles)),
            })
            print(json.dumps(rows[-1]))
    print()
    print(f"{'size':>6} {'tiles':>5} {'Mpx':>6} {'wall s':>7} {'Mpx/s/worker':>12} {'read':>6} {'compute':>8} "
          f"{'write':>6} {'peak RSS MB':>11}")
    for r in rows:
        print(f"{r['size_km']:6g} {r['tiles']:5d} {r['pixels'] / 1e6:6.1f} {r['wall_s']:7.1f} "
              f"{r['px_per_s_per_worker_end_to_end'] / 1e6:12.2f} {r['px_per_s_read'] / 1e6:6.2f} "
              f"{r['px_per_s_compute'] / 1e6:8.2f} {r['px_per_s_write'] / 1e6:6.2f} {r['peak_worker_rss_mb']:11d}")


if __name__ == "__main__":
    main()
