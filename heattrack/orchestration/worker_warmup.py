"""Dask worker preload: pay a tile task's first-use costs when the worker process starts, not in its first tile.

A worker's first tile took ~1 s longer than the others (``benchmarks/scale.py``: the lazily imported modules,
numba loading the compiled kernels from its cache, GDAL's COG driver). :func:`warm` runs the chain once on a small
synthetic tile instead; heattrack starts its workers while the driver plans the run, so this overlaps with the
planning. Loaded with ``--preload heattrack.orchestration.worker_warmup`` (the LocalCluster, Slurm job scripts and
Kubernetes pods get it from :mod:`heattrack.orchestration.cluster`). Never fails a worker: an error is logged and
the first tile pays the rest.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)

#: the preload option of every worker heattrack starts
PRELOAD = "heattrack.orchestration.worker_warmup"


def warm() -> float:
    """Run the default chain (DMS sharpening, residual evidence, local anomaly) and a tile COG once on a synthetic
    300 x 300 tile; returns the seconds it took."""
    t0 = time.perf_counter()
    import numpy as np
    from affine import Affine

    import heattrack.orchestration.graph  # noqa: F401  (the tile task and everything it imports)
    from heattrack.config import Config
    from heattrack.io.exports import tile_cog_bytes
    from heattrack.kernels.chain import ChainParams, compute_tile_products
    from heattrack.kernels.lst import block_mean, block_repeat

    params = ChainParams.from_config(Config())
    f = params.thermal_factor
    n = 10 * f * 10  # above the size where block_mean / upsample_bilinear take their compiled loops
    rng = np.random.default_rng(0)
    red = (0.04 + 0.12 * rng.random((n, n))).astype(np.float32)
    nir = (0.15 + 0.25 * rng.random((n, n))).astype(np.float32)
    bands = {b: (0.05 + 0.2 * rng.random((n, n))).astype(np.float32) for b in params.dms_bands}
    bands.update(B04=red, B08=nir)
    fine = (276.0 + 4.0 * (red - nir) + 0.2 * rng.standard_normal((n, n))).astype(np.float32)
    lst = block_repeat(block_mean(fine, f), f)
    clear = np.ones((n, n), bool)
    compute_tile_products(lst, red, nir, clear, params, bands=bands)
    tile_cog_bytes(fine[:256, :256], Affine(10.0, 0, 0, 0, -10.0, 0), "EPSG:32652")
    return time.perf_counter() - t0


def dask_setup(worker=None) -> None:
    """Dask's preload hook: the warm-up runs on a thread of the worker process, so the worker joins the scheduler at
    once (a run that fails its planning closes the cluster without waiting for it); a task that arrives first shares
    the imports it is doing."""
    threading.Thread(target=_warm_logged, name="heattrack-warm-up", daemon=True).start()


def _warm_logged() -> None:
    try:
        log.info("heattrack worker warm-up: %.2f s", warm())
    except Exception:  # noqa: BLE001 - a head start only: the tile task raises any real error itself
        log.warning("heattrack worker warm-up failed; the first tile pays its start-up", exc_info=True)
