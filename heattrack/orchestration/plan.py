"""The run plan: every input checked and the tiles laid out before anything is written. One planner per source
returns the same :class:`~heattrack.orchestration.run_plan.RunPlan`: the file sources here (local folders, a
``download`` folder, thermal rasters, mixed winters), the catalogues in ``plan_catalogues.py``."""

from __future__ import annotations

import dataclasses
import logging
from datetime import date
from pathlib import Path

import geopandas as gpd
import shapely
from odc.geo.geom import Geometry

from heattrack.config import Config
from heattrack.errors import ConfigError, InputError, NoDataError
from heattrack.io.local import LocalScene, LocalSceneReader, discover_local_scenes, scene_footprint
from heattrack.io.mtl_georef import placed_by_mtl_warning
from heattrack.io.pipes import read_pipes
from heattrack.io.records import DownloadIndex
from heattrack.io.thermal import (
    ThermalReader,
    check_thermal_path,
    discover_thermal,
    thermal_files,
    thermal_footprint,
    thermal_warnings,
)
from heattrack.orchestration.plan_catalogues import plan_ecostress, plan_gee, plan_stac
from heattrack.orchestration.run_plan import (
    RunPlan,
    check_pipes,
    finish_plan,
    keeps_to_the_network,
    near_the_network,
    optical_reader_options,
    refuse_optical_detectors,
    require_pipes,
)
from heattrack.orchestration.tiling import TileGrid, aoi_in_crs, choose_crs, make_tile_grid, resolve_aoi

log = logging.getLogger(__name__)


def check_local_inputs(cfg: Config) -> None:
    """The checks of a local run that need no file read: an input folder (or thermal raster) that exists, a network.
    ``run`` makes them before it starts its workers, so that a mistyped path costs no cluster start."""
    if cfg.input.source in ("stac", "ecostress", "gee"):
        return
    if cfg.input.input is None and cfg.input.thermal is None:
        raise ConfigError("no input folder given (--input DIR, or --thermal FILE)")
    if cfg.input.input is not None and not Path(cfg.input.input).is_dir():  # before asking for its network
        raise InputError(f"input folder {cfg.input.input} does not exist")
    if cfg.input.thermal is not None:
        check_thermal_path(Path(cfg.input.thermal))
    require_pipes(cfg)


def plan_run(cfg: Config) -> RunPlan:
    """Check every input and lay out the tiles; raises a :class:`HeattrackError` naming the problem."""
    if cfg.input.source == "stac":
        return plan_stac(cfg)
    if cfg.input.source == "ecostress":
        return plan_ecostress(cfg)
    if cfg.input.source == "gee":
        return plan_gee(cfg)
    check_local_inputs(cfg)
    if cfg.input.thermal is not None or thermal_files(cfg.input.input):
        if cfg.input.input is not None and _has_landsat(Path(cfg.input.input)):
            return _plan_mixed(cfg)
        return _plan_thermal(cfg)
    if (Path(cfg.input.input) / "download.json").exists():
        return _plan_downloaded(cfg)
    scenes = discover_local_scenes(cfg.input.input, cfg.input.max_dates)
    grid, pipes = _layout(cfg, [scene_footprint(sc) for sc in scenes])
    opts = optical_reader_options(cfg)
    readers = [LocalSceneReader(sc, **opts) for sc in scenes]
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
    return finish_plan(cfg, scenes, pipes, grid, warnings + landsat_scene_warnings(scenes), readers=readers)


def landsat_scene_warnings(scenes: list[LocalScene]) -> list[str]:
    """What a run of Landsat scenes without a Sentinel-2 granule, without QA_PIXEL or without georeferencing of
    their own must say (run.json, report)."""
    out = []
    for sc in scenes:
        for maps in (sc.landsat, *sc.landsat_more):
            if (placed := placed_by_mtl_warning(maps["ST_B10"])) is not None:
                out.append(placed)
        if sc.optics == "landsat":
            out.append(f"Landsat scene {sc.landsat_product}: no Sentinel-2 granule; its own reflective bands are the "
                       "optics, so the 10 m LST has 30 m detail")
        if "QA_PIXEL" not in sc.landsat:
            out.append(f"Landsat scene {sc.landsat_product}: no QA_PIXEL; "
                       + ("only bright, cold clouds (SR_B2 reflectance > 0.2 and 5 K colder than the tile) and open "
                          "water (Fmask's test on SR_B4, SR_B5) are screened out, not cloud shadow, thin cirrus or "
                          "snow" if "SR_B2" in sc.landsat else
                          "clouds, their shadows and snow are not screened (only ST_B10's fill and open water by "
                          "Fmask's test on SR_B4, SR_B5)" if {"SR_B4", "SR_B5"} <= set(sc.landsat) else
                          "clouds, their shadows, snow and water are not screened (only ST_B10's fill)"))
    return out


def _layout(cfg: Config, footprints: list) -> tuple[TileGrid, gpd.GeoDataFrame]:
    """Tile grid over the AOI where the data is, and the network in its CRS (file-based sources)."""
    data_crs = footprints[0][1]
    footprint = footprints[0][0]
    for fp, _ in footprints[1:]:
        footprint = footprint | fp.to_crs(footprint.crs)
    pipes_raw = read_pipes(cfg.input.pipes)
    aoi = resolve_aoi(cfg.input.aoi, footprint)
    crs = choose_crs(cfg.grid.crs, aoi, data_crs)
    if crs != (scenes_crs := type(crs)(data_crs)):  # the national grid: worth a line, a trade-off the user chose
        log.info("tiles on %s, the scenes on %s: every band is resampled onto the tiles (10 m LST ~4 %% less sharp "
                 "than on the scenes' own grid on held-out cities; docs/downscaling.md)", crs, scenes_crs)
    data_in_grid = footprint.to_crs(crs)
    aoi_grid = aoi_in_crs(aoi, crs, cfg.grid.aoi_buffer_m)
    work_area = aoi_grid.intersection(data_in_grid)
    if work_area.is_empty or work_area.area <= 0:
        raise InputError(f"the AOI ({aoi.label}) does not overlap the input data ({cfg.input.input})")
    pipes = check_pipes(pipes_raw, cfg.input.pipes, crs, work_area, "the input data / AOI")
    if keeps_to_the_network(cfg):
        work_area = near_the_network(work_area, pipes, crs, cfg)
    return make_tile_grid(work_area, crs, cfg.tile_px, cfg.grid.resolution_m), pipes


def _has_landsat(folder: Path) -> bool:
    return (folder / "landsat").is_dir() or any((p / "landsat").is_dir() for p in folder.iterdir() if p.is_dir())


def _plan_mixed(cfg: Config) -> RunPlan:
    """Landsat + Sentinel-2 dates and thermal rasters (ECOSTRESS passes, flights) of one season in one run: each
    date read and ranked its own way, the dates combined per segment by their detectability."""
    if cfg.detect.method not in ("residual", "baseline"):
        raise ConfigError(f"a run mixing Landsat and thermal rasters combines the ranking statistic per date; "
                          f"detect.method {cfg.detect.method} has none (use residual or baseline)")
    thermal, dropped = discover_thermal(cfg.input.input, cfg.input.thermal, cfg.thermal.psf_m, None,
                                        cfg.thermal.time_of_day, cfg.thermal.max_lst_err_k, cfg.thermal.max_st_qa_k)
    landsat = discover_local_scenes(cfg.input.input)
    grid, pipes = _layout(cfg, [scene_footprint(sc) for sc in landsat] + [thermal_footprint(sc) for sc in thermal])
    opts = optical_reader_options(cfg)
    pairs = sorted([(sc, LocalSceneReader(sc, **opts)) for sc in landsat]
                   + [(sc, ThermalReader(sc)) for sc in thermal],
                   key=lambda t: (t[0].landsat_date or date.max, t[0].landsat_product))[: cfg.input.max_dates]
    coarse = grid.mosaic_geobox.zoom_out(max(1, min(grid.mosaic_geobox.shape) // 256))
    clear = [r.clear_fraction(coarse) for _, r in pairs]
    if max(clear) <= 0.0:
        raise NoDataError("no date of the mixed input has a clear, valid thermal pixel over the AOI")
    warnings = list(dropped) + thermal_warnings(thermal) + landsat_scene_warnings(landsat) + [
        f"{sc.landsat_product}: no clear pixel over the AOI (date kept, adds no evidence)"
        for (sc, _), cf in zip(pairs, clear) if cf <= 0.0]
    if any(sc.stated_m <= cfg.thermal.fine_m for sc in thermal):
        warnings.append("a fine thermal raster mixed with Landsat is ranked with the Landsat-scale windows "
                        "(segments.buffer_m, detect.rank_window_m); screen it on its own for its finest ranking")
    info = {"source": "mixed", "sensors": sorted({getattr(sc, "sensor", "Landsat 8/9") for sc, _ in pairs}),
            "sharpened": "Landsat dates only", "fine": False}
    return finish_plan(cfg, [sc for sc, _ in pairs], pipes, grid, warnings, readers=[r for _, r in pairs],
                       source_info=info)


def _plan_thermal(cfg: Config) -> RunPlan:
    """A thermal raster (``input.thermal`` or ``INPUT/thermal/``) instead of Landsat + Sentinel-2."""
    scenes, dropped = discover_thermal(cfg.input.input, cfg.input.thermal, cfg.thermal.psf_m, cfg.input.max_dates,
                                       cfg.thermal.time_of_day, cfg.thermal.max_lst_err_k, cfg.thermal.max_st_qa_k)
    grid, pipes = _layout(cfg, [thermal_footprint(sc) for sc in scenes])
    readers = [ThermalReader(sc) for sc in scenes]
    coarse = grid.mosaic_geobox.zoom_out(max(1, min(grid.mosaic_geobox.shape) // 256))
    if max(r.clear_fraction(coarse) for r in readers) <= 0.0:
        raise NoDataError(f"thermal raster {scenes[0].path}: no valid pixel over the AOI")
    refuse_optical_detectors(cfg, "a thermal raster run")
    psf = max(sc.psf_m for sc in scenes)  # the footprint: the detectability model
    scale = max(sc.stated_m for sc in scenes)  # stated or pixel size: the ranking's windows
    fine = scale <= cfg.thermal.fine_m
    warnings = list(dropped) + thermal_warnings(scenes)
    if not fine:
        warnings.append(f"thermal raster at {scale:g} m effective resolution (> thermal.fine_m = "
                        f"{cfg.thermal.fine_m:g} m) and no optical bands: ranked on it without sharpening")
    if any(sc.units == "C" for sc in scenes):
        log.info("thermal raster in degrees Celsius: converted to K")
    return finish_plan(cfg, scenes, pipes, grid, warnings, readers=readers, direct_thermal=True,
                       source_info={"source": "thermal", "psf_m": psf, "sharpened": False, "fine": fine,
                                    "sensors": sorted({sc.sensor for sc in scenes})})


def _plan_downloaded(cfg: Config) -> RunPlan:
    """A folder written by ``heattrack download``: its grid, and per tile the date pairs in ``<ix>_<iy>/``."""
    from odc.geo import CRS

    root = Path(cfg.input.input)
    index = DownloadIndex.load(root / "download.json")
    g = index.grid
    crs = CRS(g.crs)
    if cfg.grid.crs is not None and CRS(cfg.grid.crs) != crs:
        raise ConfigError(f"{root} was downloaded for grid.crs {g.crs}, not {cfg.grid.crs}")
    if g.tile_px != cfg.tile_px or abs(g.resolution_m - cfg.grid.resolution_m) > 1e-9:
        raise ConfigError(f"{root} was downloaded for {g.tile_px}-px tiles of {g.resolution_m:g} m "
                          f"(grid.tile_km {g.tile_px * g.resolution_m / 1000:g}); run with the same grid")
    tiles = [tuple(int(v) for v in t.split("_")) for t, pairs in index.tiles.items() if pairs]
    if not tiles:
        raise NoDataError(f"{root}: the download holds no tile with a usable pair")
    opts = optical_reader_options(cfg)
    tile_readers, scenes = {}, {}
    for idx in tiles:
        found = discover_local_scenes(root / f"{idx[0]}_{idx[1]}", cfg.input.max_dates)
        tile_readers[idx] = tuple(LocalSceneReader(sc, **opts) for sc in found)
        scenes.update({sc.landsat_product: sc for sc in found})
    grid0 = make_tile_grid(_tiles_union(tiles, crs, cfg), crs, cfg.tile_px, cfg.grid.resolution_m)
    grid = dataclasses.replace(grid0, tiles=tuple(t for t in grid0.tiles if t in tile_readers))
    work_area = _tiles_union(grid.tiles, crs, cfg)
    pipes = check_pipes(read_pipes(cfg.input.pipes), cfg.input.pipes, crs, work_area, f"the tiles of {root}")
    info = {"source": "download", "folder": str(root), "season": index.season, "stac": index.stac,
            "pairs_per_tile": {t: [p.model_dump() for p in v] for t, v in index.tiles.items() if v}}
    ordered = sorted(scenes.values(), key=lambda sc: (sc.landsat_date or date.min, sc.landsat_product))
    return finish_plan(cfg, ordered, pipes, grid, [], tile_readers=tile_readers, source_info=info)


def _tiles_union(tiles, crs, cfg: Config):
    """Union of the extents of ``tiles`` of the configured grid, as an odc Geometry in ``crs``."""
    from odc.geo import xy_
    from odc.geo.gridspec import GridSpec

    gs = GridSpec(crs, tile_shape=(cfg.tile_px, cfg.tile_px), resolution=cfg.grid.resolution_m, origin=xy_(0.0, 0.0))
    geom = shapely.union_all([gs.tile_geobox(t).extent.geom for t in tiles])
    return Geometry(geom, crs)
