"""Data of the report's interactive map (Leaflet, vendored): static files that open from ``file://``, any static
web server or an S3 bucket, with no backend.

Browsers refuse ``fetch`` of ``file://`` URLs, so every data file is a small script that hands its JSON to the
page (``HT.add(...)``/``HT.chunk(...)``), loaded with a ``<script>`` tag:

- ``map/data/index.js``: extent, risk-tile pyramid, network chunk index, basemap, layer list;
- ``map/data/top.js``: the best ``report.top_segments`` segments with every popup field (drawn at all zooms);
- ``map/data/net/<x>_<y>.js``: the whole scored network bucketed by web-map tile at ``chunk_zoom`` (a spatial
  index): the page loads only the chunks in view once zoomed in, so a national network pans smoothly;
- ``map/data/hotspots.js``, ``map/data/changes.js`` (``heattrack screen``), ``map/thumbs/<segment>.png``;
- ``map/risk/{z}/{x}/{y}.png``: the risk mosaic as pre-rendered tiles (:mod:`heattrack.report.tiles`).
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import matplotlib
import numpy as np
import shapely
import zarr
from PIL import Image

from heattrack.io.fieldlist import hot_points

ASSETS = Path(__file__).parent / "assets"
CHUNK_MAX_SEGMENTS = 1500
POPUP_FIELDS = ("segment_id", "rank", "risk", "delta_t_k", "n_dates", "diameter_mm", "mdl_k", "change", "street",
                "thumb", "flagged")


def _num(v, nd: int):
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return round(f, nd) if math.isfinite(f) else None


def _props(df: gpd.GeoDataFrame, thumbs: set[str]) -> list[list]:
    """Compact popup records, one per row: [id, rank, risk, delta_t_k, n_dates, diameter_mm, mdl_k, change, street,
    has_thumbnail, flagged (1: at or above the run's flag level)]."""
    n = len(df)

    def col(name: str, nd: int | None) -> list:
        if name not in df:
            return [None] * n
        v = df[name]
        if nd is None:
            return [x if isinstance(x, str) else None for x in v.to_numpy(dtype=object)]
        a = v.to_numpy(dtype=float, na_value=np.nan)
        return [round(float(x), nd) + 0.0 if math.isfinite(x) else None for x in a]  # + 0.0: no "-0.0"

    ids = df["segment_id"].astype(str).tolist()
    rank = [None if r is None else int(r) for r in col("rank", 0)]
    thumb = [1 if i in thumbs else 0 for i in ids]
    flagged = df["flagged"].fillna(False).astype(bool).astype(int).tolist() if "flagged" in df else [0] * n
    return [list(t) for t in zip(ids, rank, col("risk", 4), col("delta_t_k", 3), col("n_dates", 0),
                                 col("diameter_mm", 0), col("mdl_k", 2), col("change", None), col("street", None),
                                 thumb, flagged)]


def _latlon(geoms: np.ndarray, nd: int = 6) -> list[list[list[float]]]:
    """Leaflet polyline coordinates per geometry: one flat [lat, lon, lat, lon, ...] list per part."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    xy, pidx = shapely.get_coordinates(parts, return_index=True)
    flat = np.round(xy[:, ::-1], nd).ravel().tolist()  # one conversion, then list slices per part
    bounds = (2 * np.searchsorted(pidx, np.arange(len(parts) + 1))).tolist()
    out: list[list] = [[] for _ in range(len(geoms))]
    for k, o in enumerate(owner.tolist()):
        out[o].append(flat[bounds[k]:bounds[k + 1]])
    return out


def _script_text(call: str, payload) -> str:
    return f"{call}({json.dumps(payload, separators=(',', ':'), allow_nan=False)});\n"


def _script(path: Path, call: str, payload) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_script_text(call, payload))


def choose_chunk_zoom(lon: np.ndarray, lat: np.ndarray, lo: int = 11, hi: int = 16) -> int:
    """Shallowest zoom (>= ``lo``) at which no web-map tile holds more than CHUNK_MAX_SEGMENTS segments."""
    for z in range(lo, hi + 1):
        keys = _chunk_keys(lon, lat, z)
        if not len(keys) or np.unique(keys, return_counts=True)[1].max() <= CHUNK_MAX_SEGMENTS:
            return z
    return hi


def _chunk_keys(lon: np.ndarray, lat: np.ndarray, z: int) -> np.ndarray:
    n = 2 ** z
    x = np.clip(np.floor((lon + 180.0) / 360.0 * n), 0, n - 1).astype(np.int64)
    lr = np.radians(np.clip(lat, -85.05, 85.05))
    y = np.clip(np.floor((1 - np.log(np.tan(lr) + 1 / np.cos(lr)) / math.pi) / 2 * n), 0, n - 1).astype(np.int64)
    return x * n + y


def network_layer(seg: gpd.GeoDataFrame, top_n: int, thumbs: set[str]) -> tuple[dict[str, str], dict]:
    """The network layer as text: ``data/top.js`` and the per-tile chunks ``data/net/<x>_<y>.js`` (paths relative to
    the map folder) and their index. Needs only the table, so a run builds it on an idle worker
    (:func:`heattrack.report.page.start_report`). ``seg``: any CRS, sorted or not."""
    ll = seg.to_crs("EPSG:4326")
    ll = ll.assign(geometry=shapely.simplify(ll.geometry.values, 1e-6))  # ~0.1 m: drops collinear vertices only
    ok = ll[ll["status"] == "ok"].sort_values("rank")
    top = ok.head(top_n)
    feats = [{"p": p, "c": c} for p, c in zip(_props(top, thumbs), _latlon(top.geometry.values))]
    files = {"data/top.js": _script_text("HT.add", {"name": "top", "fields": list(POPUP_FIELDS), "features": feats})}
    rep = ll.geometry.representative_point()
    lon, lat = rep.x.to_numpy(), rep.y.to_numpy()
    z = choose_chunk_zoom(lon, lat)
    keys = _chunk_keys(lon, lat, z)
    n = 2 ** z
    chunks = {}
    props, coords = _props(ll, thumbs), _latlon(ll.geometry.values)
    status = (ll["status"] == "ok").to_numpy()
    order = np.argsort(keys, kind="stable")
    starts = np.searchsorted(keys[order], np.unique(keys))
    for key, idx in zip(np.unique(keys), np.split(order, starts[1:])):
        name = f"{key // n}_{key % n}"
        data = [{"p": props[i], "c": coords[i], "s": int(status[i])} for i in idx]
        files[f"data/net/{name}.js"] = _script_text("HT.chunk", {"key": name, "features": data})
        chunks[name] = int(idx.size)
    return files, {"chunk_zoom": z, "chunks": chunks, "n_segments": int(len(seg)), "n_top": int(len(top))}


def write_layer(map_dir: Path, layer: tuple[dict[str, str], dict]) -> dict:
    """The files of a :func:`network_layer` under ``map_dir`` (built here or on a worker); returns its index."""
    files, index = layer
    for rel, text in files.items():
        path = map_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return index


def write_network(map_dir: Path, seg: gpd.GeoDataFrame, top_n: int, thumbs: set[str]) -> dict:
    """``top.js`` and the per-tile network chunks under ``map_dir``; returns their index."""
    return write_layer(map_dir, network_layer(seg, top_n, thumbs))


def write_points(map_dir: Path, name: str, gdf: gpd.GeoDataFrame | None, limit: int = 5000) -> int:
    """Hotspots (or any points) as ``[lat, lon, delta_t_k, risk, id]`` rows, the ``limit`` hottest."""
    if gdf is None or not len(gdf):
        rows: list = []
    else:
        g = gdf.to_crs("EPSG:4326").head(limit)
        rows = [[round(p.y, 6), round(p.x, 6), _num(r.get("delta_t_k"), 3), _num(r.get("peak_risk"), 4),
                 str(r.get("hotspot_id", ""))] for p, (_, r) in zip(g.geometry.values, g.iterrows())]
    _script(map_dir / "data" / f"{name}.js", "HT.add", {"name": name, "rows": rows})
    return len(rows)


def write_changes(map_dir: Path, changes: gpd.GeoDataFrame | None) -> int:
    """Segments and hotspots classed new / persistent / resolved by ``heattrack screen``."""
    feats = []
    if changes is not None and len(changes):
        for _, r in changes.to_crs("EPSG:4326").iterrows():
            g = r.geometry
            if g is None:
                continue
            coords = [[round(g.y, 6), round(g.x, 6)]] if g.geom_type == "Point" else _latlon(np.array([g]))[0]
            feats.append({"kind": r.get("kind"), "id": str(r.get("id")), "change": r.get("change"),
                          "risk": _num(r.get("risk"), 4), "c": coords})
    _script(map_dir / "data" / "changes.js", "HT.add", {"name": "changes", "features": feats})
    return len(feats)


def _thumbnail_rows(seg: gpd.GeoDataFrame, n: int) -> gpd.GeoDataFrame:
    return seg[seg["status"] == "ok"].sort_values("rank", kind="stable").head(max(n, 0))


def thumbnail_ids(seg: gpd.GeoDataFrame, n: int) -> list[str]:
    """The segments that get a thumbnail: the ``n`` best-ranked ones with data."""
    return _thumbnail_rows(seg, n)["segment_id"].astype(str).tolist()


def thumbnail_pngs(mosaic: str | Path, seg: gpd.GeoDataFrame, n: int, half_px: int = 24) -> dict[str, bytes]:
    """``thumbs/<segment_id>.png`` (relative to the map folder) -> PNG: LST (left) and anomaly (right), 480 m around
    the hottest point of each of the :func:`thumbnail_ids`, grey where the mosaic has no data. ``seg`` in the grid
    CRS (the mosaic's). Drawn with the report's figures (:mod:`heattrack.report.figure_job`), on a worker in a run."""
    top = _thumbnail_rows(seg, n)
    if not len(top):
        return {}
    ids = top["segment_id"].astype(str).tolist()
    g = zarr.open_group(str(mosaic), mode="r")
    x, y = np.asarray(g["x"][:]), np.asarray(g["y"][:])
    hot = hot_points(top).to_crs(seg.crs)
    hx, hy = hot.x.to_numpy(), hot.y.to_numpy()
    inferno, rdbu = matplotlib.colormaps["inferno"], matplotlib.colormaps["RdBu_r"]
    lst_arr, anom_arr = g["lst_10m"], g["anomaly_k"]

    def read(point: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        c = int(np.clip(np.searchsorted(x, point[0]), half_px, max(half_px, x.size - half_px)))
        r = int(np.clip(np.searchsorted(-y, -point[1]), half_px, max(half_px, y.size - half_px)))
        win = (slice(r - half_px, r + half_px), slice(c - half_px, c + half_px))
        return np.asarray(lst_arr[win], dtype=float), np.asarray(anom_arr[win], dtype=float)

    # each window decompresses a whole mosaic chunk (~4 ms): read them on a few threads (the codecs release the GIL)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2) * 2) as pool:
        windows = list(pool.map(read, zip(hx, hy)))
    out = {}
    for sid, (lst, anom) in zip(ids, windows):
        lo, hi = np.nanpercentile(lst, [2, 98]) if np.isfinite(lst).any() else (0.0, 1.0)
        a = inferno(np.clip((lst - lo) / max(hi - lo, 1e-6), 0, 1))
        b = rdbu(np.clip((anom + 3.0) / 6.0, 0, 1))
        img = np.concatenate([a, np.ones((a.shape[0], 2, 4)), b], axis=1)
        img[~np.isfinite(np.concatenate([lst, np.ones((lst.shape[0], 2)), anom], axis=1))] = (0.8, 0.8, 0.8, 1)
        buf = io.BytesIO()
        Image.fromarray((img * 255).astype(np.uint8), "RGBA").resize(
            (img.shape[1] * 3, img.shape[0] * 3), Image.NEAREST).save(buf, format="PNG")
        out[f"thumbs/{sid}.png"] = buf.getvalue()
    return out


def copy_assets(map_dir: Path) -> None:
    """Leaflet (BSD-2, vendored with its licence) and heattrack's map script next to the data."""
    for name in ("leaflet", "heattrack-map.js", "heattrack-map.css"):
        src, dst = ASSETS / name, map_dir / name
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copyfile(src, dst)


def write_index(map_dir: Path, meta: dict) -> None:
    _script(map_dir / "data" / "index.js", "HT.add", {"name": "index", **meta})
