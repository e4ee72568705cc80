"""One band of a raster file onto a tile's GeoBox: a windowed read where the grids line up, else a warp.

Most reads of a run line up with their source: a Sentinel-2 10 m band onto the 10 m tile grid of its own UTM
zone (same CRS, same pixel size, whole-pixel offset), a Landsat 30 m or Sentinel-2 20 m band onto that grid with
nearest resampling (an integer ratio of pixel sizes). There the warp's result is known exactly: the source pixel
itself (bilinear and nearest put all weight on it) or the source pixel under each fine pixel's centre (nearest,
ratio r: a fine centre falls on a coarse pixel's edge only where the grids are half a fine pixel apart, as
Landsat's 30 m grid, whose corners lie 15 m off the 10 m grid of Sentinel-2, and there GDAL takes the pixel right of
or below the edge, as the plain read does). :func:`warp_band` reads those
with a plain windowed read (half the time of a ``WarpedVRT`` for a 10 m band; ``tests/test_io.py`` checks that
both give the same array). Bilinear upsampling of an integer band by a whole ratio on a whole-pixel offset (the
Sentinel-2 20 m bands onto the 10 m grid, the DMS predictors) is one windowed read and a compiled interpolation with
the warper's weights and rounding: the same integers as GDAL's bilinear
warp, in a third of its time (~15 instead of ~50 ms per band and tile). Onto a grid of another CRS (a national grid
such as EPSG:5179 against UTM products) nearest and bilinear are heattrack's own warp
(:func:`heattrack.kernels.warp.warp_array`: exact positions on a lattice, GDAL's nodata rules; 2-4x faster than GDAL's
warp per band). Everything else is GDAL's warp (fractional offsets in the same CRS such as a coregistration shift,
float bands upsampled, other resamplings).
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox
from odc.geo.geom import Geometry, box
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.warp import reproject
from rasterio.windows import Window

from heattrack.errors import InputError
from heattrack.io.mtl_georef import LANDSAT_PRODUCT_ID, mtl_placed, open_quietly
from heattrack.io.retry import with_retries
from heattrack.kernels.lst import bilinear_gather
from heattrack.kernels.warp import LATTICE_PX, warp_array

_TOL = 1e-6  # of a pixel: how close to whole-pixel an offset must be to count as aligned


def gdal_options() -> dict:
    """GDAL settings for tile reads: a bounded block cache (GDAL's default, 5 % of RAM per process, grows
    with the number of tiles a worker has read), unless the user set ``GDAL_CACHEMAX`` themselves."""
    return {} if "GDAL_CACHEMAX" in os.environ else {"GDAL_CACHEMAX": 64}


def open_error(path: Path, exc: Exception) -> InputError:
    msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return InputError(f"cannot read raster {path}: not a readable GeoTIFF/JP2 ({msg})")


@contextlib.contextmanager
def open_raster(path: Path):
    """``rasterio.open(path)``; a Landsat band whose GeoTIFF carries no georeferencing comes back placed by its
    product's MTL where one lies beside it (:mod:`heattrack.io.mtl_georef`: a VRT around the file, which stays as it
    is), else as it is (no CRS)."""
    with open_quietly(path) as src:
        vrt = mtl_placed(Path(path), src) if src.crs is None else None
        if vrt is None:
            yield src
            return
    with MemoryFile(vrt.encode(), ext="vrt") as mem, mem.open() as placed:
        yield placed


def _whole(v: float) -> int | None:
    r = round(v)
    return int(r) if abs(v - r) < _TOL else None


def _whole_pixel_grid(src, geobox: GeoBox, half: bool = False) -> tuple[int, float, float] | None:
    """(ratio, row offset, column offset in tile pixels) where ``geobox`` is the source's own grid (same CRS, no
    rotation) refined by a whole ratio and shifted by whole tile pixels (``half``: or by whole halves of one), else
    None: the case both fast paths read."""
    st, dt = src.transform, geobox.affine
    if st.b or st.d or dt.b or dt.d or st.e >= 0 or dt.e >= 0 or src.crs is None:
        return None
    ratio_x, ratio_y = _whole(st.a / dt.a), _whole(st.e / dt.e)
    if not ratio_x or ratio_x != ratio_y:
        return None
    step = 0.5 if half else 1
    off_c, off_r = _whole((dt.c - st.c) / dt.a / step), _whole((dt.f - st.f) / dt.e / step)
    if off_c is None or off_r is None or src.crs != CRS.from_wkt(geobox.crs.wkt):
        return None
    return ratio_x, off_r * step, off_c * step


def _half_off(grid: tuple[int, float, float]) -> bool:
    """Whether a :func:`_whole_pixel_grid` (asked with ``half``) is off the source's grid by half a tile pixel."""
    return grid[1] % 1 + grid[2] % 1 > 0


def aligned_index(src, geobox: GeoBox, resampling: Resampling) -> tuple[np.ndarray, np.ndarray] | None:
    """Source row and column of every tile row and column when the warp onto ``geobox`` is a pure pixel
    selection (see the module docstring), else None."""
    if resampling not in (Resampling.nearest, Resampling.bilinear):
        return None
    nearest = resampling == Resampling.nearest
    grid = _whole_pixel_grid(src, geobox, half=nearest)
    if grid is None or (grid[0] > 1 and not nearest) or (grid[0] == 1 and _half_off(grid)):
        return None  # bilinear between pixels; or every tile pixel on a source pixel's edge (not worth the risk)
    r, off_r, off_c = grid
    # a centre on a source pixel's edge (a half-pixel offset) computes exactly to a whole number here and goes to the
    # pixel right of or below the edge, as in GDAL's warp (tests/test_io.py)
    rows = np.floor((off_r + np.arange(geobox.height) + 0.5) / r).astype(np.int64)
    cols = np.floor((off_c + np.arange(geobox.width) + 0.5) / r).astype(np.int64)
    return rows, cols


def _fits(value: float, dtype) -> bool:
    """Whether ``value`` is stored exactly in ``dtype`` (NaN only in floats; integers in range)."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.floating):
        return True
    return bool(np.isfinite(value)) and float(value).is_integer() and \
        np.iinfo(dtype).min <= value <= np.iinfo(dtype).max


def _select(src, rows: np.ndarray, cols: np.ndarray, nodata: float) -> np.ndarray | None:
    """The source pixels at ``rows`` x ``cols`` (one windowed read of the rows and columns inside the raster),
    ``nodata`` outside the raster and where the source holds its own nodata value. None where the warp would
    change the data type (an integer band read with a NaN nodata comes back as float from GDAL)."""
    src_nodata, dtype = _warped_nodata_and_type(src, nodata)
    if dtype != np.dtype(src.dtypes[0]):  # the warp would change the type: GDAL's warp decides
        return None
    r_in = (rows >= 0) & (rows < src.height)
    c_in = (cols >= 0) & (cols < src.width)
    if not r_in.any() or not c_in.any():
        return np.full((rows.size, cols.size), nodata, dtype=dtype)
    r0, r1 = int(rows[r_in].min()), int(rows[r_in].max()) + 1
    c0, c1 = int(cols[c_in].min()), int(cols[c_in].max()) + 1
    block = src.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
    part = _pick(_pick(block, rows[r_in] - r0, 0), cols[c_in] - c0, 1)  # a view where the grids share pixel sizes
    hole = np.isnan(part) if np.isnan(src_nodata) else part == src_nodata
    if hole.any():
        part = np.where(hole, np.asarray(nodata).astype(part.dtype), part)
    if r_in.all() and c_in.all():  # the tile lies inside the raster (the common case): no second copy
        return np.ascontiguousarray(part)
    out = np.full((rows.size, cols.size), nodata, dtype=dtype)
    out[np.ix_(r_in, c_in)] = part
    return out


def _pick(block: np.ndarray, index: np.ndarray, axis: int) -> np.ndarray:
    """``block``'s rows (``axis`` 0) or columns (1) at ``index``: a view where they are a run of consecutive pixels,
    else ``take`` (a coarser band repeated onto the tile: 6-7x faster than fancy indexing along the columns)."""
    if index.size and index[-1] - index[0] == index.size - 1 and (index.size < 2 or (np.diff(index) == 1).all()):
        run = slice(int(index[0]), int(index[-1]) + 1)
        return block[run] if axis == 0 else block[:, run]
    return block.take(index, axis=axis)


def _upsample_offsets(src, geobox: GeoBox, resampling: Resampling) -> tuple[int, float, float] | None:
    """(ratio, row offset, column offset in tile pixels) where the warp onto ``geobox`` is bilinear upsampling of an
    integer band by a whole ratio on a whole-pixel offset, or by a ratio of 1 or 2 on a half-pixel one, else None."""
    if resampling != Resampling.bilinear or not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
        return None
    grid = _whole_pixel_grid(src, geobox, half=True)
    if grid is None:
        return None
    # half a tile pixel off (Landsat's 30 m grid onto a 30 m grid of the 10 m tiles: the coregistration's SR_B5):
    # weights k / (2 ratio), exact in binary for ratios 1 and 2 only (a ratio of 3 came out other than GDAL's)
    return grid if (grid[0] in (1, 2) if _half_off(grid) else grid[0] >= 2) else None


def _linear_taps(offset: int, n: int, ratio: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per tile row (or column): the two source pixels (clamped to the raster), the weight of the second, and whether
    the pixel centre lies on the raster (GDAL's bilinear kernel: centres at ``(i + 0.5) / ratio - 0.5``)."""
    centre = (offset + np.arange(n) + 0.5) / ratio
    pos = centre - 0.5
    i0 = np.floor(pos).astype(np.intp)
    w = (pos - i0).astype(np.float32)
    return np.clip(i0, 0, size - 1), np.clip(i0 + 1, 0, size - 1), w, (centre >= 0) & (centre < size)


def _upsample(src, ratio: int, off_r: int, off_c: int, geobox: GeoBox, nodata: float) -> np.ndarray | None:
    """GDAL's bilinear warp of an integer band onto a finer aligned grid (see the module docstring): the weights at the
    raster's edges renormalised (clamped taps), rounded half up, ``nodata`` where the pixel centre is off the raster.
    None where the warp would change the data type or the source window holds nodata (GDAL's warp decides there)."""
    src_nodata, dtype = _warped_nodata_and_type(src, nodata)
    if dtype != np.dtype(src.dtypes[0]):  # the warp would change the type: GDAL's warp decides
        return None
    y0, y1, wy, in_y = _linear_taps(off_r, geobox.height, ratio, src.height)
    x0, x1, wx, in_x = _linear_taps(off_c, geobox.width, ratio, src.width)
    if not in_y.any() or not in_x.any():
        return np.full((geobox.height, geobox.width), nodata, dtype=dtype)
    r0, c0 = int(y0.min()), int(x0.min())
    block = src.read(1, window=Window(c0, r0, int(x1.max()) + 1 - c0, int(y1.max()) + 1 - r0))
    if (block == src_nodata).any():  # GDAL's rules around nodata (which pixels it skips) are its own: warp
        return None
    out = np.floor(bilinear_gather(block, y0 - r0, y1 - r0, wy, x0 - c0, x1 - c0, wx) + np.float32(0.5)).astype(dtype)
    out[~in_y, :] = nodata
    out[:, ~in_x] = nodata
    return out


@functools.lru_cache(maxsize=16)
def _transformer(dst_crs_wkt: str, src_crs_wkt: str):
    from pyproj import Transformer

    return Transformer.from_crs(dst_crs_wkt, src_crs_wkt, always_xy=True)


def source_positions(geobox: GeoBox, src_affine: Affine, src_crs_wkt: str, lattice_px: int = LATTICE_PX
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The lattice of :func:`heattrack.kernels.warp.warp_array`: every ``lattice_px``-th row and column of
    ``geobox`` (its last ones included) and the source raster's fractional column and row of those pixel centres,
    transformed exactly from the tile's CRS."""
    h, w = geobox.shape.y, geobox.shape.x
    rows = np.unique(np.r_[np.arange(0, h, lattice_px), h - 1])
    cols = np.unique(np.r_[np.arange(0, w, lattice_px), w - 1])
    cc, rr = np.meshgrid(cols + 0.5, rows + 0.5)
    x, y = geobox.affine @ (cc, rr)
    x, y = _transformer(geobox.crs.wkt, src_crs_wkt).transform(x, y)
    col, row = ~src_affine @ (np.asarray(x), np.asarray(y))
    return rows.astype(np.int64), cols.astype(np.int64), np.asarray(col, np.float64), np.asarray(row, np.float64)


def _warp_other_crs(src, geobox: GeoBox, resampling: Resampling, nodata: float) -> np.ndarray | None:
    """Nearest or bilinear onto a grid of another CRS with :func:`heattrack.kernels.warp.warp_array` (2-4x faster
    than GDAL's warp per band): one windowed read of the source pixels the tile needs. None (GDAL's warp decides) for
    other resamplings and where the tile's pixels are coarser than the source's (GDAL's bilinear then averages more;
    a coarse view of a whole scene would read the scene's every pixel here)."""
    if resampling not in (Resampling.nearest, Resampling.bilinear) or src.crs == CRS.from_wkt(geobox.crs.wkt):
        return None
    lattice = source_positions(geobox, src.transform, src.crs.wkt)
    _, _, pc, pr = lattice
    if pc.shape[1] > 1 and pc.shape[0] > 1:
        step = np.hypot(np.diff(pc, axis=1), np.diff(pr, axis=1)) / np.diff(lattice[1])[None, :]
        if step.max() > 1.01:  # a coarser grid (the plan's quick clear-sky check): GDAL's warp, as before
            return None
    r0 = int(np.clip(np.floor(pr.min()) - 2, 0, src.height))
    r1 = int(np.clip(np.ceil(pr.max()) + 2, 0, src.height))
    c0 = int(np.clip(np.floor(pc.min()) - 2, 0, src.width))
    c1 = int(np.clip(np.ceil(pc.max()) + 2, 0, src.width))
    block = src.read(1, window=Window(c0, r0, max(c1 - c0, 1), max(r1 - r0, 1))) if r1 > r0 and c1 > c0 else \
        np.zeros((1, 1), dtype=src.dtypes[0])
    src_nodata, dtype = _warped_nodata_and_type(src, nodata)
    return warp_array(block, src_nodata, lattice, (geobox.shape.y, geobox.shape.x), resampling == Resampling.bilinear,
                      nodata, dtype, (r0, c0), (src.height, src.width))


def _warped_nodata_and_type(src, nodata: float) -> tuple[float, np.dtype]:
    """The source's nodata value (``nodata`` where it declares none) and the warp's output type: the band's where both
    fit it, else float64 (as GDAL's warp returns an integer band read with a NaN nodata)."""
    dtype = np.dtype(src.dtypes[0])
    src_nodata = src.nodata if src.nodata is not None else nodata
    return src_nodata, dtype if _fits(nodata, dtype) and _fits(src_nodata, dtype) else np.dtype(np.float64)


def _warp(src, geobox: GeoBox, resampling: Resampling, nodata: float) -> np.ndarray:
    """GDAL's warp of band 1 onto ``geobox`` in one call over the whole tile (``reproject``). A ``WarpedVRT`` read of
    the same warp took twice the time (156 vs 77 ms for a 10 m band onto an 1100 x 1100 px tile of another CRS) and
    strayed from the exact bilinear interpolation by 10 DN on average (up to 180; ``reproject``: 0.6, up to 8 — the
    approximate transformer's tolerance). The output type: :func:`_warped_nodata_and_type`."""
    src_nodata, dtype = _warped_nodata_and_type(src, nodata)
    out = np.full((geobox.height, geobox.width), nodata, dtype=dtype)
    reproject(rasterio.band(src, 1), out, src_nodata=src_nodata, dst_transform=geobox.affine,
              dst_crs=geobox.crs.wkt, dst_nodata=nodata, resampling=resampling,
              init_dest_nodata=False)  # ``out`` holds ``nodata`` already (GDAL's own initialisation wrote the
    # source's nodata value where the tile reaches past the raster)
    return out


def warp_band(path: Path, geobox: GeoBox, resampling: Resampling, nodata: float, attempts: int = 3,
              backoff_s: float = 0.5, windowed: bool = True) -> np.ndarray:
    """Band 1 of ``path`` on ``geobox`` (reads only the needed source blocks); outside = ``nodata``.

    A failed read is retried ``attempts - 1`` times with exponential backoff (0.5 s, 1 s, ...): network
    filesystems and object stores fail transiently; a file that stays unreadable raises :class:`InputError`.
    ``windowed=False``: always warp (the reference the windowed path is tested against).
    """
    def read() -> np.ndarray:
        with rasterio.Env(**gdal_options()), open_raster(path) as src:
            index = aligned_index(src, geobox, resampling) if windowed else None
            picked = _select(src, *index, nodata) if index is not None else None
            if picked is None and windowed and (up := _upsample_offsets(src, geobox, resampling)) is not None:
                picked = _upsample(src, *up, geobox, nodata)
            if picked is not None:
                return picked
            picked = _warp_other_crs(src, geobox, resampling, nodata) if windowed else None
            return picked if picked is not None else _warp(src, geobox, resampling, nodata)

    return with_retries(read, attempts=attempts, backoff_s=backoff_s, what=f"read of {path.name}",
                        on_give_up=lambda exc: open_error(path, exc))


def _probe(src) -> None:
    """Decode a little of band 1 to catch a truncated or corrupt file when the run is planned, not in a tile task:
    the coarsest view when the file has overviews, else its first block and the block stored last in the file (an
    interrupted download loses the tail). A decimated read of a file without overviews decodes all of it (~50 ms for
    a 10 m band of a granule, serial in the plan for every raster of every date)."""
    h, w = src.height, src.width
    if src.overviews(1):
        src.read(1, out_shape=(min(h, 32), min(w, 32)))
        return
    bh, bw = (min(v, n) for v, n in zip(src.block_shapes[0], (h, w)))
    for r0, c0 in ((0, 0), _last_stored_block(src, bh, bw)):
        src.read(1, window=Window(c0, r0, min(bw, w - c0), min(bh, h - r0)))


def _last_stored_block(src, bh: int, bw: int) -> tuple[int, int]:
    """Pixel row and column of the block whose data comes last in the file: from a GeoTIFF's block offsets (GDAL's
    TIFF metadata; writers flush blocks in any order), else the bottom-right block."""
    nby, nbx = -(-src.height // bh), -(-src.width // bw)
    last = ((nby - 1) * bh, (nbx - 1) * bw)
    if src.driver != "GTiff" or nbx * nby > 4096:
        return last
    offsets = [(int(src.get_tag_item(f"BLOCK_OFFSET_{i}_{j}", "TIFF", bidx=1) or 0), j * bh, i * bw)
               for j in range(nby) for i in range(nbx)]
    best = max(offsets)
    return best[1:] if best[0] > 0 else last


def raster_footprint(path: Path) -> tuple[Geometry, str]:
    """Footprint polygon and CRS (as 'EPSG:n' or WKT) of a raster; checks that it is georeferenced."""
    try:
        with open_raster(path) as src:
            _probe(src)
            if src.crs is None:
                raise InputError(f"raster {path} has no CRS (not georeferenced" + (
                    "; a Landsat band is placed by its product's *_MTL.txt beside it where that describes the band's "
                    "grid" if LANDSAT_PRODUCT_ID.match(path.name) else "") + ")")
            crs = src.crs.to_string()
            return box(*src.bounds, crs), crs
    except InputError:
        raise
    except Exception as exc:  # rasterio raises RasterioIOError, CPLE_* errors for broken files
        raise open_error(path, exc) from None


__all__ = ["aligned_index", "gdal_options", "open_error", "open_raster", "raster_footprint", "warp_band"]
