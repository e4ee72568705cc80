"""Final exports: Cloud-Optimized GeoTIFFs from the zarr mosaic, segment and hotspot tables."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.shutil
import zarr
from affine import Affine
from rasterio.enums import Resampling
from rasterio.windows import Window


def write_cog(
    zarr_path: str | Path, variable: str, rows: slice, cols: slice, transform: Affine, crs: str, dest: Path,
    block_px: int = 1024,
) -> None:
    """Copy ``variable[rows, cols]`` of the mosaic into a COG (float32, NaN nodata, deflate, overviews).

    Streams window by window through a tiled GeoTIFF, so memory stays at one block whatever the mosaic size.
    """
    arr = zarr.open_group(str(zarr_path), mode="r")[variable]
    height, width = rows.stop - rows.start, cols.stop - cols.start
    out_transform = transform @ Affine.translation(cols.start, rows.start)
    tmp = dest.with_suffix(".tmp.tif")
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype="float32", crs=crs,
                   transform=out_transform, nodata=np.nan, tiled=True, blockxsize=512, blockysize=512,
                   compress="deflate", predictor=3, BIGTIFF="IF_SAFER")
    with rasterio.open(tmp, "w", **profile) as dst:
        for r0 in range(0, height, block_px):
            for c0 in range(0, width, block_px):
                h, w = min(block_px, height - r0), min(block_px, width - c0)
                block = arr[rows.start + r0: rows.start + r0 + h, cols.start + c0: cols.start + c0 + w]
                dst.write(np.asarray(block, dtype="float32"), 1, window=Window(c0, r0, w, h))
        factors = [f for f in (2, 4, 8, 16, 32, 64) if min(height, width) // f >= 64] or [2]
        dst.build_overviews(factors, Resampling.average)
    rasterio.shutil.copy(tmp, dest, driver="COG", COMPRESS="DEFLATE", PREDICTOR="3", BLOCKSIZE="512",
                         OVERVIEWS="FORCE_USE_EXISTING", BIGTIFF="IF_SAFER")
    tmp.unlink()


def write_geojson(gdf: gpd.GeoDataFrame, dest: Path) -> None:
    """GeoJSON in lon/lat (RFC 7946), with null for missing values."""
    out = gdf.to_crs("EPSG:4326")
    dest.write_text(out.to_json(na="null", drop_id=True, to_wgs84=False))


def write_json(obj: dict, dest: Path) -> None:
    dest.write_text(json.dumps(obj, indent=2, default=str))
