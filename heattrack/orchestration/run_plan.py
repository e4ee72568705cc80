"""What every planner shares: the :class:`RunPlan` it returns and the steps it ends with (pipes in the grid CRS,
their sample points, the model check, warnings logged)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import shapely

from heattrack.config import INPUT_FOLDER_PIPES, Config
from heattrack.errors import ConfigError, InputError
from heattrack.io.local import CoregParams, LocalScene, LocalSceneReader
from heattrack.io.models import check_model_matches, read_model_file
from heattrack.io.pipes import LATITUDE_FIRST, split_long_segments
from heattrack.kernels.predictors import LANDSAT_ST_PIXEL_M
from heattrack.kernels.ranking import box_sigma, chain_attenuation, scan_window_points
from heattrack.kernels.segments import SegmentPoints, sample_segment_points
from heattrack.orchestration.tiling import TileGrid, network_area

log = logging.getLogger(__name__)

#: a network feature longer than this (m) is named in the plan's warning while segments.max_length_m is 0
LONG_SEGMENT_M = 1000.0


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
    #: it is fine (``source_info["fine"]``: its stated footprint or pixel size <= thermal.fine_m), else the Landsat-scale ones
    direct_thermal: bool = False

    @property
    def sensor_sigma_m(self) -> float:
        """Gaussian sigma (m) of the thermal footprint the ranking sees: Landsat's (downscale.dms_psf_sigma_m), or a
        thermal raster's effective resolution as a box no finer than the grid (sigma = side / sqrt 12)."""
        if self.direct_thermal:
            return box_sigma(max(float(self.source_info.get("psf_m", 0.0)), self.cfg.grid.resolution_m))
        return self.cfg.downscale.dms_psf_sigma_m  # the block mean + bilinear step: chain_attenuation

    @property
    def fine_thermal(self) -> bool:
        """A thermal raster at or below thermal.fine_m: ranked with the thermal section's windows."""
        return self.direct_thermal and bool(self.source_info.get("fine", False))

    def ranking_m(self, name: str) -> float:
        """``buffer_m``, ``peak_radius_m``, ``rank_window_m`` or ``window_widths`` of the ranking for this input: the
        thermal section's for fine thermal rasters, else the Landsat-scale segments / detect ones."""
        if self.fine_thermal:
            return getattr(self.cfg.thermal, name)
        return getattr(self.cfg.detect if name == "rank_window_m" else self.cfg.segments, name)

    @property
    def mixed(self) -> bool:
        """Landsat dates and thermal-raster dates (ECOSTRESS, airborne) in one run, combined per segment."""
        return self.source_info.get("source") == "mixed"

    @property
    def landsat_chain(self) -> dict:
        """How the ranking sees Landsat (:func:`landsat_chain` with this input's buffer and median window)."""
        return landsat_chain(self.cfg, self.ranking_m("buffer_m"), self.ranking_m("rank_window_m"))

    def _window_px(self) -> int:
        """The ranking's local-median window in fine pixels (odd), as :func:`chain_attenuation` takes it."""
        return window_px(self.ranking_m("rank_window_m"), self.cfg.grid.resolution_m)

    def scan_window_pts(self, chain: dict) -> int:
        """The segment statistic's window along the pipe (sample points) for dates seen through ``chain``:
        ``segments.window_widths`` (``thermal.window_widths`` for fine rasters) x the width at which that chain sees a
        ``segments.mdl_plume_fwhm_m`` plume. The
        ``baseline`` ranking keeps its definition, the largest point along the segment (window 1): it is the fixed
        simple reference the default is measured against."""
        if self.cfg.detect.method == "baseline":
            return 1
        seg, res = self.cfg.segments, self.cfg.grid.resolution_m
        a = chain_attenuation(plume_fwhm_px=seg.mdl_plume_fwhm_m / res, **chain)
        return scan_window_points(a, seg.mdl_plume_fwhm_m, self.ranking_m("window_widths"), seg.spacing_m)

    def chains(self) -> list[dict]:
        """Per date, how the ranking evidence saw a plume (:func:`heattrack.kernels.ranking.chain_attenuation`
        arguments): the Landsat chain (footprint, block mean, bilinear), or a thermal raster's: its pixel as a block
        mean read bilinearly onto the grid, plus any footprint beyond the pixel (``psf_m`` > pixel) as a box-equivalent
        Gaussian. One entry when every date saw a plume the same way."""
        res = self.cfg.grid.resolution_m
        buffer_px = int(np.ceil(self.ranking_m("buffer_m") / res))
        landsat = self.landsat_chain
        out = []
        for sc in self.scenes:
            if not hasattr(sc, "psf_m"):
                out.append(landsat)
                continue
            pixel = max(float(getattr(sc, "pixel_m", sc.psf_m)), res)
            factor = max(1, int(round(pixel / res)))
            beyond = np.sqrt(max(sc.psf_m**2 - pixel**2, 0.0)) if factor > 1 else max(sc.psf_m, res)
            out.append({"psf_sigma_px": round(float(box_sigma(beyond) / res), 4), "factor": factor,
                        "buffer_px": buffer_px, "window_px": self._window_px()})
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


def require_pipes(cfg: Config) -> None:
    if cfg.input.pipes is None:
        where = f"; {cfg.input.input} has no {' or '.join(INPUT_FOLDER_PIPES)}" if cfg.input.input is not None else ""
        raise ConfigError(f"no pipe network given (--pipes FILE){where}")


def require_aoi(cfg: Config) -> None:
    """Catalogue sources search an AOI; one-line error without it."""
    if cfg.input.aoi is None:
        raise ConfigError(f"input.source '{cfg.input.source}' needs an AOI (--aoi: country, polygon file or lon/lat "
                          "bbox)")


def refuse_optical_detectors(cfg: Config, what: str) -> None:
    """Sources without optics (thermal rasters, ECOSTRESS) cannot feed the detectors that need optical bands."""
    if cfg.detect.method in ("ae", "iforest", "fused"):
        raise ConfigError(f"detect.method {cfg.detect.method} needs optical bands, which {what} does not read; use "
                          "residual (default), baseline or local")


def finish_plan(cfg: Config, scenes: list, pipes: gpd.GeoDataFrame, grid: TileGrid, warnings: list[str], *,
                readers: list | None = None, tile_readers: dict | None = None, source_info: dict | None = None,
                direct_thermal: bool = False) -> RunPlan:
    """The steps every planner ends with: the autoencoder model checked before any tile (missing, foreign or made
    for other patch settings), warnings logged, the pipes' sample points, the :class:`RunPlan`."""
    if cfg.detect.model_path is not None and cfg.detect.method in ("ae", "fused"):
        check_model_matches(read_model_file(cfg.detect.model_path), cfg, cfg.detect.model_path)
    pipes = split_long_segments(pipes, cfg.segments.max_length_m)
    warnings = list(warnings) + long_segment_warnings(pipes, cfg)
    for w in warnings:
        log.warning(w)
    points, point_tiles = pipe_points(pipes, cfg)
    return RunPlan(cfg, list(scenes), list(readers or []), pipes, grid, points, point_tiles, list(warnings),
                   tile_readers=tile_readers, source_info=source_info or {}, direct_thermal=direct_thermal)


def long_segment_warnings(pipes: gpd.GeoDataFrame, cfg: Config) -> list[str]:
    """The plan's warning where the network (in metres) holds features over :data:`LONG_SEGMENT_M` left whole."""
    length = shapely.length(pipes.geometry.values)
    n = int((length > LONG_SEGMENT_M).sum())
    if n == 0 or cfg.segments.max_length_m > 0:
        return []
    return [f"{n} of {len(pipes)} pipe segments are longer than {LONG_SEGMENT_M / 1e3:g} km (the longest "
            f"{length.max() / 1e3:.1f} km): a segment ranks by its best stretch along the pipe, so a long one ranks "
            "high by chance more often, and its crew has kilometres to search; --set segments.max_length_m=500 "
            "cuts them into parts (ids <id>#1, <id>#2, ...)"]


def coreg_params(cfg: Config) -> CoregParams:
    return CoregParams(enabled=cfg.input.coregister, min_shift_m=cfg.input.coreg_min_shift_m,
                       max_shift_m=cfg.input.coreg_max_shift_m)


def optional_bands(cfg: Config) -> tuple[str, ...]:
    """The Sentinel-2 bands beyond red and NIR that the configured chain uses (DMS: ``downscale.dms_bands``;
    TsHARP and bilinear: none), so a reader reads no band in vain (each 20 m band costs a warp per tile)."""
    if cfg.downscale.method != "dms":
        return ()
    return tuple(b for b in cfg.downscale.dms_bands if b not in ("B04", "B08"))


def optical_reader_options(cfg: Config) -> dict:
    """Keyword arguments of every Landsat + Sentinel-2 reader (local, STAC, Earth Engine) from the config."""
    return {"mask_water": cfg.input.mask_water, "coreg": coreg_params(cfg), "optional_bands": optional_bands(cfg)}


def pipe_points(pipes: gpd.GeoDataFrame, cfg: Config) -> tuple[SegmentPoints, np.ndarray]:
    """Sample points along every segment (``segments.spacing_m``) and the tile index of each point."""
    points = sample_segment_points(pipes.geometry.values, cfg.segments.spacing_m)
    size = cfg.tile_px * cfg.grid.resolution_m
    return points, np.stack([np.floor(points.x / size), np.floor(points.y / size)], axis=1).astype(np.int64)


def points_by_tile(point_tiles: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """The indices (ascending) of the sample points in each tile that has any (O(n log n); a selection per tile was
    O(tiles x points))."""
    return _group_by_tile(point_tiles, np.arange(point_tiles.shape[0]))


def _group_by_tile(keys: np.ndarray, idx: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """``idx`` grouped by their tile ``keys`` ``(n, 2)``: tile -> its indices, ascending; one sort."""
    if idx.size == 0:
        return {}
    order = np.lexsort((idx, keys[:, 1], keys[:, 0]))
    keys, idx = keys[order], idx[order]
    cut = np.flatnonzero(np.any(keys[1:] != keys[:-1], axis=1)) + 1
    return {(int(k[0]), int(k[1])): part for k, part in zip(keys[np.r_[0, cut]], np.split(idx, cut))}


def halo_points(point_tiles: np.ndarray, x: np.ndarray, y: np.ndarray, tile_m: float, reach_m: float
                ) -> dict[tuple[int, int], np.ndarray]:
    """For every tile, the indices of the other tiles' sample points within ``reach_m`` of its edge (in its halo):
    a tile task needs them for the network-neighbourhood clutter of its own points near the edge. Vectorised over
    the points (each lies in the halo of at most 3 neighbouring tiles); O(n log n)."""
    ox, oy = x - point_tiles[:, 0] * tile_m, y - point_tiles[:, 1] * tile_m
    near = {-1: (ox < reach_m, oy < reach_m), 1: (ox >= tile_m - reach_m, oy >= tile_m - reach_m)}
    keys, idx = [], []
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            if dx == dy == 0:
                continue
            sel = np.ones(x.size, bool)
            if dx:
                sel &= near[dx][0]
            if dy:
                sel &= near[dy][1]
            i = np.flatnonzero(sel)
            keys.append(point_tiles[i] + np.array([dx, dy]))
            idx.append(i)
    return _group_by_tile(np.concatenate(keys), np.concatenate(idx))  # {} when no point is near a tile edge


def check_pipes(pipes_raw: gpd.GeoDataFrame, path, crs, work_area, where: str) -> gpd.GeoDataFrame:
    """The network in the grid CRS; an :class:`InputError` when none of it lies in ``work_area``."""
    pipes = pipes_raw.to_crs(crs.to_wkt())
    if not shapely.intersects(pipes.geometry.values, work_area.geom).any():
        b = pipes_raw.total_bounds
        hint = ""
        if pipes_raw.crs.is_geographic and max(abs(b[0]), abs(b[2])) <= 90.0:  # written latitude first?
            swapped = gpd.GeoSeries(shapely.transform(pipes_raw.geometry.values, lambda xy: xy[:, ::-1]),
                                    crs=pipes_raw.crs).to_crs(crs.to_wkt())
            if shapely.intersects(swapped.values, work_area.geom).any():
                hint = f"; with longitude and latitude swapped it would: {LATITUDE_FIRST}"
        raise InputError(f"pipes file {path} (bounds {b[0]:.4f},{b[1]:.4f},{b[2]:.4f},{b[3]:.4f} in "
                         f"{pipes_raw.crs.to_string()}) does not overlap {where}{hint}")
    return pipes


def near_the_network(area, pipes: gpd.GeoDataFrame, crs, cfg: Config):
    """``area`` (the run's, in ``crs``) within ``grid.network_buffer_m`` of the pipes (``pipes``: the network in
    ``crs``, as :func:`check_pipes` returns it): without an AOI by default (a utility's network on a whole downloaded
    scene: the city's tiles, not 185 km of Landsat), with one where ``grid.network_only`` (a country's network: its
    cities). Unchanged where that leaves nothing or the buffer is 0."""
    if cfg.grid.network_buffer_m <= 0:
        return area
    near = network_area(pipes, crs, cfg.grid.network_buffer_m)
    kept = area if near is None else area.intersection(near)
    if kept.is_empty or kept.area <= 0:
        return area
    if kept.area < 0.98 * area.area:
        log.info("run area: %s within %g m of the pipe network, %.0f of its %.0f km^2 (%s)",
                 "the input data" if cfg.input.aoi is None else "the AOI", cfg.grid.network_buffer_m,
                 kept.area / 1e6, area.area / 1e6, "--aoi, or --set grid.network_buffer_m=0, screens all of it"
                 if cfg.input.aoi is None else "grid.network_only: false screens all of it")
    return kept


def keeps_to_the_network(cfg: Config) -> bool:
    """Whether the run area is cut to the network's surroundings (:func:`near_the_network`)."""
    return cfg.grid.network_buffer_m > 0 and (cfg.input.aoi is None or cfg.grid.network_only)


def window_px(rank_window_m: float, res: float) -> int:
    """A local-median window in fine pixels (odd), as :func:`heattrack.kernels.ranking.chain_attenuation` takes it."""
    return int(round(rank_window_m / res)) | 1


def landsat_chain(cfg: Config, buffer_m: float, rank_window_m: float) -> dict:
    """How the ranking sees Landsat, as :func:`heattrack.kernels.ranking.chain_attenuation` arguments: the
    footprint, then ST_B10's own 30 m pixels read as they are (``detect.rank_grid: native``, the default), or
    the block mean to the thermal grid and bilinear back (``thermal``, and always for the ``baseline``)."""
    res = cfg.grid.resolution_m
    chain = {"psf_sigma_px": cfg.downscale.dms_psf_sigma_m / res, "factor": cfg.thermal_factor,
             "buffer_px": int(np.ceil(buffer_m / res)), "window_px": window_px(rank_window_m, res)}
    if cfg.detect.rank_grid == "native" and cfg.detect.method != "baseline":
        chain |= {"factor": max(1, int(round(LANDSAT_ST_PIXEL_M / res))), "nearest": True}
    return chain
