"""The report's figures as one job: :class:`FigureInputs` holds everything they read (arrays and tables, no path into
the driver's output folder, only the mosaic that every worker reads), :func:`draw_figures` returns each PNG as bytes
with the HTML of the sections around them, for every figure or a group of them (:data:`FIGURE_GROUPS`). A run where
workers have cores of their own hands each group to an idle Dask worker, so that the driver writes the exports
meanwhile (:mod:`heattrack.orchestration.report_helper`);
other runs and ``heattrack report`` draw it in their own process. The same inputs give the same bytes either way
(tested)."""

from __future__ import annotations

import html
import io
from dataclasses import dataclass

import geopandas as gpd
import numpy as np

from heattrack.report import figures as fg
from heattrack.report import webmap


@dataclass(frozen=True)
class FigureInputs:
    """``risk``, ``extent``: the coarse risk view and its bounds (left, right, bottom, top) in the grid CRS;
    ``seg``: the scored segments in that CRS; ``mosaic``: the zarr mosaic (path or URL) for the before/after crop
    around the top segment inside ``aoi_window``; ``mdl_view``: the ``mdl_k_overview.tif`` pixels and bounds where the
    run wrote it; ``changes`` … ``change_summary``: ``heattrack screen``'s changes; ``truth``: a simulated scene's;
    ``thumbnails``: how many of the map's segment thumbnails (``report.thumbnails``) to draw."""

    risk: np.ndarray
    extent: tuple[float, float, float, float]
    seg: gpd.GeoDataFrame
    mosaic: str
    aoi_window: tuple[slice, slice]
    detectability: dict | None = None
    mdl_view: tuple[np.ndarray, tuple[float, float, float, float]] | None = None
    changes: gpd.GeoDataFrame | None = None
    previous: str = "the previous season"
    change_summary: object | None = None
    ae_examples: dict | None = None
    truth: dict | None = None
    thumbnails: int = 0


@dataclass(frozen=True)
class DrawnFigures:
    """``pngs``: file name (relative to the report folder; the map's thumbnails under ``map/thumbs/``) -> PNG bytes;
    ``head_html`` goes before the run's dates table, ``tail_html`` after it."""

    pngs: dict[str, bytes]
    head_html: str
    tail_html: str


def figure_html(src: str, alt: str, caption: str) -> str:
    return f"<figure><img src='{src}' alt='{html.escape(alt)}'><figcaption>{caption}</figcaption></figure>"


#: the figures in groups that can be drawn apart (on several workers at once): the overview map and the histogram;
#: the sections with their HTML (changes, detectability, autoencoder, truth); the crops of the mosaic (before/after,
#: the map's thumbnails). :func:`merge_figures` of the groups is :func:`draw_figures` of all (only the sections carry
#: HTML). At 48 km 0.40, 0.22 and 0.48 s, the map's network layer 0.71 s (``benchmarks/report_jobs.py``, 2026-12-07).
FIGURE_GROUPS = ("overview", "sections", "crops")


def draw_figures(inp: FigureInputs, groups: tuple[str, ...] = FIGURE_GROUPS) -> DrawnFigures:
    """The report's figures of ``groups`` (:data:`FIGURE_GROUPS`; by default every figure), matplotlib (Agg), into
    memory."""
    unknown = set(groups) - set(FIGURE_GROUPS)
    if unknown:
        raise ValueError(f"unknown figure groups {sorted(unknown)}; known: {', '.join(FIGURE_GROUPS)}")
    pngs: dict[str, io.BytesIO] = {}

    def png(name: str) -> io.BytesIO:
        pngs[name] = io.BytesIO()
        return pngs[name]

    seg = inp.seg
    head = tail = ""
    thumbs: dict[str, bytes] = {}
    if "overview" in groups:
        fg._risk_map(inp.risk, inp.extent, seg, png("risk_map.png"))
        fg._histogram(seg, inp.risk, png("score_histogram.png"))
    if "crops" in groups:
        fg._before_after(inp.mosaic, seg, inp.aoi_window, png("lst_before_after.png"))
        thumbs = {f"map/{name}": data for name, data in webmap.thumbnail_pngs(inp.mosaic, seg, inp.thumbnails).items()}
    if "sections" in groups:
        head, tail = _sections(inp, png)
    return DrawnFigures({**{name: buf.getvalue() for name, buf in pngs.items()}, **thumbs}, head, tail)


def _sections(inp: FigureInputs, png) -> tuple[str, str]:
    """The figures that come with a section of their own: (HTML before the dates table, HTML after it)."""
    seg = inp.seg
    head = tail = ""
    if inp.changes is not None:
        head = fg._changes_section(inp.changes, seg, inp.extent, inp.previous, png("changes_map.png"),
                                   inp.change_summary)
    if inp.detectability and "mdl_k" in seg.columns:
        head += fg._detectability_section(seg, inp.detectability, inp.extent, png("detectability_map.png"),
                                          inp.mdl_view)
    if inp.ae_examples is not None and len(inp.ae_examples.get("ae_risk", [])):
        fg._ae_figure(inp.ae_examples, png("ae_examples.png"))
        tail += ("<h2>Autoencoder reconstructions</h2>" + figure_html(
            "ae_examples.png", "autoencoder input, reconstruction and error",
            "Each patch is 5 x 5 samples of the thermal anomaly (z-score) and NDVI around a pixel; a leak shows as "
            "a centre the autoencoder cannot reconstruct (large error), a typical pixel (last row) as none."))
    if inp.truth is not None:
        note = fg._truth_figures(seg, inp.truth, png("truth_scores.png"), png("detection_power.png"))
        tail += ("<h2>Against the simulator's truth</h2>" + note +
                 figure_html("truth_scores.png", "leak vs non-leak score distributions",
                             "The further the leak histogram sits to the right of the other segments, the better the "
                             "ranking separates them.") +
                 figure_html("detection_power.png", "detection power curve",
                             "Share of leaks flagged at 0.1 false alarms per km, by leak size: where the curve is "
                             "low, leaks of that size go unseen by this sensor."))
    return head, tail


def merge_figures(parts: list[DrawnFigures]) -> DrawnFigures:
    """Groups drawn apart, as one (PNGs together, each part's HTML in the order given)."""
    return DrawnFigures({name: data for p in parts for name, data in p.pngs.items()},
                        "".join(p.head_html for p in parts), "".join(p.tail_html for p in parts))
