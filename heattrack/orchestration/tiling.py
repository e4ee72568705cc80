"""Area of interest -> regular tile grid in a projected CRS (odc-geo ``GridSpec``) -> per-tile GeoBoxes.

The grid is anchored at the CRS origin, so a tile index ``(ix, iy)`` names the same ground on every run and
every season, and the zarr mosaic's chunks coincide with tiles (one task writes one chunk, never a part of
another task's chunk).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np
import shapely
from odc.geo import CRS, xy_
from odc.geo.geobox import GeoBox
from odc.geo.geom import Geometry, box
from odc.geo.gridspec import GridSpec

from heattrack.errors import ConfigError, InputError

#: National projected grids for bundled countries (ISO 3166 alpha-3 -> EPSG); others use their UTM zone.
NATIONAL_CRS = {"KOR": "EPSG:5179"}

TileIndex = tuple[int, int]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _countries() -> list[dict]:
    path = resources.files("heattrack") / "data" / "naturalearth_110m_countries.geojson"
    return json.loads(path.read_text())["features"]


def country_names() -> list[str]:
    """Slugs accepted by ``--aoi`` (e.g. ``south-korea``), from the bundled Natural Earth outlines."""
    return sorted(_slug(f["properties"]["name"]) for f in _countries())


def country_outline(name: str) -> tuple[Geometry, str]:
    """Outline (EPSG:4326) and ISO alpha-3 code of a bundled country, by slug, name or ISO code."""
    key = _slug(name)
    for f in _countries():
        p = f["properties"]
        if key in (_slug(p["name"]), str(p.get("iso_a3", "")).lower()):
            return Geometry(f["geometry"], crs="EPSG:4326"), str(p["iso_a3"])
    raise ConfigError(f"unknown AOI {name!r}: not a bundled country (e.g. south-korea), an existing polygon "
                      "file, or a lon/lat bbox 'minx,miny,maxx,maxy'")


@dataclass(frozen=True)
class AOI:
    """An area of interest in EPSG:4326 plus where it came from and its preferred national CRS (if any)."""

    geometry: Geometry
    label: str
    national_crs: str | None = None


_BBOX = re.compile(r"^\s*-?\d+(\.\d*)?(\s*,\s*-?\d+(\.\d*)?){3}\s*$")


def resolve_aoi(aoi: str | None, data_extent: Geometry | None = None) -> AOI:
    """Turn ``--aoi`` into an :class:`AOI`: a bundled country, a polygon file, a lon/lat bbox, or (None) the
    extent of the input data."""
    if aoi is None:
        if data_extent is None:
            raise ConfigError("no AOI given and no input data to take the extent from (use --aoi)")
        return AOI(data_extent.to_crs("EPSG:4326"), "input data extent")
    if _BBOX.match(aoi):
        x0, y0, x1, y1 = (float(v) for v in aoi.split(","))
        if not (-180 <= x0 < x1 <= 180 and -90 <= y0 < y1 <= 90):
            raise ConfigError(f"AOI bbox {aoi!r} is not lon/lat 'minx,miny,maxx,maxy' with min < max")
        return AOI(box(x0, y0, x1, y1, "EPSG:4326"), f"bbox {aoi}")
    path = Path(aoi)
    if path.exists():
        return AOI(_read_polygon_file(path), str(path))
    geom, iso = country_outline(aoi)
    return AOI(geom, _slug(aoi), NATIONAL_CRS.get(iso))


def _read_polygon_file(path: Path) -> Geometry:
    import geopandas as gpd

    try:
        df = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several error types for unreadable files
        raise InputError(f"AOI file {path}: cannot read it as a vector file ({exc.__class__.__name__})") from None
    if df.empty or df.crs is None:
        raise InputError(f"AOI file {path}: no features or no CRS")
    polys = df[df.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polys.empty:
        raise InputError(f"AOI file {path}: holds no polygons")
    return Geometry(shapely.union_all(polys.to_crs("EPSG:4326").geometry.values), crs="EPSG:4326")


def utm_crs_for(geom: Geometry) -> str:
    """EPSG code of the UTM zone containing the centroid of a geometry."""
    c = geom.to_crs("EPSG:4326").centroid.coords[0]
    zone = int((c[0] + 180) // 6) + 1
    return f"EPSG:{(32600 if c[1] >= 0 else 32700) + min(max(zone, 1), 60)}"


def choose_crs(configured: str | None, aoi: AOI, data_crs: str | None = None) -> CRS:
    """The grid CRS: configured, else the AOI's national CRS, else the data's projected CRS, else UTM."""
    for candidate in (configured, aoi.national_crs, data_crs):
        if candidate:
            crs = CRS(candidate)
            if not crs.projected:
                if candidate is configured:
                    raise ConfigError(f"grid.crs {configured} is not a projected CRS")
                continue
            return crs
    return CRS(utm_crs_for(aoi.geometry))


def aoi_in_crs(aoi: AOI, crs: CRS, buffer_m: float) -> Geometry:
    """The AOI in the grid CRS; coarse country outlines are buffered by ``buffer_m`` so coasts are kept."""
    geom = aoi.geometry.to_crs(crs)
    return geom.buffer(buffer_m) if aoi.national_crs is not None and buffer_m > 0 else geom


@dataclass(frozen=True)
class TileGrid:
    """The tiles of one run: a GridSpec, the tile indices touching the AOI, and the mosaic they fill."""

    gridspec: GridSpec
    tiles: tuple[TileIndex, ...]
    aoi: Geometry  # in the grid CRS

    @property
    def crs(self) -> CRS:
        return self.gridspec.crs

    @property
    def tile_px(self) -> int:
        return int(self.gridspec.tile_shape.x)

    @property
    def resolution_m(self) -> float:
        return float(self.gridspec.resolution.x)

    def tile_geobox(self, idx: TileIndex) -> GeoBox:
        return self.gridspec.tile_geobox(idx)

    @cached_property
    def mosaic_geobox(self) -> GeoBox:
        """GeoBox covering the bounding rectangle of all tiles (tile-aligned, so chunks = tiles)."""
        ix = [t[0] for t in self.tiles]
        iy = [t[1] for t in self.tiles]
        top_left = self.tile_geobox((min(ix), max(iy)))
        ntx, nty = max(ix) - min(ix) + 1, max(iy) - min(iy) + 1
        return GeoBox((nty * self.tile_px, ntx * self.tile_px), top_left.affine, self.crs)

    def tile_slices(self, idx: TileIndex) -> tuple[slice, slice]:
        """Row and column slices of tile ``idx`` inside the mosaic."""
        mg, tg = self.mosaic_geobox, self.tile_geobox(idx)
        r0 = int(round((mg.affine.f - tg.affine.f) / -mg.affine.e))
        c0 = int(round((tg.affine.c - mg.affine.c) / mg.affine.a))
        return slice(r0, r0 + self.tile_px), slice(c0, c0 + self.tile_px)

    def aoi_window(self) -> tuple[slice, slice]:
        """Rows/columns of the mosaic covering the AOI's bounding box (used to crop exports)."""
        mg = self.mosaic_geobox
        b = self.aoi.boundingbox
        res = self.resolution_m
        c0 = max(0, int(np.floor((b.left - mg.affine.c) / res)))
        c1 = min(mg.width, int(np.ceil((b.right - mg.affine.c) / res)))
        r0 = max(0, int(np.floor((mg.affine.f - b.top) / res)))
        r1 = min(mg.height, int(np.ceil((mg.affine.f - b.bottom) / res)))
        return slice(r0, r1), slice(c0, c1)

    def tile_polygons(self) -> list[Geometry]:
        return [self.tile_geobox(t).extent for t in self.tiles]


def make_tile_grid(aoi_geom: Geometry, crs: CRS, tile_px: int, resolution_m: float) -> TileGrid:
    """Tiles of ``tile_px`` x ``tile_px`` pixels of ``resolution_m`` whose interior meets the AOI."""
    gs = GridSpec(crs, tile_shape=(tile_px, tile_px), resolution=resolution_m, origin=xy_(0.0, 0.0))
    aoi = aoi_geom.to_crs(crs)
    if aoi.is_empty or aoi.area <= 0:
        raise ConfigError("the AOI is empty or has no area")
    candidates = [idx for idx, _ in gs.tiles(aoi.boundingbox)]
    boxes = np.array([gs.tile_geobox(i).extent.geom for i in candidates], dtype=object)
    shapely.prepare(aoi.geom)
    hit = shapely.intersects(aoi.geom, boxes) & ~shapely.touches(aoi.geom, boxes)
    tiles = tuple(sorted((c for c, h in zip(candidates, hit) if h), key=lambda t: (-t[1], t[0])))
    if not tiles:
        raise ConfigError("no tile of the grid meets the AOI")
    return TileGrid(gs, tiles, aoi)


def network_area(lines, crs: CRS, buffer_m: float, cell_m: float = 1000.0) -> Geometry | None:
    """The ground within about ``buffer_m`` of the pipes (``lines``: a GeoSeries/GeoDataFrame in ``crs``), as a
    union of ``cell_m`` cells each grown by ``buffer_m``: every cell a pipe passes through (the pipes cut into
    pieces of at most half a cell first), so it reaches ``buffer_m`` to ``buffer_m + cell_m`` past them. A few
    thousand boxes for a national network; None without a pipe."""
    geoms = shapely.segmentize(np.asarray(lines.geometry.values), cell_m / 2)
    xy = shapely.get_coordinates(geoms)
    if not len(xy):
        return None
    cells = np.unique(np.floor(xy / cell_m).astype(np.int64), axis=0).astype(float) * cell_m
    boxes = shapely.box(cells[:, 0] - buffer_m, cells[:, 1] - buffer_m, cells[:, 0] + cell_m + buffer_m,
                        cells[:, 1] + cell_m + buffer_m)
    return Geometry(shapely.union_all(boxes), crs=crs)


def grid_crs_label(crs) -> str:
    """How run.json, download.json and the comparisons between seasons name a grid CRS: EPSG:n, else its WKT."""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


def tiles_geojson(grid: TileGrid) -> dict:
    """GeoJSON FeatureCollection (lon/lat) of the tiles, with index, bounds in the grid CRS and pixel count."""
    feats = []
    for idx, poly in zip(grid.tiles, grid.tile_polygons()):
        b = poly.boundingbox
        feats.append({
            "type": "Feature",
            "properties": {"tile": f"{idx[0]}_{idx[1]}", "ix": idx[0], "iy": idx[1], "crs": str(grid.crs),
                           "left": b.left, "bottom": b.bottom, "right": b.right, "top": b.top,
                           "pixels": grid.tile_px**2},
            "geometry": poly.to_crs("EPSG:4326").json,
        })
    return {"type": "FeatureCollection", "features": feats}
