"""The zarr mosaic and the per-tile completion records of a run.

``mosaic.zarr`` is created up front as a template (metadata only, ``compute=False``); each tile task writes
its own region, which is exactly one chunk of every variable (chunks = tiles), so two tasks never write the
same chunk. After the data, the task writes ``.heattrack/tiles/<ix>_<iy>.npz``: the completion marker, which
also carries the tile's segment-point and hotspot results so a resumed run needs nothing recomputed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr
from odc.geo.geobox import GeoBox
from odc.geo.xr import xr_coords

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


def create_mosaic_template(path: Path, geobox: GeoBox, chunk_px: int, attrs: dict) -> None:
    """Write the metadata of an empty mosaic covering ``geobox`` with square chunks of ``chunk_px``."""
    coords = xr_coords(geobox, crs_coord_name="spatial_ref")
    data_vars = {}
    for name, (dtype, fill, var_attrs) in MOSAIC_VARIABLES.items():
        arr = da.full(geobox.shape.yx, fill, dtype=dtype, chunks=(chunk_px, chunk_px))
        data_vars[name] = xr.DataArray(arr, dims=("y", "x"), attrs={**var_attrs, "grid_mapping": "spatial_ref"})
    ds = xr.Dataset(data_vars, coords=coords, attrs={k: json.dumps(v) if isinstance(v, (dict, list)) else v
                                                     for k, v in attrs.items()})
    encoding = {name: {"chunks": (chunk_px, chunk_px), "_FillValue": fill}
                for name, (_, fill, _) in MOSAIC_VARIABLES.items()}
    ds.to_zarr(path, mode="w", compute=False, encoding=encoding, consolidated=True, zarr_format=2)


def write_tile_region(path: Path, rows: slice, cols: slice, arrays: dict[str, np.ndarray]) -> None:
    """Write one tile's arrays into the mosaic at ``rows, cols`` (must be whole chunks)."""
    group = zarr.open_group(str(path), mode="r+")
    for name, values in arrays.items():
        target = group[name]
        target[rows, cols] = values.astype(target.dtype, copy=False)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class TileRecords:
    """Completion markers + per-tile results under ``<out>/.heattrack/tiles``."""

    def __init__(self, out_dir: Path):
        self.dir = Path(out_dir) / ".heattrack" / "tiles"

    def _path(self, idx: tuple[int, int]) -> Path:
        return self.dir / f"{idx[0]}_{idx[1]}.npz"

    def done(self, idx: tuple[int, int]) -> bool:
        return self._path(idx).exists()

    def write(self, idx: tuple[int, int], arrays: dict[str, np.ndarray], summary: dict) -> None:
        import io

        buf = io.BytesIO()
        np.savez(buf, summary=np.array(json.dumps(summary)), **arrays)
        _atomic_write_bytes(self._path(idx), buf.getvalue())

    def read(self, idx: tuple[int, int]) -> tuple[dict[str, np.ndarray], dict]:
        with np.load(self._path(idx)) as z:
            arrays = {k: z[k] for k in z.files if k != "summary"}
            return arrays, json.loads(str(z["summary"]))

    def clear(self) -> None:
        for p in self.dir.glob("*.npz"):
            p.unlink()
