"""HTML report of a run: risk map with pipes, top-20 segments, score histogram, LST before/after sharpening.

Reads only finished outputs (COG overviews for the maps, so it stays cheap at national scale), writes
``report/index.html`` and its PNGs into the given folder.
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import geopandas as gpd
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import rasterio  # noqa: E402
import zarr  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from heattrack.errors import InputError  # noqa: E402

MAX_MAP_PX = 1400


def _read_overview(path: Path) -> tuple[np.ndarray, tuple[float, float, float, float], str]:
    with rasterio.open(path) as src:
        step = max(1, int(np.ceil(max(src.width, src.height) / MAX_MAP_PX)))
        arr = src.read(1, out_shape=(max(1, src.height // step), max(1, src.width // step)),
                       masked=True).astype("float32").filled(np.nan)
        b = src.bounds
        return arr, (b.left, b.right, b.bottom, b.top), src.crs.to_wkt()


def _segments_in(folder: Path, crs_wkt: str) -> gpd.GeoDataFrame:
    gpkg = folder / "segments.gpkg"
    seg = gpd.read_file(gpkg) if gpkg.exists() else gpd.read_file(folder / "segments.geojson")
    return seg.to_crs(crs_wkt)


def _lines(seg: gpd.GeoDataFrame) -> list[np.ndarray]:
    import shapely

    out = []
    for g in seg.geometry.values:
        parts = g.geoms if g.geom_type == "MultiLineString" else [g]
        out.extend(np.asarray(shapely.get_coordinates(p)) for p in parts)
    return out


def _risk_map(risk: np.ndarray, extent: tuple, seg: gpd.GeoDataFrame, dest: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 8), dpi=110)
    im = ax.imshow(risk, extent=extent, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    ok = seg[seg["status"] == "ok"]
    lc = LineCollection(_lines(ok), cmap="viridis", linewidths=0.8, alpha=0.9)
    lc.set_array(np.repeat(ok["risk"].to_numpy(dtype=float),
                           [len(g.geoms) if g.geom_type == "MultiLineString" else 1 for g in ok.geometry.values]))
    lc.set_clim(0, 1)
    ax.add_collection(lc)
    top = ok.nsmallest(20, "rank")
    ax.add_collection(LineCollection(_lines(top), colors="cyan", linewidths=2.5))
    nd = seg[seg["status"] != "ok"]
    if len(nd):
        ax.add_collection(LineCollection(_lines(nd), colors="0.6", linewidths=0.6, linestyles="dotted"))
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_title("Pixel risk (0-1) with pipe segments coloured by segment risk; top 20 in cyan")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    fig.colorbar(im, ax=ax, shrink=0.7, label="pixel risk")
    fig.tight_layout()
    fig.savefig(dest)
    plt.close(fig)


def _histogram(seg: gpd.GeoDataFrame, risk: np.ndarray, dest: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)
    r = seg["risk"].dropna().to_numpy(dtype=float)
    axes[0].hist(r, bins=40, range=(0, 1), color="tab:red")
    axes[0].set_title(f"Segment risk ({r.size} segments with data)")
    axes[0].set_xlabel("risk")
    axes[0].set_yscale("log")
    pr = risk[np.isfinite(risk)]
    axes[1].hist(pr, bins=50, range=(0, 1), color="tab:blue")
    axes[1].set_yscale("log")
    axes[1].set_title("Pixel risk (map overview)")
    axes[1].set_xlabel("risk")
    fig.tight_layout()
    fig.savefig(dest)
    plt.close(fig)


def _before_after(mosaic: Path, seg: gpd.GeoDataFrame, window: tuple[slice, slice], dest: Path) -> None:
    g = zarr.open_group(str(mosaic), mode="r")
    x = np.asarray(g["x"][:])
    y = np.asarray(g["y"][:])
    rows, cols = window
    ok = seg[seg["status"] == "ok"]
    if len(ok):
        c = ok.nsmallest(1, "rank").geometry.values[0].centroid
        rc = int(np.clip(np.searchsorted(-y, -c.y), rows.start, rows.stop - 1))
        cc = int(np.clip(np.searchsorted(x, c.x), cols.start, cols.stop - 1))
    else:
        rc, cc = (rows.start + rows.stop) // 2, (cols.start + cols.stop) // 2
    half = 100  # 2 km x 2 km crop
    r0 = int(np.clip(rc - half, rows.start, max(rows.start, rows.stop - 2 * half)))
    c0 = int(np.clip(cc - half, cols.start, max(cols.start, cols.stop - 2 * half)))
    r1, c1 = min(rows.stop, r0 + 2 * half), min(cols.stop, c0 + 2 * half)
    plain = np.asarray(g["lst_plain"][r0:r1, c0:c1])
    sharp = np.asarray(g["lst_10m"][r0:r1, c0:c1])
    anom = np.asarray(g["anomaly_k"][r0:r1, c0:c1])
    ext = (x[c0] - 5, x[c1 - 1] + 5, y[r1 - 1] - 5, y[r0] + 5)
    both = np.concatenate([plain[np.isfinite(plain)], sharp[np.isfinite(sharp)]])
    lo, hi = (np.percentile(both, [2, 98]) if both.size else (270, 280))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.6), dpi=110)
    for ax, a, title, kw in ((axes[0], plain, "LST, bilinear from ~100 m (K)", dict(cmap="inferno", vmin=lo, vmax=hi)),
                             (axes[1], sharp, "LST sharpened to 10 m (K)", dict(cmap="inferno", vmin=lo, vmax=hi)),
                             (axes[2], anom, "anomaly over local background (K)", dict(cmap="RdBu_r", vmin=-3, vmax=3))):
        im = ax.imshow(a, extent=ext, interpolation="nearest", **kw)
        ax.add_collection(LineCollection(_lines(seg.cx[ext[0]:ext[1], ext[2]:ext[3]]), colors="cyan", linewidths=0.7))
        ax.set_xlim(ext[0], ext[1])
        ax.set_ylim(ext[2], ext[3])
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle("2 km crop around the top-ranked segment (pipes in cyan)")
    fig.tight_layout()
    fig.savefig(dest)
    plt.close(fig)


def _table(seg: gpd.GeoDataFrame) -> str:
    cols = ["rank", "segment_id", "risk", "delta_t_k", "n_clear_px", "length_m", "diameter_mm"]
    top = seg[seg["status"] == "ok"].nsmallest(20, "rank")
    head = "".join(f"<th>{c}</th>" for c in cols)
    def fmt(v) -> str:
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r[c]))}</td>" for c in cols if c in r) + "</tr>"
                   for _, r in top.iterrows())
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def build_report(mosaic: Path, folder: Path, run_info: dict, aoi_window: tuple[slice, slice]) -> Path:
    """Write ``folder/report/index.html`` (+ PNGs) from the exports in ``folder`` and the mosaic."""
    folder = Path(folder)
    for need in ("risk_10m.tif", "segments.geojson"):
        if not (folder / need).exists():
            raise InputError(f"{folder} has no {need}: not a finished heattrack output folder")
    tmp = folder / "report.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    risk, extent, crs_wkt = _read_overview(folder / "risk_10m.tif")
    seg = _segments_in(folder, crs_wkt)
    _risk_map(risk, extent, seg, tmp / "risk_map.png")
    _histogram(seg, risk, tmp / "score_histogram.png")
    _before_after(Path(mosaic), seg, aoi_window, tmp / "lst_before_after.png")
    warn = "".join(f"<p class='warn'>&#9888; {html.escape(w)}</p>" for w in run_info.get("warnings", []))
    inputs = run_info.get("inputs", {})
    n_ok = int((seg["status"] == "ok").sum())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>heattrack report</title>
<style>body{{font-family:sans-serif;max-width:1150px;margin:auto;padding:1em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
.warn{{background:#fff3cd;padding:.5em}} img{{max-width:100%}} code{{background:#eee}}</style></head>
<body>
<h1>heattrack leak screening report</h1>
{warn}
<p>Landsat product <code>{html.escape(str(inputs.get('landsat_product')))}</code> ({inputs.get('landsat_date')}),
Sentinel-2 {inputs.get('sentinel2_date')} (gap {inputs.get('date_gap_days')} days).
Grid {html.escape(str(run_info.get('grid', {}).get('crs')))}, {run_info.get('grid', {}).get('n_tiles')} tiles,
clear fraction {run_info.get('valid_fraction', 0):.1%}. Segments: {len(seg)} ({n_ok} with data,
{len(seg) - n_ok} no_data). Hotspots: {run_info.get('hotspots')}. Config hash
<code>{run_info.get('processing_hash')}</code>, heattrack {run_info.get('heattrack_version')}.</p>
<p><b>Reading the numbers.</b> Landsat's thermal band carries ~100 m information; a 30 m leak plume is
diluted about tenfold in it, so risk ranks where to look first, it does not prove a leak.</p>
<h2>Risk map</h2><img src="risk_map.png" alt="risk map with pipes">
<h2>Top 20 segments</h2>{_table(seg)}
<h2>Score distributions</h2><img src="score_histogram.png" alt="score histograms">
<h2>LST before and after sharpening</h2><img src="lst_before_after.png" alt="LST before and after sharpening">
</body></html>
"""
    (tmp / "index.html").write_text(page)
    dest = folder / "report"
    shutil.rmtree(dest, ignore_errors=True)
    tmp.replace(dest)
    (dest / "run_info.json").write_text(json.dumps(run_info, default=str, indent=1)[:200000])
    return dest / "index.html"
