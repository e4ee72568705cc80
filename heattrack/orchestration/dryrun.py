"""``heattrack run --dry-run``: what a run would do (tiles, dates per tile, bytes to read, time on the configured
cluster) from its plan alone: no pixel is read, no output written.

Bytes are the uncompressed pixels of the windows each tile reads (padded by the halo; the Sentinel-2 bands the
configured sharpener uses); the files on disk or in a bucket are usually 2-4 times smaller. Time is the tile pixels
over the configured workers at ``compute.plan_tile_mpx_s`` per worker plus the driver's time after the tiles:
``compute.plan_driver_s`` + ``plan_driver_s_per_tile`` x tiles + ``plan_driver_s_per_km`` x the network's length
(+ the single COGs at ``compute.plan_cog_mpx_s`` for AOIs up to ``report.single_cog_max_mpx``), all from the
docs/measurements.md's end-to-end measurement: re-measure on your machines with ``benchmarks/scale.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from heattrack.config import Config
from heattrack.kernels.predictors import S2_10M_BANDS  # the rest of the reflective bands are 20 m
from heattrack.orchestration.cluster import local_worker_count
from heattrack.orchestration.run_plan import RunPlan, optional_bands


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
        n = local_worker_count(cfg.compute)  # what the LocalCluster starts
        per = "core" if cfg.compute.threads_per_worker == 1 else f"{cfg.compute.threads_per_worker} cores"
        return n, "compute.n_workers" if cfg.compute.n_workers else f"one per {per} (LocalCluster)"
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
    bands = ("B04", "B08", *optional_bands(cfg))  # what the readers read (run_plan.optional_bands)
    n10 = sum(b in S2_10M_BANDS for b in bands)
    s2 = (side_m / 10.0) ** 2 * n10 * 2 + (side_m / 20.0) ** 2 * ((len(bands) - n10) * 2 + 1)  # + SCL, uint8
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
        seconds_driver=driver_seconds(cfg, len(plan.grid.tiles), float(plan.pipes.geometry.length.sum()) / 1e3,
                                      aoi_px))


def driver_seconds(cfg: Config, n_tiles: int, network_km: float, aoi_px: int) -> float:
    """The driver's time after the tiles: fixed + per tile + per km of pipe, + the single COGs where the AOI gets
    them."""
    c = cfg.compute
    cogs = 2 * aoi_px / (c.plan_cog_mpx_s * 1e6) if aoi_px <= cfg.report.single_cog_max_mpx * 1e6 else 0.0
    return c.plan_driver_s + c.plan_driver_s_per_tile * n_tiles + c.plan_driver_s_per_km * network_km + cogs
