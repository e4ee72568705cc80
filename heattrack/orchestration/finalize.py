"""After the tiles: reduce the tile records, write the exports, the rasters' VRTs and overviews, ``run.json`` and the
report into ``.heattrack/staging``, then publish them into the output (:func:`finalize_run`); and ``heattrack report``
(:func:`rebuild_report`). The driver's serial part of a run (Amdahl, ``benchmarks/scale.py``); the report's figures
are handed to an idle Dask worker where the run has one (``submit``).
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import rasterio
from affine import Affine

from heattrack import __version__
from heattrack.config import load_config
from heattrack.errors import InputError, NoDataError
from heattrack.io.exports import COG_DIR, COG_LAYERS, write_cog, write_geojson, write_overview, write_vrt
from heattrack.io.fieldlist import write_field_list
from heattrack.io.local import LocalScene
from heattrack.io.location import OutputLocation, is_remote
from heattrack.io.pipes import ids_as_given
from heattrack.io.point_statistic import FILE_NAME as POINTS_FILE
from heattrack.io.point_statistic import write_point_statistic
from heattrack.io.records import GridInfo, RunRecord
from heattrack.io.store import TileRecords
from heattrack.io.thermal import ThermalScene
from heattrack.io.thermal import scene_info as thermal_scene_info
from heattrack.orchestration.output_folder import publish, staging_folder
from heattrack.orchestration.reduce import (
    alignment_warning,
    network_signature,
    reduce_segments,
    small_network_warning,
    unscreened_warning,
)
from heattrack.orchestration.run_plan import RunPlan
from heattrack.orchestration.tiling import grid_crs_label

if TYPE_CHECKING:
    from heattrack.report.page import Submit

log = logging.getLogger(__name__)


def _scene_info(sc: LocalScene | ThermalScene) -> dict:
    if isinstance(sc, ThermalScene):
        return thermal_scene_info(sc)
    if hasattr(sc, "info"):  # sources that describe their own dates (ECOSTRESS passes)
        return sc.info()
    return {"landsat_product": sc.landsat_product, "landsat_date": sc.landsat_date, "sentinel2_date": sc.s2_date,
            "date_gap_days": sc.date_gap_days, "s2_boa_offset": sc.s2_boa_offset,
            "s2_offset_source": sc.s2_offset_source, "optics": sc.optics}


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block (back on after it, as it was). The reduction, exports and
    report allocate hundreds of thousands of small objects (a dict and a list per segment for the map, the GeoJSON's
    rows), and each full pass of the collector walks every object the driver holds: at 48 km on 2 cores the
    finalisation took 0.74-0.92x the time in each of ten pairs (2026-12-07, two half hours; the whole run's time
    within this machine's noise), the driver's peak memory the same. Reference counting frees objects as always;
    only reference cycles wait until the block ends."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def finalize_run(plan: RunPlan, out: OutputLocation, stats_extra: dict,
                 submit: Submit | None = None) -> gpd.GeoDataFrame:
    """Reduce, export and report into a staging folder, then move (local) or upload (S3) everything into
    ``out``; ``run.json`` goes last, so a run with a ``run.json`` of status ok is complete. ``submit``: where the
    report's figures are drawn (:class:`ReportHelper`), by default here. Runs with the garbage collector paused
    (:func:`collector_paused`)."""
    with collector_paused():
        return _finalize(plan, out, stats_extra, submit)


def _finalize(plan: RunPlan, out: OutputLocation, stats_extra: dict, submit: Submit | None) -> gpd.GeoDataFrame:
    cfg = plan.cfg
    seg, hot, stats = reduce_segments(plan, TileRecords(out.url))
    ae_examples = stats.pop("ae_examples", None)
    overview = stats.pop("risk_overview")
    mdl_view = stats.pop("mdl_overview", None)
    points = stats.pop("point_statistic", None)
    if stats["n_valid_px"] == 0:
        raise NoDataError("no tile produced a single valid pixel (all cloud, nodata or masked): no outputs written")
    if (moved := alignment_warning(stats["tiles"])) is not None:  # run.json, the report and the CLI say so
        log.warning(moved)
        plan.warnings.append(moved)
    if (unseen := unscreened_warning(seg)) is not None:  # a smaller share: a line of the CLI's summary
        plan.warnings.append(unseen)
    if (few := small_network_warning(seg)) is not None:
        plan.warnings.append(few)
    nan_share = 1.0 - stats["n_valid_px"] / max(stats["n_px"], 1)
    if nan_share > cfg.compute.max_nan_fraction:
        raise NoDataError(f"{nan_share:.1%} of the processed pixels have no valid LST (limit "
                          f"compute.max_nan_fraction = {cfg.compute.max_nan_fraction}): no outputs written")
    with staging_folder(out) as staging:
        if points is not None:  # next season's change classes read it
            write_point_statistic(staging / POINTS_FILE, points)
        _write_final_outputs(plan, out, staging, seg, hot, stats, stats_extra, ae_examples, overview, mdl_view,
                             submit)
        publish(out, staging)
    return seg


def _write_final_outputs(plan: RunPlan, out: OutputLocation, staging: Path, seg: gpd.GeoDataFrame,
                         hot: gpd.GeoDataFrame, stats: dict, stats_extra: dict, ae_examples: dict | None,
                         overview: tuple, mdl_view: tuple | None = None, submit: Submit | None = None) -> None:
    """Raster mosaics, tables, config, run.json and the report, written into the local folder ``staging``. The
    report's figures are handed to ``submit`` before the tables are written, so that a worker draws them meanwhile."""
    from heattrack.report.page import finish_report, start_report

    cfg, grid = plan.cfg, plan.grid
    _write_rasters(plan, out, staging, [idx for idx in grid.tiles if f"{idx[0]}_{idx[1]}" in stats["tiles"]],
                   overview, mdl_view)
    rows, cols = grid.aoi_window()
    run_info = RunRecord(
        heattrack_version=__version__, processing_hash=cfg.processing_hash(),
        finished=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        grid=GridInfo(crs=grid_crs_label(grid.crs), tile_px=grid.tile_px, resolution_m=grid.resolution_m,
                      n_tiles=len(grid.tiles)),
        # through JSON once: dates and paths become the strings a reloaded run.json holds, so the report built
        # now and one rebuilt later from the file see the same record
        inputs=json.loads(json.dumps({**_scene_info(plan.scenes[0]), "dates": [_scene_info(sc) for sc in plan.scenes],
                                      "pipes": str(cfg.input.pipes), "n_segments": int(len(seg)),
                                      **plan.source_info}, default=str)),
        network=network_signature(plan.pipes),
        warnings=plan.warnings,
        valid_fraction=stats["n_valid_px"] / max(stats["n_px"], 1),
        **{k: v for k, v in stats.items() if k != "tiles"},
        **stats_extra,
        tile_summaries=stats["tiles"],
    )
    report = start_report(out.uri("mosaic.zarr"), staging, run_info, aoi_window=(rows, cols),
                          ae_examples=ae_examples, report_cfg=cfg.report, segments=seg, submit=submit)
    seg_out, hot_out = ids_as_given(seg, plan.pipes), ids_as_given(hot, plan.pipes)
    write_geojson(seg_out, staging / "segments.geojson")
    seg_out.to_file(staging / "segments.gpkg", layer="segments", driver="GPKG")
    write_geojson(hot_out, staging / "hotspots.geojson")
    write_field_list(seg_out, staging, cfg.report.field_list)
    (staging / "config.yaml").write_text(cfg.to_yaml())
    (staging / "run.json").write_text(run_info.to_json())
    finish_report(report)


def _write_rasters(plan: RunPlan, out: OutputLocation, staging: Path, tiles_done: list, overview: tuple,
                   mdl_view: tuple | None) -> None:
    """``<layer>.vrt`` over the tiles' own COGs (O(tiles) text: no pixel is read here), the coarse views (risk,
    detectability) and, up to ``report.single_cog_max_mpx`` AOI pixels, a single COG per layer from the mosaic."""
    grid = plan.grid
    rows, cols = grid.aoi_window()
    mg, crs, codec = grid.mosaic_geobox, grid.crs.to_wkt(), plan.cfg.report.cog_compression
    height, width = rows.stop - rows.start, cols.stop - cols.start
    aoi_transform = mg.affine @ Affine.translation(cols.start, rows.start)
    for var, name in COG_LAYERS:
        parts = []
        for idx in tiles_done:
            r, c = grid.tile_slices(idx)
            parts.append((f"{COG_DIR}/{name}/{idx[0]}_{idx[1]}.tif", r.start - rows.start, c.start - cols.start,
                          r.stop - r.start, c.stop - c.start))
        write_vrt(parts, width, height, aoi_transform, crs, staging / f"{name}.vrt")
        if height * width <= plan.cfg.report.single_cog_max_mpx * 1e6:
            write_cog(out.uri("mosaic.zarr"), var, rows, cols, mg.affine, crs, staging / f"{name}.tif", codec)
    write_overview(overview[0], overview[1], crs, staging / "risk_overview.tif", codec)
    if mdl_view is not None:  # detectability for a pipe anywhere, at the thermal pixel (see reduce.mdl_raster)
        write_overview(mdl_view[0], mdl_view[1], crs, staging / "mdl_k_overview.tif", codec)


def report_window(out: Path) -> tuple[slice, slice]:
    """The AOI's rows and columns in a finished run's mosaic (the window the report's crops look into)."""
    import xarray as xr

    aoi_raster = out / "risk_10m.vrt" if (out / "risk_10m.vrt").exists() else out / "risk_10m.tif"
    with rasterio.open(aoi_raster) as src:  # the AOI window's extent (older runs have only the single COG)
        bounds = src.bounds
    ds = xr.open_zarr(out / "mosaic.zarr")
    x, y = ds["x"].values, ds["y"].values
    cols = slice(int(np.searchsorted(x, bounds.left)), int(np.searchsorted(x, bounds.right)))
    rows = slice(int(np.searchsorted(-y, -bounds.top)), int(np.searchsorted(-y, -bounds.bottom)))
    return rows, cols


def rebuild_report(out: Path, truth_scene: Path | None = None) -> Path:
    """``heattrack report OUT``: rebuild the report of a finished run from its exports; ``truth_scene``: a
    simulated scene folder whose truth adds the leak-vs-other score distribution and detection-power curve."""
    from heattrack.report import build_report

    if is_remote(out):
        raise InputError(f"rebuilding a report needs the run on a local disk: copy it first "
                         f"(e.g. `aws s3 sync {out} ./run`) and pass the folder")
    out = Path(out)
    if not (out / "run.json").exists() or not (out / "mosaic.zarr").exists():
        raise InputError(f"{out} holds no finished heattrack run (run.json or mosaic.zarr missing)")
    run_info = RunRecord.load(out / "run.json").require_ok(str(out))
    rows, cols = report_window(out)
    ae_file = out / "report" / "ae_examples.npz"
    ae_examples = None
    if ae_file.exists():
        with np.load(ae_file) as z:
            ae_examples = {k: z[k] for k in z.files}
    truth = None
    if truth_scene is not None:
        leaks_file = Path(truth_scene) / "truth" / "leaks.geojson"
        if not leaks_file.exists():
            raise InputError(f"{truth_scene} has no truth/leaks.geojson: --truth needs a simulated scene")
        truth = {"leaks": gpd.read_file(leaks_file)}
    changes = gpd.read_file(out / "changes.geojson") if (out / "changes.geojson").exists() else None
    report_cfg = load_config(out / "config.yaml").report if (out / "config.yaml").exists() else None
    with collector_paused():
        return build_report(str(out / "mosaic.zarr"), out, run_info, aoi_window=(rows, cols),
                            ae_examples=ae_examples, truth=truth, changes=changes, report_cfg=report_cfg)
