"""The report page ``report/index.html``: the interactive map first (Leaflet, vendored; data from
:mod:`heattrack.report.webmap`), the field list with links into the map, then the figures, each with a caption.

Reads only finished outputs (COG overviews, the exports, the mosaic for small crops), so it stays cheap at
national scale; writes into ``report.tmp`` and swaps it in, so a failed rebuild leaves the old report.
"""

from __future__ import annotations

import html
import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import geopandas as gpd
import numpy as np
import rasterio

from heattrack.config import ReportConfig
from heattrack.errors import InputError
from heattrack.io.landsat_st import LANDSAT_ST_PSF_M, LANDSAT_ST_SENSORS
from heattrack.io.records import ChangeSummary, GridInfo, RunRecord
from heattrack.kernels.ranking import box_sigma, plume_attenuation
from heattrack.orchestration.reduce import PARTLY_SEEN_SHARE, partly_seen
from heattrack.report import figures as fg
from heattrack.report import webmap
from heattrack.report.figure_job import FIGURE_GROUPS, FigureInputs, draw_figures, figure_html, merge_figures
from heattrack.report.tiles import render_tiles

CSS = """body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
.warn{background:#fff3cd;padding:.5em} img{max-width:100%} code{background:#eee}
figure{margin:1em 0}figcaption{color:#444;font-size:14px;margin-top:.2em}"""


def _dates_table(run_info: RunRecord) -> str:
    dates = run_info.inputs.get("dates", [])
    if len(dates) < 2:
        return ""
    alone = "none (the Landsat scene's own bands)"
    rows = "".join(f"<tr><td>{html.escape(str(d.get('landsat_date')))}</td><td>"
                   f"{html.escape(str(d.get('sentinel2_date') or alone))}"
                   f"</td><td>{html.escape(str(d.get('landsat_product')))}</td></tr>" for d in dates)
    return ("<h2>Dates (multi-date run)</h2><p>Pixel risk and segment risk are the mean over the dates with clear "
            "data: a leak persists, noise and transient hot spots do not. Per-date segment risk is in the "
            "<code>risk_&lt;date&gt;</code> columns below and in segments.geojson.</p>"
            f"<table><thead><tr><th>Landsat</th><th>Sentinel-2</th><th>product</th></tr></thead><tbody>{rows}"
            "</tbody></table>")


def _table(seg: gpd.GeoDataFrame, n: int = 20) -> str:
    """The top ``n`` segments; each id links to the segment on the map, each point to OpenStreetMap."""
    stat = [c for c in ("z", "stat_k") if c in seg.columns]  # the ranking statistic, when the run has one
    cols = ["rank", "segment_id", *stat, "risk", *[c for c in seg.columns if c.startswith("risk_")], "n_dates",
            "delta_t_k", "length_m", "diameter_mm", *(["street"] if "street" in seg.columns else [])]
    top = seg[seg["status"] == "ok"].nsmallest(n, "rank")
    head = "".join(f"<th>{c}</th>" for c in cols) + "<th>hottest point (lat, lon)</th>"

    def fmt(v) -> str:
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return ""
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    body = []
    for _, r in top.iterrows():
        cells = []
        for c in cols:
            v = html.escape(fmt(r.get(c)))
            # the id URL-encoded in the link (the map decodes it): a part's ``<id>#2``, a user's id with spaces
            link = html.escape(quote(fmt(r.get(c)), safe=""))
            cells.append(f"<td><a href='#segment={link}'>{v}</a></td>" if c == "segment_id" else f"<td>{v}</td>")
        lat, lon = r.get("hot_lat"), r.get("hot_lon")
        if lat is not None and np.isfinite(lat):
            cells.append(f"<td><a href='https://www.openstreetmap.org/?mlat={lat:.6f}&amp;mlon={lon:.6f}#map=19/"
                         f"{lat:.6f}/{lon:.6f}'>{lat:.6f}, {lon:.6f}</a></td>")
        else:
            cells.append("<td></td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table id='top-table'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _with_change_class(seg: gpd.GeoDataFrame, changes: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    if changes is None or not len(changes) or "change" in seg.columns:
        return seg
    cls = changes[changes["kind"] == "segment"].set_index("id")["change"]
    return seg.assign(change=seg["segment_id"].map(cls))


class Submit(Protocol):
    """Where a run's report jobs go (:class:`heattrack.orchestration.report_helper.ReportHelper`): ``submit(fn,
    *args)`` -> an object whose ``result()`` is ``fn(*args)``; ``workers``: how many jobs run side by side (from 2 the
    figures go as three groups and the map's network layer with them, else the figures as one job)."""

    workers: int

    def __call__(self, fn: Callable, *args) -> Any: ...


def risk_raster(folder: Path) -> Path:
    """The risk raster the report draws: the single 10 m COG where the run wrote one, else the coarse view
    (``risk_overview.tif``, every run since the per-tile COG parts)."""
    single = folder / "risk_10m.tif"
    return single if single.exists() else folder / "risk_overview.tif"


def _network_layer(seg: gpd.GeoDataFrame, cfg: ReportConfig) -> tuple[dict[str, str], dict]:
    """The map's network layer (:func:`heattrack.report.webmap.network_layer`) with the run's top and the segments
    whose thumbnails the figures draw (figure_job)."""
    return webmap.network_layer(seg, cfg.top_segments, set(webmap.thumbnail_ids(seg, cfg.thumbnails)))


def write_map(report_dir: Path, folder: Path, mosaic: str | Path, seg: gpd.GeoDataFrame, changes,
              resolution_m: float, cfg: ReportConfig, network_job=None) -> dict:
    """Everything under ``report_dir/map``; returns the index the page reads (also in ``map/data/index.js``).
    ``network_job``: ``submit``'s answer for :func:`heattrack.report.webmap.network_layer` (else built here)."""
    map_dir = report_dir / "map"
    webmap.copy_assets(map_dir)
    network = webmap.write_layer(map_dir, network_job.result() if network_job is not None else
                                 _network_layer(seg, cfg))
    hot = gpd.read_file(folder / "hotspots.geojson") if (folder / "hotspots.geojson").exists() else None
    n_hot = webmap.write_points(map_dir, "hotspots", hot)
    n_changes = webmap.write_changes(map_dir, changes)
    raster = risk_raster(folder)
    if raster.name != "risk_10m.tif":  # a national run: the map's risk layer is the coarse view (thermal pixel)
        with rasterio.open(raster) as src:
            resolution_m = src.res[0]
    tiles = render_tiles(raster, map_dir / "risk", resolution_m=resolution_m, max_zoom=cfg.max_zoom,
                         max_tiles=cfg.max_tiles, workers=os.cpu_count() or 2)
    meta = {"bounds": list(tiles.bounds), "risk_tiles": tiles.as_json(), "network": network,
            "basemap": {"url": cfg.basemap_url, "attribution": cfg.basemap_attribution},
            "has_mdl": "mdl_k" in seg.columns, "n_hotspots": n_hot, "n_changes": n_changes}
    webmap.write_index(map_dir, meta)
    return meta


def build_report(mosaic: str | Path, folder: Path, run_info: RunRecord, aoi_window: tuple[slice, slice],
                 ae_examples: dict | None = None, truth: dict | None = None,
                 changes: gpd.GeoDataFrame | None = None, report_cfg: ReportConfig | None = None,
                 segments: gpd.GeoDataFrame | None = None, submit: Submit | None = None) -> Path:
    """Write ``folder/report/index.html`` (map, PNGs, map data) from the exports in ``folder`` and the mosaic.

    ``ae_examples``: autoencoder patches (``ae_in``, ``ae_rec``, ``ae_risk``) for the reconstruction figure, kept
    as ``report/ae_examples.npz`` for a rebuild; ``truth``: ``{"leaks": GeoDataFrame}`` of a simulated scene for
    the truth section; ``changes``: the rows of ``changes.geojson`` (``heattrack screen``); ``segments``: the rows of
    ``segments.gpkg`` where the caller holds them (a run), else read from ``folder``. ``submit``: where the figures
    and the map's network layer are made (a run: on Dask workers while this process writes the map, :class:`Submit`);
    by default here."""
    folder = Path(folder)
    if not (folder / "segments.geojson").exists():
        raise InputError(f"{folder} has no segments.geojson: not a finished heattrack output folder")
    return finish_report(start_report(mosaic, folder, run_info, aoi_window, ae_examples, truth, changes, report_cfg,
                                      segments, submit))


REPORT_TMP = "report.tmp"  # the report being written, beside the finished one


@dataclass(frozen=True)
class StartedReport:
    """A report whose figures are on their way (:func:`start_report`); :func:`finish_report` writes the rest."""

    folder: Path  # the report is written into ``folder/report.tmp`` and swapped in
    run_info: RunRecord
    cfg: ReportConfig
    inputs: FigureInputs  # the segments, changes and mosaic the map reads too
    #: ``submit``'s answers: one per group of figures (``result()``: the DrawnFigures), then the map's network layer;
    #: empty: both made in finish_report
    jobs: tuple = ()


def start_report(mosaic: str | Path, folder: Path, run_info: RunRecord, aoi_window: tuple[slice, slice],
                 ae_examples: dict | None = None, truth: dict | None = None,
                 changes: gpd.GeoDataFrame | None = None, report_cfg: ReportConfig | None = None,
                 segments: gpd.GeoDataFrame | None = None, submit: Submit | None = None) -> StartedReport:
    """The first half of :func:`build_report` (same arguments): reads the risk view and hands the figures to
    ``submit``, so that a run writes its exports while they are drawn; needs only the rasters in ``folder``."""
    folder = Path(folder)
    cfg = report_cfg or ReportConfig()
    if not risk_raster(folder).exists():
        raise InputError(f"{folder} has no risk raster: not a finished heattrack output folder")
    tmp = folder / REPORT_TMP
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    risk, extent, crs_wkt = fg._read_overview(risk_raster(folder))
    seg = _with_change_class(fg._segments_in(folder, crs_wkt, segments), changes)
    mdl_raster = folder / "mdl_k_overview.tif"
    inputs = FigureInputs(
        risk=risk, extent=extent, seg=seg, mosaic=str(mosaic), aoi_window=aoi_window,
        detectability=run_info.detectability,
        mdl_view=fg._read_overview(mdl_raster)[:2] if run_info.detectability and mdl_raster.exists() else None,
        changes=changes, previous=str((run_info.previous and run_info.previous.season) or "the previous season"),
        change_summary=ChangeSummary.load(folder / "changes.json")
        if changes is not None and (folder / "changes.json").exists() else None,
        ae_examples=ae_examples, truth=truth, thumbnails=cfg.thumbnails)
    jobs: tuple = ()
    if submit is not None and submit.workers > 1:  # the network layer first (the longest job), then the groups
        # of figures: with two workers the four jobs fall two to each (dealt out in turn), from four one to each
        network = submit(_network_layer, seg, cfg)
        jobs = (*(submit(draw_figures, inputs, (g,)) for g in FIGURE_GROUPS), network)
    elif submit is not None:  # one worker: the figures, while this process writes the exports and the map
        jobs = (submit(draw_figures, inputs), None)
    return StartedReport(folder, run_info, cfg, inputs, jobs)


def finish_report(r: StartedReport) -> Path:
    """The map (reads ``hotspots.geojson`` from the folder), the figures' bytes, the page; swaps the report in."""
    folder, run_info, seg = r.folder, r.run_info, r.inputs.seg
    tmp = folder / REPORT_TMP
    *figures, network = r.jobs or (None,)
    meta = write_map(tmp, folder, r.inputs.mosaic, seg, r.inputs.changes,
                     run_info.grid.resolution_m if run_info.grid else 10.0, r.cfg, network)
    drawn = merge_figures([j.result() for j in figures]) if figures else draw_figures(r.inputs)
    for name, data in drawn.pngs.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)  # the map's thumbnails: map/thumbs/
        (tmp / name).write_bytes(data)
    if "ae_examples.png" in drawn.pngs:
        np.savez(tmp / "ae_examples.npz", **r.inputs.ae_examples)
    extra = drawn.head_html + _dates_table(run_info) + drawn.tail_html
    (tmp / "index.html").write_text(_page(run_info, seg, meta, folder, extra))
    write_map_page(tmp)
    (tmp / "run_info.json").write_text(run_info.to_json())
    dest = folder / "report"
    old = folder / "report.old"
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.replace(old)
    tmp.replace(dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest / "index.html"


def _source_lines(inputs: dict) -> tuple[str, str]:
    """What was screened, and how to read the ranking for that sensor (HTML)."""
    dates = inputs.get("dates") or [inputs]
    if inputs.get("source") == "mixed":
        names = ", ".join(f"{html.escape(str(d.get('sensor') or 'Landsat'))} {d.get('landsat_date')}" for d in dates)
        return (f"Mixed winter: {len(dates)} dates ({names}), each ranked its own way and combined per segment by its "
                "detectability (stat_k in K of a 20 m plume's peak).",
                "The sharper dates (thermal rasters) carry most of the weight; Landsat dates add coverage where they "
                "are clouded. The rank says where to look first, it does not prove a leak.")
    sensor = inputs.get("sensor")
    if sensor in ("thermal raster", "ECOSTRESS"):
        what = "ECOSTRESS pass" if sensor == "ECOSTRESS" else "Thermal raster"
        when = f"{inputs.get('landsat_date')}" + (f", {inputs.get('solar_hour')} h local solar time"
                                                  if inputs.get("solar_hour") is not None else "")
        return (f"{what} <code>{html.escape(str(inputs.get('landsat_product')))}</code> ({when}, "
                f"{inputs.get('psf_m')} m effective resolution, not sharpened)"
                + (f" and {len(dates) - 1} more date(s)" if len(dates) > 1 else "") + ".",
                "A thermal raster resolves a leak plume as far as its footprint allows (ECOSTRESS: 70 m, a 20 m "
                "plume keeps about a seventh of its peak); the rank says where to look first, it does not prove a "
                "leak (warm vents, roads and buildings near pipes rank too).")
    if sensor in LANDSAT_ST_SENSORS:
        psf = float(inputs.get("psf_m") or LANDSAT_ST_PSF_M)
        keeps = plume_attenuation(box_sigma(psf))  # a 20 m plume's peak through the footprint (a box of psf)
        return (f"{html.escape(sensor.removesuffix(' (no optics)'))} band "
                f"<code>{html.escape(str(inputs.get('landsat_product')))}</code> "
                f"({inputs.get('landsat_date')}, {psf:g} m effective resolution, no optics: not "
                "sharpened)" + (f" and {len(dates) - 1} more date(s)" if len(dates) > 1 else "") + ".",
                f"This thermal band carries ~{psf:.0f} m information; a 20 m leak plume keeps about 1/{round(1 / keeps)} "
                "of its peak in it, and without optical bands the heat of roofs and roads stays in the statistic: risk "
                "ranks where to look first, it does not prove a leak (with reflective bands or a Sentinel-2 granule, "
                "--input ranks Landsat 8/9 better: docs/thermal.md).")
    optics = (f"Sentinel-2 {inputs.get('sentinel2_date')} (gap {inputs.get('date_gap_days')} days)"
              if inputs.get("optics", "sentinel2") == "sentinel2" else
              "its own reflective bands as the optics (no Sentinel-2 granule: 30 m detail on the 10 m grid)")
    return (f"Landsat product <code>{html.escape(str(inputs.get('landsat_product')))}</code> "
            f"({inputs.get('landsat_date')}), {optics}.",
            "Landsat's thermal band carries ~100 m information; a 30 m leak plume is diluted about tenfold "
            "in it, so risk ranks where to look first, it does not prove a leak.")


def sharpening_line(run_info: RunRecord) -> str:
    """How the 10 m LST was made: the sharpener the guard chose per tile (first date) and where DMS's local models
    were used; empty for runs that do not sharpen (thermal rasters)."""
    info = [t.sharpen or {} for t in run_info.tile_summaries.values()]
    methods = Counter(i["method"] for i in info if i.get("method") not in (None, "none"))
    if not methods:
        return ""
    local = sum(bool((i.get("local_models") or {}).get("used")) for i in info)
    chosen = ", ".join(f"{m} on {n}" for m, n in methods.most_common())
    return (f" 10 m LST: {chosen} of {len(info)} tiles (the guard's choice per tile, run.json)"
            + (f"; DMS's local models on {local}" if local else "") + ".")


def _page(run_info: RunRecord, seg: gpd.GeoDataFrame, meta: dict, folder: Path, extra: str) -> str:
    warn = "".join(f"<p class='warn'>&#9888; {html.escape(w)}</p>" for w in run_info.warnings)
    inputs = run_info.inputs
    n_ok = int((seg["status"] == "ok").sum())
    partly = int(partly_seen(seg).sum())
    seen_line = (f", {partly} of them seen on less than half of their length: <code>clear_share</code> &lt; "
                 f"{PARTLY_SEEN_SHARE:g}, their rank reads the clear part only" if partly else "")
    source_line, reading = _source_lines(inputs)
    source_line += sharpening_line(run_info)
    files = [f"<a href='../{n}'>{n}</a>" for n in ("top_segments.csv", "top_segments.gpx", "segments.gpkg",
                                                   "segments.geojson", "hotspots.geojson", "risk_10m.tif",
                                                   "risk_10m.vrt", "lst_10m.vrt")
             if (folder / n).exists()]
    net = meta["network"]
    grid = run_info.grid or GridInfo(crs="?", tile_px=0, resolution_m=0)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>heattrack report</title>
{MAP_HEAD}
<style>{CSS}</style></head>
<body>
<h1>heattrack leak screening report</h1>
{warn}
<p>{source_line}
Grid {html.escape(str(grid.crs))}, {grid.n_tiles} tiles,
screened (clear land) {run_info.valid_fraction or 0:.1%} of the tiles' pixels. Segments: {len(seg)} ({n_ok} with data{seen_line};
{len(seg) - n_ok} no_data). Hotspots: {run_info.hotspots}. Config hash
<code>{run_info.processing_hash}</code>, heattrack {run_info.heattrack_version}.</p>
<p><b>Reading the numbers.</b> {reading}</p>
<h2>Map</h2>
<p>Pipe segments coloured by risk (the {net['n_top']} riskiest at every zoom; the whole network of
{net['n_segments']} segments once zoomed in), the pixel risk mosaic and hotspots; click a segment for its
numbers. Layers switch on and off at the top right. The basemap needs a network connection; everything else is
in this folder. <a href="map.html">Full-window map</a>.</p>
<div id="map"></div>
<h2>Field list</h2>
<p>Downloads for the crews: {', '.join(files)}. <code>top_segments.csv</code> (QGIS: Layer &rarr; Add Delimited
Text, x = lon, y = lat) and <code>top_segments.gpx</code> (GPS units, phone map apps) hold the hottest point of
each top segment with links to OpenStreetMap and to this map. The top 20:</p>
{_table(seg)}
<h2>Figures</h2>
{figure_html('risk_map.png', 'risk map with pipes', 'Overview of the whole area (grid metres): pixel risk, segments '
         'coloured by risk, the top 20 in cyan; read it for where the risk concentrates, use the map above to zoom.')}
{figure_html('score_histogram.png', 'score histograms', 'Distribution of segment and pixel risk (log counts): a '
         'long tail towards 1 is the handful of places worth a visit; a bulge near 1 would mean a poorly calibrated run.')}
{figure_html('lst_before_after.png', 'LST before and after sharpening', '2 km around the top segment: the ~100 m '
         'thermal data (left), sharpened to 10 m (middle) and the anomaly the ranking reads (right); pipes in cyan.')}
{extra}
{MAP_SCRIPTS}
</body></html>
"""


MAP_HEAD = '<link rel="stylesheet" href="map/leaflet/leaflet.css"><link rel="stylesheet" href="map/heattrack-map.css">'
MAP_SCRIPTS = "\n".join(f'<script src="map/{s}"></script>' for s in (
    "leaflet/leaflet.js", "heattrack-map.js", "data/index.js", "data/top.js", "data/hotspots.js",
    "data/changes.js")) + '\n<script>HT.start("map");</script>'


def write_map_page(report_dir: Path, title: str = "heattrack map") -> Path:
    """``map.html``: the map alone, full window (the data written by :func:`write_map`)."""
    page = (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">{MAP_HEAD}'
            "<style>html,body{margin:0;height:100%}#map{height:100%;margin:0;border:none}</style></head>"
            f'<body><div id="map"></div>\n{MAP_SCRIPTS}\n</body></html>\n')
    (report_dir / "map.html").write_text(page)
    return report_dir / "map.html"
