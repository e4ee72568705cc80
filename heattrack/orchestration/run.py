"""``heattrack run``: validate inputs -> plan tiles -> Dask tile tasks -> reduce -> exports -> report.

Nothing is written before every input check has passed. The mosaic and the per-tile records are written in
place (they are what ``--resume`` continues from); the final vectors, COGs, config and report are built in
``.heattrack/staging`` and moved into ``out/`` only when the run has succeeded.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np

from heattrack import __version__
from heattrack.config import Config
from heattrack.errors import HeattrackError
from heattrack.io.exports import COG_LAYERS
from heattrack.io.location import OutputLocation
from heattrack.io.records import RunRecord
from heattrack.io.store import TileRecords, check_disjoint_chunk_writes, create_mosaic_template
from heattrack.kernels.chain import ChainParams
from heattrack.orchestration.cluster import refuse_in_a_starting_worker
from heattrack.orchestration.finalize import finalize_run
from heattrack.orchestration.graph import TileOutcome, TileTask, run_tiles
from heattrack.orchestration.output_folder import (
    STATE_DIR,
    RunLock,
    as_location,
    prepare_output,
)
from heattrack.orchestration.plan import check_local_inputs, plan_run
from heattrack.orchestration.report_helper import ReportHelper, report_workers
from heattrack.orchestration.run_plan import RunPlan, halo_points, points_by_tile

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    out: Path | str  # a folder, or the URL of an object-store output
    n_tiles: int
    failed: list[TileOutcome]
    skipped: int
    warnings: list[str]
    seconds: float
    segments: gpd.GeoDataFrame | None = None


def build_tasks(plan: RunPlan, out: OutputLocation | str | Path, todo: list[tuple[int, int]]) -> list[TileTask]:
    out = as_location(out)
    cfg, grid = plan.cfg, plan.grid
    params = ChainParams.from_config(cfg)
    res = cfg.grid.resolution_m
    if plan.direct_thermal:
        params = dataclasses.replace(params, direct_thermal=True,
                                     rank_window_px=max(3, int(round(plan.ranking_m("rank_window_m") / res))))
    buffer_px = int(np.ceil(plan.ranking_m("buffer_m") / res))
    min_area_px = int(np.ceil(cfg.segments.hotspot_min_area_m2 / (res * res)))
    by_tile = points_by_tile(plan.point_tiles)
    counts = {k: int(v.size) for k, v in by_tile.items()}
    n_inject = min(cfg.segments.mdl_injection_tiles, max(1, len(grid.tiles) // 10))  # one per 10 tiles, at most N
    calibrate = set(sorted(grid.tiles, key=lambda t: (-counts.get(t, 0), t))[:n_inject])
    # the injection test measures the share of a plume the segment statistic's window keeps (Landsat dates)
    along_px = max(1, int(round(plan.scan_window_pts(plan.landsat_chain) * cfg.segments.spacing_m / res))) \
        if calibrate and not plan.direct_thermal else 1
    tasks = []
    # the detectability raster's clutter window (thermal pixels, odd): the segments' 3 x 3 cells, within the halo
    f, cell_m = cfg.thermal_factor, cfg.segments.mdl_clutter_cell_m
    clutter_window = 2 * min(int(1.5 * cell_m / (f * res)), cfg.halo_px // f) + 1
    halo = halo_points(plan.point_tiles, plan.points.x, plan.points.y, cfg.tile_px * res,
                       min(2 * cell_m, cfg.halo_px * res))
    none = np.zeros(0, dtype=np.int64)
    for idx in todo:
        sel = by_tile.get(idx, none)
        rows, cols = grid.tile_slices(idx)
        tasks.append(TileTask(
            index=idx, geobox=grid.tile_geobox(idx), halo_px=cfg.halo_px, rows=rows, cols=cols,
            readers=plan.readers_for(idx), params=params, point_ids=sel, point_x=plan.points.x[sel],
            point_y=plan.points.y[sel], buffer_px=buffer_px, hotspot_threshold=cfg.segments.hotspot_threshold,
            hotspot_min_area_px=min_area_px, mosaic_path=out.uri("mosaic.zarr"), out_dir=out.url,
            model_path=str(cfg.detect.model_path) if cfg.detect.model_path else None,
            torch_threads=cfg.compute.torch_threads,
            offpipe_radius_px=int(np.ceil(cfg.segments.offpipe_radius_m / res)),
            peak_radius_px=int(np.ceil(plan.ranking_m("peak_radius_m") / res)),
            cog_layers=COG_LAYERS, cog_compression=cfg.report.cog_compression, overview_factor=cfg.thermal_factor,
            clutter_window_px=clutter_window,
            calibrate_plume_fwhm_px=cfg.segments.mdl_plume_fwhm_m / res if idx in calibrate else 0.0,
            calibrate_along_px=along_px,
            halo_point_x=plan.points.x[halo.get(idx, none)], halo_point_y=plan.points.y[halo.get(idx, none)],
            clutter_cell_m=cell_m,
            align_radius_px=int(cfg.thermal.align_m // res) if plan.fine_thermal else 0))
    check_disjoint_chunk_writes([(t.rows, t.cols) for t in tasks], cfg.tile_px, grid.mosaic_geobox.shape.yx)
    return tasks


def execute_run(
    plan: RunPlan, out: OutputLocation | str | Path, client, resume: bool = False,
    progress: Callable[[int, int], Callable[[TileOutcome], None]] | None = None,
    report_helper: ReportHelper | None = None,
) -> tuple[list[TileOutcome], int]:
    """Write the template (fresh runs), run the missing tiles; returns outcomes and the number skipped.

    ``client``: a Dask client, or a function returning one: called once the template and the tasks stand, so a
    cluster still starting (``run``'s LocalCluster) starts while they are written and built.
    ``progress(todo, total)`` returns the per-tile callback (the CLI's progress bar); ``report_helper`` warms a
    worker for the report's figures once one has no tile left."""
    out = as_location(out)
    cfg = plan.cfg
    records = TileRecords(out.url)
    if not (resume and out.exists("mosaic.zarr")):
        records.clear()
        create_mosaic_template(out.uri("mosaic.zarr"), plan.grid.mosaic_geobox, cfg.tile_px, {
            "title": "heattrack national risk mosaic", "heattrack_version": __version__,
            "processing_hash": cfg.processing_hash(), "Conventions": "CF-1.8",
            "tiles": [list(t) for t in plan.grid.tiles]})
    todo = [t for t in plan.grid.tiles if not records.done(t)]
    skipped = len(plan.grid.tiles) - len(todo)
    if skipped:
        log.info("resume: %d of %d tiles already complete", skipped, len(plan.grid.tiles))
    on_tile = progress(len(todo), len(plan.grid.tiles)) if progress else None
    tasks = build_tasks(plan, out, todo)
    client = client() if callable(client) else client
    if todo:
        _wait_for_a_worker(client, cfg.compute.worker_timeout_s)
    sched = cfg.compute.scheduler
    gpu_pool = (sched == "slurm" and cfg.slurm.gpu_jobs > 0) or (sched == "kubernetes" and cfg.kubernetes.gpu_workers > 0)
    if report_helper is not None:
        on_tile = report_helper.counting(client, len(todo), on_tile)
    outcomes = run_tiles(client, tasks, retries=cfg.compute.retries, on_done=on_tile, gpu_pool=gpu_pool)
    return outcomes, skipped


def _wait_for_a_worker(client, timeout_s: float | None) -> None:
    """Block until one Dask worker has joined: say so in the log every minute (queued Slurm jobs, pending pods),
    fail with a clear message after ``timeout_s`` (``compute.worker_timeout_s``) instead of hanging."""
    if client.scheduler_info().get("workers"):
        return
    t0 = time.monotonic()
    while True:
        left = None if timeout_s is None else timeout_s - (time.monotonic() - t0)
        if left is not None and left <= 0:
            raise HeattrackError(f"no Dask worker joined the scheduler {client.scheduler.address} within "
                                 f"{timeout_s:g} s (compute.worker_timeout_s): check the worker jobs (squeue), "
                                 "pods (kubectl get pods) or the scheduler file")
        log.warning("waiting for a Dask worker to join %s (%.0f s so far)", client.scheduler.address,
                    time.monotonic() - t0)
        try:
            client.wait_for_workers(1, timeout=60 if left is None else min(60.0, left))
            return
        except TimeoutError:
            continue


def run(
    cfg: Config, out: str | Path, resume: bool = False, overwrite: bool = False, client=None,
    progress: Callable[[int, int], Callable[[TileOutcome], None]] | None = None,
    allow_existing: tuple[str, ...] = (), plan: RunPlan | None = None, info: dict | None = None,
) -> RunResult:
    """The whole ``heattrack run``. ``out``: a folder or an S3 URL; ``client``: an existing Dask client (else
    one from ``cfg.compute``)."""
    t0 = time.perf_counter()
    refuse_in_a_starting_worker()
    out = as_location(out)
    # LocalCluster workers start while the driver plans (48 km: 0.97x wall); Slurm/K8s jobs once the plan stands
    early = client is None and plan is None and cfg.compute.scheduler == "local"
    if early:
        check_local_inputs(cfg)  # a mistyped path: its one-line error before any worker starts
    background = _BackgroundClient(cfg) if early else None
    try:
        plan = plan if plan is not None else plan_run(cfg)
        with RunLock(out):  # taken before anything in ``out`` is read or deleted (--overwrite of a live run refuses)
            resumed = prepare_output(out, cfg, resume, overwrite, allow_existing)
            if client is None and background is None:  # Slurm, Kubernetes: once the plan and the output stand,
                background = _BackgroundClient(cfg, threaded=False)  # on this thread (dask-jobqueue sets signals)
            return _run_locked(plan, cfg, out, resumed, client, progress, t0, info or {}, background)
    finally:
        if background is not None:
            background.close()


class _BackgroundClient:
    """``make_client(cfg)`` entered on a thread (``threaded``), so that a LocalCluster's processes can start while the
    caller plans the run, or at once on this one; :meth:`client` waits for it, :meth:`close` closes what it started."""

    def __init__(self, cfg: Config, threaded: bool = True):
        from concurrent.futures import Future

        from heattrack.orchestration.cluster import make_client

        self._stack = ExitStack()
        self._future: Future = Future()
        self._threaded = threaded
        self._closer: threading.Thread | None = None

        def start() -> None:
            try:
                self._future.set_result(self._stack.enter_context(make_client(cfg)))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller by client()
                self._future.set_exception(exc)

        if threaded:
            threading.Thread(target=start, name="heattrack-cluster", daemon=True).start()
        else:
            start()

    def client(self):
        return self._future.result()  # the cluster's own error (ConfigError ...) if it could not start

    def close(self, wait: bool = True) -> None:
        """Close the cluster (after its start finished, whether the run needed it or not); idempotent. ``wait=False``
        (a cluster started on a thread): on another thread, so that the driver's reduction and report do not wait
        ~1 s for the worker processes to stop; a later ``close()`` waits for it."""
        if self._future.exception() is not None:
            return
        if not self._threaded:  # Slurm, Kubernetes: closed on the thread that started them (dask-jobqueue's signals)
            self._stack.close()
            return
        if self._closer is None:
            self._closer = threading.Thread(target=self._close_logged, name="heattrack-cluster-close", daemon=True)
            self._closer.start()
        if wait:
            self._closer.join()

    def _close_logged(self) -> None:
        """The close on its thread: a failure to stop the workers is logged (the run's outputs are not affected)."""
        try:
            self._stack.close()
        except Exception as exc:  # noqa: BLE001 - nothing to hand it to on this thread
            log.warning("closing the local Dask cluster failed: %s", exc)


def _run_locked(plan: RunPlan, cfg: Config, out: OutputLocation, resumed: bool, client, progress,
                t0: float, info: dict, background: _BackgroundClient | None = None) -> RunResult:
    """``client``: the caller's (left open), else ``background``'s cluster: closed after the tiles (the driver reduces
    and reports while its workers stop) or, where the report's figures are drawn on one of its workers
    (:func:`report_workers`: the driver writes the rest meanwhile), as soon as they are back."""
    out.write_text(json.dumps({"processing_hash": cfg.processing_hash(), "heattrack_version": __version__}),
                   STATE_DIR, "state.json")
    out.write_text(cfg.to_yaml(), STATE_DIR, "config.yaml")
    close = (lambda: background.close(wait=False)) if background is not None else None
    helper = ReportHelper(on_done=close, workers=n) if (n := report_workers(cfg.compute)) else None
    try:
        # the report's imports and matplotlib's first figure (~0.5 s) on a thread while the workers compute: not on
        # the serial path after them; joined before the report draws (matplotlib is not thread-safe)
        warm = threading.Thread(target=_warm_report, args=(helper is None,), name="heattrack-warm-report",
                                daemon=True)
        warm.start()
        outcomes, skipped = execute_run(plan, out, background.client if background is not None else client,
                                        resume=resumed, progress=progress, report_helper=helper)
        if helper is None and close is not None:
            close()
        warm.join()
        failed = [o for o in outcomes if o.error]
        seconds = time.perf_counter() - t0
        result = RunResult(out.url if out.remote else out.local_path, len(plan.grid.tiles), failed, skipped,
                           plan.warnings, seconds)
        if failed:
            out.write_text(RunRecord(status="failed", tiles_ok=len(outcomes) - len(failed) + skipped,
                                     tiles_failed={f"{o.index[0]}_{o.index[1]}": o.error for o in failed},
                                     tiles_skipped=skipped, heattrack_version=__version__,
                                     processing_hash=cfg.processing_hash()).to_json(), "run.json")
            raise HeattrackError(f"{len(failed)} of {len(plan.grid.tiles)} tiles failed (first: {failed[0].error}); "
                                 f"completed tiles are kept, rerun with --resume after fixing the cause")
        result.segments = finalize_run(plan, out, {"status": "ok", "tiles_ok": len(plan.grid.tiles),
                                                   "tiles_failed": {}, "tiles_skipped": skipped,
                                                   "seconds_total": round(seconds, 2), **info},
                                       helper)
    finally:
        if helper is not None:
            helper.release()
        elif close is not None:
            close()
    result.seconds = time.perf_counter() - t0
    return result


def _warm_report(figures_here: bool) -> None:
    try:
        import pyogrio  # noqa: F401  (geopandas' GPKG writer, imported on first use)

        from heattrack.report import figures

        if figures_here:  # else a worker draws them (a fallback here pays matplotlib's first figure then)
            figures.warm_up()
    except Exception:  # noqa: BLE001 - only a head start: the report raises any real error itself
        log.debug("warming up the report failed", exc_info=True)


