"""The demo city seen by each sensor: Landsat + Sentinel-2 by day, a simulated ECOSTRESS night pass and an
airborne-like 10 m raster, each ranked by the default and by the simple baseline; segment ROC-AUC, PR-AUC, leaks in
the top 5 %, the network share where a 5 K leak reaches the flag level, and a paired bootstrap of ECOSTRESS minus
Landsat over the segments both scored.

    .venv/bin/python benchmarks/demo_sensors.py --json benchmarks/results/demo_sensors.json

The demo city (``heattrack simulate`` defaults) is the scene earlier versions were developed on, not a held-out
one: this table says what the demo shows, the held-out evidence is ``sensors.py``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
from heldout import workspace  # benchmarks/ is the script's folder
from sklearn.metrics import roc_auc_score

from heattrack.cli_support import spec_from_settings
from heattrack.config import load_config
from heattrack.evaluate import evaluate_run
from heattrack.orchestration.run import run
from heattrack.simulate import SimulationSpec, simulate_scene

SENSORS = ("landsat", "ecostress", "airborne")


def demo_spec(sensor: str) -> SimulationSpec:
    """The spec ``heattrack simulate --sensor SENSOR`` builds from the default configuration."""
    return spec_from_settings(load_config(None, {"simulate.sensor": sensor}).simulate)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, y: np.ndarray, n: int = 2000, seed: int = 0) -> tuple:
    """ROC-AUC of ``b`` minus that of ``a`` on the same segments, and its 90 % bootstrap interval (segments
    resampled with replacement, leaks and leak-free ones separately so every draw has both)."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    diffs = []
    for _ in range(n):
        i = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        diffs.append(roc_auc_score(y[i], b[i]) - roc_auc_score(y[i], a[i]))
    return float(roc_auc_score(y, b) - roc_auc_score(y, a)), *map(float, np.percentile(diffs, [5, 95]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows, stats, t0 = [], {}, time.perf_counter()
    with workspace() as (tmp, client):
        for sensor in SENSORS:
            scene = tmp / sensor
            simulate_scene(scene, demo_spec(sensor))
            truth = json.loads((scene / "truth" / "truth.json").read_text())
            for method in ("default", "baseline"):
                over = {} if method == "default" else {"detect.method": "baseline"}
                cfg = load_config(None, {"input.input": scene, "input.pipes": scene / "pipes.geojson", **over})
                out = tmp / f"{sensor}-{method}"
                run(cfg, out, client=client)
                det = evaluate_run(scene, out)["detection"]
                seg = gpd.read_file(out / "segments.geojson")
                rj = json.loads((out / "run.json").read_text())
                share = (rj.get("detectability") or {}).get("network_share_visible", {})
                mdl = seg["mdl_k"].to_numpy(float) if "mdl_k" in seg else np.full(len(seg), np.nan)
                row = {"sensor": sensor, "ranking": method, "segments_scored": det["n_scored"],
                       "roc_auc": det["roc_auc"], "pr_auc": det["pr_auc"], "top5": det["recall_top5pct"],
                       "share_visible_5k": share.get("5"), "share_visible_10k": share.get("10"),
                       "median_mdl_k": float(np.nanmedian(mdl)) if np.isfinite(mdl).any() else None}
                rows.append(row)
                if method == "default":
                    stats[sensor] = seg.set_index("segment_id")["stat_k"].astype(float), set(truth["leak_segment_ids"])
                print(f"{sensor:9s} {method:8s} scored {row['segments_scored']}  ROC-AUC {row['roc_auc']:.3f}  "
                      f"PR-AUC {row['pr_auc']:.3f}  top 5 % {row['top5']:.2f}  5 K visible on "
                      f"{row['share_visible_5k']}  median mdl_k {row['median_mdl_k']}", flush=True)
    (ls, leaks), (eco, _) = stats["landsat"], stats["ecostress"]
    both = ls.index[np.isfinite(ls) & np.isfinite(eco.reindex(ls.index)).to_numpy()]
    y = both.isin(list(leaks))
    diff, lo, hi = paired_bootstrap(ls.loc[both].to_numpy(), eco.loc[both].to_numpy(), np.asarray(y))
    print(f"\nECOSTRESS - Landsat ROC-AUC on the {both.size} segments both scored ({int(y.sum())} leaks): "
          f"{diff:+.3f}, 90 % interval {lo:+.3f} to {hi:+.3f}  ({time.perf_counter() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "ecostress_minus_landsat": {
            "segments": int(both.size), "leaks": int(y.sum()), "diff": diff, "p05": lo, "p95": hi}}, indent=1))


if __name__ == "__main__":
    main()
