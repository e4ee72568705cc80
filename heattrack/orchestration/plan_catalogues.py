"""Planners of the catalogue sources (a STAC API, Earth Engine, ECOSTRESS passes): search the AOI, lay out the
tiles, choose each tile's scenes; they end like every planner (:func:`heattrack.orchestration.run_plan.finish_plan`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date

from heattrack.config import Config
from heattrack.errors import InputError, NoDataError
from heattrack.io.pipes import read_pipes
from heattrack.orchestration.run_plan import (
    RunPlan,
    check_pipes,
    finish_plan,
    keeps_to_the_network,
    near_the_network,
    optical_reader_options,
    refuse_optical_detectors,
    require_aoi,
    require_pipes,
)
from heattrack.orchestration.tiling import TileGrid, aoi_in_crs, choose_crs, make_tile_grid, resolve_aoi


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
    pipes: object = None  # the network in the grid CRS where the tiles were kept to it (grid.network_only)


def select_stac_tiles(cfg: Config, pipes_raw=None) -> StacSelection:
    """Search the AOI, lay out the tiles over the covered part, choose each tile's best pairs, or its Landsat day
    alone where ``stac.landsat_alone`` allows (no pipes needed: shared by ``run --source stac`` and ``download``)."""
    from odc.geo.geom import Geometry

    from heattrack.io.stac import StacSettings, pairable_landsat, search_items, select_pairs_for_tiles

    require_aoi(cfg)
    st = StacSettings.from_config(cfg)
    aoi = resolve_aoi(cfg.input.aoi)
    found, s2 = search_items(st, tuple(aoi.geometry.boundingbox))
    landsat, not_used = pairable_landsat(found, st)  # a Collection 2 catalogue holds Landsat 4-9 under one id
    if not landsat or not (s2 or st.landsat_alone):
        raise NoDataError(f"STAC search at {st.url} ({st.datetime or 'any time'}, eo:cloud_cover <= "
                          f"{st.max_cloud_cover:g}) found {len(landsat)} Landsat and {len(s2)} Sentinel-2 items "
                          f"over {aoi.label}" + (f"; {not_used}" if not_used else ""))
    crs = choose_crs(cfg.grid.crs, aoi)
    cover = None
    for it in landsat:
        g = Geometry(it["geometry"], "EPSG:4326")
        cover = g if cover is None else cover | g
    work_area = aoi_in_crs(aoi, crs, cfg.grid.aoi_buffer_m).intersection(cover.to_crs(crs))
    if work_area.is_empty or work_area.area <= 0:
        raise InputError(f"no Landsat item found over the AOI ({aoi.label})")
    pipes = None
    if keeps_to_the_network(cfg):  # grid.network_only: fewer tiles searched, downloaded and run
        require_pipes(cfg)
        pipes = check_pipes(read_pipes(cfg.input.pipes) if pipes_raw is None else pipes_raw, cfg.input.pipes, crs,
                            work_area, f"the AOI / the imagery found ({aoi.label})")
        work_area = near_the_network(work_area, pipes, crs, cfg)
    grid = make_tile_grid(work_area, crs, cfg.tile_px, cfg.grid.resolution_m)
    chosen = select_pairs_for_tiles(landsat, s2, {idx: grid.tile_geobox(idx) for idx in grid.tiles}, st)
    empty = sorted(idx for idx, v in chosen.items() if not v)
    if len(empty) == len(grid.tiles):
        raise NoDataError(f"no tile has a usable Landsat/Sentinel-2 pair (clear Landsat over the tile and a "
                          f"Sentinel-2 within {st.max_date_gap_days:g} days): widen stac.datetime or "
                          "stac.max_cloud_cover")
    warnings = [not_used] if not_used else []
    if empty:
        warnings.append(f"{len(empty)} of {len(grid.tiles)} tiles have no usable pair and are not processed: "
                        + ", ".join(f"{i}_{j}" for i, j in empty[:20]) + (" ..." if len(empty) > 20 else ""))
        grid = dataclasses.replace(grid, tiles=tuple(t for t in grid.tiles if chosen[t]))
    n_items = {"landsat": len(landsat), "sentinel2": len(s2), **({"landsat_not_used": len(found) - len(landsat)}
                                                                   if not_used else {})}
    return StacSelection(st, aoi, grid, work_area, chosen, empty, n_items, warnings, pipes)


def plan_gee(cfg: Config) -> RunPlan:
    """Earth Engine source: the least cloudy pairs over the AOI (same for every tile), tiles over the AOI."""
    from heattrack.io.gee import GeeSceneReader, GeeSettings, select_pairs

    require_pipes(cfg)
    require_aoi(cfg)
    st = GeeSettings.from_config(cfg)
    pipes_raw = read_pipes(cfg.input.pipes)
    aoi = resolve_aoi(cfg.input.aoi)
    scenes = select_pairs(st, tuple(aoi.geometry.boundingbox))
    if not scenes:
        raise NoDataError(f"Earth Engine: no Landsat scene {'' if st.landsat_alone else 'with a Sentinel-2 partner '}"
                          f"within {st.max_date_gap_days:g} days over {aoi.label} in {st.datetime} (cloud cover <= "
                          f"{st.max_cloud_cover:g} %)")
    warnings = [f"Earth Engine: no Sentinel-2 image within {st.max_date_gap_days:g} days of any Landsat scene over "
                f"{aoi.label}: {sc.landsat_product} runs alone, its own reflective bands the optics (30 m detail; "
                "gee.landsat_alone)" for sc in scenes if sc.optics == "landsat"]
    crs = choose_crs(cfg.grid.crs, aoi)
    work_area = aoi_in_crs(aoi, crs, cfg.grid.aoi_buffer_m)
    pipes = check_pipes(pipes_raw, cfg.input.pipes, crs, work_area, f"the AOI ({aoi.label})")
    if keeps_to_the_network(cfg):
        work_area = near_the_network(work_area, pipes, crs, cfg)
    grid = make_tile_grid(work_area, crs, cfg.tile_px, cfg.grid.resolution_m)
    readers = [GeeSceneReader(sc, **optical_reader_options(cfg), settings=st)
               for sc in scenes]
    info = {"source": "gee", "project": st.project, "datetime": st.datetime,
            "scenes": [{"landsat": sc.landsat_id, "sentinel2": sc.s2_id, "landsat_cloud_cover": sc.landsat_cloud_cover}
                       for sc in scenes]}
    return finish_plan(cfg, scenes, pipes, grid, warnings, readers=readers, source_info=info)


def plan_ecostress(cfg: Config) -> RunPlan:
    """ECOSTRESS passes chosen per tile (the clearest ``ecostress.passes`` over each tile, from one coarse clear map
    per pass), ranked like a coarse thermal raster (no optics)."""
    from heattrack.io.ecostress import EcostressReader, EcostressSettings, passes_per_tile, select_passes

    require_pipes(cfg)
    require_aoi(cfg)
    refuse_optical_detectors(cfg, "an ECOSTRESS run")
    st, aoi = EcostressSettings.from_config(cfg), resolve_aoi(cfg.input.aoi)
    crs = choose_crs(cfg.grid.crs, aoi)
    work_area = aoi_in_crs(aoi, crs, cfg.grid.aoi_buffer_m)
    pipes = check_pipes(read_pipes(cfg.input.pipes), cfg.input.pipes, crs, work_area, f"the AOI ({aoi.label})")
    if keeps_to_the_network(cfg):
        work_area = near_the_network(work_area, pipes, crs, cfg)
    grid = make_tile_grid(work_area, crs, cfg.tile_px, cfg.grid.resolution_m)
    f = max(1, min(grid.mosaic_geobox.shape) // 256)
    scenes, maps, warnings = select_passes(st, aoi.geometry, grid.mosaic_geobox.zoom_out(f))
    readers = [EcostressReader(sc, st) for sc in scenes]
    windows = {idx: tuple(slice(s.start // f, -(-s.stop // f)) for s in grid.tile_slices(idx)) for idx in grid.tiles}
    chosen = passes_per_tile(maps, windows, [sc.acquired for sc in scenes], st.passes, st.min_clear_fraction)
    tile_readers = {idx: tuple(readers[i] for i, _ in v) for idx, v in chosen.items()}
    if not tile_readers:
        raise NoDataError(f"no ECOSTRESS pass over the AOI is clear on at least {st.min_clear_fraction:.0%} of any "
                          "tile (cloud, water): widen ecostress.datetime")
    if len(tile_readers) < len(grid.tiles):
        warnings.append(f"{len(grid.tiles) - len(tile_readers)} of {len(grid.tiles)} tiles have no clear ECOSTRESS "
                        "pass and are left out")
        grid = dataclasses.replace(grid, tiles=tuple(t for t in grid.tiles if t in tile_readers))
    used = sorted({i for v in chosen.values() for i, _ in v}, key=lambda i: scenes[i].acquired)
    info = {"source": "ecostress", "api": st.api, "datetime": st.datetime, "psf_m": scenes[0].psf_m,
            "sharpened": False, "fine": False, "sensors": ["ECOSTRESS"], "time_of_day": st.time_of_day,
            "passes_per_tile": {f"{i}_{j}": [{"pass": scenes[k].pass_id, "clear_fraction": round(sh, 4)}
                                             for k, sh in chosen[(i, j)]] for i, j in grid.tiles}}
    return finish_plan(cfg, [scenes[i] for i in used], pipes, grid, warnings, tile_readers=tile_readers,
                       direct_thermal=True, source_info=info)


def plan_stac(cfg: Config) -> RunPlan:
    """STAC source: :func:`select_stac_tiles`, then the pipes and one reader per chosen pair and tile."""
    from heattrack.io.stac import StacSceneReader

    require_pipes(cfg)
    pipes_raw = read_pipes(cfg.input.pipes)
    sel = select_stac_tiles(cfg, pipes_raw)
    st, aoi, grid, chosen, empty, warnings = sel.settings, sel.aoi, sel.grid, sel.chosen, sel.empty, sel.warnings
    pipes = sel.pipes if sel.pipes is not None else check_pipes(pipes_raw, cfg.input.pipes, grid.crs, sel.work_area,
                                                                f"the AOI / the imagery found ({aoi.label})")
    opts = optical_reader_options(cfg)
    tile_readers = {idx: tuple(StacSceneReader(sc, **opts, settings=st)
                               for sc in chosen[idx]) for idx in grid.tiles}
    if alone := [idx for idx in grid.tiles if any(sc.optics == "landsat" for sc in chosen[idx])]:
        warnings = [*warnings, f"{len(alone)} of {len(grid.tiles)} tiles have no usable Sentinel-2 partner (none "
                    f"within input.max_date_gap_days = {st.max_date_gap_days:g} days at least stac.min_clear_fraction "
                    "clear): each runs its clearest Landsat day alone, its own reflective bands the optics (30 m "
                    "detail; stac.landsat_alone)"]
    scenes = sorted({sc.landsat_product: sc for v in chosen.values() for sc in v}.values(),
                    key=lambda sc: (sc.landsat_date or date.min, sc.landsat_product))
    source_info = {"source": "stac", "url": st.url, "datetime": st.datetime, "items_found": sel.n_items,
                   "tiles_without_pair": [f"{i}_{j}" for i, j in empty],
                   "pairs_per_tile": {f"{i}_{j}": [{"landsat": sc.landsat_product, "sentinel2": sc.s2_item.get("id"),
                                                    "landsat_items": [it["id"] for it in sc.landsat_items],
                                                    "sentinel2_items": [it["id"] for it in sc.s2_items],
                                                    "landsat_date": sc.landsat_date, "sentinel2_date": sc.s2_date,
                                                    "clear_fraction": round(sc.clear_fraction, 4),
                                                    "s2_clear_fraction": round(sc.s2_clear_fraction, 4)
                                                    if sc.s2_item else None}
                                                   for sc in chosen[(i, j)]] for i, j in grid.tiles}}
    return finish_plan(cfg, scenes, pipes, grid, warnings, tile_readers=tile_readers, source_info=source_info)
