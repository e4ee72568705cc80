"""A Landsat scene on its own (no Sentinel-2 granule: its 30 m reflective bands are the optics) against the Landsat +
Sentinel-2 pair, on held-out simulator-family members, each beside the simple baseline ranking.

    .venv/bin/python benchmarks/landsat_alone.py --json benchmarks/results/landsat_alone.json

For each member (default 100-111, never tuned on): simulate the city, then run the default chain and
``detect.method: baseline`` on the pair (``landsat/`` + ``sentinel2/``) and on the Landsat scene alone (``landsat/``
only: SR_B2-B7 read bilinearly onto the 10 m grid under Sentinel-2's band names). Reports the 10 m LST RMSE gain over
bilinear (the truth's 10 m LST; each run on its own valid pixels: SCL-clear for the pair, QA-clear for Landsat alone),
segment ROC-AUC and the share of sensor-visible leaks (footprint peak >= 0.7 K) in the top 5 % of segments; the
difference of the two Landsat-alone rankings paired per member (DeLong).

``--no-qa``: the Landsat scene alone without its ``QA_PIXEL`` (a crop as USGS and the xlandsat project deliver it, the
layout of the real Momotombo and Liverpool samples), so its runs screen with the QA stand-in (bright cold clouds,
Fmask's water test; :mod:`heattrack.io.landsat_optics`) instead of the product's cloud, shadow and water bits. The
simulator draws its Landsat clouds into ST_B10 and QA_PIXEL only, so the copy also makes its clouds (and their dilated
rims) bright in SR_B2-SR_B7, as real clouds are: with the reflectance the simulator gives Sentinel-2's clouds.

``--st-only``: the "alone" runs screen the scene's ``ST_B10`` band by itself as a thermal raster (``--thermal FILE``,
:mod:`heattrack.io.landsat_st`: kelvin from the counts, ``QA_PIXEL`` beside it, no optics, no sharpening): what a user
holding only the ST product gets. ``--st-mission LE07`` (or ``LT05``) screens instead the ``ST_B6`` band of the same
city simulated as that mission would have seen it (ETM+'s 60 m or TM's 120 m thermal footprint; the same land, leaks,
clouds and noise draws): what the archive's sensors see against TIRS; ``--slc-off-gap 0.22`` gives ETM+ its scan-line
gaps after 2003 (fill). "Visible" stays TIRS-visible (footprint peak >= 0.7 K through TIRS), the same leaks for every
mission; ``*_all_top5`` counts every leak.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from family import VISIBLE_K, leak_ranks  # benchmarks/ is the script's folder
from heldout import heldout_parser, overrides, paired_columns, pooled_difference, spec_overrides, workspace

from heattrack.config import load_config
from heattrack.evaluate import compare_rankings, evaluate_run
from heattrack.orchestration.run import run
from heattrack.simulate import family_spec, simulate_scene

RUNS = (("pair", "default"), ("pair", "baseline"), ("alone", "default"), ("alone", "baseline"))


def landsat_only_copy(scene: Path, dst: Path, no_qa: bool = False) -> Path:
    """``dst`` with the scene's ``landsat/`` (without ``QA_PIXEL`` where ``no_qa``), pipes and truth (links), no
    ``sentinel2/``."""
    dst.mkdir(parents=True)
    for name in ("truth", "pipes.geojson", *(() if no_qa else ("landsat",))):
        (dst / name).symlink_to((scene / name).resolve())
    if no_qa:
        (dst / "landsat").mkdir()
        qa_file = next((scene / "landsat").glob("*_QA_PIXEL.TIF"))
        with rasterio.open(qa_file) as src:
            cloudy = (src.read(1) & ((1 << 1) | (1 << 3))) > 0  # the cloud and dilated-cloud bits
        for f in (scene / "landsat").iterdir():
            if "_QA_PIXEL" in f.name:
                continue
            if "_SR_B" not in f.name:
                (dst / "landsat" / f.name).symlink_to(f.resolve())
                continue
            # the simulator puts its Landsat clouds into ST_B10 and QA_PIXEL only; a real cloud is bright in the
            # reflective bands too: here with the reflectance it gives Sentinel-2's clouds (0.45, 0.47 from NIR on)
            with rasterio.open(f) as src:
                profile, dn = src.profile, src.read(1)
            bright = 0.47 if f.name.rsplit("_SR_B", 1)[1][0] in "567" else 0.45
            dn[cloudy] = np.uint16(round((bright + 0.2) / 0.0000275))
            with rasterio.open(dst / "landsat" / f.name, "w", **profile) as out:
                out.write(dn, 1)
    return dst


def st_dates_folder(bands: list[Path], dst: Path) -> Path:
    """``dst`` with ``thermal/`` holding links to the ST bands of several dates and their quality layers: one ST-alone
    screen over the dates (``--spec dates=2``)."""
    (dst / "thermal").mkdir(parents=True)
    for band in bands:
        product = band.name.rsplit("_ST_B", 1)[0]
        for f in band.parent.glob(f"{product}_*.TIF"):
            if "_ST_B" in f.name or "_QA_PIXEL" in f.name or "_ST_QA" in f.name:
                (dst / "thermal" / f.name).symlink_to(f.resolve())
    return dst


def main() -> None:
    ap = heldout_parser(__doc__, 12)
    ap.add_argument("--no-qa", action="store_true", help="the Landsat scene alone without its QA_PIXEL (the stand-in)")
    ap.add_argument("--st-only", action="store_true",
                    help="the scene's ST_B10 band alone as a thermal raster (no optics)")
    ap.add_argument("--st-mission", default="LC09", choices=("LC09", "LE07", "LT05"),
                    help="with --st-only: the ST band of this mission's view of the same city (LE07: ETM+ 60 m ST_B6)")
    ap.add_argument("--slc-off-gap", type=float, default=0.0,
                    help="with --st-mission LE07: ETM+ after 2003, this share of every scan lost (0.22: the mean)")
    args = ap.parse_args()
    if args.st_mission != "LC09" and not args.st_only:
        ap.error("--st-mission needs --st-only (the paired chain reads Landsat 8/9)")
    if args.slc_off_gap and args.st_mission != "LE07":
        ap.error("--slc-off-gap is ETM+'s (--st-mission LE07)")
    rows = []
    t0 = time.perf_counter()
    with workspace() as (tmp, client):
        for m in args.members:
            scene = Path(tmp) / f"m{m}"
            simulate_scene(scene, family_spec(m, size_km=args.size_km, **spec_overrides(args)))
            st = sorted(scene.glob("**/landsat/*_ST_B10.TIF"))  # one per date
            if args.st_mission != "LC09":  # the same city as another mission saw it
                twin = Path(tmp) / f"m{m}-{args.st_mission}"
                simulate_scene(twin, family_spec(m, size_km=args.size_km, landsat_mission=args.st_mission,
                                                 slc_off_gap=args.slc_off_gap, **spec_overrides(args)))
                st = sorted(twin.glob("**/landsat/*_ST_B6.TIF"))
            inputs = {"pair": {"input.input": scene},
                      "alone": ({"input.thermal": st[0]} if len(st) == 1 else
                                {"input.input": st_dates_folder(st, Path(tmp) / f"m{m}-st")}) if args.st_only else
                      {"input.input": landsat_only_copy(scene, Path(tmp) / f"m{m}-alone", args.no_qa)}}
            row: dict = {"member": m}
            for optics, method in RUNS:
                over = overrides(args) if method == "default" else {"detect.method": "baseline"}
                cfg = load_config(None, {**inputs[optics], "input.pipes": scene / "pipes.geojson", **over})
                out = Path(tmp) / f"out{m}-{optics}-{method}"
                run(cfg, out, client=client)
                ev = evaluate_run(scene, out)
                vis = (lr := leak_ranks(scene, out))[lr["peak_k"] >= VISIBLE_K]
                key = f"{optics}_{method}"
                row[f"{key}_auc"] = ev["detection"]["roc_auc"]
                row[f"{key}_visible_top5"] = float((vis["rank_share"] <= 0.05).mean()) if len(vis) else float("nan")
                row[f"{key}_n_visible"] = int(len(vis))
                row[f"{key}_all_top5"] = float((lr["rank_share"] <= 0.05).mean()) if len(lr) else float("nan")
                row[f"{key}_n_leaks"] = int(len(lr))
                if method == "default":
                    row[f"{optics}_lst_gain"] = ev["downscaling"]["rmse_ratio_bilinear_over_sharpened"]
                    row[f"{optics}_methods"] = sorted({t["sharpen"].get("method") for t in json.loads(
                        (out / "run.json").read_text())["tile_summaries"].values()})
            row.update(paired_columns(compare_rankings(scene, Path(tmp) / f"out{m}-alone-default",
                                                       Path(tmp) / f"out{m}-alone-baseline")))
            rows.append(row)
            print(f"member {m}: LST gain pair {row['pair_lst_gain']:.2f}x, alone {row['alone_lst_gain']:.2f}x "
                  f"({'/'.join(row['alone_methods'])}); AUC pair {row['pair_default_auc']:.3f} (baseline "
                  f"{row['pair_baseline_auc']:.3f}), alone {row['alone_default_auc']:.3f} (baseline "
                  f"{row['alone_baseline_auc']:.3f})", flush=True)
    df = pd.DataFrame(rows)
    summary = {"members": [int(m) for m in df["member"]], "size_km": args.size_km, "alone_without_qa": args.no_qa,
               "alone_st_b10_only": args.st_only, "alone_st_mission": args.st_mission, "slc_off_gap": args.slc_off_gap,
               "seconds": round(time.perf_counter() - t0)}
    print(f"\n{len(df)} held-out members ({summary['seconds']} s)")
    for col in ("pair_lst_gain", "alone_lst_gain", *(f"{o}_{m}_auc" for o, m in RUNS)):
        summary[col] = {"mean": float(df[col].mean()), "worst": float(df[col].min())}
        print(f"{col:24s} mean {df[col].mean():.3f}  worst {df[col].min():.3f}")
    for o, m in RUNS:
        hits = float((df[f"{o}_{m}_visible_top5"].fillna(0) * df[f"{o}_{m}_n_visible"]).sum())
        n = int(df[f"{o}_{m}_n_visible"].sum())
        summary[f"{o}_{m}_visible_top5_pooled"] = {"hits": int(round(hits)), "n": n, "share": hits / max(n, 1)}
        print(f"{o} {m}: visible leaks in the top 5 % pooled {hits / max(n, 1):.3f} ({hits:.0f} of {n})")
        hits = float((df[f"{o}_{m}_all_top5"].fillna(0) * df[f"{o}_{m}_n_leaks"]).sum())
        n = int(df[f"{o}_{m}_n_leaks"].sum())
        summary[f"{o}_{m}_all_top5_pooled"] = {"hits": int(round(hits)), "n": n, "share": hits / max(n, 1)}
        print(f"{o} {m}: every leak in the top 5 % pooled {hits / max(n, 1):.3f} ({hits:.0f} of {n})")
    summary["alone_default_above_baseline"] = int((df["alone_default_auc"] > df["alone_baseline_auc"]).sum())
    summary["alone_below_1x"] = int((df["alone_lst_gain"] < 1.0).sum())
    summary["alone_minus_baseline_paired"] = pooled_difference(df)
    print(f"Landsat alone: default above the baseline on {summary['alone_default_above_baseline']} of {len(df)}; "
          f"sharpening below 1.0x on {summary['alone_below_1x']}")
    if args.json:
        members = [{k: v.item() if isinstance(v, np.generic) else v for k, v in r.items()} for r in rows]  # exact
        args.json.write_text(json.dumps({"summary": summary, "members": members}, indent=1,
                                        default=lambda v: v.item() if isinstance(v, np.generic) else str(v)))


if __name__ == "__main__":
    main()
