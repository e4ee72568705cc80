"""The zarr mosaic and the per-tile completion records of a run.

``mosaic.zarr`` is created up front as a template (metadata only, ``compute=False``); each tile task writes
its own region, which is exactly one chunk of every variable (chunks = tiles), so two tasks never write the
same chunk. After the data, the task writes ``.heattrack/tiles/<ix>_<iy>.npz``: the completion marker, which
also carries the tile's segment-point and hotspot results so a resumed run needs nothing recomputed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from odc.geo.geobox import GeoBox

from heattrack.io.location import OutputLocation
from heattrack.io.records import TileSummary

#: Mosaic variables: name -> (dtype, fill, CF attributes).
MOSAIC_VARIABLES: dict[str, tuple[str, Any, dict]] = {
    "lst_10m": ("float32", np.nan, {"long_name": "land surface temperature, sharpened to 10 m",
                                     "standard_name": "surface_temperature", "units": "K"}),
    "lst_plain": ("float32", np.nan, {"long_name": "land surface temperature, bilinear from the thermal "
                                       "resolution (no sharpening)", "standard_name": "surface_temperature",
                                       "units": "K"}),
    "anomaly_k": ("float32", np.nan, {"long_name": "excess temperature over the local background", "units": "K"}),
    "risk": ("float32", np.nan, {"long_name": "pixel leak evidence", "units": "1", "valid_range": [0.0, 1.0]}),
    "valid": ("uint8", 0, {"long_name": "1 where the pixel had clear thermal and optical data", "units": "1",
                           "flag_values": [0, 1], "flag_meanings": "no_data clear"}),
    "n_dates": ("uint8", 0, {"long_name": "number of date pairs with clear data (multi-date runs average "
                             "lst, anomaly and risk over them)", "units": "1"}),
}


def create_mosaic_template(path: str | Path, geobox: GeoBox, chunk_px: int, attrs: dict) -> None:
    """Write the metadata of an empty mosaic covering ``geobox`` with square chunks of ``chunk_px``.
    ``path``: a folder or an fsspec URL (``s3://bucket/run/mosaic.zarr``).

    Written by zarr itself, with the coordinates and attributes odc-geo and xarray give a dataset on ``geobox``
    (:func:`cf_coordinates`): the same files as xarray's ``to_zarr`` of dask arrays with ``compute=False`` (tested byte
    for byte), without xarray, which imports dask.array as it builds any array (~0.6 s of the run's serial start)."""
    # every node's attributes given at its creation: one metadata write each (``attrs.update`` rewrites the node's
    # metadata once per key: 62 writes, 0.3-0.5 s of the run's start)
    group = zarr.open_group(str(path), mode="w", zarr_format=2, attributes={
        k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in attrs.items()})
    for name, (values, dims, coord_attrs) in cf_coordinates(geobox).items():
        fill = np.nan if values.dtype.kind == "f" else None
        arr = group.create_array(name, shape=values.shape, chunks=values.shape, dtype=values.dtype, fill_value=fill,
                                 attributes={**coord_attrs, "_ARRAY_DIMENSIONS": list(dims)})
        arr[...] = values
    for name, (dtype, fill, var_attrs) in MOSAIC_VARIABLES.items():
        group.create_array(name, shape=geobox.shape.yx, chunks=(chunk_px, chunk_px), dtype=dtype, fill_value=fill,
                           attributes={**var_attrs, "grid_mapping": "spatial_ref", "coordinates": "spatial_ref",
                                       "_ARRAY_DIMENSIONS": ["y", "x"]})
    zarr.consolidate_metadata(str(path))


def cf_coordinates(geobox: GeoBox) -> dict[str, tuple[np.ndarray, tuple[str, ...], dict]]:
    """The coordinates ``odc.geo.xr.xr_coords(geobox, crs_coord_name="spatial_ref")`` gives an axis-aligned GeoBox —
    pixel centres with their units, resolution and CRS, and the CF grid mapping ``spatial_ref`` (EPSG code, WKT, the
    CF parameters, GDAL's GeoTransform) — as (values, dimensions, attributes), without building xarray objects."""
    crs = geobox.crs
    out = {name: (np.asarray(c.values), (name,), {"units": c.units, "resolution": c.resolution, "crs": str(crs)})
           for name, c in zip(geobox.dimensions, geobox.coordinates.values())}
    cf = crs.proj.to_cf()
    transform = " ".join(f"{v:.24f}".rstrip("0").rstrip(".") for v in geobox.transform.to_gdal())
    out["spatial_ref"] = (np.asarray(0 if crs.epsg is None else crs.epsg, "int32"), (),
                          {"spatial_ref": cf.get("crs_wkt", None) or crs.wkt, **cf, "GeoTransform": transform})
    return out


def chunks_of_region(rows: slice, cols: slice, chunk_px: int, shape: tuple[int, int]) -> set[tuple[int, int]]:
    """The zarr chunk indices that a write of ``[rows, cols]`` touches. Raises ValueError when the region is
    not whole chunks (a partial chunk is a read-modify-write: two writers could lose each other's data)."""
    for sl, n in ((rows, shape[0]), (cols, shape[1])):
        if sl.start % chunk_px or (sl.stop % chunk_px and sl.stop != n):
            raise ValueError(f"region {rows.start}:{rows.stop}, {cols.start}:{cols.stop} is not aligned to the "
                             f"{chunk_px}-pixel chunks of a {shape[0]} x {shape[1]} mosaic")
    return {(r, c) for r in range(rows.start // chunk_px, -(-rows.stop // chunk_px))
            for c in range(cols.start // chunk_px, -(-cols.stop // chunk_px))}


def check_disjoint_chunk_writes(regions: list[tuple[slice, slice]], chunk_px: int, shape: tuple[int, int]) -> None:
    """Refuse a set of tile regions unless each is chunk-aligned and no two share a chunk, so concurrent tile
    tasks (on any number of hosts, on disk or on S3) never write the same zarr object."""
    seen: dict[tuple[int, int], int] = {}
    for i, (rows, cols) in enumerate(regions):
        for ch in chunks_of_region(rows, cols, chunk_px, shape):
            if ch in seen:
                raise ValueError(f"tile regions {seen[ch]} and {i} both write chunk {ch}")
            seen[ch] = i


def write_tile_region(path: str | Path, rows: slice, cols: slice, arrays: dict[str, np.ndarray]) -> None:
    """Write one tile's arrays into the mosaic at ``rows, cols`` (must be whole chunks)."""
    group = zarr.open_group(str(path), mode="r+")
    for name, values in arrays.items():
        target = group[name]
        target[rows, cols] = values.astype(target.dtype, copy=False)


class TileRecords:
    """Completion markers + per-tile results under ``<out>/.heattrack/tiles`` (a folder or an S3 prefix)."""

    def __init__(self, out: str | Path):
        self.loc = OutputLocation(out)
        self.parts = (".heattrack", "tiles")

    def _name(self, idx: tuple[int, int]) -> str:
        return f"{idx[0]}_{idx[1]}.npz"

    def done(self, idx: tuple[int, int]) -> bool:
        return self.loc.exists(*self.parts, self._name(idx))

    def write(self, idx: tuple[int, int], arrays: dict[str, np.ndarray], summary: TileSummary) -> None:
        import io

        buf = io.BytesIO()
        np.savez(buf, summary=np.array(summary.to_json(indent=None)), **arrays)
        self.loc.write_bytes(buf.getvalue(), *self.parts, self._name(idx))

    def read(self, idx: tuple[int, int]) -> tuple[dict[str, np.ndarray], TileSummary]:
        return self._parse(idx, self.loc.read_bytes(*self.parts, self._name(idx)))

    def read_many(self, indices, batch: int = 64) -> Iterator[tuple[dict[str, np.ndarray], TileSummary]]:
        """The records of ``indices`` in order, fetched ``batch`` at a time (one concurrent batch of GETs on an
        object store: a national run's ~1,000 records would otherwise pay the store's latency one by one on the
        driver); at most one batch is held in memory."""
        indices = list(indices)
        for s in range(0, len(indices), batch):
            part = indices[s: s + batch]
            for idx, data in zip(part, self.loc.read_many([(*self.parts, self._name(i)) for i in part])):
                yield self._parse(idx, data)

    def _parse(self, idx: tuple[int, int], data: bytes) -> tuple[dict[str, np.ndarray], TileSummary]:
        import io

        with np.load(io.BytesIO(data)) as z:
            arrays = {k: z[k] for k in z.files if k != "summary"}
            return arrays, TileSummary.from_json(str(z["summary"]), f"tile record {self._name(idx)}")

    def clear(self) -> None:
        self.loc.remove(*self.parts)
