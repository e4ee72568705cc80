"""The sharpener's tuning comparisons, on the tuning members 0-7 of the simulator family only (never reported as
results: benchmarks/family.py reports on members >= 100).

    .venv/bin/python benchmarks/tune_dms.py [--size-km 12] [--only default capped]

Each member: a city (6 km unless ``--size-km``) read whole through the local reader; the coarse LST and predictors
as the chain builds them; 10 m RMSE gain over bilinear against the true LST for each variant, and the median time of
``dms_sharpen``: the default, all ten Sentinel-2 bands as predictors, red + NIR only, ridge 0.001, a strict (0.99)
one-scale-up check, fewer or more training cells per tile (``sample_cap``; at 6 km a city has only ~3,200 training
cells, so the caps bite at 12 km) and 5 trees instead of 10.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import rasterio
from odc.geo.geobox import GeoBox

from heattrack.io.local import LocalSceneReader, discover_local_scene
from heattrack.kernels.dms import DMSParams, dms_sharpen
from heattrack.kernels.features import ndvi
from heattrack.kernels.lst import bilinear_sharpen, block_mean
from heattrack.kernels.predictors import DEFAULT_PREDICTOR_BANDS, predictor_stack
from heattrack.simulate import family_spec, simulate_scene

VARIANTS = {  # name -> (predictor bands: None = all, DMSParams overrides)
    "default (6 bands)": (DEFAULT_PREDICTOR_BANDS, {}),
    "all ten bands": (None, {}),
    "red + NIR only": (("B04", "B08"), {}),
    "ridge 0.001": (DEFAULT_PREDICTOR_BANDS, {"ridge_alpha": 0.001}),
    "one scale up strict (0.99)": (DEFAULT_PREDICTOR_BANDS, {"scale_up_tolerance": 0.99}),
    "training cells uncapped (20000)": (DEFAULT_PREDICTOR_BANDS, {"sample_cap": 20_000}),
    "training cells capped 3000": (DEFAULT_PREDICTOR_BANDS, {"sample_cap": 3000}),
    "training cells capped 2000": (DEFAULT_PREDICTOR_BANDS, {"sample_cap": 2000}),
    "5 trees": (DEFAULT_PREDICTOR_BANDS, {"n_estimators": 5}),
}


def _load(scene: Path):
    with rasterio.open(scene / "truth" / "lst_10m.tif") as src:
        truth = src.read(1)
        gb = GeoBox(src.shape, src.transform, src.crs.to_wkt())
    n = (truth.shape[0] // 10) * 10
    return truth[:n, :n], LocalSceneReader(discover_local_scene(scene)).read(gb[:n, :n])


def _rmse(a: np.ndarray, truth: np.ndarray, ok: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a[ok] - truth[ok]) ** 2)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-km", type=float, default=6.0, help="side of each tuning city (12: tiles of 14,000 "
                    "coarse cells, where the training caps bite)")
    ap.add_argument("--only", nargs="*", help="variants to run (substrings of their names)")
    ap.add_argument("--members", nargs="*", type=int, default=list(range(8)),
                    help="family members (tune on 0-7; >= 100 only to report a choice already made)")
    args = ap.parse_args()
    variants = {k: v for k, v in VARIANTS.items() if not args.only or any(o in k for o in args.only)}
    gains = {k: [] for k in variants}
    secs = {k: [] for k in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for m in args.members:
            scene = Path(tmp) / f"m{m}"
            simulate_scene(scene, family_spec(m, size_km=args.size_km))
            truth, inp = _load(scene)
            valid = np.isfinite(inp.lst) & np.isfinite(ndvi(inp.red, inp.nir)) & inp.optical_clear
            coarse = block_mean(np.where(valid, inp.lst, np.nan), 10, 0.3)
            plain = bilinear_sharpen(coarse, valid, 10).lst
            for name, (use, over) in variants.items():
                stack, names = predictor_stack(inp.bands, valid, use=use)
                t0 = time.perf_counter()
                est = dms_sharpen(coarse, stack, valid, 10, replace(DMSParams(), **over), names=names).lst
                secs[name].append(time.perf_counter() - t0)
                ok = valid & np.isfinite(est) & np.isfinite(plain)
                gains[name].append(_rmse(plain, truth, ok) / _rmse(est, truth, ok))
    for name, g in gains.items():
        print(f"{name:28s} gain over bilinear: mean {np.mean(g):.3f}, worst {np.min(g):.3f}  "
              + " ".join(f"{x:.2f}" for x in g) + f"  dms_sharpen {np.median(secs[name]):.2f} s (median)")


if __name__ == "__main__":
    main()
