"""One band of a raster file onto a tile's GeoBox: a windowed read where the grids line up, else a GDAL warp.

Most reads of a run line up with their source: a Sentinel-2 10 m band onto the 10 m tile grid of its own UTM
zone (same CRS, same pixel size, whole-pixel offset), a Landsat 30 m or Sentinel-2 20 m band onto that grid with
nearest resampling (an integer ratio of pixel sizes). There the warp's result is known exactly: the source pixel
itself (bilinear and nearest put all weight on it) or the source pixel under each fine pixel's centre (nearest,
ratio r: a fine centre never falls on a coarse pixel edge, so there is no tie). :func:`warp_band` reads those
with a plain windowed read (half the time of a ``WarpedVRT`` for a 10 m band; ``tests/test_io.py`` checks that
both give the same array) and warps everything else (other CRS, fractional offsets such as a coregistration
shift, bilinear upsampling of 20 m bands).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import rasterio
from odc.geo.geobox import GeoBox
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from heattrack.errors import InputError
from heattrack.io.retry import with_retries

_TOL = 1e-6  # of a pixel: how close to whole-pixel an offset must be to count as aligned


def gdal_options() -> dict:
    """GDAL settings for tile reads: a bounded block cache (GDAL's default, 5 % of RAM per process, grows
    with the number of tiles a worker has read), unless the user set ``GDAL_CACHEMAX`` themselves."""
    return {} if "GDAL_CACHEMAX" in os.environ else {"GDAL_CACHEMAX": 64}


def open_error(path: Path, exc: Exception) -> InputError:
    msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return InputError(f"cannot read raster {path}: not a readable GeoTIFF/JP2 ({msg})")


def _whole(v: float) -> int | None:
    r = round(v)
    return int(r) if abs(v - r) < _TOL else None


def aligned_index(src, geobox: GeoBox, resampling: Resampling) -> tuple[np.ndarray, np.ndarray] | None:
    """Source row and column of every tile row and column when the warp onto ``geobox`` is a pure pixel
    selection (see the module docstring), else None."""
    st, dt = src.transform, geobox.affine
    if st.b or st.d or dt.b or dt.d or st.e >= 0 or dt.e >= 0 or src.crs is None:
        return None
    ratio_x, ratio_y = _whole(st.a / dt.a), _whole(st.e / dt.e)
    if not ratio_x or ratio_x != ratio_y or (ratio_x > 1 and resampling != Resampling.nearest):
        return None
    if resampling not in (Resampling.nearest, Resampling.bilinear):
        return None
    off_c, off_r = _whole((dt.c - st.c) / dt.a), _whole((dt.f - st.f) / dt.e)
    if off_c is None or off_r is None or src.crs != CRS.from_wkt(geobox.crs.wkt):
        return None
    r = ratio_x
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
    dtype = src.dtypes[0]
    src_nodata = src.nodata if src.nodata is not None else nodata
    if not (_fits(nodata, dtype) and _fits(src_nodata, dtype)):
        return None
    r_in = (rows >= 0) & (rows < src.height)
    c_in = (cols >= 0) & (cols < src.width)
    if not r_in.any() or not c_in.any():
        return np.full((rows.size, cols.size), nodata, dtype=dtype)
    r0, r1 = int(rows[r_in].min()), int(rows[r_in].max()) + 1
    c0, c1 = int(cols[c_in].min()), int(cols[c_in].max()) + 1
    block = src.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
    part = block[_take(rows[r_in] - r0)][:, _take(cols[c_in] - c0)]  # a view where the grids share pixel sizes
    hole = np.isnan(part) if np.isnan(src_nodata) else part == src_nodata
    if hole.any():
        part = np.where(hole, np.asarray(nodata).astype(part.dtype), part)
    if r_in.all() and c_in.all():  # the tile lies inside the raster (the common case): no second copy
        return np.ascontiguousarray(part)
    out = np.full((rows.size, cols.size), nodata, dtype=dtype)
    out[np.ix_(r_in, c_in)] = part
    return out


def _take(index: np.ndarray) -> slice | np.ndarray:
    """``index`` as a slice where it is a run of consecutive pixels (a view instead of a gather), else itself."""
    if index.size and index[-1] - index[0] == index.size - 1 and (index.size < 2 or (np.diff(index) == 1).all()):
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def warp_band(path: Path, geobox: GeoBox, resampling: Resampling, nodata: float, attempts: int = 3,
              backoff_s: float = 0.5, windowed: bool = True) -> np.ndarray:
    """Band 1 of ``path`` on ``geobox`` (reads only the needed source blocks); outside = ``nodata``.

    A failed read is retried ``attempts - 1`` times with exponential backoff (0.5 s, 1 s, ...): network
    filesystems and object stores fail transiently; a file that stays unreadable raises :class:`InputError`.
    ``windowed=False``: always warp (the reference the windowed path is tested against).
    """
    def read() -> np.ndarray:
        with rasterio.Env(**gdal_options()), rasterio.open(path) as src:
            index = aligned_index(src, geobox, resampling) if windowed else None
            picked = _select(src, *index, nodata) if index is not None else None
            if picked is not None:
                return picked
            src_nodata = src.nodata if src.nodata is not None else nodata
            with WarpedVRT(src, crs=geobox.crs.wkt, transform=geobox.affine, width=geobox.width,
                           height=geobox.height, resampling=resampling, src_nodata=src_nodata, nodata=nodata) as vrt:
                return vrt.read(1)

    return with_retries(read, attempts=attempts, backoff_s=backoff_s, what=f"read of {path.name}",
                        on_give_up=lambda exc: open_error(path, exc))


__all__ = ["aligned_index", "gdal_options", "open_error", "warp_band"]
