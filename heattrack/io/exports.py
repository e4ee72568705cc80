"""Final exports: Cloud-Optimized GeoTIFFs (one per tile, written by the tile tasks, and a VRT mosaic of them; a
single COG from the zarr mosaic for runs up to ``report.single_cog_max_mpx``), segment and hotspot tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio.shutil
import zarr
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window

if TYPE_CHECKING:  # the tile tasks import this module for their COGs: geopandas only where vectors are written
    import geopandas as gpd

#: folder of the per-tile COGs below the output (``cog_tiles/<layer>/<ix>_<iy>.tif``)
COG_DIR = "cog_tiles"
#: mosaic variable -> exported layer name (``<name>.vrt``, ``<name>.tif``, ``cog_tiles/<name>/``)
COG_LAYERS = (("lst_10m", "lst_10m"), ("risk", "risk_10m"))
#: the COG codec's predictor per mosaic variable (3, floating point, where none is named): risk is mostly runs of exact
#: zeros (scores below the flag scale), which the floating-point predictor breaks up; without it a tile's risk COG
#: was 20-27 % smaller and 7-30 ms faster to write on four 48 km tiles (2026-12-06); LST compresses best with 3
COG_PREDICTOR = {"risk": 1}


#: the codecs a run may write its COGs with (``report.cog_compression``; the first is the default). zstd level 1
#: writes a tile's LST and risk COGs in 37 and 19 ms against deflate level 1's 52 and 34 ms, 2-4 % smaller (a 48 km
#: tile, 2026-12-06); GDAL reads it since 2.3 (2018), but not every older GIS does: deflate stays the default
COG_COMPRESSION = ("deflate", "zstd")


def cog_predictor(variable: str) -> int:
    return COG_PREDICTOR.get(variable, 3)


def _codec(compression: str, level: str | None) -> dict:
    """GDAL creation options of a COG codec (level None: GDAL's default)."""
    if compression not in COG_COMPRESSION:
        raise ValueError(f"COG compression {compression!r} is not one of {', '.join(COG_COMPRESSION)}")
    return {"COMPRESS": compression.upper(), **({"LEVEL": level} if level else {})}


def write_cog(
    zarr_path: str | Path, variable: str, rows: slice, cols: slice, transform: Affine, crs: str, dest: Path,
    compression: str = "deflate", block_px: int = 1024,
) -> None:
    """Copy ``variable[rows, cols]`` of the mosaic into a COG (float32, NaN nodata, ``compression`` (deflate at
    GDAL's default level, zstd at level 1), overviews).

    Streams window by window through a tiled GeoTIFF, so memory stays at one block whatever the mosaic size.
    """
    arr = zarr.open_group(str(zarr_path), mode="r")[variable]
    predictor = cog_predictor(variable)
    height, width = rows.stop - rows.start, cols.stop - cols.start
    out_transform = transform @ Affine.translation(cols.start, rows.start)
    tmp = dest.with_suffix(".tmp.tif")
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype="float32", crs=crs,
                   transform=out_transform, nodata=np.nan, tiled=True, blockxsize=512, blockysize=512,
                   compress=compression, predictor=predictor, BIGTIFF="IF_SAFER",
                   **({"zstd_level": 1} if compression == "zstd" else {}))
    with rasterio.open(tmp, "w", **profile) as dst:
        for r0 in range(0, height, block_px):
            for c0 in range(0, width, block_px):
                h, w = min(block_px, height - r0), min(block_px, width - c0)
                block = arr[rows.start + r0: rows.start + r0 + h, cols.start + c0: cols.start + c0 + w]
                dst.write(np.asarray(block, dtype="float32"), 1, window=Window(c0, r0, w, h))
        factors = [f for f in (2, 4, 8, 16, 32, 64) if min(height, width) // f >= 64] or [2]
        dst.build_overviews(factors, Resampling.average)
    rasterio.shutil.copy(tmp, dest, driver="COG", **_codec(compression, "1" if compression == "zstd" else None),
                         PREDICTOR=str(predictor), BLOCKSIZE="512", OVERVIEWS="FORCE_USE_EXISTING", BIGTIFF="IF_SAFER")
    tmp.unlink()


def write_geojson(gdf: gpd.GeoDataFrame, dest: Path) -> None:
    """GeoJSON in lon/lat (RFC 7946), with null for missing values: the same document as geopandas' ``to_json``
    (geometries written by GEOS, properties column by column), in a quarter of its time on a national network."""
    import shapely

    out = gdf.to_crs("EPSG:4326")
    geoms = shapely.to_geojson(out.geometry.values)
    props = out.drop(columns=out.geometry.name)
    names = [str(c) for c in props.columns]
    columns = [props[c].astype(object).where(props[c].notna(), None).tolist() for c in props.columns]
    encode = json.JSONEncoder(allow_nan=False, default=_json_default).encode
    feats = ['{"type": "Feature", "properties": %s, "geometry": %s}' % (encode(dict(zip(names, row))), g or "null")
             for row, g in zip(zip(*columns), geoms)]
    dest.write_text('{"type": "FeatureCollection", "features": [' + ", ".join(feats) + "]}")


def _json_default(v):
    """Timestamps as ISO 8601, NumPy scalars as numbers, anything else as its text."""
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def write_json(obj: dict, dest: Path) -> None:
    dest.write_text(json.dumps(obj, indent=2, default=str))


def tile_cog_bytes(values: np.ndarray, transform: Affine, crs: str, block_px: int = 256,
                   overview_count: int = 5, predictor: int = 3, compression: str = "deflate") -> bytes:
    """One tile's layer as a COG in memory (float32, NaN nodata, ``compression`` at level 1 with ``predictor``,
    ``overview_count`` internal overviews, so the VRT mosaic of the tiles reads coarse views from them). Written by the
    tile task itself: the pixels are never read again by one process."""
    h, w = values.shape
    profile = dict(driver="GTiff", width=w, height=h, count=1, dtype="float32", crs=crs, transform=transform,
                   nodata=np.nan, tiled=True, blockxsize=block_px, blockysize=block_px)
    with rasterio.MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(np.asarray(values, dtype="float32"), 1)
            # the overviews (average of the finite pixels) built here on the uncompressed in-memory copy and reused
            # by the COG driver: half the time of letting it build them through its temporary files
            dst.build_overviews([2**k for k in range(1, overview_count + 1)], Resampling.average)
        with mem.open() as src, rasterio.MemoryFile() as cog:
            # level 1: deflate's took 30 % less time than GDAL's default 6 per tile, files within 1 % of the size
            rasterio.shutil.copy(src, cog.name, driver="COG", **_codec(compression, "1"), PREDICTOR=str(predictor),
                                 BLOCKSIZE=str(block_px), OVERVIEWS="FORCE_USE_EXISTING")
            return cog.read()


def write_vrt(parts: list[tuple[str, int, int, int, int]], width: int, height: int, transform: Affine, crs: str,
              dest: Path) -> None:
    """A GDAL VRT mosaic of per-tile rasters: ``parts`` = (path relative to ``dest``, row, col of the part's
    first pixel in the VRT, part height, width); parts may reach past the VRT's edges (cropped here). The VRT
    is text of O(tiles) size: GDAL and QGIS open it as one layer, and read its coarse views from the parts'
    overviews."""
    gt = ", ".join(repr(float(v)) for v in transform.to_gdal())
    lines = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
             f"  <SRS>{escape(crs)}</SRS>", f"  <GeoTransform>{gt}</GeoTransform>",
             '  <VRTRasterBand dataType="Float32" band="1">', "    <NoDataValue>nan</NoDataValue>"]
    for rel, row, col, h, w in parts:
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + h, height), min(col + w, width)
        if r1 <= r0 or c1 <= c0:
            continue
        lines += ["    <ComplexSource>",
                  f'      <SourceFilename relativeToVRT="1">{escape(rel)}</SourceFilename>',
                  "      <SourceBand>1</SourceBand>",
                  f'      <SourceProperties RasterXSize="{w}" RasterYSize="{h}" DataType="Float32" '
                  'BlockXSize="256" BlockYSize="256"/>',
                  f'      <SrcRect xOff="{c0 - col}" yOff="{r0 - row}" xSize="{c1 - c0}" ySize="{r1 - r0}"/>',
                  f'      <DstRect xOff="{c0}" yOff="{r0}" xSize="{c1 - c0}" ySize="{r1 - r0}"/>',
                  "      <NODATA>nan</NODATA>", "    </ComplexSource>"]
    lines += ["  </VRTRasterBand>", "</VRTDataset>", ""]
    dest.write_text("\n".join(lines))


def write_overview(values: np.ndarray, transform: Affine, crs: str, dest: Path, compression: str = "deflate") -> None:
    """A small COG of the coarse risk view the tile tasks computed (the report's figures and, for runs without
    a single 10 m COG, its map layer)."""
    dest.write_bytes(tile_cog_bytes(values, transform, crs, block_px=256, overview_count=3, compression=compression))
