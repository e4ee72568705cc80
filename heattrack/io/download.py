"""Fetch STAC assets as tile clips into the ``local`` layout (``heattrack download``).

Each asset is read through GDAL (HTTP range requests / S3) over the tile's padded bounds only, in the asset's
own CRS and pixel grid (no resampling), and written as a tiled, deflate-compressed GeoTIFF named the way the
provider names the product (Landsat: ``<product id>_<BAND>.TIF``; Sentinel-2: the asset's file name). Every
written file is recorded in its folder's ``MANIFEST.json`` with size and SHA-256; a rerun skips files whose size
and checksum still match and fetches the rest (an interrupted download resumes where it stopped).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import rasterio
from rasterio.warp import transform_bounds
from rasterio.windows import Window, from_bounds

from heattrack.errors import InputError
from heattrack.io.local import MGRS_IN_NAME

MANIFEST = "MANIFEST.json"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(folder: Path) -> dict:
    f = folder / MANIFEST
    return json.loads(f.read_text()) if f.exists() else {}


def _write_manifest(folder: Path, manifest: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".manifest.")
    with os.fdopen(fd, "w") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=True)
    os.replace(tmp, folder / MANIFEST)


def is_complete(folder: Path, name: str, manifest: dict) -> bool:
    """True when ``name`` exists with the size and SHA-256 recorded when it was written."""
    rec, f = manifest.get(name), folder / name
    return bool(rec) and f.exists() and f.stat().st_size == rec["size"] and sha256_of(f) == rec["sha256"]


def clip_asset(href: str, bounds: tuple[float, float, float, float], bounds_crs: str, dest: Path,
               gdal_env: dict, margin_px: int = 4) -> None:
    """Write the part of raster ``href`` covering ``bounds`` (in ``bounds_crs``) plus ``margin_px`` to ``dest``,
    in the source's CRS and grid (atomic: temporary file + rename)."""
    try:
        with rasterio.Env(**gdal_env), rasterio.open(href) as src:
            b = transform_bounds(bounds_crs, src.crs, *bounds)
            w = from_bounds(*b, transform=src.transform).round_offsets(op="floor").round_lengths(op="ceil")
            col0, row0 = max(0, int(w.col_off) - margin_px), max(0, int(w.row_off) - margin_px)
            col1 = min(src.width, int(w.col_off + w.width) + margin_px)
            row1 = min(src.height, int(w.row_off + w.height) + margin_px)
            if col1 <= col0 or row1 <= row0:
                raise InputError(f"{href} does not cover the tile")
            win = Window(col0, row0, col1 - col0, row1 - row0)
            data = src.read(1, window=win)
            profile = {"driver": "GTiff", "width": win.width, "height": win.height, "count": 1,
                       "dtype": data.dtype, "crs": src.crs, "transform": src.window_transform(win),
                       "nodata": src.nodata, "tiled": True, "blockxsize": 256, "blockysize": 256,
                       "compress": "deflate", "predictor": 2 if np.issubdtype(data.dtype, np.integer) else 3}
    except InputError:
        raise
    except Exception as exc:  # rasterio/GDAL/HTTP errors
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise InputError(f"cannot fetch {_redact(href)}: {msg}") from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tif")
    os.close(fd)
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data, 1)
    os.replace(tmp, dest)


def _redact(href: str) -> str:
    """The URL without its query string (signed URLs carry tokens that must not reach logs)."""
    u = urlparse(href)
    return u._replace(query="", fragment="").geturl()


def fetch_pair_files(files: dict[str, str], folder: Path, bounds: tuple, bounds_crs: str, gdal_env: dict,
                     sign=None, extra_json: dict | None = None) -> dict:
    """Fetch ``{relative name: href}`` into ``folder`` (skipping complete files); ``extra_json``: small JSON files
    (STAC items) written as they are. Returns counts ``{"fetched": n, "skipped": n}``."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(folder)
    counts = {"fetched": 0, "skipped": 0}
    for name, href in files.items():
        if is_complete(folder, name, manifest):
            counts["skipped"] += 1
            continue
        clip_asset(sign(href) if sign else href, bounds, bounds_crs, folder / name, gdal_env)
        f = folder / name
        manifest[name] = {"size": f.stat().st_size, "sha256": sha256_of(f), "source": _redact(href)}
        _write_manifest(folder, manifest)
        counts["fetched"] += 1
    for name, obj in (extra_json or {}).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(obj))
    return counts


def provider_file_name(href: str, product: str | None = None, band: str | None = None) -> str:
    """``<product>_<BAND>.TIF`` for Landsat (USGS names), else the asset's own file name."""
    if product and band:
        return f"{product}_{band}.TIF"
    return posixpath.basename(urlparse(href).path)


def s2_file_name(href: str, item_id: str, several: bool) -> str:
    """The asset's own file name; where a day has several items and the name does not carry the granule's MGRS
    tile (Earth Search: ``B04.tif``), prefixed with the item id so that the local reader can tell them apart."""
    name = provider_file_name(href)
    return f"{item_id}_{name}" if several and not MGRS_IN_NAME.search(name) else name
