"""``heattrack run``: validate inputs -> plan tiles -> Dask tile tasks -> reduce -> exports -> report.

Nothing is written before every input check has passed. The mosaic and the per-tile records are written in
place (they are what ``--resume`` continues from); the final vectors, COGs, config and report are built in
``.heattrack/staging`` and moved into ``out/`` only when the run has succeeded.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely

from heattrack import __version__
from heattrack.config import Config
from heattrack.errors import ConfigError, HeattrackError, InputError, NoDataError
from heattrack.io.exports import write_cog, write_geojson, write_json
from heattrack.io.local import CoregParams, LocalScene, LocalSceneReader, discover_local_scenes, scene_footprint
from heattrack.io.location import OutputLocation, is_remote
from heattrack.io.pipes import read_pipes
from heattrack.io.store import TileRecords, check_disjoint_chunk_writes, create_mosaic_template
from heattrack.io.thermal import ThermalReader, ThermalScene, discover_thermal, thermal_files, thermal_footprint
from heattrack.io.thermal import scene_info as thermal_scene_info
from heattrack.kernels.chain import ChainParams
from heattrack.kernels.ranking import chain_attenuation, network_share_visible, segment_statistic
from heattrack.kernels.segments import SegmentPoints, network_z, sample_segment_points, score_segments
from heattrack.orchestration.graph import TileOutcome, TileTask, run_tiles
from heattrack.orchestration.tiling import TileGrid, aoi_in_crs, choose_crs, make_tile_grid, resolve_aoi

log = logging.getLogger(__name__)

STATE_DIR = ".heattrack"
FINAL_OUTPUTS = ("lst_10m.tif", "risk_10m.tif", "segments.geojson", "segments.gpkg", "hotspots.geojson",
                 "config.yaml", "run.json", "report")


@dataclass
class RunPlan:
    """Validated inputs and the tile layout of one run."""

    cfg: Config
    scenes: list[LocalScene]  # date pairs, sorted by Landsat date
    readers: list[LocalSceneReader]
    pipes: gpd.GeoDataFrame  # in the grid CRS
    grid: TileGrid
    points: SegmentPoints
    point_tiles: np.ndarray  # (n_points, 2) tile index of each sample point
    warnings: list[str] = field(default_factory=list)
    #: per-tile readers (STAC: each tile has its own best pairs); None = ``readers`` for every tile
    tile_readers: dict | None = None
    source_info: dict = field(default_factory=dict)
    #: the input is a thermal raster (no optics): ranked without sharpening; windows from the thermal section when
    #: it is fine (``source_info["fine"]``: psf <= thermal.fine_m), else the Landsat-scale ones
    direct_thermal: bool = False

    @property
    def sensor_sigma_m(self) -> float:
        """Gaussian sigma (m) of the thermal footprint the ranking sees: Landsat's (downscale.dms_psf_sigma_m), or a
        thermal raster's effective resolution as a box no finer than the grid (sigma = side / sqrt 12)."""
        if self.direct_thermal:
            return max(float(self.source_info.get("psf_m", 0.0)), self.cfg.grid.resolution_m) / np.sqrt(12.0)
        return self.cfg.downscale.dms_psf_sigma_m  # the block mean + bilinear step: chain_attenuation

    @property
    def fine_thermal(self) -> bool:
        """A thermal raster at or below thermal.fine_m: ranked with the thermal section's windows."""
        return self.direct_thermal and bool(self.source_info.get("fine", False))

    def ranking_m(self, name: str) -> float:
        """``buffer_m``, ``peak_radius_m`` or ``rank_window_m`` of the ranking for this input: the thermal section's
        for fine thermal rasters, else the Landsat-scale segments / detect ones."""
        if self.fine_thermal:
            return getattr(self.cfg.thermal, name)
        return getattr(self.cfg.detect if name == "rank_window_m" else self.cfg.segments, name)

    def readers_for(self, idx: tuple[int, int]) -> tuple:
        return tuple(self.readers) if self.tile_readers is None else self.tile_readers[idx]

    @property
    def date_labels(self) -> list[str]:
        """One label per date slot: the Landsat date (local source, same dates everywhere) or ``pair<k>``
        (STAC: the k-th best pair of each tile)."""
        if self.tile_readers is None:
            return [str(sc.landsat_date or sc.landsat_product) for sc in self.scenes]
        n = max((len(r) for r in self.tile_readers.values()), default=0)
        return [f"pair{k + 1}" for k in range(n)]


def plan_run(cfg: Config) -> RunPlan:
    """Check every input and lay out the tiles; raises a :class:`HeattrackError` naming the problem."""
    if cfg.input.source == "stac":
        return _plan_stac(cfg)
    if cfg.input.source == "gee":
        return _plan_gee(cfg)
    if cfg.input.input is None and cfg.input.thermal is None:
        raise ConfigError("no input folder given (--input DIR, or --thermal FILE)")
    if cfg.input.pipes is None:
        raise ConfigError("no pipe network given (--pipes FILE)")
    if cfg.input.thermal is not None or thermal_files(cfg.input.input):
        return _plan_thermal(cfg)
    if (Path(cfg.input.input) / "download.json").exists():
        return _plan_downloaded(cfg)
    scenes = discover_local_scenes(cfg.input.input, cfg.input.max_dates)
    grid, pipes = _layout(cfg, [scene_footprint(sc) for sc in scenes])
    coreg = _coreg_params(cfg)
    readers = [LocalSceneReader(sc, mask_water=cfg.input.mask_water, coreg=coreg) for sc in scenes]
    coarse = grid.mosaic_geobox.zoom_out(max(1, min(grid.mosaic_geobox.shape) // 256))
    clear = [r.clear_fraction(coarse) for r in readers]
    if max(clear) <= 0.0:
        raise NoDataError(f"Landsat scene{'s' if len(scenes) > 1 else ''} "
                          f"{', '.join(sc.landsat_product for sc in scenes)}: no clear, non-fill thermal pixel over "
                          "the AOI (all cloud or nodata per QA_PIXEL)")
    warnings = []
    for sc, cf in zip(scenes, clear):
        if cf <= 0.0:
            warnings.append(f"Landsat scene {sc.landsat_product}: no clear pixel over the AOI (date kept, adds no "
                            "evidence)")
        gap = sc.date_gap_days
        if gap is not None and gap > cfg.input.max_date_gap_days:
            warnings.append(f"Landsat ({sc.landsat_date}) and Sentinel-2 ({sc.s2_date}) dates are {gap:.0f} days "
                            f"apart (> max_date_gap_days = {cfg.input.max_date_gap_days:g}): land cover may have "
                            "changed")
    if cfg.detect.model_path is not None and cfg.detect.method in ("ae", "fused"):
        from heattrack.io.models import read_model_file
        from heattrack.orchestration.train import check_model_matches

        # fail before any tile if the model is missing, foreign or made for other patch settings
        check_model_matches(read_model_file(cfg.detect.model_path), cfg, cfg.detect.model_path)
    for w in warnings:
        log.warning(w)
    points, point_tiles = _pipe_points(pipes, cfg)
    return RunPlan(cfg, scenes, readers, pipes, grid, points, point_tiles, warnings)


def _layout(cfg: Config, footprints: list) -> tuple[TileGrid, gpd.GeoDataFrame]:
    """Tile grid over the AOI where the data is, and the network in its CRS (file-based sources)."""
    data_crs = footprints[0][1]
    footprint = footprints[0][0]
    for fp, _ in footprints[1:]:
        footprint = footprint | fp.to_crs(footprint.crs)
    pipes_raw = read_pipes(cfg.input.pipes)
    aoi = resolve_aoi(cfg.input.aoi, footprint)
    crs = choose_crs(cfg.grid.crs, aoi, data_crs)
    data_in_grid = footprint.to_crs(crs)
    aoi_grid = aoi_in_crs(aoi, crs, cfg.grid.aoi_buffer_m)
    work_area = aoi_grid.intersection(data_in_grid)
    if work_area.is_empty or work_area.area <= 0:
        raise InputError(f"the AOI ({aoi.label}) does not overlap the input data ({cfg.input.input})")
    grid = make_tile_grid(work_area, crs, cfg.tile_px, cfg.grid.resolution_m)
    return grid, _check_pipes(pipes_raw, cfg.input.pipes, crs, work_area, "the input data / AOI")


def _plan_thermal(cfg: Config) -> RunPlan:
    """A thermal raster (``input.thermal`` or ``INPUT/thermal/``) instead of Landsat + Sentinel-2."""
    scenes = discover_thermal(cfg.input.input, cfg.input.thermal, cfg.thermal.psf_m, cfg.input.max_dates)
    grid, pipes = _layout(cfg, [thermal_footprint(sc) for sc in scenes])
    readers = [ThermalReader(sc) for sc in scenes]
    coarse = grid.mosaic_geobox.zoom_out(max(1, min(grid.mosaic_geobox.shape) // 256))
    if max(r.clear_fraction(coarse) for r in readers) <= 0.0:
        raise NoDataError(f"thermal raster {scenes[0].path}: no valid pixel over the AOI")
    if cfg.detect.method in ("ae", "iforest", "fused"):
        raise ConfigError(f"detect.method {cfg.detect.method} needs optical bands, which a thermal raster run does "
                          "not read; use residual (default), baseline or local")
    psf = max(sc.psf_m for sc in scenes)
    fine = psf <= cfg.thermal.fine_m
    warnings = []
    if cfg.input.input is not None and (Path(cfg.input.input) / "landsat").is_dir():
        warnings.append(f"{cfg.input.input} has both thermal/ and landsat/: the thermal raster is screened, Landsat "
                        "is not read (move thermal/ away to screen Landsat)")
    if not fine:
        warnings.append(f"thermal raster at {psf:g} m effective resolution (> thermal.fine_m = "
                        f"{cfg.thermal.fine_m:g} m) and no optical bands: ranked on it without sharpening")
    if any(sc.units == "C" for sc in scenes):
        log.info("thermal raster in degrees Celsius: converted to K")
    points, point_tiles = _pipe_points(pipes, cfg)
    return RunPlan(cfg, scenes, readers, pipes, grid, points, point_tiles, warnings, direct_thermal=True,
                   source_info={"source": "thermal", "psf_m": psf, "sharpened": False, "fine": fine})


def _coreg_params(cfg: Config) -> CoregParams:
    return CoregParams(enabled=cfg.input.coregister, min_shift_m=cfg.input.coreg_min_shift_m,
                       max_shift_m=cfg.input.coreg_max_shift_m)


def _pipe_points(pipes: gpd.GeoDataFrame, cfg: Config) -> tuple[SegmentPoints, np.ndarray]:
    """Sample points along every segment (``segments.spacing_m``) and the tile index of each point."""
    points = sample_segment_points(pipes.geometry.values, cfg.segments.spacing_m)
    size = cfg.tile_px * cfg.grid.resolution_m
    return points, np.stack([np.floor(points.x / size), np.floor(points.y / size)], axis=1).astype(np.int64)


def _check_pipes(pipes_raw: gpd.GeoDataFrame, path, crs, work_area, where: str) -> gpd.GeoDataFrame:
    """The network in the grid CRS; an :class:`InputError` when none of it lies in ``work_area``."""
    pipes = pipes_raw.to_crs(crs.to_wkt())
    if not shapely.intersects(pipes.geometry.values, work_area.geom).any():
        b = pipes_raw.total_bounds
        raise InputError(f"pipes file {path} (bounds {b[0]:.4f},{b[1]:.4f},{b[2]:.4f},{b[3]:.4f} in "
                         f"{pipes_raw.crs.to_string()}) does not overlap {where}")
    return pipes


def _plan_downloaded(cfg: Config) -> RunPlan:
    """A folder written by ``heattrack download``: its grid, and per tile the date pairs in ``<ix>_<iy>/``."""
    from odc.geo import CRS

    root = Path(cfg.input.input)
    index = json.loads((root / "download.json").read_text())
    g = index["grid"]
    crs = CRS(g["crs"])
    if cfg.grid.crs is not None and CRS(cfg.grid.crs) != crs:
        raise ConfigError(f"{root} was downloaded for grid.crs {g['crs']}, not {cfg.grid.crs}")
    if g["tile_px"] != cfg.tile_px or abs(g["resolution_m"] - cfg.grid.resolution_m) > 1e-9:
        raise ConfigError(f"{root} was downloaded for {g['tile_px']}-px tiles of {g['resolution_m']:g} m "
                          f"(grid.tile_km {g['tile_px'] * g['resolution_m'] / 1000:g}); run with the same grid")
    tiles = [tuple(int(v) for v in t.split("_")) for t, pairs in index["tiles"].items() if pairs]
    if not tiles:
        raise NoDataError(f"{root}: the download holds no tile with a usable pair")
    coreg = _coreg_params(cfg)
    tile_readers, scenes = {}, {}
    for idx in tiles:
        found = discover_local_scenes(root / f"{idx[0]}_{idx[1]}", cfg.input.max_dates)
        tile_readers[idx] = tuple(LocalSceneReader(sc, mask_water=cfg.input.mask_water, coreg=coreg) for sc in found)
        scenes.update({sc.landsat_product: sc for sc in found})
    grid0 = make_tile_grid(_tiles_union(tiles, crs, cfg), crs, cfg.tile_px, cfg.grid.resolution_m)
    grid = dataclasses.replace(grid0, tiles=tuple(t for t in grid0.tiles if t in tile_readers))
    work_area = _tiles_union(grid.tiles, crs, cfg)
    pipes = _check_pipes(read_pipes(cfg.input.pipes), cfg.input.pipes, crs, work_area, f"the tiles of {root}")
    points, point_tiles = _pipe_points(pipes, cfg)
    info = {"source": "download", "folder": str(root), "season": index.get("season"), "stac": index.get("stac"),
            "pairs_per_tile": {t: v for t, v in index["tiles"].items() if v}}
    ordered = sorted(scenes.values(), key=lambda sc: (sc.landsat_date or date.min, sc.landsat_product))
    return RunPlan(cfg, ordered, [], pipes, grid, points, point_tiles, [], tile_readers, info)


def _tiles_union(tiles, crs, cfg: Config):
    """Union of the extents of ``tiles`` of the configured grid, as an odc Geometry in ``crs``."""
    from odc.geo import xy_
    from odc.geo.geom import Geometry
    from odc.geo.gridspec import GridSpec

    gs = GridSpec(crs, tile_shape=(cfg.tile_px, cfg.tile_px), resolution=cfg.grid.resolution_m, origin=xy_(0.0, 0.0))
    geom = shapely.union_all([gs.tile_geobox(t).extent.geom for t in tiles])
    return Geometry(geom, crs)


@dataclass
class StacSelection:
    """The outcome of searching a STAC API for a run or a download: tiles and each tile's best pairs."""

    settings: object  # heattrack.io.stac.StacSettings
    aoi: object
    grid: TileGrid  # tiles with at least one usable pair
    work_area: object
    chosen: dict  # tile index -> [StacScene, ...] (all searched tiles, empty lists included)
    empty: list
    n_items: dict
    warnings: list


def select_stac_tiles(cfg: Config) -> StacSelection:
    """Search the AOI, lay out the tiles over the covered part, choose each tile's best pairs (no pipes needed:
    shared by ``run --source stac`` and ``download``)."""
    from odc.geo.geom import Geometry

    from heattrack.io.stac import StacSettings, search_items, select_pairs_for_tiles

    if cfg.input.aoi is None:
        raise ConfigError("input.source 'stac' needs an AOI (--aoi: country, polygon file or lon/lat bbox)")
    st = StacSettings.from_config(cfg)
    aoi = resolve_aoi(cfg.input.aoi)
    landsat, s2 = search_items(st, tuple(aoi.geometry.boundingbox))
    if not landsat or not s2:
        raise NoDataError(f"STAC search at {st.url} ({st.datetime or 'any time'}, eo:cloud_cover <= "
                          f"{st.max_cloud_cover:g}) found {len(landsat)} Landsat and {len(s2)} Sentinel-2 items "
                          f"over {aoi.label}")
    crs = choose_crs(cfg.grid.crs, aoi)
    cover = None
    for it in landsat:
        g = Geometry(it["geometry"], "EPSG:4326")
        cover = g if cover is None else cover | g
    work_area = aoi_in_crs(aoi, crs, cfg.grid.aoi_buffer_m).intersection(cover.to_crs(crs))
    if work_area.is_empty or work_area.area <= 0:
        raise InputError(f"no Landsat item found over the AOI ({aoi.label})")
    grid = make_tile_grid(work_area, crs, cfg.tile_px, cfg.grid.resolution_m)
    chosen = select_pairs_for_tiles(landsat, s2, {idx: grid.tile_geobox(idx) for idx in grid.tiles}, st)
    empty = sorted(idx for idx, v in chosen.items() if not v)
    if len(empty) == len(grid.tiles):
        raise NoDataError(f"no tile has a usable Landsat/Sentinel-2 pair (clear Landsat over the tile and a "
                          f"Sentinel-2 within {st.max_date_gap_days:g} days): widen stac.datetime or "
                          "stac.max_cloud_cover")
    warnings = []
    if empty:
        warnings.append(f"{len(empty)} of {len(grid.tiles)} tiles have no usable pair and are not processed: "
                        + ", ".join(f"{i}_{j}" for i, j in empty[:20]) + (" ..." if len(empty) > 20 else ""))
        grid = dataclasses.replace(grid, tiles=tuple(t for t in grid.tiles if chosen[t]))
    return StacSelection(st, aoi, grid, work_area, chosen, empty, {"landsat": len(landsat), "sentinel2": len(s2)},
                         warnings)


def _plan_gee(cfg: Config) -> RunPlan:
    """Earth Engine source: the least cloudy pairs over the AOI (same for every tile), tiles over the AOI."""
    from heattrack.io.gee import GeeSceneReader, GeeSettings, select_pairs

    if cfg.input.pipes is None:
        raise ConfigError("no pipe network given (--pipes FILE)")
    if cfg.input.aoi is None:
        raise ConfigError("input.source 'gee' needs an AOI (--aoi: country, polygon file or lon/lat bbox)")
    st = GeeSettings.from_config(cfg)
    pipes_raw = read_pipes(cfg.input.pipes)
    aoi = resolve_aoi(cfg.input.aoi)
    scenes = select_pairs(st, tuple(aoi.geometry.boundingbox))
    if not scenes:
        raise NoDataError(f"Earth Engine: no Landsat scene with a Sentinel-2 partner within "
                          f"{st.max_date_gap_days:g} days over {aoi.label} in {st.datetime} (cloud cover <= "
                          f"{st.max_cloud_cover:g} %)")
    crs = choose_crs(cfg.grid.crs, aoi)
    work_area = aoi_in_crs(aoi, crs, cfg.grid.aoi_buffer_m)
    grid = make_tile_grid(work_area, crs, cfg.tile_px, cfg.grid.resolution_m)
    pipes = _check_pipes(pipes_raw, cfg.input.pipes, crs, work_area, f"the AOI ({aoi.label})")
    readers = [GeeSceneReader(sc, mask_water=cfg.input.mask_water, coreg=_coreg_params(cfg), settings=st)
               for sc in scenes]
    points, point_tiles = _pipe_points(pipes, cfg)
    info = {"source": "gee", "project": st.project, "datetime": st.datetime,
            "scenes": [{"landsat": sc.landsat_id, "sentinel2": sc.s2_id, "landsat_cloud_cover": sc.landsat_cloud_cover}
                       for sc in scenes]}
    return RunPlan(cfg, scenes, readers, pipes, grid, points, point_tiles, [], None, info)


def _plan_stac(cfg: Config) -> RunPlan:
    """STAC source: :func:`select_stac_tiles`, then the pipes and one reader per chosen pair and tile."""
    from heattrack.io.stac import StacSceneReader

    if cfg.input.pipes is None:
        raise ConfigError("no pipe network given (--pipes FILE)")
    pipes_raw = read_pipes(cfg.input.pipes)
    sel = select_stac_tiles(cfg)
    st, aoi, grid, chosen, empty, warnings = sel.settings, sel.aoi, sel.grid, sel.chosen, sel.empty, sel.warnings
    pipes = _check_pipes(pipes_raw, cfg.input.pipes, grid.crs, sel.work_area,
                         f"the AOI / the imagery found ({aoi.label})")
    coreg = _coreg_params(cfg)
    tile_readers = {idx: tuple(StacSceneReader(sc, mask_water=cfg.input.mask_water, coreg=coreg, settings=st)
                               for sc in chosen[idx]) for idx in grid.tiles}
    scenes = sorted({sc.landsat_product: sc for v in chosen.values() for sc in v}.values(),
                    key=lambda sc: (sc.landsat_date or date.min, sc.landsat_product))
    for w in warnings:
        log.warning(w)
    source_info = {"source": "stac", "url": st.url, "datetime": st.datetime, "items_found": sel.n_items,
                   "tiles_without_pair": [f"{i}_{j}" for i, j in empty],
                   "pairs_per_tile": {f"{i}_{j}": [{"landsat": sc.landsat_product, "sentinel2": sc.s2_item["id"],
                                                    "landsat_date": sc.landsat_date, "sentinel2_date": sc.s2_date,
                                                    "clear_fraction": round(sc.clear_fraction, 4),
                                                    "s2_clear_fraction": round(sc.s2_clear_fraction, 4)}
                                                   for sc in chosen[(i, j)]] for i, j in grid.tiles}}
    points, point_tiles = _pipe_points(pipes, cfg)
    return RunPlan(cfg, scenes, [], pipes, grid, points, point_tiles, warnings, tile_readers, source_info)


# -- output folder state ---------------------------------------------------------------------------------

def as_location(out: OutputLocation | str | Path) -> OutputLocation:
    """``out`` as an :class:`OutputLocation` (a folder path or an ``s3://`` URL)."""
    return out if isinstance(out, OutputLocation) else OutputLocation(out)


def prepare_output(out: OutputLocation | str | Path, cfg: Config, resume: bool, overwrite: bool,
                   allow_existing: tuple[str, ...] = ()) -> bool:
    """Make ``out`` ready; returns True when an existing run is resumed. Refuses to mix configurations.

    ``allow_existing``: names in ``out`` that belong to the caller (the demo's ``scene/``) and are left alone.
    """
    out = as_location(out)
    state = (STATE_DIR, "state.json")
    names = [n for n in out.names() if n not in allow_existing]
    state_names = [n for n in out.names(STATE_DIR) if n != "lock"]  # the lock is this run's own (held)
    if STATE_DIR in names and not state_names:
        names.remove(STATE_DIR)
    if names:
        if overwrite:
            if not out.exists(*state) and not out.exists("mosaic.zarr"):
                raise ConfigError(f"output folder {out} is not empty and holds no heattrack run; "
                                  "refusing to delete it (choose an empty folder)")
            for name in names:
                if name != STATE_DIR:
                    out.remove(name)
            for name in state_names:
                out.remove(STATE_DIR, name)
        elif not out.exists(*state):
            raise ConfigError(f"output folder {out} is not empty and holds no heattrack run (choose an empty folder)")
        else:
            prev = json.loads(out.read_text(*state))
            if prev.get("processing_hash") != cfg.processing_hash():
                raise ConfigError(f"output folder {out} holds a run with a different configuration "
                                  f"(hash {prev.get('processing_hash')} vs {cfg.processing_hash()}); use another "
                                  "folder or --overwrite")
            if not resume:
                raise ConfigError(f"output folder {out} already holds this run; pass --resume to continue it or "
                                  "--overwrite to start again")
            return True
    out.makedirs()
    return False


class RunLock:
    """``OUT/.heattrack/lock``: one run at a time per output. Created exclusively (O_EXCL on disk, a conditional
    PUT on S3). A lock left by a dead process on this host is taken over (a crashed run must stay resumable);
    a live one, or one from another host, makes the second run refuse."""

    def __init__(self, out: OutputLocation):
        self.out = out
        self.parts = (STATE_DIR, "lock")

    def __enter__(self) -> "RunLock":
        import os
        import socket

        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):
            try:
                self.out.create_exclusive(json.dumps(me).encode(), *self.parts)
                return self
            except FileExistsError:
                try:
                    other = json.loads(self.out.read_text(*self.parts) or "{}")
                except (OSError, json.JSONDecodeError):
                    other = {}
                if other.get("host") == me["host"] and not _pid_alive(int(other.get("pid", -1))):
                    log.warning("removing a stale lock of run pid %s", other.get("pid"))
                    self.out.remove(*self.parts)
                    continue
                raise ConfigError(f"another heattrack run (pid {other.get('pid')} on {other.get('host')}) is writing "
                                  f"to {self.out}; wait for it or remove {self.out.uri(*self.parts)} if it is gone"
                                  ) from None
        raise ConfigError(f"cannot take the lock {self.out.uri(*self.parts)}")

    def __exit__(self, *exc) -> None:
        self.out.remove(*self.parts)


def _pid_alive(pid: int) -> bool:
    import os

    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- the run ---------------------------------------------------------------------------------------------

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
    tasks = []
    for idx in todo:
        sel = np.flatnonzero((plan.point_tiles[:, 0] == idx[0]) & (plan.point_tiles[:, 1] == idx[1]))
        rows, cols = grid.tile_slices(idx)
        tasks.append(TileTask(
            index=idx, geobox=grid.tile_geobox(idx), halo_px=cfg.halo_px, rows=rows, cols=cols,
            readers=plan.readers_for(idx), params=params, point_ids=sel, point_x=plan.points.x[sel],
            point_y=plan.points.y[sel], buffer_px=buffer_px, hotspot_threshold=cfg.segments.hotspot_threshold,
            hotspot_min_area_px=min_area_px, mosaic_path=out.uri("mosaic.zarr"), out_dir=out.url,
            model_path=str(cfg.detect.model_path) if cfg.detect.model_path else None,
            torch_threads=cfg.compute.torch_threads,
            offpipe_radius_px=int(np.ceil(cfg.segments.offpipe_radius_m / res)),
            peak_radius_px=int(np.ceil(plan.ranking_m("peak_radius_m") / res))))
    check_disjoint_chunk_writes([(t.rows, t.cols) for t in tasks], cfg.tile_px, grid.mosaic_geobox.shape.yx)
    return tasks


def execute_run(
    plan: RunPlan, out: OutputLocation | str | Path, client, resume: bool = False,
    progress: Callable[[int, int], Callable[[TileOutcome], None]] | None = None,
) -> tuple[list[TileOutcome], int]:
    """Write the template (fresh runs), run the missing tiles; returns outcomes and the number skipped.

    ``progress(todo, total)`` returns the per-tile callback (the CLI's progress bar)."""
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
    if todo:
        _wait_for_a_worker(client, cfg.compute.worker_timeout_s)
    sched = cfg.compute.scheduler
    gpu_pool = (sched == "slurm" and cfg.slurm.gpu_jobs > 0) or (sched == "kubernetes" and cfg.kubernetes.gpu_workers > 0)
    outcomes = run_tiles(client, build_tasks(plan, out, todo), retries=cfg.compute.retries, on_done=on_tile,
                         gpu_pool=gpu_pool)
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


def reduce_segments(plan: RunPlan, records: TileRecords) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, dict]:
    """Combine every tile record into the segment ranking and the hotspot table (grid CRS)."""
    n_pts = len(plan.points)
    p_risk = np.full(n_pts, np.nan)
    p_dt = np.full(n_pts, np.nan)
    labels = plan.date_labels
    p_risk_d = np.full((len(labels), n_pts), np.nan)
    p_stat_d = np.full((len(labels), n_pts), np.nan)
    hs = {k: [] for k in ("hs_x", "hs_y", "hs_peak_dt", "hs_peak_score", "hs_area_m2")}
    ae = {k: [] for k in ("ae_in", "ae_rec", "ae_risk")}
    n_valid = n_pix = 0
    tiles = {}
    for idx in plan.grid.tiles:
        arrays, summary = records.read(idx)
        p_risk[arrays["point_ids"]] = arrays["point_risk"]
        p_dt[arrays["point_ids"]] = arrays["point_dt"]
        by_date = arrays["point_risk_by_date"]
        p_risk_d[: by_date.shape[0], arrays["point_ids"]] = by_date
        stat = arrays["point_stat_by_date"]
        p_stat_d[: stat.shape[0], arrays["point_ids"]] = stat
        for k in hs:
            hs[k].append(arrays[k])
        if "ae_risk" in arrays:
            for k in ae:
                ae[k].append(arrays[k])
        n_valid += summary["n_valid"]
        n_pix += summary["pixels"]
        tiles[summary["tile"]] = summary
    cfg = plan.cfg
    scores = score_segments(p_risk, p_dt, plan.points.segment, len(plan.pipes), top_k=cfg.segments.top_k)
    seg = plan.pipes.copy()
    seg["risk"] = np.round(scores.risk, 4)
    seg["delta_t_k"] = np.round(scores.delta_t_k, 3)
    seg["n_clear_px"] = scores.n_clear_px
    seg["length_m"] = np.round(seg.geometry.length, 1)
    ok = np.isfinite(scores.risk)
    seg["status"] = np.where(ok, "ok", "no_data")
    by_date = [score_segments(p_risk_d[i], p_dt, plan.points.segment, len(plan.pipes), top_k=cfg.segments.top_k)
               for i in range(len(labels))]
    seg["n_dates"] = np.sum([np.isfinite(b.risk) for b in by_date], axis=0).astype(np.int64)
    if len(labels) > 1:  # per-date evidence: one column per Landsat date (STAC: per k-th best pair)
        for label, b in zip(labels, by_date):
            seg[f"risk_{label}"] = np.round(b.risk, 4)
    detectability = None
    if cfg.detect.method in ("residual", "baseline"):
        # the ranking statistic, z / p against the network-wide null, and each segment's detectability
        res = cfg.grid.resolution_m
        chain = {"psf_sigma_px": plan.sensor_sigma_m / res,
                 "factor": 1 if plan.direct_thermal else cfg.thermal_factor,
                 "buffer_px": int(np.ceil(plan.ranking_m("buffer_m") / res))}
        att = chain_attenuation(plume_fwhm_px=cfg.segments.mdl_plume_fwhm_m / res, **chain)
        st = segment_statistic(p_stat_d, plan.points.segment, len(plan.pipes), att, cfg.segments.mdl_alpha,
                               cfg.segments.mdl_plume_fwhm_m)
        ok = np.isfinite(st.stat_k)
        seg["status"] = np.where(ok, "ok", "no_data")
        seg["n_dates"] = st.n_dates
        if len(labels) > 1:  # per-date evidence: that date's statistic against that date's network null
            for label, s_d in zip(labels, st.per_date_k):
                seg[f"risk_{label}"] = np.round(1.0 - network_z(s_d)[1], 4)
        seg["risk"] = np.round(np.where(ok, 1.0 - st.p_value, np.nan), 4)
        seg["stat_k"] = np.round(st.stat_k, 4)
        seg["z"] = np.round(st.z, 3)
        seg["p_value"] = st.p_value
        # segments meeting at one hot crossing read the same maximum: the one whose whole length is warmer ranks
        # first (mean of its points' statistic, averaged over the dates)
        seg["stat_mean_k"] = np.round(st.mean_k, 4)
        seg["mdl_k"] = np.round(st.mdl_k, 2)
        seg["mdl_k_m2"] = np.round(st.mdl_k_m2, 0)
        key, tie = np.nan_to_num(st.stat_k, nan=-1e9), np.nan_to_num(st.mean_k, nan=-1e9)
        detectability = {"alpha": cfg.segments.mdl_alpha, "plume_fwhm_m": cfg.segments.mdl_plume_fwhm_m,
                         "sensor_sigma_m": round(plan.sensor_sigma_m, 2), "attenuation": round(st.attenuation, 4),
                         "chain": chain,
                         "flag_level_k": round(st.flag_level_k, 4),
                         "network_share_visible": network_share_visible(st.mdl_k, seg.geometry.length.to_numpy())}
    else:
        key = np.nan_to_num(scores.risk, nan=-1.0)
        tie = np.nan_to_num(scores.delta_t_k, nan=-1e9)
    order = np.lexsort((seg["segment_id"].values, -tie, -key))
    rank = np.full(len(seg), np.nan)
    ranked = order[ok[order]]
    rank[ranked] = np.arange(1, ranked.size + 1)
    seg["rank"] = rank
    seg["rank"] = seg["rank"].astype("Int64")
    seg = seg.sort_values("rank", na_position="last").reset_index(drop=True)
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in hs.items()}
    hot = gpd.GeoDataFrame({
        "delta_t_k": np.round(cat["hs_peak_dt"], 3), "peak_risk": np.round(cat["hs_peak_score"], 4),
        "area_m2": cat["hs_area_m2"]}, geometry=gpd.points_from_xy(cat["hs_x"], cat["hs_y"]), crs=seg.crs)
    if len(hot) and len(seg):
        tree = shapely.STRtree(seg.geometry.values)
        (src, tgt), dist = tree.query_nearest(hot.geometry.values, return_distance=True, all_matches=False)
        hot.loc[src, "segment_id"] = seg["segment_id"].values[tgt]
        hot.loc[src, "distance_m"] = np.round(dist, 1)
    else:
        hot["segment_id"] = None
        hot["distance_m"] = np.nan
    hot = hot.sort_values("delta_t_k", ascending=False).reset_index(drop=True)
    hot.insert(0, "hotspot_id", [f"hs-{i + 1:05d}" for i in range(len(hot))])
    stats = {"n_valid_px": int(n_valid), "n_px": int(n_pix), "tiles": tiles,
             "segments_ok": int(ok.sum()), "segments_no_data": int((~ok).sum()), "hotspots": int(len(hot))}
    if detectability is not None:
        stats["detectability"] = detectability
    if ae["ae_risk"]:  # report examples: the 3 highest-risk pixels of the run and the lowest of the tile medians
        cat_ae = {k: np.concatenate(v) for k, v in ae.items()}
        order = np.argsort(-cat_ae["ae_risk"], kind="stable")
        pick = np.concatenate([order[:3], order[-1:]]) if len(order) > 3 else order
        stats["ae_examples"] = {k: v[pick] for k, v in cat_ae.items()}
    return seg, hot, stats


def network_signature(pipes: gpd.GeoDataFrame) -> dict:
    """Identity of a pipe network version: segment count and a hash of the segment ids and geometries (grid CRS,
    centimetre precision). Two seasons can only be compared segment by segment when these agree."""
    import hashlib

    order = np.argsort(pipes["segment_id"].astype(str).values, kind="stable")
    h = hashlib.sha256()
    for sid, wkb in zip(pipes["segment_id"].astype(str).values[order],
                        shapely.to_wkb(shapely.set_precision(pipes.geometry.values[order], 0.01))):
        h.update(sid.encode() + b"\0" + wkb)
    return {"n_segments": int(len(pipes)), "sha256": h.hexdigest()[:16]}


def _scene_info(sc: LocalScene | ThermalScene) -> dict:
    if isinstance(sc, ThermalScene):
        return thermal_scene_info(sc)
    return {"landsat_product": sc.landsat_product, "landsat_date": sc.landsat_date, "sentinel2_date": sc.s2_date,
            "date_gap_days": sc.date_gap_days, "s2_boa_offset": sc.s2_boa_offset,
            "s2_offset_source": sc.s2_offset_source}


def finalize_run(plan: RunPlan, out: OutputLocation, stats_extra: dict) -> gpd.GeoDataFrame:
    """Reduce, export and report into a staging folder, then move (local) or upload (S3) everything into
    ``out``; ``run.json`` goes last, so a run with a ``run.json`` of status ok is complete."""
    import tempfile

    cfg = plan.cfg
    seg, hot, stats = reduce_segments(plan, TileRecords(out.url))
    ae_examples = stats.pop("ae_examples", None)
    if stats["n_valid_px"] == 0:
        raise NoDataError("no tile produced a single valid pixel (all cloud, nodata or masked): no outputs written")
    nan_share = 1.0 - stats["n_valid_px"] / max(stats["n_px"], 1)
    if nan_share > cfg.compute.max_nan_fraction:
        raise NoDataError(f"{nan_share:.1%} of the processed pixels have no valid LST (limit "
                          f"compute.max_nan_fraction = {cfg.compute.max_nan_fraction}): no outputs written")
    if out.remote:
        with tempfile.TemporaryDirectory(prefix="heattrack-staging-") as tmp:
            _write_final_outputs(plan, out, Path(tmp), seg, hot, stats, stats_extra, ae_examples)
            for name in _publish_order():
                if (Path(tmp) / name).exists():
                    out.upload(Path(tmp) / name, name)
        return seg
    staging = out.local_path / STATE_DIR / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    _write_final_outputs(plan, out, staging, seg, hot, stats, stats_extra, ae_examples)
    for name in _publish_order():
        src, dst = staging / name, out.local_path / name
        if src.exists():
            if dst.exists():
                shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
            src.replace(dst)
    shutil.rmtree(staging, ignore_errors=True)
    return seg


def _publish_order() -> list[str]:
    """Final outputs in the order they are published: run.json (the completion mark) last."""
    return [n for n in FINAL_OUTPUTS if n != "run.json"] + ["run.json"]


def _write_final_outputs(plan: RunPlan, out: OutputLocation, staging: Path, seg: gpd.GeoDataFrame,
                         hot: gpd.GeoDataFrame, stats: dict, stats_extra: dict, ae_examples: dict | None) -> None:
    """COGs, tables, config, run.json and the report, written into the local folder ``staging``."""
    from heattrack.report import build_report

    cfg = plan.cfg
    grid = plan.grid
    rows, cols = grid.aoi_window()
    mg = grid.mosaic_geobox
    for var, name in (("lst_10m", "lst_10m.tif"), ("risk", "risk_10m.tif")):
        write_cog(out.uri("mosaic.zarr"), var, rows, cols, mg.affine, grid.crs.to_wkt(), staging / name)
    write_geojson(seg, staging / "segments.geojson")
    seg.to_file(staging / "segments.gpkg", layer="segments", driver="GPKG")
    write_geojson(hot, staging / "hotspots.geojson")
    (staging / "config.yaml").write_text(cfg.to_yaml())
    run_info = {
        "heattrack_version": __version__, "processing_hash": cfg.processing_hash(),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "grid": {"crs": grid.crs.to_epsg() and f"EPSG:{grid.crs.to_epsg()}" or grid.crs.to_wkt(),
                 "tile_px": grid.tile_px, "resolution_m": grid.resolution_m, "n_tiles": len(grid.tiles)},
        "inputs": {**_scene_info(plan.scenes[0]), "dates": [_scene_info(sc) for sc in plan.scenes],
                   "pipes": str(cfg.input.pipes), "n_segments": int(len(seg)), **plan.source_info},
        "network": network_signature(plan.pipes),
        "warnings": plan.warnings,
        "valid_fraction": stats["n_valid_px"] / max(stats["n_px"], 1),
        **{k: v for k, v in stats.items() if k != "tiles"},
        **stats_extra,
        "tile_summaries": stats["tiles"],
    }
    write_json(run_info, staging / "run.json")
    build_report(out.uri("mosaic.zarr"), staging, run_info, aoi_window=(rows, cols), ae_examples=ae_examples)
    if ae_examples is not None:
        np.savez(staging / "report" / "ae_examples.npz", **ae_examples)


def run(
    cfg: Config, out: str | Path, resume: bool = False, overwrite: bool = False, client=None,
    progress: Callable[[int, int], Callable[[TileOutcome], None]] | None = None,
    allow_existing: tuple[str, ...] = (), plan: RunPlan | None = None, info: dict | None = None,
) -> RunResult:
    """The whole ``heattrack run``. ``out``: a folder or an S3 URL; ``client``: an existing Dask client (else
    one from ``cfg.compute``)."""
    t0 = time.perf_counter()
    out = as_location(out)
    plan = plan if plan is not None else plan_run(cfg)
    with RunLock(out):  # taken before anything in ``out`` is read or deleted (--overwrite of a live run refuses)
        resumed = prepare_output(out, cfg, resume, overwrite, allow_existing)
        return _run_locked(plan, cfg, out, resumed, client, progress, t0, info or {})


def _run_locked(plan: RunPlan, cfg: Config, out: OutputLocation, resumed: bool, client, progress,
                t0: float, info: dict) -> RunResult:
    from heattrack.orchestration.cluster import make_client

    out.write_text(json.dumps({"processing_hash": cfg.processing_hash(), "heattrack_version": __version__}),
                   STATE_DIR, "state.json")
    out.write_text(cfg.to_yaml(), STATE_DIR, "config.yaml")

    def _execute(c):
        return execute_run(plan, out, c, resume=resumed, progress=progress)

    if client is None:
        with make_client(cfg) as c:
            outcomes, skipped = _execute(c)
    else:
        outcomes, skipped = _execute(client)
    failed = [o for o in outcomes if o.error]
    seconds = time.perf_counter() - t0
    result = RunResult(out.url if out.remote else out.local_path, len(plan.grid.tiles), failed, skipped,
                       plan.warnings, seconds)
    if failed:
        out.write_text(json.dumps({"status": "failed", "tiles_ok": len(outcomes) - len(failed) + skipped,
                                   "tiles_failed": {f"{o.index[0]}_{o.index[1]}": o.error for o in failed},
                                   "tiles_skipped": skipped}, indent=2, default=str), "run.json")
        raise HeattrackError(f"{len(failed)} of {len(plan.grid.tiles)} tiles failed (first: {failed[0].error}); "
                             f"completed tiles are kept, rerun with --resume after fixing the cause")
    result.segments = finalize_run(plan, out, {"status": "ok", "tiles_ok": len(plan.grid.tiles),
                                               "tiles_failed": {}, "tiles_skipped": skipped,
                                               "seconds_total": round(seconds, 2), **info})
    result.seconds = time.perf_counter() - t0
    return result


def rebuild_report(out: Path, truth_scene: Path | None = None) -> Path:
    """``heattrack report OUT``: rebuild the report of a finished run from its exports; ``truth_scene``: a
    simulated scene folder whose truth adds the leak-vs-other score distribution and detection-power curve."""
    import xarray as xr

    from heattrack.report import build_report

    if is_remote(out):
        raise InputError(f"rebuilding a report needs the run on a local disk: copy it first "
                         f"(e.g. `aws s3 sync {out} ./run`) and pass the folder")
    out = Path(out)
    if not (out / "run.json").exists() or not (out / "mosaic.zarr").exists():
        raise InputError(f"{out} holds no finished heattrack run (run.json or mosaic.zarr missing)")
    run_info = json.loads((out / "run.json").read_text())
    if run_info.get("status") != "ok":
        raise InputError(f"the run in {out} did not finish (status {run_info.get('status')!r}); rerun with --resume")
    with rasterio.open(out / "risk_10m.tif") as src:
        bounds = src.bounds
    ds = xr.open_zarr(out / "mosaic.zarr")
    x, y = ds["x"].values, ds["y"].values
    cols = slice(int(np.searchsorted(x, bounds.left)), int(np.searchsorted(x, bounds.right)))
    rows = slice(int(np.searchsorted(-y, -bounds.top)), int(np.searchsorted(-y, -bounds.bottom)))
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
    page = build_report(str(out / "mosaic.zarr"), out, run_info, aoi_window=(rows, cols), ae_examples=ae_examples,
                        truth=truth, changes=changes)
    if ae_examples is not None:
        np.savez(out / "report" / "ae_examples.npz", **ae_examples)
    return page
