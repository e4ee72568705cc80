"""The run plan: every input checked and the tiles laid out before anything is written. One planner per source
(local files, a ``download`` folder, thermal rasters, STAC, Earth Engine) returns the same :class:`RunPlan`."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from heattrack.config import Config
from heattrack.errors import ConfigError, InputError, NoDataError
from heattrack.io.local import CoregParams, LocalScene, LocalSceneReader, discover_local_scenes, scene_footprint
from heattrack.io.models import check_model_matches, read_model_file
from heattrack.io.pipes import read_pipes
from heattrack.io.records import DownloadIndex
from heattrack.io.thermal import ThermalReader, discover_thermal, thermal_files, thermal_footprint
from heattrack.kernels.segments import SegmentPoints, sample_segment_points
from heattrack.orchestration.tiling import TileGrid, aoi_in_crs, choose_crs, make_tile_grid, resolve_aoi

log = logging.getLogger(__name__)


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

    @property
    def mixed(self) -> bool:
        """Landsat dates and thermal-raster dates (ECOSTRESS, airborne) in one run, combined per segment."""
        return self.source_info.get("source") == "mixed"

    def chains(self) -> list[dict]:
        """Per date, how the ranking evidence saw a plume (:func:`heattrack.kernels.ranking.chain_attenuation`
        arguments): the Landsat chain (footprint, block mean, bilinear), or a thermal raster's: its pixel as a block
        mean read bilinearly onto the grid, plus any footprint beyond the pixel (``psf_m`` > pixel) as a box-equivalent
        Gaussian. One entry when every date saw a plume the same way."""
        res = self.cfg.grid.resolution_m
        buffer_px = int(np.ceil(self.ranking_m("buffer_m") / res))
        landsat = {"psf_sigma_px": self.cfg.downscale.dms_psf_sigma_m / res, "factor": self.cfg.thermal_factor,
                   "buffer_px": buffer_px}
        out = []
        for sc in self.scenes:
            if not hasattr(sc, "psf_m"):
                out.append(landsat)
                continue
            pixel = max(float(getattr(sc, "pixel_m", sc.psf_m)), res)
            factor = max(1, int(round(pixel / res)))
            beyond = np.sqrt(max(sc.psf_m**2 - pixel**2, 0.0)) if factor > 1 else max(sc.psf_m, res)
            out.append({"psf_sigma_px": round(float(beyond / np.sqrt(12.0) / res), 4), "factor": factor,
                        "buffer_px": buffer_px})
        return out if any(c != out[0] for c in out) else (out[:1] or [landsat])

    def readers_for(self, idx: tuple[int, int]) -> tuple:
        return tuple(self.readers) if self.tile_readers is None else self.tile_readers[idx]

    @property
    def date_labels(self) -> list[str]:
        """One label per date slot: the Landsat date (local source, same dates everywhere) or ``pair<k>``
        (STAC: the k-th best pair of each tile)."""
        if self.tile_readers is None:
            return [str(sc.landsat_date or sc.landsat_product) + (f"-{sc.sensor.lower().replace(' ', '-')}"
                                                                   if self.mixed and hasattr(sc, "psf_m") else "")
                    for sc in self.scenes]
        n = max((len(r) for r in self.tile_readers.values()), default=0)
        return [f"pair{k + 1}" for k in range(n)]


def plan_run(cfg: Config) -> RunPlan:
    """Check every input and lay out the tiles; raises a :class:`HeattrackError` naming the problem."""
    if cfg.input.source == "stac":
        return _plan_stac(cfg)
    if cfg.input.source == "ecostress":
        return _plan_ecostress(cfg)
    if cfg.input.source == "gee":
        return _plan_gee(cfg)
    if cfg.input.input is None and cfg.input.thermal is None:
        raise ConfigError("no input folder given (--input DIR, or --thermal FILE)")
    _require_pipes(cfg)
    if cfg.input.thermal is not None or thermal_files(cfg.input.input):
        if cfg.input.input is not None and _has_landsat(Path(cfg.input.input)):
            return _plan_mixed(cfg)
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
    return _finish(cfg, scenes, pipes, grid, warnings, readers=readers)


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


def _has_landsat(folder: Path) -> bool:
    return (folder / "landsat").is_dir() or any((p / "landsat").is_dir() for p in folder.iterdir() if p.is_dir())


def _plan_mixed(cfg: Config) -> RunPlan:
    """Landsat + Sentinel-2 dates and thermal rasters (ECOSTRESS passes, flights) of one season in one run: each
    date read and ranked its own way, the dates combined per segment by their detectability."""
    if cfg.detect.method not in ("residual", "baseline"):
        raise ConfigError(f"a run mixing Landsat and thermal rasters combines the ranking statistic per date; "
                          f"detect.method {cfg.detect.method} has none (use residual or baseline)")
    thermal, dropped = discover_thermal(cfg.input.input, cfg.input.thermal, cfg.thermal.psf_m, None,
                                        cfg.thermal.time_of_day, cfg.thermal.max_lst_err_k)
    landsat = discover_local_scenes(cfg.input.input)
    grid, pipes = _layout(cfg, [scene_footprint(sc) for sc in landsat] + [thermal_footprint(sc) for sc in thermal])
    coreg = _coreg_params(cfg)
    pairs = sorted([(sc, LocalSceneReader(sc, mask_water=cfg.input.mask_water, coreg=coreg)) for sc in landsat]
                   + [(sc, ThermalReader(sc)) for sc in thermal],
                   key=lambda t: (t[0].landsat_date or date.max, t[0].landsat_product))[: cfg.input.max_dates]
    warnings = list(dropped)
    if any(sc.psf_m <= cfg.thermal.fine_m for sc in thermal):
        warnings.append("a fine thermal raster mixed with Landsat is ranked with the Landsat-scale windows "
                        "(segments.buffer_m, detect.rank_window_m); screen it on its own for its finest ranking")
    info = {"source": "mixed", "sensors": sorted({getattr(sc, "sensor", "Landsat 8/9") for sc, _ in pairs}),
            "sharpened": "Landsat dates only", "fine": False}
    return _finish(cfg, [sc for sc, _ in pairs], pipes, grid, warnings, readers=[r for _, r in pairs],
                   source_info=info)


def _plan_thermal(cfg: Config) -> RunPlan:
    """A thermal raster (``input.thermal`` or ``INPUT/thermal/``) instead of Landsat + Sentinel-2."""
    scenes, dropped = discover_thermal(cfg.input.input, cfg.input.thermal, cfg.thermal.psf_m, cfg.input.max_dates,
                                       cfg.thermal.time_of_day, cfg.thermal.max_lst_err_k)
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
    warnings = list(dropped)
    if not fine:
        warnings.append(f"thermal raster at {psf:g} m effective resolution (> thermal.fine_m = "
                        f"{cfg.thermal.fine_m:g} m) and no optical bands: ranked on it without sharpening")
    if any(sc.units == "C" for sc in scenes):
        log.info("thermal raster in degrees Celsius: converted to K")
    return _finish(cfg, scenes, pipes, grid, warnings, readers=readers, direct_thermal=True,
                   source_info={"source": "thermal", "psf_m": psf, "sharpened": False, "fine": fine,
                                "sensors": sorted({sc.sensor for sc in scenes})})


def _require_pipes(cfg: Config) -> None:
    if cfg.input.pipes is None:
        raise ConfigError("no pipe network given (--pipes FILE)")


def _finish(cfg: Config, scenes: list, pipes: gpd.GeoDataFrame, grid: TileGrid, warnings: list[str], *,
            readers: list | None = None, tile_readers: dict | None = None, source_info: dict | None = None,
            direct_thermal: bool = False) -> RunPlan:
    """The steps every planner ends with: the autoencoder model checked before any tile (missing, foreign or made
    for other patch settings), warnings logged, the pipes' sample points, the :class:`RunPlan`."""
    if cfg.detect.model_path is not None and cfg.detect.method in ("ae", "fused"):
        check_model_matches(read_model_file(cfg.detect.model_path), cfg, cfg.detect.model_path)
    for w in warnings:
        log.warning(w)
    points, point_tiles = _pipe_points(pipes, cfg)
    return RunPlan(cfg, list(scenes), list(readers or []), pipes, grid, points, point_tiles, list(warnings),
                   tile_readers=tile_readers, source_info=source_info or {}, direct_thermal=direct_thermal)


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
    info = {"source": "download", "folder": str(root), "season": index.season, "stac": index.stac,
            "pairs_per_tile": {t: [p.model_dump() for p in v] for t, v in index.tiles.items() if v}}
    ordered = sorted(scenes.values(), key=lambda sc: (sc.landsat_date or date.min, sc.landsat_product))
    return _finish(cfg, ordered, pipes, grid, [], tile_readers=tile_readers, source_info=info)


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

    _require_pipes(cfg)
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
    info = {"source": "gee", "project": st.project, "datetime": st.datetime,
            "scenes": [{"landsat": sc.landsat_id, "sentinel2": sc.s2_id, "landsat_cloud_cover": sc.landsat_cloud_cover}
                       for sc in scenes]}
    return _finish(cfg, scenes, pipes, grid, [], readers=readers, source_info=info)


def _plan_ecostress(cfg: Config) -> RunPlan:
    """ECOSTRESS passes over the AOI (same for every tile; a tile a pass does not cover reads NaN from it), ranked
    like a coarse thermal raster (no optics)."""
    from heattrack.io.ecostress import EcostressReader, EcostressSettings, select_passes

    _require_pipes(cfg)
    if cfg.input.aoi is None:
        raise ConfigError("input.source 'ecostress' needs an AOI (--aoi: country, polygon file or lon/lat bbox)")
    if cfg.detect.method in ("ae", "iforest", "fused"):
        raise ConfigError(f"detect.method {cfg.detect.method} needs optical bands, which an ECOSTRESS run does not "
                          "read; use residual (default), baseline or local")
    st = EcostressSettings.from_config(cfg)
    aoi = resolve_aoi(cfg.input.aoi)
    crs = choose_crs(cfg.grid.crs, aoi)
    work_area = aoi_in_crs(aoi, crs, cfg.grid.aoi_buffer_m)
    grid = make_tile_grid(work_area, crs, cfg.tile_px, cfg.grid.resolution_m)
    scenes, warnings = select_passes(st, aoi.geometry, grid.mosaic_geobox.zoom_out(
        max(1, min(grid.mosaic_geobox.shape) // 256)))
    pipes = _check_pipes(read_pipes(cfg.input.pipes), cfg.input.pipes, crs, work_area, f"the AOI ({aoi.label})")
    info = {"source": "ecostress", "api": st.api, "datetime": st.datetime, "psf_m": scenes[0].psf_m,
            "sharpened": False, "fine": False, "sensors": ["ECOSTRESS"], "time_of_day": st.time_of_day}
    return _finish(cfg, scenes, pipes, grid, warnings, readers=[EcostressReader(sc, st) for sc in scenes],
                   direct_thermal=True, source_info=info)


def _plan_stac(cfg: Config) -> RunPlan:
    """STAC source: :func:`select_stac_tiles`, then the pipes and one reader per chosen pair and tile."""
    from heattrack.io.stac import StacSceneReader

    _require_pipes(cfg)
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
    source_info = {"source": "stac", "url": st.url, "datetime": st.datetime, "items_found": sel.n_items,
                   "tiles_without_pair": [f"{i}_{j}" for i, j in empty],
                   "pairs_per_tile": {f"{i}_{j}": [{"landsat": sc.landsat_product, "sentinel2": sc.s2_item["id"],
                                                    "landsat_items": [it["id"] for it in sc.landsat_items],
                                                    "sentinel2_items": [it["id"] for it in sc.s2_items],
                                                    "landsat_date": sc.landsat_date, "sentinel2_date": sc.s2_date,
                                                    "clear_fraction": round(sc.clear_fraction, 4),
                                                    "s2_clear_fraction": round(sc.s2_clear_fraction, 4)}
                                                   for sc in chosen[(i, j)]] for i, j in grid.tiles}}
    return _finish(cfg, scenes, pipes, grid, warnings, tile_readers=tile_readers, source_info=source_info)


# -- output folder state ---------------------------------------------------------------------------------
