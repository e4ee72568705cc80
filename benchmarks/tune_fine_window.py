"""Tuning, not reporting: the segment statistic's window along the pipe on fine thermal rasters (airborne-like, 10 m),
on the tuning members of the simulator family (0-5 by default; the held-out members, >= 100, are for reporting).

    .venv/bin/python benchmarks/tune_fine_window.py --members 0 1 2 3 4 5 --widths 0 0.75 1.5
    .venv/bin/python benchmarks/tune_fine_window.py --widths 1.5 --peak-radii 0 30
    .venv/bin/python benchmarks/tune_fine_window.py --members 0 1 2 3 4 5 6 7 8 9 10 11 --widths 0 1.5 --absolute

For each member: simulate the airborne-like raster (the true 10 m LST + 0.1 K noise), run the default ranking with
each ``segments.window_widths`` (and ``thermal.peak_radius_m``, ``--peak-radii``) and the simple baseline, print segment ROC-AUC per member and the mean / worst.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from heldout import workspace  # benchmarks/ is the script's folder

from heattrack.config import load_config
from heattrack.evaluate import evaluate_run
from heattrack.orchestration.run import run
from heattrack.simulate import family_spec, simulate_scene


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    ap.add_argument("--widths", type=float, nargs="+", default=[0.0, 0.75, 1.5])
    ap.add_argument("--size-km", type=float, default=8.0)
    ap.add_argument("--peak-radii", type=float, nargs="*", default=[],
                    help="also run the default (window_widths 1.5) with each thermal.peak_radius_m (the off-pipe "
                         "radius; <= thermal.buffer_m switches the discount off)")
    ap.add_argument("--sensor", default="airborne")
    ap.add_argument("--absolute", action="store_true",
                    help="also rank each width on the absolute statistic (not relative to the network around each "
                         "segment, which fine rasters use by default since 2026-12-04)")
    args = ap.parse_args()
    res: dict[str, list[float]] = {}
    with workspace() as (tmp, client):
        for m in args.members:
            scene = Path(tmp) / f"m{m}"
            simulate_scene(scene, family_spec(m, size_km=args.size_km, sensor=args.sensor))
            runs = [(f"widths {w:g}", {"segments.window_widths": w}, False) for w in args.widths] + \
                [(f"widths {w:g} absolute", {"segments.window_widths": w}, True) for w in args.widths
                 if args.absolute] + \
                [(f"peak radius {r:g} m", {"thermal.peak_radius_m": r}, False) for r in args.peak_radii] + \
                [("baseline", {"detect.method": "baseline"}, False)]
            line = []
            for name, extra, absolute in runs:
                cfg = load_config(None, {"input.input": scene, "input.pipes": scene / "pipes.geojson", **extra})
                out = Path(tmp) / f"out{m}-{name.replace(' ', '_')}"
                with _absolute_statistic(absolute):
                    run(cfg, out, client=client)
                auc = evaluate_run(scene, out)["detection"]["roc_auc"]
                res.setdefault(name, []).append(auc)
                line.append(f"{name} {auc:.3f}")
            print(f"member {m}: " + ", ".join(line), flush=True)
    print("\nmean (worst): " + "; ".join(f"{k} {np.mean(v):.3f} ({np.min(v):.3f})" for k, v in res.items()))


@contextmanager
def _absolute_statistic(on: bool) -> Iterator[None]:
    """While ``on``: the driver's reduction ranks on the absolute statistic (it runs in this process)."""
    if not on:
        yield
        return
    import heattrack.orchestration.reduce as reduce

    original = reduce.segment_statistic
    reduce.segment_statistic = lambda *a, **k: original(*a, **{**k, "relative_to_base": False})
    try:
        yield
    finally:
        reduce.segment_statistic = original


if __name__ == "__main__":
    main()
