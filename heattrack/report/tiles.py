"""Pre-rendered web-map tiles (XYZ, Web Mercator, 256 px PNG) of a single-band COG, for the report's map.

Each tile is warped from the coarsest COG overview that is still at least as fine as the tile's pixels, so a
national risk map costs one small read per tile whatever the zoom. Tiles without data are not written; the
list of written tiles goes into the map's index so the page never asks for a missing file (no 404s from
``file://``). Cost (``benchmarks/report_map.py``, 2026-11-28, 2 cores): 10 ms per tile on one thread, 6.2 ms
on two (tiles render on a thread pool; GDAL releases the GIL), so South Korea's pyramid at the default
``report.max_tiles`` (8,037 tiles in its bounding box, zooms 5-12) takes about a minute.
"""

from __future__ import annotations

import io
import math
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import mercantile
import numpy as np
import rasterio
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_bounds
from rasterio.warp import Resampling, reproject, transform_bounds

TILE_PX = 256
EARTH_M_PER_PX_Z0 = 2 * math.pi * 6378137.0 / TILE_PX


@dataclass(frozen=True)
class TileSet:
    """What was rendered: zoom range, lon/lat bounds and the written tiles per zoom (``"x/y"`` keys)."""

    min_zoom: int
    max_zoom: int
    bounds: tuple[float, float, float, float]
    tiles: dict[int, list[str]]

    def as_json(self) -> dict:
        return {"min_zoom": self.min_zoom, "max_zoom": self.max_zoom, "bounds": list(self.bounds),
                "tiles": {str(z): v for z, v in self.tiles.items()}}


def native_zoom(resolution_m: float, lat: float) -> int:
    """Deepest zoom whose tile pixels are not finer than ``resolution_m`` at latitude ``lat``."""
    return max(0, int(math.floor(math.log2(EARTH_M_PER_PX_Z0 * math.cos(math.radians(lat)) / resolution_m))))


def zoom_range(bounds: tuple[float, float, float, float], resolution_m: float, max_zoom: int | None,
               max_tiles: int) -> tuple[int, int]:
    """(min, max) zoom: min fits the whole extent in about one tile; max is the grid's native zoom (or
    ``max_zoom``) lowered until the pyramid has at most ``max_tiles`` tiles."""
    w, s, e, n = bounds
    lat = 0.5 * (s + n)
    top = native_zoom(resolution_m, lat) if max_zoom is None else max_zoom
    span = max(e - w, 1e-9)
    lo = min(top, max(0, int(math.floor(math.log2(360.0 / span)))))
    while top > lo and _count(bounds, lo, top) > max_tiles:
        top -= 1
    return lo, top


def _count(bounds, lo: int, hi: int) -> int:
    w, s, e, n = bounds
    total = 0
    for z in range(lo, hi + 1):
        a, b = mercantile.tile(w, n, z), mercantile.tile(e, s, z)
        total += (b.x - a.x + 1) * (b.y - a.y + 1)
    return total


def _lut(cmap: str, n: int = 256) -> np.ndarray:
    return (matplotlib.colormaps[cmap](np.linspace(0, 1, n)) * 255).astype(np.uint8)


class _Datasets:
    """One open dataset per (thread, overview level): opening a COG costs as much as warping a tile."""

    def __init__(self, path: Path):
        self.path, self.local, self.opened, self.lock = path, threading.local(), [], threading.Lock()
        with rasterio.open(path) as src:
            self.res, self.factors = src.res[0], src.overviews(1)

    def for_tile_res(self, tile_res_m: float):
        ov = None  # the coarsest overview whose pixels are still at most the tile's
        for i, f in enumerate(self.factors):
            if self.res * f <= tile_res_m:
                ov = i
        cache = self.local.__dict__.setdefault("ds", {})
        if ov not in cache:
            cache[ov] = rasterio.open(self.path, **({} if ov is None else {"overview_level": ov}))
            with self.lock:
                self.opened.append(cache[ov])
        return cache[ov]

    def close(self) -> None:
        for ds in self.opened:
            ds.close()


def _render(datasets: _Datasets, tile: mercantile.Tile, lut: np.ndarray, vmin: float, vmax: float,
            alpha: int) -> bytes | None:
    x0, y0, x1, y1 = mercantile.xy_bounds(tile)
    tile_res = (x1 - x0) / TILE_PX
    src = datasets.for_tile_res(tile_res * abs(math.cos(math.radians(mercantile.ul(tile).lat))))
    dest = np.full((TILE_PX, TILE_PX), np.nan, dtype=np.float32)
    reproject(rasterio.band(src, 1), dest, dst_transform=from_bounds(x0, y0, x1, y1, TILE_PX, TILE_PX),
              dst_crs="EPSG:3857", src_nodata=np.nan, dst_nodata=np.nan, resampling=Resampling.nearest)
    ok = np.isfinite(dest)
    if not ok.any():
        return None
    t = np.clip((np.nan_to_num(dest) - vmin) / (vmax - vmin), 0.0, 1.0)
    rgba = lut[(t * (len(lut) - 1)).astype(np.int32)]
    rgba[..., 3] = np.where(ok, t * t * alpha, 0).astype(np.uint8)  # low risk fades out over the basemap
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def render_tiles(cog: Path, dest: Path, *, resolution_m: float, cmap: str = "magma", vmin: float = 0.0,
                 vmax: float = 1.0, alpha: int = 230, max_zoom: int | None = None, max_tiles: int = 20000,
                 workers: int = 4) -> TileSet:
    """Render ``cog`` into ``dest/{z}/{x}/{y}.png`` and return the :class:`TileSet`."""
    with rasterio.open(cog) as src:
        bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    lo, hi = zoom_range(bounds, resolution_m, max_zoom, max_tiles)
    lut = _lut(cmap)
    todo = list(mercantile.tiles(*bounds, zooms=list(range(lo, hi + 1))))
    datasets = _Datasets(cog)

    def one(t: mercantile.Tile) -> str | None:
        png = _render(datasets, t, lut, vmin, vmax, alpha)
        if png is None:
            return None
        f = dest / str(t.z) / str(t.x) / f"{t.y}.png"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(png)
        return f"{t.z}/{t.x}/{t.y}"

    try:
        with warnings.catch_warnings(), ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            # rasterio's in-memory destination of reproject() warns before its transform is set
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            written = [k for k in pool.map(one, todo) if k is not None]
    finally:
        datasets.close()
    tiles: dict[int, list[str]] = {z: [] for z in range(lo, hi + 1)}
    for k in written:
        z, rest = k.split("/", 1)
        tiles[int(z)].append(rest)
    return TileSet(lo, hi, tuple(round(b, 6) for b in bounds), tiles)
