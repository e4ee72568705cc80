"""The real-crop protocol of issue #14 (`validate-sharpening --factor 9 --eval-factor 3`) on random windows of the real
Landsat crops: how often each method loses to bilinear on the smaller crops a user might cut from a scene.

    .venv/bin/python benchmarks/real_windows.py [FOLDER ...] [--json benchmarks/results/real_windows.json]

For each folder (default: the Momotombo crop bundled with the tests; pass the xlandsat project's Liverpool folder as
benchmarks/real_asc.py explains) and each window size (``--sizes``, 30 m pixels), ``--per-size`` windows at random
positions (``--seed``) go through exactly what ``heattrack validate-sharpening`` runs
(:func:`heattrack.evaluate.aggregate_sharpen_compare` on every SR band present): RMSE of bilinear, TsHARP and the
guarded default ``dms`` at 90 m, plain and seen through the footprint, and what the guard delivered. Printed per window
and summarised per size and overall: mean and worst gain over bilinear and the windows below 1.0x. A window of 90 px
holds 10 x 10 coarse cells of 270 m, so its guard decides on 9 held-out cells. Nothing here chooses a setting.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from heattrack.evaluate import aggregate_sharpen_compare, read_landsat_for_asc

DEFAULT = Path(__file__).parents[1] / "tests" / "data" / "real" / "landsat-momotombo"
METHODS = ("tsharp", "dms")


def windows(shape: tuple[int, int], sizes: list[int], per_size: int, rng) -> list[tuple[int, int, int]]:
    """``(row, col, size)`` of ``per_size`` random square windows of each size that fits in ``shape``."""
    n, m = shape
    return [(int(rng.integers(0, n - s + 1)), int(rng.integers(0, m - s + 1)), s)
            for s in sizes if s <= min(n, m) for _ in range(per_size)]


def summary(rows: list[dict]) -> dict:
    out = {"windows": len(rows)}
    for m in METHODS:
        g = np.array([r[f"{m}_gain"] for r in rows])
        gs = np.array([r[f"{m}_gain_seen"] for r in rows])
        out[m] = {"mean": float(g.mean()), "worst": float(g.min()), "below_1": int((g < 0.9995).sum()),
                  "seen_mean": float(gs.mean()), "seen_below_1": int((gs < 0.9995).sum())}
    out["dms_delivered"] = {k: sum(r["dms_used"] == k for r in rows) for k in sorted({r["dms_used"] for r in rows})}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", type=Path, nargs="*", default=[DEFAULT])
    ap.add_argument("--sizes", type=int, nargs="+", default=[90, 135, 180, 270])
    ap.add_argument("--per-size", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []
    for folder in args.folders:
        lst, bands, product = read_landsat_for_asc(folder)
        for y, x, s in windows(lst.shape, args.sizes, args.per_size, rng):
            sl = np.s_[y:y + s, x:x + s]
            r = aggregate_sharpen_compare(lst[sl], {b: v[sl] for b, v in bands.items()}, factor=9, eval_factor=3)
            row = {"product": product, "row": y, "col": x, "size_px": s, "dms_used": r["dms"]["info"].get("method"),
                   "bilinear_rmse_k": r["bilinear"]["rmse_k"]}
            for m in METHODS:
                row[f"{m}_gain"] = r["bilinear"]["rmse_k"] / r[m]["rmse_k"]
                row[f"{m}_gain_seen"] = r["bilinear"]["rmse_seen_k"] / r[m]["rmse_seen_k"]
            rows.append(row)
            print(f"{product[:40]:<40} {s:>4} px at ({y:>3}, {x:>3}): bilinear {row['bilinear_rmse_k']:.3f} K, TsHARP "
                  f"{row['tsharp_gain']:.2f}x, dms {row['dms_gain']:.2f}x (delivered {row['dms_used']}; seen through "
                  f"the footprint {row['dms_gain_seen']:.2f}x)", flush=True)
    result = {"sizes": args.sizes, "per_size": args.per_size, "seed": args.seed,
              "by_product": {p: summary([r for r in rows if r["product"] == p]) for p in dict.fromkeys(
                  r["product"] for r in rows)},
              "by_size": {str(s): summary([r for r in rows if r["size_px"] == s]) for s in args.sizes
                          if any(r["size_px"] == s for r in rows)},
              "all": summary(rows), "rows": rows}
    for k, v in [*result["by_product"].items(), *result["by_size"].items(), ("all", result["all"])]:
        print(f"{k:<44} {v['windows']:>3} windows: " + "; ".join(
            f"{m} mean {v[m]['mean']:.2f}x, worst {v[m]['worst']:.2f}x, below 1.0 on {v[m]['below_1']} "
            f"(seen {v[m]['seen_below_1']})" for m in METHODS) + f"; dms delivered {v['dms_delivered']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
