"""The crews' list: ``top_segments.csv`` (+ ``.csvt`` column types for QGIS/GDAL) and ``top_segments.gpx``
(waypoints for a handheld GPS or a phone map app), one row per top-ranked segment at its hottest point."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import geopandas as gpd
import numpy as np
import pandas as pd

GPX_NS = "http://www.topografix.com/GPX/1/1"
HT_NS = "https://github.com/heattrack/heattrack/gpx/1"
# column -> type in the CSVT sidecar (GDAL's CSV driver and QGIS read it; CoordX/CoordY make the points)
FIELDS = {"rank": "Integer", "segment_id": "String", "risk": "Real", "stat_k": "Real", "flagged": "Integer(Boolean)",
          "delta_t_k": "Real", "n_dates": "Integer", "diameter_mm": "Real", "street": "String", "change": "String",
          "lon": "CoordX", "lat": "CoordY", "osm_url": "String", "geo_uri": "String", "map_url": "String"}


def hot_points(seg: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """Where a crew starts looking on each segment, in lon/lat: the sample point with the strongest evidence
    (``hot_lon``/``hot_lat`` of the reduction), else the point halfway along the segment."""
    mid = seg.geometry.interpolate(0.5, normalized=True).to_crs("EPSG:4326")
    lon = seg["hot_lon"].to_numpy(float) if "hot_lon" in seg else np.full(len(seg), np.nan)
    lat = seg["hot_lat"].to_numpy(float) if "hot_lat" in seg else np.full(len(seg), np.nan)
    ok = np.isfinite(lon) & np.isfinite(lat)
    return gpd.GeoSeries(gpd.points_from_xy(np.where(ok, lon, mid.x.to_numpy()), np.where(ok, lat, mid.y.to_numpy())),
                         index=seg.index, crs="EPSG:4326")


def field_list(seg: gpd.GeoDataFrame, n: int, map_page: str = "report/index.html") -> pd.DataFrame:
    """The ``n`` best-ranked segments with data, one row each, at its :func:`hot_points`."""
    ok = seg[(seg["status"] == "ok") & seg["rank"].notna()].sort_values("rank").head(n)
    pts = hot_points(ok)
    lon, lat = np.round(pts.x.to_numpy(), 6), np.round(pts.y.to_numpy(), 6)
    out = pd.DataFrame({"rank": ok["rank"].astype(int).to_numpy(), "segment_id": ok["segment_id"].astype(str).to_numpy()})
    # flagged: 1 / 0, at or above the run's flag level (a statistic ranking); empty otherwise
    cells = ok.assign(flagged=ok["flagged"].astype(bool).astype(int)) if "flagged" in ok else ok
    for col in ("risk", "stat_k", "flagged", "delta_t_k", "n_dates", "diameter_mm", "street", "change"):
        out[col] = cells[col].to_numpy() if col in cells else None
    out["lon"], out["lat"] = lon, lat
    out["osm_url"] = [f"https://www.openstreetmap.org/?mlat={a:.6f}&mlon={o:.6f}#map=19/{a:.6f}/{o:.6f}"
                      for o, a in zip(lon, lat)]
    out["geo_uri"] = [f"geo:{a:.6f},{o:.6f}" for o, a in zip(lon, lat)]
    out["map_url"] = [f"{map_page}#segment={quote(s, safe='')}" for s in out["segment_id"]]  # the map decodes it
    return out


def write_field_list(seg: gpd.GeoDataFrame, folder: Path, n: int, title: str = "heattrack top segments") -> list[Path]:
    """Write ``top_segments.csv``, ``top_segments.csvt`` and ``top_segments.gpx`` into ``folder``."""
    rows = field_list(seg, n)
    folder = Path(folder)
    csv = folder / "top_segments.csv"
    rows.to_csv(csv, index=False, lineterminator="\n")
    (folder / "top_segments.csvt").write_text(",".join(f'"{FIELDS[c]}"' for c in rows.columns) + "\n")
    gpx = folder / "top_segments.gpx"
    gpx_document(rows, title).write(gpx, encoding="UTF-8", xml_declaration=True)
    return [csv, folder / "top_segments.csvt", gpx]


def _text(v) -> str | None:
    if v is None or (isinstance(v, float) and not math.isfinite(v)) or v is pd.NA:
        return None
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4g}"
    return str(v)


def gpx_document(rows: pd.DataFrame, title: str) -> ET.ElementTree:
    """GPX 1.1 waypoints, children in the order the GPX 1.1 schema prescribes (name, cmt, desc, link, sym, type,
    extensions); heattrack's columns go into ``<extensions>`` in their own namespace."""
    ET.register_namespace("", GPX_NS)
    ET.register_namespace("heattrack", HT_NS)
    q = lambda tag: f"{{{GPX_NS}}}{tag}"  # noqa: E731
    root = ET.Element(q("gpx"), {"version": "1.1", "creator": "heattrack"})
    meta = ET.SubElement(root, q("metadata"))
    ET.SubElement(meta, q("name")).text = title
    ET.SubElement(meta, q("desc")).text = ("District-heating segments ranked by leak evidence; each waypoint is the "
                                          "hottest point on the segment. A rank says where to look first, not a leak.")
    ET.SubElement(meta, q("time")).text = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    if len(rows):
        ET.SubElement(meta, q("bounds"), {"minlat": f"{rows['lat'].min():.6f}", "minlon": f"{rows['lon'].min():.6f}",
                                          "maxlat": f"{rows['lat'].max():.6f}", "maxlon": f"{rows['lon'].max():.6f}"})
    for r in rows.itertuples(index=False):
        wpt = ET.SubElement(root, q("wpt"), {"lat": f"{r.lat:.6f}", "lon": f"{r.lon:.6f}"})
        ET.SubElement(wpt, q("name")).text = f"#{r.rank} {r.segment_id}"
        street = _text(r.street)
        ET.SubElement(wpt, q("cmt")).text = street or f"segment {r.segment_id}"
        parts = [f"risk {_text(r.risk)}", f"excess {_text(r.delta_t_k)} K"]
        if _text(r.change):
            parts.append(f"change {r.change}")
        ET.SubElement(wpt, q("desc")).text = ", ".join(p for p in parts if "None" not in p)
        link = ET.SubElement(wpt, q("link"), {"href": r.osm_url})
        ET.SubElement(link, q("text")).text = "OpenStreetMap"
        ET.SubElement(wpt, q("sym")).text = "Flag, Red" if r.rank <= 10 else "Flag, Blue"
        ET.SubElement(wpt, q("type")).text = "heattrack segment"
        ext = ET.SubElement(wpt, q("extensions"))
        for col in ("rank", "segment_id", "risk", "stat_k", "flagged", "delta_t_k", "n_dates", "diameter_mm", "street",
                    "change"):
            v = _text(getattr(r, col))
            if v is not None:
                ET.SubElement(ext, f"{{{HT_NS}}}{col}").text = v
    ET.indent(root)
    return ET.ElementTree(root)
