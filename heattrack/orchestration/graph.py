"""One tile task (read -> chain -> write region -> record) and its submission to Dask.

``TileTask`` is a frozen record that carries everything a worker needs (no hidden global state); the same
``process_tile`` runs on a Dask worker or in-process (tests, debugging).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from odc.geo.geobox import GeoBox

from heattrack.io.local import TileInputs
from heattrack.io.store import TileRecords, write_tile_region
from heattrack.kernels.chain import ChainParams, compute_tile_products
from heattrack.kernels.segments import label_hotspots, neighbourhood_max, sample_at_points

log = logging.getLogger(__name__)


class TileReader(Protocol):
    """Anything that can deliver preprocessed inputs on a tile's (padded) GeoBox."""

    def read(self, geobox: GeoBox) -> TileInputs: ...


@dataclass(frozen=True)
class TileTask:
    """Everything one tile needs: where it is, what to read, how to compute, where to write."""

    index: tuple[int, int]
    geobox: GeoBox
    halo_px: int
    rows: slice
    cols: slice
    reader: TileReader
    params: ChainParams
    point_ids: np.ndarray
    point_x: np.ndarray
    point_y: np.ndarray
    buffer_px: int
    hotspot_threshold: float
    hotspot_min_area_px: int
    mosaic_path: str
    out_dir: str

    @property
    def key(self) -> str:
        return f"tile-{self.index[0]}_{self.index[1]}"


def _max_rss_mb() -> float:
    """Peak resident memory of this (worker) process, MB: VmHWM of the current address space on Linux
    (``getrusage`` would report the parent's size for a spawned worker), else the current RSS."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def process_tile(task: TileTask) -> dict:
    """Compute one tile and persist it: zarr region first, then the completion record. Returns a summary."""
    t0 = time.perf_counter()
    padded = task.geobox.pad(task.halo_px)
    inputs = task.reader.read(padded)
    t_read = time.perf_counter()
    prod = compute_tile_products(inputs.lst, inputs.red, inputs.nir, inputs.optical_clear, task.params)
    t_chain = time.perf_counter()
    h, n = task.halo_px, task.geobox.shape.y
    core = (slice(h, h + n), slice(h, h + n))
    write_tile_region(Path(task.mosaic_path), task.rows, task.cols, {
        "lst_10m": prod.lst_10m[core], "lst_plain": prod.lst_plain[core], "anomaly_k": prod.anomaly_k[core],
        "risk": prod.risk[core], "valid": prod.valid[core].astype(np.uint8),
    })
    t_write = time.perf_counter()
    # evidence along pipes: neighbourhood maximum within the buffer, read at the tile's own sample points
    risk_nb = neighbourhood_max(prod.risk, task.buffer_px)
    dt_nb = neighbourhood_max(prod.anomaly_k, task.buffer_px)
    p_risk = sample_at_points(risk_nb, padded.affine, task.point_x, task.point_y)
    p_dt = sample_at_points(dt_nb, padded.affine, task.point_x, task.point_y)
    p_valid = sample_at_points(prod.valid.astype(np.float32), padded.affine, task.point_x, task.point_y)
    p_risk[p_valid != 1] = np.nan  # a pipe point under cloud has no evidence of its own
    blobs = label_hotspots(prod.risk[core], prod.anomaly_k[core], task.hotspot_threshold, task.hotspot_min_area_px)
    hx, hy = task.geobox.affine @ (blobs.col + 0.5, blobs.row + 0.5)
    res2 = abs(task.geobox.affine.a * task.geobox.affine.e)
    core_valid = prod.valid[core]
    summary = {
        "tile": f"{task.index[0]}_{task.index[1]}",
        "valid_fraction": float(core_valid.mean()),
        "n_valid": int(core_valid.sum()),
        "n_points": int(task.point_ids.size),
        "n_hotspots": int(blobs.area_px.size),
        "seconds": {"read": t_read - t0, "compute": t_chain - t_read, "write": t_write - t_chain,
                    "total": time.perf_counter() - t0},
        "pixels": int(n * n),
        "max_rss_mb": _max_rss_mb(),
        "sharpen": prod.info,
        "coregistration": inputs.coregistration,
    }
    TileRecords(Path(task.out_dir)).write(task.index, {
        "point_ids": task.point_ids, "point_risk": p_risk, "point_dt": p_dt,
        "hs_x": np.asarray(hx, dtype=np.float64), "hs_y": np.asarray(hy, dtype=np.float64),
        "hs_peak_dt": blobs.peak_delta_t_k, "hs_peak_score": blobs.peak_score,
        "hs_area_m2": blobs.area_px * res2,
    }, summary)
    return summary


@dataclass
class TileOutcome:
    index: tuple[int, int]
    summary: dict | None = None
    error: str | None = None


def run_tiles(client, tasks: Sequence[TileTask], retries: int = 2,
              on_done: Callable[[TileOutcome], None] | None = None) -> list[TileOutcome]:
    """Submit every task to Dask (retried ``retries`` times) and collect outcomes as they finish.

    A tile that still fails is reported in its outcome; the other tiles carry on.
    """
    from distributed import as_completed

    futures = {client.submit(process_tile, t, key=t.key, retries=retries, pure=False): t for t in tasks}
    outcomes = []
    for fut in as_completed(futures):
        task = futures[fut]
        try:
            out = TileOutcome(task.index, summary=fut.result())
        except Exception as exc:  # a tile's failure is data for the run summary, not a crash of the run
            msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            out = TileOutcome(task.index, error=f"{exc.__class__.__name__}: {msg}")
            log.error("tile %s failed: %s", task.key, out.error)
        outcomes.append(out)
        if on_done is not None:
            on_done(out)
        fut.release()
    return outcomes
