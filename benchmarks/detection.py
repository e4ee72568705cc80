"""Detection numbers against the simulator's truth: every detector, single vs multi-date, plain vs sharpened
LST, and a detection-power curve (recall vs leak amplitude).

    .venv/bin/python benchmarks/detection.py --seeds 1 2 3 --json benchmarks/results/detection.json \
        --png docs/img/detection_power.png

Part 1 (method table): for each seed, a 12 km scene with 3 date pairs (leaks 2-10 K, 10-30 m FWHM, persistent;
half the distractors move between dates). Runs ``detect.method`` local | iforest | ae | fused on plain LST with
the first date only and with all 3 dates, and local | fused on DMS-sharpened LST (first date).
Part 2 (power curve): 8 km single-date scenes whose leaks all have one amplitude (1-40 K) and a 20 m FWHM;
recall at 0.1 false alarms per km of pipe and ROC-AUC per method.
Prints segment ROC-AUC, PR-AUC, recall in the top 5 % of segments and recall at 0.1 false alarms per km.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from heattrack.config import load_config
from heattrack.evaluate import evaluate_run
from heattrack.orchestration.cluster import make_client
from heattrack.orchestration.run import run
from heattrack.simulate import SimulationSpec, simulate_scene

TABLE = {  # name -> overrides (downscale bilinear where the detector reads plain LST: sharpening cannot matter)
    "local, 1 date": {"detect.method": "local", "input.max_dates": 1},
    "iforest, 1 date": {"detect.method": "iforest", "input.max_dates": 1},
    "ae, 1 date": {"detect.method": "ae", "input.max_dates": 1},
    "fused, 1 date": {"detect.method": "fused", "input.max_dates": 1},
    "local, 3 dates": {"detect.method": "local"},
    "iforest, 3 dates": {"detect.method": "iforest"},
    "ae, 3 dates": {"detect.method": "ae"},
    "fused, 3 dates": {"detect.method": "fused"},
    "local on DMS-sharpened, 1 date": {"detect.method": "local", "input.max_dates": 1, "downscale.method": "dms",
                                       "detect.input": "sharpened"},
    "fused on DMS-sharpened, 1 date": {"detect.method": "fused", "input.max_dates": 1, "downscale.method": "dms",
                                       "detect.input": "sharpened"},
}
POWER_AMPLITUDES_K = (1.0, 3.0, 10.0, 20.0, 40.0)
POWER_METHODS = ("local", "iforest", "ae", "fused")


def _run(scene: Path, out: Path, over: dict, client) -> dict:
    cfg = load_config(None, {"input.input": scene, "input.pipes": scene / "pipes.geojson",
                             "downscale.method": "bilinear", **over})
    t0 = time.perf_counter()
    run(cfg, out, client=client, overwrite=True)
    ev = evaluate_run(scene, out)["detection"]
    ev["seconds"] = time.perf_counter() - t0
    return ev


def _fmt(m: dict) -> str:
    return (f"AUC {m['roc_auc']:.3f} PR {m['pr_auc']:.3f} top5% {m['recall_top5pct']:.2f} "
            f"R@0.1FA/km {m['recall_at_false_alarms_per_km']['0.1']:.2f} ({m['seconds']:.0f} s)")


def power_curve_png(curve: dict, dest: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for method, rows in curve.items():
        amps = [r["amplitude_k"] for r in rows]
        axes[0].plot(amps, [r["recall_at_false_alarms_per_km"]["0.1"] for r in rows], "o-", label=method)
        axes[1].plot(amps, [r["roc_auc"] for r in rows], "o-", label=method)
    for ax, title in zip(axes, ("recall at 0.1 false alarms / km", "segment ROC-AUC")):
        ax.set_xscale("log")
        ax.set_xlabel("leak peak ΔT at 10 m (K), FWHM 20 m")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[1].axhline(0.5, color="grey", lw=0.8, ls=":")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--size-km", type=float, default=12.0)
    ap.add_argument("--power-size-km", type=float, default=8.0)
    ap.add_argument("--skip-table", action="store_true")
    ap.add_argument("--skip-power", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--png", type=Path, default=None, help="detection-power curve figure")
    args = ap.parse_args()
    results: dict = {"table": [], "power": {}}
    base = load_config(None, {})
    with tempfile.TemporaryDirectory() as tmp, make_client(base.compute) as client:
        tmp = Path(tmp)
        if not args.skip_table:
            for seed in args.seeds:
                scene = tmp / f"scene{seed}"
                simulate_scene(scene, SimulationSpec(size_km=args.size_km, leaks=18, seed=seed, dates=3))
                for name, over in TABLE.items():
                    m = _run(scene, tmp / "out", over, client)
                    results["table"].append({"seed": seed, "variant": name, **m})
                    print(f"seed {seed} {name:32s} {_fmt(m)}", flush=True)
            print("\nmeans over seeds")
            for name in TABLE:
                rs = [r for r in results["table"] if r["variant"] == name]
                mean = {k: float(np.mean([r[k] for r in rs])) for k in ("roc_auc", "pr_auc", "recall_top5pct",
                                                                          "seconds")}
                mean["recall_at_false_alarms_per_km"] = {"0.1": float(np.mean(
                    [r["recall_at_false_alarms_per_km"]["0.1"] for r in rs]))}
                per_seed = " / ".join(f"{r['roc_auc']:.3f}" for r in rs)
                print(f"{name:32s} {_fmt(mean)}  (AUC per seed {per_seed})")
        if not args.skip_power:
            for amp in POWER_AMPLITUDES_K:
                scene = tmp / f"power{amp:g}"
                simulate_scene(scene, SimulationSpec(size_km=args.power_size_km, leaks=25, seed=21,
                                                     leak_k=(amp, amp), leak_fwhm_m=(20.0, 20.0)))
                for method in POWER_METHODS:
                    m = _run(scene, tmp / "out", {"detect.method": method}, client)
                    results["power"].setdefault(method, []).append({"amplitude_k": amp, **m})
                    print(f"power {amp:5.1f} K {method:8s} {_fmt(m)}", flush=True)
            if args.png:
                power_curve_png(results["power"], args.png)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
