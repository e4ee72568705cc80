"""Cost of the report's interactive map at national size: the network chunks of 100k segments and the risk tiles
of a 10 m COG, on 1 and 2 threads; then the tile count of South Korea's pyramid at the default tile budget.

    .venv/bin/python benchmarks/report_map.py [--km 20] [--segments 100000]

Writes benchmarks/results/report_map.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from heattrack.config import ReportConfig  # noqa: E402
from heattrack.report import webmap  # noqa: E402
from heattrack.report.tiles import _count, render_tiles, zoom_range  # noqa: E402
from tests.test_report_map import network  # noqa: E402

KOREA_BBOX = (124.6, 33.1, 131.0, 38.7)  # lon/lat of the Natural Earth outline with its buffer


def _cog(path: Path, km: float) -> int:
    n = int(km * 100)
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", driver="GTiff", width=n, height=n, count=1, dtype="float32", crs="EPSG:32652",
                       transform=from_origin(320000, 4180000, 10.0, 10.0), nodata=np.nan, tiled=True,
                       blockxsize=512, blockysize=512, compress="deflate") as dst:
        dst.write(rng.uniform(0, 1, (n, n)).astype("float32"), 1)
        dst.build_overviews([2, 4, 8, 16, 32], rasterio.enums.Resampling.average)
    return n * n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--km", type=float, default=20.0, help="side of the 10 m risk COG (km)")
    ap.add_argument("--segments", type=int, default=100_000)
    args = ap.parse_args()
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seg = network(args.segments, seed=7, cities=12, span_m=6000.0)
        t0 = time.perf_counter()
        idx = webmap.write_network(tmp / "map", seg, ReportConfig().top_segments, set())
        out["network"] = {"segments": args.segments, "seconds": round(time.perf_counter() - t0, 2),
                          "chunks": len(idx["chunks"]), "chunk_zoom": idx["chunk_zoom"],
                          "megabytes": round(sum(f.stat().st_size for f in (tmp / "map").rglob("*.js")) / 1e6, 1)}
        print("network:", out["network"])
        px = _cog(tmp / "risk.tif", args.km)
        out["tiles"] = []
        for workers in (1, 2):
            shutil.rmtree(tmp / "tiles", ignore_errors=True)
            t0 = time.perf_counter()
            ts = render_tiles(tmp / "risk.tif", tmp / "tiles", resolution_m=10.0, workers=workers)
            sec = time.perf_counter() - t0
            n = sum(len(v) for v in ts.tiles.values())
            row = {"workers": workers, "cog_px": px, "zooms": [ts.min_zoom, ts.max_zoom], "tiles": n,
                   "seconds": round(sec, 2), "ms_per_tile": round(1000 * sec / n, 2)}
            out["tiles"].append(row)
            print("tiles:", row)
    lo, hi = zoom_range(KOREA_BBOX, 10.0, None, ReportConfig().max_tiles)
    n_korea = _count(KOREA_BBOX, lo, hi)
    best = min(r["ms_per_tile"] for r in out["tiles"] if r["workers"] == 2)
    out["south_korea"] = {"zooms": [lo, hi], "tiles_in_bbox": n_korea, "max_tiles": ReportConfig().max_tiles,
                          "minutes_2_threads": round(n_korea * best / 1000 / 60, 1)}
    print("South Korea:", out["south_korea"])
    dest = Path(__file__).parent / "results" / "report_map.json"
    dest.write_text(json.dumps(out, indent=1))
    print("written", dest)


if __name__ == "__main__":
    main()
