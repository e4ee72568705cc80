"""Injection test of the detectability model: how much of a 20 m plume's peak does the real Landsat chain's ranking
evidence keep, against :func:`heattrack.kernels.ranking.chain_attenuation`'s model?

For each member, one 11 km tile of a simulated city is read like a run reads it; 20 m plumes of 10 K are added
on a 300 m grid to the true-LST side of the sensor (blurred by the 36 m footprint, sampled on the 30 m product
grid) and the tile goes through ``thermal_products`` twice (with and without); the ranking evidence's gain at each
plume (maximum within the segment buffer) over 10 K is the measured attenuation, against the model of the chain the
configuration ranks on (``detect.rank_grid``: the 30 m pixels by default, ``--set detect.rank_grid=thermal`` for the
100 m blocks), at the plume's centre. Tuning members (0-7) by default: the model's constants were set there.

    .venv/bin/python benchmarks/injection.py --members 0 1 2 3
    .venv/bin/python benchmarks/injection.py --set detect.rank_grid=thermal
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from affine import Affine
from odc.geo.geobox import GeoBox
from scipy import ndimage

from heattrack.config import load_config, parse_set_option
from heattrack.io.local import LocalSceneReader, discover_local_scene, scene_footprint
from heattrack.kernels.chain import ChainParams, thermal_products
from heattrack.kernels.ranking import chain_attenuation
from heattrack.orchestration.run_plan import landsat_chain
from heattrack.simulate import family_spec, simulate_scene

AMP_K, FWHM_M, SPACING_PX, N_PX = 10.0, 20.0, 30, 1100


def measure(scene: Path, seed: int, overrides: dict | None = None) -> tuple[float, float, int, str]:
    """(model attenuation, median measured attenuation, plumes, sharpener used) on one tile of ``scene``."""
    cfg = load_config(None, overrides or {})
    params = ChainParams.from_config(cfg)
    res = cfg.grid.resolution_m
    sc = discover_local_scene(scene)
    fp, crs = scene_footprint(sc)
    b = fp.boundingbox
    inp = LocalSceneReader(sc).read(GeoBox((N_PX, N_PX), Affine(res, 0, b.left + 200, 0, -res, b.top - 200), crs))
    rng = np.random.default_rng(seed)
    ys, xs = np.meshgrid(np.arange(100, N_PX - 100, SPACING_PX), np.arange(100, N_PX - 100, SPACING_PX), indexing="ij")
    ys = ys.ravel() + rng.integers(-5, 5, ys.size)
    xs = xs.ravel() + rng.integers(-5, 5, xs.size)
    s = FWHM_M / 2.3548 / res
    plume = np.zeros((N_PX, N_PX), np.float32)
    plume[ys, xs] = 1.0
    plume = ndimage.gaussian_filter(plume, s) * (2 * np.pi * s * s) * AMP_K  # Gaussian plumes of peak AMP_K
    sigma_px = cfg.downscale.dms_psf_sigma_m / res
    seen = ndimage.gaussian_filter(plume, sigma_px)  # the sensor footprint
    grid30 = np.clip((np.arange(N_PX) // 3) * 3 + 1, 0, N_PX - 1)  # the 30 m product, nearest onto 10 m
    seen30 = seen[np.ix_(grid30, grid30)]
    base = thermal_products(inp.lst, inp.red, inp.nir, inp.optical_clear, params, inp.bands)
    inj = thermal_products(inp.lst + seen30, inp.red, inp.nir, inp.optical_clear, params, inp.bands)
    buffer_px = int(np.ceil(cfg.segments.buffer_m / res))
    gain = ndimage.maximum_filter(np.nan_to_num(inj.evidence_k - base.evidence_k, nan=-9.0), 2 * buffer_px + 1)
    ok = np.isfinite(base.evidence_k[ys, xs]) & np.isfinite(inj.evidence_k[ys, xs])
    # the chain a run ranks on (detect.rank_grid), with the Landsat-scale buffer and median window
    model = chain_attenuation(plume_fwhm_px=FWHM_M / res,
                              **landsat_chain(cfg, cfg.segments.buffer_m, cfg.detect.rank_window_m))
    return model, float(np.median(gain[ys, xs][ok]) / AMP_K), int(ok.sum()), str(base.info.get("method"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--size-km", type=float, default=6.0)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    overrides = dict(parse_set_option(s) for s in args.sets)
    with tempfile.TemporaryDirectory() as tmp:
        for m in args.members:
            scene = Path(tmp) / f"m{m}"
            simulate_scene(scene, family_spec(m, size_km=args.size_km))
            model, measured, n, method = measure(scene, m, overrides)
            print(f"member {m}: model attenuation {model:.4f}, measured through the chain {measured:.4f} "
                  f"(median of {n} plumes; sharpener {method}): the model is {model / measured:.2f}x optimistic")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
