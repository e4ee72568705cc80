"""Throughput of each kernel on one padded 10 km tile (1100 x 1100 px at 10 m), single thread.

    .venv/bin/python benchmarks/kernels.py

Prints Mpx/s (10 m pixels per second per core) per kernel, median of 5 repeats.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from heattrack.kernels.anomaly import local_anomaly  # noqa: E402
from heattrack.kernels.chain import ChainParams, compute_tile_products  # noqa: E402
from heattrack.kernels.dms import DMSParams, dms_sharpen  # noqa: E402
from heattrack.kernels.footprint import (  # noqa: E402
    FOOTPRINT_CANDIDATES,
    estimate_footprint_sigma,
    footprint_scales,
)
from heattrack.kernels.lst import block_mean, tsharp_sharpen, upsample_bilinear  # noqa: E402
from heattrack.kernels.predictors import predictor_stack, sharpen_20m_bands  # noqa: E402
from heattrack.kernels.segments import neighbourhood_max  # noqa: E402


def bench(fn, n_px: int, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n_px / np.median(times) / 1e6


def main() -> None:
    rng = np.random.default_rng(0)
    n, f = 1100, 10
    yy, xx = np.mgrid[0:n, 0:n]
    nd = np.clip(0.4 + 0.3 * np.sin(xx / 6.0) * np.cos(yy / 8.0) + rng.normal(0, 0.05, (n, n)), 0, 0.8)
    nd = nd.astype(np.float32)
    lst = (280 - 5 * nd - 3 * nd**2 + rng.normal(0, 0.5, (n, n))).astype(np.float32)
    lst[rng.random((n, n)) < 0.05] = np.nan
    valid = np.isfinite(lst)
    coarse = block_mean(lst, f, 0.3)
    red = (0.1 - 0.05 * nd).astype(np.float32)
    nir = (red * (1 + nd) / (1 - nd)).astype(np.float32)
    bands = {"B02": 0.8 * red, "B03": 0.9 * red, "B04": red, "B08": nir, "B11": 0.5 * (red + nir),
             "B12": 0.4 * (red + nir)}
    bands = {k: (v * (1 + 0.02 * rng.standard_normal(v.shape))).astype(np.float32) for k, v in bands.items()}
    preds, names = predictor_stack(bands)
    preds_valid, _ = predictor_stack(bands, valid)
    px = n * n
    rows = [
        ("block_mean (100 m)", lambda: block_mean(lst, f, 0.3)),
        ("upsample_bilinear", lambda: upsample_bilinear(coarse, f)),
        ("tsharp_sharpen", lambda: tsharp_sharpen(coarse, nd, valid, f)),
        ("predictor_stack (6 bands + 3 indices)", lambda: predictor_stack(bands)),
        ("sharpen_20m_bands (B11, B12), all clear", lambda: sharpen_20m_bands(bands, np.ones((n, n), bool))),
        ("sharpen_20m_bands, 5 % not clear", lambda: sharpen_20m_bands(bands, valid)),
        ("estimate_footprint_sigma (7 candidates)",
         lambda: estimate_footprint_sigma(lst, preds_valid, valid, tuple(3.6 * k for k in FOOTPRINT_CANDIDATES),
                                          **footprint_scales(3.6))),
        ("dms_sharpen (6 bands, guarded; default)", lambda: dms_sharpen(coarse, preds, valid, f, names=names)),
        ("dms_sharpen (6 bands, no guard)",
         lambda: dms_sharpen(coarse, preds, valid, f, DMSParams(guard=False), names=names)),
        ("local_anomaly (500 m median @50 m)", lambda: local_anomaly(lst, 50, 5)),
        ("neighbourhood_max r=2", lambda: neighbourhood_max(lst, 2)),
        ("whole chain, downscale.method=tsharp",
         lambda: compute_tile_products(lst, red, nir, np.ones((n, n), bool), ChainParams(downscale_method="tsharp"))),
        ("whole chain, downscale.method=dms",
         lambda: compute_tile_products(lst, red, nir, np.ones((n, n), bool), ChainParams(downscale_method="dms"),
                                       bands=bands)),
        ("whole chain, dms, downscale.dms_sharpen_20m=false",
         lambda: compute_tile_products(lst, red, nir, np.ones((n, n), bool),
                                       ChainParams(downscale_method="dms", dms_sharpen_20m=False), bands=bands)),
        ("whole chain, dms, downscale.dms_psf_from_data=false",
         lambda: compute_tile_products(lst, red, nir, np.ones((n, n), bool),
                                       ChainParams(downscale_method="dms", dms_psf_from_data=False), bands=bands)),
        ("whole chain, dms, detect.rank_grid=thermal",
         lambda: compute_tile_products(lst, red, nir, np.ones((n, n), bool),
                                       ChainParams(downscale_method="dms", rank_native=False), bands=bands)),
    ]
    print(f"{'kernel':40s} {'Mpx/s/core':>10s}")
    for name, fn in rows:
        print(f"{name:40s} {bench(fn, px):10.1f}")


if __name__ == "__main__":
    main()
