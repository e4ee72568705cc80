"""Aggregate-sharpen-compare on real Landsat 8/9 C2L2 crops: the bundled Momotombo sample and any other crop folder.

    .venv/bin/python benchmarks/real_asc.py [FOLDER ...] [--json benchmarks/results/real_asc.json]

For each folder (default: the Momotombo crop bundled with the tests) and each protocol — ``--factor 3`` (30 m -> 90 m,
compared at 30 m) and ``--factor 9 --eval-factor 3`` (-> 270 m, compared at 90 m, the protocol of issue #14) — it
runs exactly what ``heattrack validate-sharpening`` runs (:func:`heattrack.evaluate.aggregate_sharpen_compare` on
:func:`heattrack.evaluate.read_landsat_for_asc`'s bands: every SR band SR_B2-SR_B7 present) and prints the RMSE of
bilinear (the baseline), TsHARP and the default ``dms`` (with what its guard delivered), their gains over bilinear,
and the same seen through the sensor's footprint; then the same over land and over open water apart (water: MNDWI =
(green - SWIR1) / (green + SWIR1) > 0, Xu 2006, from SR_B3 and SR_B6, :func:`heattrack.evaluate.land_and_water`, as
``validate-sharpening`` prints them; a compared 90 m cell counts where most of it is). Caveat: ST_B10's 30 m pixels carry TIRS's ~100 m footprint, so the
"truth" here is itself smooth: right 30 m detail counts as error in the plain columns.

A real city crop with SR_B2-SR_B7 and ST_B10 (the one issue #14 names) is not in this repository: the xlandsat
project's Liverpool sample (``xlandsat.datasets.fetch_liverpool``, CC0: ``LC08_L2SP_204023_20200927_20201006_02_T1``,
433 x 267 px) is such a crop; pass its unpacked folder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from heattrack.evaluate import aggregate_sharpen_compare, land_and_water, read_landsat_for_asc

DEFAULT = Path(__file__).parents[1] / "tests" / "data" / "real" / "landsat-momotombo"
PROTOCOLS = ((3, 1), (9, 3))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", type=Path, nargs="*", default=[DEFAULT])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    print(f"{'crop':<44} {'protocol':>8} {'px':>7} {'bilinear K':>10} {'tsharp':>13} {'dms':>13} {'guard':>9} "
          f"{'seen: tsharp':>13} {'dms':>13}")
    for folder in args.folders:
        lst, bands, product = read_landsat_for_asc(folder)
        regions = land_and_water(bands)  # as validate-sharpening splits them
        for factor, ev in PROTOCOLS:
            r = aggregate_sharpen_compare(lst, bands, factor=factor, eval_factor=ev, regions=regions)
            row = {"product": product, "folder": folder.name, "factor": factor, "eval_factor": ev, "n_px": r["n_px"],
                   "bands": r["bands"], "dms_used": r["dms"]["info"].get("method"), "dms_notes": r["dms_notes"]}
            base = r["bilinear"].get("by_region", {})
            for m in ("bilinear", "tsharp", "dms"):
                row[m] = {"rmse_k": r[m]["rmse_k"], "rmse_seen_k": r[m]["rmse_seen_k"],
                          "gain": r["bilinear"]["rmse_k"] / r[m]["rmse_k"],
                          "gain_seen": r["bilinear"]["rmse_seen_k"] / r[m]["rmse_seen_k"],
                          "by_region": {k: {**v, "gain": base[k]["rmse_k"] / v["rmse_k"],
                                            "gain_seen": base[k]["rmse_seen_k"] / v["rmse_seen_k"]}
                                        for k, v in r[m].get("by_region", {}).items()}}
            rows.append(row)
            t, d = row["tsharp"], row["dms"]
            print(f"{product[:44]:<44} {f'{factor}/{ev}':>8} {r['n_px']:>7} {row['bilinear']['rmse_k']:>10.3f} "
                  f"{t['rmse_k']:>6.3f} {t['gain']:>5.2f}x {d['rmse_k']:>6.3f} {d['gain']:>5.2f}x "
                  f"{row['dms_used']:>9} {t['gain_seen']:>12.2f}x {d['gain_seen']:>12.2f}x")
            for k in base:
                b, t, d = (row[m]["by_region"][k] for m in ("bilinear", "tsharp", "dms"))
                label = f"  {k} ({b['n_px']} compared px)"
                print(f"{label:<44} {'':>8} {'':>7} {b['rmse_k']:>10.3f} "
                      f"{t['rmse_k']:>6.3f} {t['gain']:>5.2f}x {d['rmse_k']:>6.3f} {d['gain']:>5.2f}x {'':>9} "
                      f"{t['gain_seen']:>12.2f}x {d['gain_seen']:>12.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows}, indent=1))


if __name__ == "__main__":
    main()
