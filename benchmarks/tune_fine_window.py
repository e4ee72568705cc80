"""Tuning, not reporting: the segment statistic's window along the pipe on fine thermal rasters (airborne-like, 10 m),
on the tuning members of the simulator family (0-5 by default; the held-out members, >= 100, are for reporting).

    .venv/bin/python benchmarks/tune_fine_window.py --members 0 1 2 3 4 5 --widths 0 0.75 1.5
    .venv/bin/python benchmarks/tune_fine_window.py --widths 1.5 --peak-radii 0 30

For each member: simulate the airborne-like raster (the true 10 m LST + 0.1 K noise), run the default ranking with
each ``segments.window_widths`` (and ``thermal.peak_radius_m``, ``--peak-radii``) and the simple baseline, print segment ROC-AUC per member and the mean / worst.
"""

from __future__ import annotations

import argparse
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
    args = ap.parse_args()
    res: dict[str, list[float]] = {}
    with workspace() as (tmp, client):
        for m in args.members:
            scene = Path(tmp) / f"m{m}"
            simulate_scene(scene, family_spec(m, size_km=args.size_km, sensor=args.sensor))
            runs = [(f"widths {w:g}", {"segments.window_widths": w}) for w in args.widths] + \
                [(f"peak radius {r:g} m", {"thermal.peak_radius_m": r}) for r in args.peak_radii] + \
                [("baseline", {"detect.method": "baseline"})]
            line = []
            for name, extra in runs:
                cfg = load_config(None, {"input.input": scene, "input.pipes": scene / "pipes.geojson", **extra})
                out = Path(tmp) / f"out{m}-{name.replace(' ', '_')}"
                run(cfg, out, client=client)
                auc = evaluate_run(scene, out)["detection"]["roc_auc"]
                res.setdefault(name, []).append(auc)
                line.append(f"{name} {auc:.3f}")
            print(f"member {m}: " + ", ".join(line), flush=True)
    print("\nmean (worst): " + "; ".join(f"{k} {np.mean(v):.3f} ({np.min(v):.3f})" for k, v in res.items()))


if __name__ == "__main__":
    main()
