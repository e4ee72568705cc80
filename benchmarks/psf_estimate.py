"""The effective resolution of a thermal raster estimated from its own spectrum, against the truth and against
the pixel size (what heattrack assumed before), on held-out family cities and on the real Landsat samples.

    .venv/bin/python benchmarks/psf_estimate.py --json benchmarks/results/psf_estimate.json

With ``--runs``: what it changes for the ranking. Each member simulated as an airborne scene, its thermal raster
replaced by the same LST through a 70 m footprint (ECOSTRESS resampled onto 10 m, no ``psf_m`` stated), then
``heattrack run`` twice: as heattrack reads it now (the footprint the image shows sets the detectability, the
pixel size the ranking's windows) and as it read it before (``thermal.psf_m: 10``, the pixel size for both); segment
ROC-AUC of both, the median ``mdl_k``, and the calibration of ``mdl_k`` as in ``benchmarks/sensors.py``: the leak
peak, as a multiple of its segment's ``mdl_k``, at which half the leaks are flagged (calibrated: 1).

Simulated rows: each held-out member's true 10 m LST, seen through a square-equivalent footprint of 10 m (an
airborne survey averaged to 10 m: no blur), 70 m (ECOSTRESS) and 100 m (Landsat TIRS), plus 0.1 K noise, written
as a 10 m GeoTIFF without a sidecar and read by the thermal source (``describe_thermal``). Printed: the footprint
the image shows, the ``psf_m`` the run uses and the pixel size. Real rows (no truth beyond the sensors'
specifications): the central window of the Landsat C2L2 samples' ST_B10 (TIRS ~100 m, delivered on 30 m pixels)
and, as a sharp reference, SR_B4 (OLI 30 m), read by the same kernel.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from heldout import heldout_parser, seen_over_needed  # benchmarks/ is the script's folder
from scipy import ndimage

from heattrack.io.thermal import describe_thermal
from heattrack.kernels.psf import estimate_footprint
from heattrack.simulate import family_spec, simulate_scene

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
FOOTPRINTS_M = {"airborne (10 m)": 10.0, "ECOSTRESS (70 m)": 70.0, "Landsat TIRS (100 m)": 100.0}


def _simulated(members: list[int], size_km: float, tmp: Path) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for m in members:
        scene = simulate_scene(tmp / f"m{m}", family_spec(m, size_km=size_km))
        with rasterio.open(tmp / f"m{m}" / "truth" / "lst_10m.tif") as src:
            truth, profile = src.read(1).astype(np.float64), src.profile
        profile.update(dtype="float32", nodata=None)
        for name, box_m in FOOTPRINTS_M.items():
            sigma_px = np.sqrt(max(box_m**2 - 10.0**2, 0.0) / 12.0) / 10.0  # beyond the 10 m pixel's own box
            img = ndimage.gaussian_filter(truth, sigma_px) if sigma_px else truth
            path = tmp / f"m{m}_{box_m:g}m_20250115.tif"
            with rasterio.open(path, "w", **profile) as dst:
                dst.write((img + rng.normal(0.0, 0.1, img.shape)).astype(np.float32), 1)
            sc = describe_thermal(path)
            rows.append({"member": m, "sensor": name, "true_m": box_m, "estimate_m": sc.psf_estimate_m,
                         "psf_m_used": sc.psf_m, "psf_source": sc.psf_source, "pixel_m": sc.pixel_m})
        del scene
    return rows


def _ranking(members: list[int], size_km: float, tmp: Path, client) -> tuple[list[dict], dict]:
    import geopandas as gpd
    from sensors import ratio_half_flagged

    from heattrack.config import load_config
    from heattrack.evaluate import evaluate_run
    from heattrack.orchestration.run import run

    rows, calib = [], {"estimated": [], "pixel_size": []}
    for m in members:
        scene = tmp / f"air{m}"
        simulate_scene(scene, family_spec(m, size_km=size_km, sensor="airborne"))
        tif = next((scene / "thermal").glob("*.tif"))
        with rasterio.open(tif) as src:
            lst, profile = src.read(1).astype(np.float64), src.profile
        sigma_px = np.sqrt((70.0**2 - 10.0**2) / 12.0) / 10.0
        blurred = ndimage.gaussian_filter(np.where(np.isfinite(lst), lst, np.nanmean(lst)), sigma_px)
        with rasterio.open(tif, "w", **profile) as dst:
            dst.write(np.where(np.isfinite(lst), blurred, np.nan).astype(np.float32), 1)
        side = tif.with_suffix(".json")
        side.write_text(json.dumps({k: v for k, v in json.loads(side.read_text()).items() if k != "psf_m"}))
        row = {"member": m}
        for label, over in (("estimated", {}), ("pixel_size", {"thermal.psf_m": 10.0})):
            cfg = load_config(None, {"input.input": scene, "input.pipes": scene / "pipes.geojson", **over})
            out = tmp / f"run{m}_{label}"
            run(cfg, out, client=client)
            info = json.loads((out / "run.json").read_text())
            row[f"{label}_psf_m"] = info["inputs"]["psf_m"]
            row[f"{label}_roc_auc"] = evaluate_run(scene, out)["detection"]["roc_auc"]
            det = info["detectability"]
            seg = gpd.read_file(out / "segments.geojson")[["segment_id", "stat_k", "mdl_k", "length_m"]]
            row[f"{label}_median_mdl_k"] = float(seg["mdl_k"].median())
            leaks = gpd.read_file(scene / "truth" / "leaks.geojson").drop(columns="geometry")
            df = leaks.merge(seg, on="segment_id").sort_values("amplitude_k", ascending=False)
            df = df.drop_duplicates("segment_id").dropna(subset=["stat_k"])
            calib[label].append((seen_over_needed(df["amplitude_k"], df["fwhm_m"], df["length_m"], df["mdl_k"], det),
                                 df["stat_k"].to_numpy(float) >= det["flag_level_k"]))
        rows.append(row)
        print(f"member {m}: ROC-AUC {row['estimated_roc_auc']:.3f} as {row['estimated_psf_m']:g} m data (estimated), "
              f"{row['pixel_size_roc_auc']:.3f} as {row['pixel_size_psf_m']:g} m (the pixel size); median mdl_k "
              f"{row['estimated_median_mdl_k']:.1f} K vs {row['pixel_size_median_mdl_k']:.1f} K", flush=True)
    half = {k: ratio_half_flagged(np.concatenate([r for r, _ in v]), np.concatenate([f for _, f in v]))
            for k, v in calib.items()}
    return rows, half


def _real() -> list[dict]:
    rows = []
    for folder in sorted(REAL.glob("**/landsat-c2l2*")):
        for band, nominal in (("ST_B10", "~100 m (TIRS)"), ("SR_B4", "30 m (OLI)")):
            files = sorted(folder.glob(f"*_{band}.TIF"))
            if not files:
                continue
            with rasterio.open(files[0]) as src:
                a = src.read(1).astype(np.float64)
                pixel = float(abs(src.transform.a))
                if src.nodata is not None:
                    a[a == src.nodata] = np.nan
            a[a == 0] = np.nan  # C2L2 fill
            est = estimate_footprint(a)
            rows.append({"sample": f"{folder.name}/{files[0].name}", "band": band, "nominal": nominal,
                         "pixel_m": round(pixel, 1), "shape": list(a.shape),
                         "estimate_m": None if est is None else round(est.box_width_px * pixel, 1),
                         "sigma_px": None if est is None else est.sigma_px})
    return rows


def main() -> None:
    ap = heldout_parser(__doc__, 6)
    ap.add_argument("--runs", action="store_true", help="also run the chain on a 70 m raster both ways")
    args = ap.parse_args()
    ranking, half = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        sim = _simulated(args.members, args.size_km, Path(tmp))
        if args.runs:
            from heldout import workspace

            with workspace() as (_, client):
                ranking, half = _ranking(args.members, args.size_km, Path(tmp), client)
    print(f"{'member':>6} {'footprint':<22} {'true m':>6} {'image shows m':>13} {'psf_m used':>10} {'source':<11} "
          f"{'pixel m':>7}")
    for r in sim:
        print(f"{r['member']:>6} {r['sensor']:<22} {r['true_m']:>6g} {r['estimate_m']:>13} {r['psf_m_used']:>10g} "
              f"{r['psf_source']:<11} {r['pixel_m']:>7g}")
    summary = {}
    for name, box_m in FOOTPRINTS_M.items():
        sel = [r for r in sim if r["sensor"] == name]
        used = np.array([r["psf_m_used"] for r in sel])
        est = np.array([r["estimate_m"] for r in sel], dtype=float)
        summary[name] = {"true_m": box_m, "estimate_median_m": float(np.median(est)),
                         "estimate_range_m": [float(est.min()), float(est.max())],
                         "used_median_m": float(np.median(used)), "used_range_m": [float(used.min()), float(used.max())],
                         "pixel_size_m": 10.0, "estimated_share": float(np.mean([r["psf_source"] == "estimated"
                                                                                 for r in sel]))}
        s = summary[name]
        print(f"{name}: image shows {s['estimate_median_m']:.0f} m ({s['estimate_range_m'][0]:.0f}-"
              f"{s['estimate_range_m'][1]:.0f}); used {s['used_median_m']:.0f} m ({s['used_range_m'][0]:.0f}-"
              f"{s['used_range_m'][1]:.0f}); the pixel size (before): 10 m")
    real = _real()
    print("\nreal samples (central window):")
    for r in real:
        print(f"  {r['sample']} {r['band']} nominal {r['nominal']}, {r['pixel_m']:g} m pixels {r['shape']}: image "
              f"shows {r['estimate_m']} m")
    if ranking:
        est, pix = (np.array([r[f"{k}_roc_auc"] for r in ranking]) for k in ("estimated", "pixel_size"))
        print(f"\n70 m raster on 10 m pixels, segment ROC-AUC over {len(ranking)} members: read at the estimated "
              f"footprint {est.mean():.3f} (worst {est.min():.3f}); at the pixel size {pix.mean():.3f} (worst "
              f"{pix.min():.3f}); estimated above pixel size on {int((est > pix).sum())} of {len(ranking)}")
        print(f"mdl_k calibration (half the leaks flagged at this multiple of mdl_k; calibrated: 1): with the "
              f"estimated footprint {half['estimated']:.2f}, with the pixel size {half['pixel_size']:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"members": args.members, "simulated": sim, "summary": summary,
                                         "real": real, "ranking_70m": ranking,
                                         "mdl_k_ratio_half_flagged_70m": half}, indent=1, default=float))


if __name__ == "__main__":
    main()
