"""The driver's serial part after the tiles, part by part, and what handing the report's jobs to idle workers leaves
of it: measured on this machine, one process, each part on its own (median of ``--repeats``).

    .venv/bin/python benchmarks/report_jobs.py --size-km 12 48

For each size: simulate a city (as ``benchmarks/scale.py``: seed 5, 1.5 leaks per km) unless ``--scenes`` holds it,
run it (LocalCluster, the defaults, the national grid EPSG:5179), then time in this process: the reduction of the
tile records; the driver's own writes (``segments.geojson``/``.gpkg``, ``hotspots.geojson``, the field list, the map
without its network layer, the page); and each of the report's four jobs (the map's network layer and the three groups
of figures, :data:`heattrack.report.figure_job.FIGURE_GROUPS`). From those parts, the time from the end of the
tiles to the finished report (the driver's critical path; transfers to the workers not counted):

* ``driver_only``: one core, the driver makes everything;
* ``one_worker``: a LocalCluster on two cores (the default there): one worker draws the figures as one job while the
  driver writes the exports, the map and its network layer;
* ``k_workers`` (k = 2, 4): workers with cores of their own (Slurm, Kubernetes, a LocalCluster on more cores): the
  four jobs dealt out in turn in the order the run submits them, the driver writes the rest meanwhile.

The k-worker rows are composed from measured parts, not measured end to end: this machine has two cores, where the
driver and two busy workers share them (two workers were no faster than one there). Writes
``benchmarks/results/report_jobs.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from heattrack.config import load_config  # noqa: E402
from heattrack.io.exports import write_geojson  # noqa: E402
from heattrack.io.fieldlist import write_field_list  # noqa: E402
from heattrack.io.records import RunRecord  # noqa: E402
from heattrack.io.store import TileRecords  # noqa: E402
from heattrack.orchestration.finalize import report_window  # noqa: E402
from heattrack.orchestration.plan import plan_run  # noqa: E402
from heattrack.orchestration.reduce import reduce_segments  # noqa: E402
from heattrack.orchestration.run import run  # noqa: E402
from heattrack.report import webmap  # noqa: E402
from heattrack.report.figure_job import FIGURE_GROUPS, draw_figures  # noqa: E402
from heattrack.report.page import finish_report, start_report  # noqa: E402
from heattrack.simulate import SimulationSpec, simulate_scene  # noqa: E402


class _Done:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


class _Record:
    """A ``submit`` that makes each job at once here and keeps its result (the page is then written from them)."""

    workers = len(FIGURE_GROUPS) + 1

    def __call__(self, fn, *args):
        return _Done(fn(*args))


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _dealt(loads: list[float], k: int) -> float:
    """The busiest of ``k`` workers when the jobs are dealt out in turn (ReportHelper.submit)."""
    per = [0.0] * k
    for i, s in enumerate(loads):
        per[i % k] += s
    return max(per)


def measure(out: Path, cfg, repeats: int) -> dict:
    plan = plan_run(cfg)
    reduce_s = _median(lambda: reduce_segments(plan, TileRecords(out)), repeats)
    run_info = RunRecord.load(out / "run.json")
    seg = gpd.read_file(out / "segments.gpkg")
    hot = gpd.read_file(out / "hotspots.geojson")
    window = report_window(out)
    started = start_report(str(out / "mosaic.zarr"), out, run_info, window, report_cfg=cfg.report, segments=seg,
                           submit=_Record())
    finish_report(started)
    inputs, thumbs = started.inputs, set(webmap.thumbnail_ids(started.inputs.seg, cfg.report.thumbnails))
    jobs = {"network_layer": _median(lambda: webmap.network_layer(inputs.seg, cfg.report.top_segments, thumbs),
                                     repeats)}
    for g in FIGURE_GROUPS:
        jobs[f"figures_{g}"] = _median(lambda g=g: draw_figures(inputs, (g,)), repeats)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        own = {"segments_geojson": _median(lambda: write_geojson(seg, tmp / "s.geojson"), repeats),
               "segments_gpkg": _median(lambda: seg.to_file(tmp / "s.gpkg", layer="segments", driver="GPKG"),
                                        repeats),
               "hotspots_geojson": _median(lambda: write_geojson(hot, tmp / "h.geojson"), repeats),
               "field_list": _median(lambda: write_field_list(seg, tmp, cfg.report.field_list), repeats)}
    # the map without its network layer, the figures' bytes and the page: finish_report with the jobs' results at hand
    times = []
    for _ in range(repeats):
        started = start_report(str(out / "mosaic.zarr"), out, run_info, window, report_cfg=cfg.report, segments=seg,
                               submit=_Record())
        t0 = time.perf_counter()
        finish_report(started)
        times.append(time.perf_counter() - t0)
    own["map_and_page"] = float(np.median(times))
    driver = sum(own.values())
    figures = sum(v for k, v in jobs.items() if k.startswith("figures"))
    order = [jobs["network_layer"], *(jobs[f"figures_{g}"] for g in FIGURE_GROUPS)]  # as start_report submits them
    after = {"driver_only": driver + sum(jobs.values()),
             "one_worker": max(driver + jobs["network_layer"], figures),
             **{f"{k}_workers": max(driver, _dealt(order, k)) for k in (2, 4)}}
    return {"segments": int(len(seg)), "reduce_s": round(reduce_s, 3),
            "driver_own_s": {k: round(v, 3) for k, v in own.items()},
            "jobs_s": {k: round(v, 3) for k, v in jobs.items()},
            "after_reduce_s": {k: round(v, 3) for k, v in after.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-km", type=float, nargs="+", default=[12.0, 48.0])
    ap.add_argument("--scenes", type=Path, default=None, help="keep / reuse the simulated cities here (as scale.py)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "report_jobs.json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.size_km:
            scene = (args.scenes or Path(tmp)) / f"scene{size:g}"
            if not (scene / "pipes.geojson").exists():
                simulate_scene(scene, SimulationSpec(size_km=size, leaks=int(size * 1.5), seed=5))
            cfg = load_config(None, {"input.input": scene, "input.pipes": scene / "pipes.geojson",
                                     "grid.crs": "EPSG:5179", "report.single_cog_max_mpx": 0.0})
            out = Path(tmp) / f"out{size:g}"
            run(cfg, out)
            row = {"size_km": size, **measure(out, cfg, args.repeats)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    args.json.write_text(json.dumps({"rows": rows}, indent=1))
    print("written", args.json)


if __name__ == "__main__":
    main()
