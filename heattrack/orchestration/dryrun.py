"""``heattrack run --dry-run``: what a run would do (tiles, dates per tile, bytes to read, time on the configured
cluster) from its plan alone: no pixel is read, no output written.

Bytes are the uncompressed pixels of the windows each tile reads (padded by the halo); the files on disk or in a
bucket are usually 2-4 times smaller. Time is the tile pixels over the configured workers at
``compute.plan_tile_mpx_s`` per worker plus the driver's exports at ``compute.plan_driver_mpx_s`` (both from the
README's end-to-end measurement: re-measure on your machines with ``benchmarks/scale.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from heattrack.config import Config
from heattrack.orchestration.run_plan import RunPlan

# Sentinel-2 L2A bands a tile reads (io/local.py): 10 m B02 B03 B04 B08, 20 m B05 B06 B07 B8A B11 B12 + SCL (uint8)
S2_10M_BANDS, S2_20M_BANDS = 4, 6


@dataclass(frozen=True)
class PlanEstimate:
    """The plan of one run in numbers (``heattrack run --dry-run``; also the ``plan`` block of run.json)."""

    source: str
    n_tiles: int
    tile_px: int
    pixels: int  # tile pixels x dates
    dates_per_tile: dict[str, list[str]]
    bytes_read: int
    workers: int
    workers_from: str
    seconds_tiles: float
    seconds_driver: float

    @property
    def seconds(self) -> float:
        return self.seconds_tiles + self.seconds_driver


def cluster_workers(cfg: Config) -> tuple[int, str]:
    """Worker processes the configured cluster would run, and where that number comes from."""
    sched = cfg.compute.scheduler
    if sched == "local":
        n = cfg.compute.n_workers or os.cpu_count() or 1
        return n, "compute.n_workers" if cfg.compute.n_workers else "one per core (LocalCluster)"
    if sched == "slurm":
        return max(1, cfg.slurm.jobs * cfg.slurm.processes), "slurm.jobs x slurm.processes"
    if sched == "kubernetes":
        return max(1, cfg.kubernetes.workers), "kubernetes.workers"
    n = cfg.compute.n_workers or 1
    return n, f"compute.n_workers (scheduler {sched} has as many workers as are attached)"


def _tile_bytes(cfg: Config, plan: RunPlan, scene) -> int:
    side_m = (cfg.tile_px * cfg.grid.resolution_m) + 2 * cfg.grid.halo_m
    if plan.direct_thermal:
        pixel = float(getattr(scene, "pixel_m", cfg.grid.resolution_m) or cfg.grid.resolution_m)
        return int((side_m / pixel) ** 2 * 4)
    landsat = (side_m / 30.0) ** 2 * 2 * 2  # ST_B10 + QA_PIXEL, uint16
    s2 = (side_m / 10.0) ** 2 * S2_10M_BANDS * 2 + (side_m / 20.0) ** 2 * (S2_20M_BANDS * 2 + 1)
    return int(landsat + s2)


def _label(scene) -> str:
    d = getattr(scene, "landsat_date", None)
    name = getattr(scene, "landsat_product", None) or "?"
    return f"{d} ({name})" if d else str(name)


def estimate(plan: RunPlan) -> PlanEstimate:
    """Numbers of the plan; see the module docstring for what they mean."""
    cfg = plan.cfg
    per_tile: dict[str, list[str]] = {}
    n_bytes = 0
    for idx in plan.grid.tiles:
        readers = plan.readers_for(idx)
        scenes = [getattr(r, "scene", r) for r in readers] if readers else list(plan.scenes)
        per_tile[f"{idx[0]}_{idx[1]}"] = [_label(s) for s in scenes]
        n_bytes += sum(_tile_bytes(cfg, plan, s) for s in scenes)
    n_dates = sum(len(v) for v in per_tile.values())
    pixels = n_dates * cfg.tile_px * cfg.tile_px
    workers, why = cluster_workers(cfg)
    rows, cols = plan.grid.aoi_window()
    aoi_px = (rows.stop - rows.start) * (cols.stop - cols.start)
    return PlanEstimate(
        source=str(plan.source_info.get("source", cfg.input.source)), n_tiles=len(plan.grid.tiles),
        tile_px=cfg.tile_px, pixels=int(pixels), dates_per_tile=per_tile, bytes_read=int(n_bytes), workers=workers,
        workers_from=why, seconds_tiles=pixels / (cfg.compute.plan_tile_mpx_s * 1e6 * workers),
        seconds_driver=aoi_px / (cfg.compute.plan_driver_mpx_s * 1e6))
