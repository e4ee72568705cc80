"""District-heating pipe networks: read, validate, give every segment a stable id."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from heattrack.errors import InputError

log = logging.getLogger(__name__)


# a network file's street or address column, first match wins (OSM tags, utility GIS exports)
STREET_COLUMNS = ("street", "addr:street", "address", "street_name", "name")
# a network file's nominal diameter in mm, first match wins (OSM's `diameter` tag is in mm; DN is the nominal size)
DIAMETER_COLUMNS = ("diameter_mm", "diameter", "diam_mm", "dn", "DN")


#: ``attrs`` key of a network read by :func:`read_pipes` whose ``segment_id`` came as integers
ID_TYPE_ATTR = "segment_id_given_as"

#: the end of every message about a lon/lat pipe file whose coordinates look swapped
LATITUDE_FIRST = ("the file seems written latitude first, but GeoJSON and EPSG:4326 files here are longitude, latitude "
                  "(RFC 7946)")


def _stable_id(geom: shapely.Geometry, decimals: int) -> str:
    """Id from the geometry itself (coordinates rounded to ~1 cm), so it survives reordering of the file."""
    coords = np.round(shapely.get_coordinates(geom), decimals)
    return "seg-" + hashlib.sha1(coords.tobytes()).hexdigest()[:12]


def read_pipes(path: Path) -> gpd.GeoDataFrame:
    """Read a pipe network (GeoJSON in lon/lat per RFC 7946, or GeoPackage/Shapefile in any CRS).

    Returns columns ``segment_id`` (str, unique), ``diameter_mm`` (float, from the first of
    :data:`DIAMETER_COLUMNS`, NaN if unknown), ``street`` (only when
    the file has one of :data:`STREET_COLUMNS`) and line ``geometry`` in the file's CRS. Raises :class:`InputError` for unreadable files, non-line features only,
    a missing CRS, or coordinates that do not fit the declared CRS (metres in a lon/lat file).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"pipes file {path} does not exist")
    try:
        df = gpd.read_file(path)
    except Exception as exc:  # pyogrio DataSourceError and friends
        raise InputError(f"pipes file {path}: cannot read it as a vector file ({str(exc).splitlines()[0]})") from None
    if df.empty:
        raise InputError(f"pipes file {path} has no features")
    if df.crs is None:
        if path.suffix.lower() in (".geojson", ".json"):
            df = df.set_crs("EPSG:4326")
        else:
            raise InputError(f"pipes file {path} declares no CRS")
    geoms = df.geometry.values
    lines = df[np.isin(shapely.get_type_id(geoms), (1, 5)) & ~shapely.is_empty(geoms)].copy()  # (Multi)LineString
    if len(lines) < len(df):
        log.warning("pipes file %s: %d features without a line geometry (points, polygons, empty or null) ignored",
                    path, len(df) - len(lines))
    if lines.empty:
        raise InputError(f"pipes file {path} holds no LineString features")
    if lines.crs.is_geographic:
        x0, y0, x1, y1 = lines.total_bounds
        if -90.0 <= x0 and x1 <= 90.0 and -180.0 <= y0 and y1 <= 180.0 and max(y1, -y0) > 90.0:
            raise InputError(f"pipes file {path}: coordinates ({x0:.2f}..{x1:.2f}, {y0:.2f}..{y1:.2f}) read as "
                             f"longitude, latitude put the latitude beyond 90: {LATITUDE_FIRST}")
        if min(x0, y0) < -180.0 or x1 > 180.0 or max(y1, -y0) > 90.0:
            raise InputError(
                f"pipes file {path}: coordinates ({x0:.0f}..{x1:.0f}, {y0:.0f}..{y1:.0f}) are not lon/lat degrees "
                f"but the file declares {lines.crs.to_string()} (GeoJSON must be lon/lat, RFC 7946); "
                "reproject the file or use a GeoPackage with its real CRS")
    flat = shapely.force_2d(lines.geometry.values)  # heights play no part in the screening: dropped
    merged = shapely.line_merge(flat)
    lines["geometry"] = np.where(shapely.get_type_id(merged) == 1, merged, flat)
    given_as = None
    if "segment_id" in lines.columns and lines["segment_id"].notna().all():
        raw = lines["segment_id"]
        if pd.api.types.is_float_dtype(raw) and np.isfinite(raw).all() and (raw == np.round(raw)).all():
            raw = raw.astype(np.int64)  # whole numbers stored as floats (a DBF's numeric field): 17, not "17.0"
        if pd.api.types.is_integer_dtype(raw):
            given_as = "int64"  # a utility export's numbers: strings here, numbers again in the exports
        ids = raw.astype(str)
        if ids.duplicated().any():
            raise InputError(f"pipes file {path}: duplicate segment_id values, e.g. {ids[ids.duplicated()].iloc[0]!r}")
    else:
        decimals = 7 if lines.crs.is_geographic else 2
        ids = pd.Series([_stable_id(g, decimals) for g in lines.geometry.values], index=lines.index)
        dup = ids.groupby(ids).cumcount()
        ids = ids.where(dup == 0, ids + "-" + dup.astype(str))
    diameter_col = next((c for c in DIAMETER_COLUMNS if c in lines.columns), None)
    diameter = pd.to_numeric(lines[diameter_col], errors="coerce") if diameter_col else np.nan
    cols = {"segment_id": ids.values, "diameter_mm": diameter}
    street = next((c for c in STREET_COLUMNS if c in lines.columns), None)
    if street is not None:  # the field list names the street a crew drives to
        cols["street"] = lines[street].where(lines[street].notna(), None).astype(object).values
    out = gpd.GeoDataFrame(cols, geometry=lines.geometry.values, crs=lines.crs).reset_index(drop=True)
    if given_as is not None:
        out.attrs[ID_TYPE_ATTR] = given_as
    return out


def split_long_segments(pipes: gpd.GeoDataFrame, max_length_m: float) -> gpd.GeoDataFrame:
    """``pipes`` (in a CRS of metres) with every line longer than ``max_length_m`` cut into the fewest equal parts of
    at most that length, each part ``<id>#1``, ``<id>#2``, ... with the line's other columns; unchanged where none is
    longer or ``max_length_m`` is 0. Ids become strings in the exports then (``<id>#k`` is no number). A
    MultiLineString (a feature whose parts do not join) is kept whole."""
    if max_length_m <= 0:
        return pipes
    geoms = pipes.geometry.values
    length = shapely.length(geoms)
    parts = np.where(shapely.get_type_id(geoms) == 1, np.ceil(length / max_length_m - 1e-9), 1).astype(np.int64)
    parts = np.maximum(parts, 1)
    if (parts == 1).all():
        return pipes
    from shapely.ops import substring

    rows = np.repeat(np.arange(len(pipes)), parts)
    k = np.concatenate([np.arange(n) for n in parts])
    cut = [geoms[r] if parts[r] == 1 else substring(geoms[r], j * length[r] / parts[r], (j + 1) * length[r] / parts[r])
           for r, j in zip(rows, k)]
    out = pipes.iloc[rows].reset_index(drop=True)
    ids = out["segment_id"].astype(str).to_numpy(dtype=object)
    out["segment_id"] = np.where(parts[rows] > 1, ids + "#" + (k + 1).astype(str).astype(object), ids)
    out = out.set_geometry(gpd.GeoSeries(cut, crs=pipes.crs))
    out.attrs = {key: v for key, v in pipes.attrs.items() if key != ID_TYPE_ATTR}
    return out


def ids_as_given(table: gpd.GeoDataFrame, pipes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``table`` (segments, hotspots) with its ``segment_id`` back in the type the network file gave: integers where
    it held integers (a GIS joins the outputs to the network on them), else as it is. Ids are strings inside
    heattrack (stable across seasons and sources)."""
    if pipes.attrs.get(ID_TYPE_ATTR) != "int64" or "segment_id" not in table.columns:
        return table
    ids = pd.to_numeric(table["segment_id"], errors="coerce").astype("Int64")  # None (a hotspot off the pipes) stays
    return table.assign(segment_id=ids)
