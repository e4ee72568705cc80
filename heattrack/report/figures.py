"""Figures of the report (matplotlib PNGs below the map): risk overview, detectability, score distributions,
LST before/after sharpening, autoencoder patches, truth (simulated scenes) and the changes since last season.
Each takes finished outputs and writes one PNG (to a path or a binary stream: :mod:`heattrack.report.figure_job`);
the section builders also return their HTML with a caption."""

from __future__ import annotations

import html
from pathlib import Path
from typing import IO

import geopandas as gpd
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import rasterio  # noqa: E402
import zarr  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from heattrack.kernels.roc import auc_interval  # noqa: E402

MAX_MAP_PX = 1400
Dest = Path | IO[bytes]  # where a figure's PNG goes


def warm_up() -> None:
    """Pay matplotlib's first-figure costs (font loading, the Agg renderer) on a throw-away figure: a run calls it
    on a thread while the workers compute the tiles, so the report after them does not."""
    import io

    fig, ax = plt.subplots(figsize=(2, 1), dpi=50)
    ax.imshow(np.zeros((2, 2)), cmap="magma")
    ax.add_collection(LineCollection([np.zeros((2, 2))]))
    ax.set_title("warm-up")
    fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap="viridis"), ax=ax)
    fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)


def _read_overview(path: Path) -> tuple[np.ndarray, tuple[float, float, float, float], str]:
    with rasterio.open(path) as src:
        step = max(1, int(np.ceil(max(src.width, src.height) / MAX_MAP_PX)))
        arr = src.read(1, out_shape=(max(1, src.height // step), max(1, src.width // step)),
                       masked=True).astype("float32").filled(np.nan)
        b = src.bounds
        return arr, (b.left, b.right, b.bottom, b.top), src.crs.to_wkt()


def _segments_in(folder: Path, crs_wkt: str, segments: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    """``segments`` (or the run's ``segments.gpkg`` / ``.geojson``) in the raster's CRS."""
    if segments is None:
        gpkg = folder / "segments.gpkg"
        segments = gpd.read_file(gpkg) if gpkg.exists() else gpd.read_file(folder / "segments.geojson")
    if segments.crs is not None and segments.crs.equals(crs_wkt):
        return segments.copy()
    return segments.to_crs(crs_wkt)


def _part_vertices(geoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The vertices (x, y) of every line part, the part of each vertex and the row (geometry) of each part."""
    import shapely

    parts, owner = shapely.get_parts(geoms, return_index=True)
    xy, part = shapely.get_coordinates(parts, return_index=True)
    return xy, part, owner


def _lines(seg: gpd.GeoDataFrame) -> list[np.ndarray]:
    """Each line part's vertices (x, y), for a LineCollection."""
    xy, part, owner = _part_vertices(seg.geometry.values)
    return np.split(xy, np.searchsorted(part, np.arange(1, len(owner))))


def _network(ax, seg: gpd.GeoDataFrame, values: np.ndarray, cmap: str, clim: tuple[float, float], linewidth: float,
             alpha: float = 1.0, classes: int = 64) -> ScalarMappable:
    """Draw the segments coloured by ``values`` (one per row) as ``classes`` compound paths, one per colour step:
    a national network's ~10^5 lines cost one path each in a LineCollection (seconds), a few here. Returns the
    colour scale for a colour bar."""
    sm = ScalarMappable(norm=Normalize(*clim), cmap=cmap)
    if not len(seg):
        return sm
    xy, part, owner = _part_vertices(seg.geometry.values)
    first = np.r_[True, part[1:] != part[:-1]]  # each part starts with a move, then draws on
    codes = np.where(first, MplPath.MOVETO, MplPath.LINETO).astype(np.uint8)
    v = np.clip((np.asarray(values, dtype=float) - clim[0]) / max(clim[1] - clim[0], 1e-12), 0.0, 1.0)
    step = np.minimum((np.nan_to_num(v, nan=0.0) * classes).astype(int), classes - 1)[owner[part]]
    order = np.argsort(step, kind="stable")
    cuts = np.searchsorted(step[order], np.arange(classes + 1))
    paths, colours = [], []
    for k in range(classes):
        idx = order[cuts[k]:cuts[k + 1]]
        if idx.size:
            paths.append(MplPath(xy[idx], codes[idx]))
            colours.append(sm.cmap((k + 0.5) / classes))
    ax.add_collection(PathCollection(paths, facecolors="none", edgecolors=colours, linewidths=linewidth,
                                     alpha=alpha, transform=ax.transData, offsets=None))
    return sm


def _save(fig, dest: Dest, left: float = 0.09, right: float = 0.97, bottom: float = 0.08, top: float = 0.93) -> None:
    """Fixed margins instead of ``tight_layout`` (which draws every figure twice: ~40 % of the report's time)."""
    fig.subplots_adjust(left=left, right=right, bottom=bottom, top=top)
    fig.savefig(dest)
    plt.close(fig)


def _risk_map(risk: np.ndarray, extent: tuple, seg: gpd.GeoDataFrame, dest: Dest) -> None:
    fig, ax = plt.subplots(figsize=(9, 8), dpi=110)
    im = ax.imshow(risk, extent=extent, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    ok = seg[seg["status"] == "ok"]
    _network(ax, ok, ok["risk"].to_numpy(dtype=float), "viridis", (0.0, 1.0), 0.8, alpha=0.9)
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
    _save(fig, dest, left=0.1, right=0.98)


def _detectability_section(seg: gpd.GeoDataFrame, det: dict, extent: tuple, dest: Dest,
                           mdl_view: tuple[np.ndarray, tuple] | None = None) -> str:
    """Map of mdl_k per segment (over ``mdl_view``, the ``mdl_k_overview.tif`` pixels and bounds: the same for a pipe
    anywhere, where the run wrote it) and the network share where 3 / 5 / 10 K leaks would have been flagged."""
    ok = seg[(seg["status"] == "ok") & seg["mdl_k"].notna()]
    fig, ax = plt.subplots(figsize=(9, 8), dpi=100)
    if mdl_view is not None:
        mdl, r_extent = mdl_view
        top = float(np.nanpercentile(mdl, 98)) if np.isfinite(mdl).any() else 20.0
        im = ax.imshow(mdl, extent=r_extent, origin="upper", cmap="Greys", vmin=0, vmax=max(top, 20.0),
                       interpolation="nearest", alpha=0.6)
        fig.colorbar(im, ax=ax, shrink=0.5, label="mdl_k for a pipe anywhere (K, per thermal pixel)")
    lc = _network(ax, ok, ok["mdl_k"].to_numpy(dtype=float), "RdYlGn_r", (0.0, 20.0), 1.2)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_title(f"Smallest leak this screen would have flagged (peak K of a {det['plume_fwhm_m']:g} m plume)")
    fig.colorbar(lc, ax=ax, shrink=0.7, label="mdl_k (K, 20 = 20 or more)")
    _save(fig, dest, left=0.1, right=0.98)
    share = det["network_share_visible"]
    return ("<h2>What this screen could have seen</h2><p>For every segment, <code>mdl_k</code> is the smallest "
            f"leak (peak excess at 10 m of a {det['plume_fwhm_m']:g} m wide plume) that would have lifted it to the "
            f"flag level (the statistic a leak-free segment exceeds with probability {det['alpha']:.1%}, from the "
            "upper tail of the network's statistics fitted below its top tenth), on the clutter of "
            "the network around it: a leak of that peak is flagged about half the time (the calibration on held-out "
            "simulated cities is in docs/measurements.md). The sensor passes "
            f"{det['attenuation']:.1%} of such a plume's peak into the ranking statistic"
            + (f" (its footprint and the statistic's {det['window_m']:.0f} m window along the pipe)"
               if det.get("window_points", 1) != 1 else "") + ". " + _shares_sentence(share) + "</p>"
            + _flags_sentence(det) +
            "<figure><img src='detectability_map.png' alt='detectability per segment'><figcaption>Green segments "
            "would have shown a small leak; red ones only a large one (or none): a clean result there means little. "
            "Grey background: the same for a pipe anywhere, per thermal pixel (<code>mdl_k_overview.tif</code>; "
            "darker = only larger leaks visible)."
            "</figcaption></figure>")


def _shares_sentence(share: dict) -> str:
    """Where 3 / 5 / 10 K leaks would have been flagged; without a flag level (a network too small for its null),
    that it is not stated."""
    if any(share.get(k) is None or not np.isfinite(share[k]) for k in ("3", "5", "10")):
        return ("No flag level on this network (too few ranked segments for the network's null), so where a leak "
                "of a given size would have been flagged is not stated")
    return (f"A 3 K leak would have been flagged on <b>{share['3']:.0%}</b> of the scored network length, a 5 K leak "
            f"on <b>{share['5']:.0%}</b>, a 10 K leak on <b>{share['10']:.0%}</b>; elsewhere a leak of that size could "
            "be there unseen.")


def _flags_sentence(det: dict) -> str:
    """How many segments reached the flag level, and how many of them a leak-free network would have put there."""
    flags = det.get("flags")
    if not flags:  # a run.json from before the fitted null
        return ""
    return (f"<p><b>{flags['flagged']}</b> segments reached the flag level; at the stated false-alarm share "
            f"({det['alpha']:.1%} of the leak-free segments) about <b>{flags['expected_false_flags']:.0f}</b> of them "
            "would be there without a leak. On held-out simulated cities that share held within 1.5&times; pooled "
            "for Landsat, ECOSTRESS and 10 m airborne rasters (the airborne ones only just, and a few cities at 3-4 "
            "times; docs/measurements.md, \"False alarms\")"
            + ("" if flags["fitted"] or det.get("flag_level_k") is None else "; this network was too even for "
               "the fit, so the flag level is its own quantile and the share an upper bound") + ".</p>")


def _histogram(seg: gpd.GeoDataFrame, risk: np.ndarray, dest: Dest) -> None:
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
    for ax in axes:  # plain tick labels: mathtext ones (10^3) cost a third of the figure's time
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        lo, hi = ax.get_ylim()
        ax.yaxis.set_minor_formatter(  # minor labels only where the axis spans less than two decades
            FuncFormatter(lambda v, _: f"{v:g}") if hi < 100 * max(lo, 1e-9) else NullFormatter())
    _save(fig, dest, left=0.07, right=0.98, bottom=0.14, top=0.9)


def _before_after(mosaic: str | Path, seg: gpd.GeoDataFrame, window: tuple[slice, slice], dest: Dest) -> None:
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
    _save(fig, dest, left=0.02, right=0.97, bottom=0.04, top=0.86)


def _ae_figure(examples: dict, dest: Dest) -> None:
    """Rows: example pixels; columns: thermal z input, reconstruction, error, NDVI input (patch samples)."""
    x_in, x_rec, risk = examples["ae_in"], examples["ae_rec"], examples["ae_risk"]
    k = x_in.shape[0]
    fig, axes = plt.subplots(k, 4, figsize=(8, 2.0 * k + 0.4), dpi=110, squeeze=False)
    lim = float(np.nanmax(np.abs(x_in[:, 0]))) or 1.0
    for i in range(k):
        err = x_in[i, 0] - x_rec[i, 0]
        for j, (a, title, kw) in enumerate((
                (x_in[i, 0], "thermal z: input", dict(cmap="RdBu_r", vmin=-lim, vmax=lim)),
                (x_rec[i, 0], "reconstruction", dict(cmap="RdBu_r", vmin=-lim, vmax=lim)),
                (err, "error (input - rec.)", dict(cmap="RdBu_r", vmin=-lim, vmax=lim)),
                (x_in[i, 1], "NDVI input", dict(cmap="Greens", vmin=-0.2, vmax=0.8)))):
            ax = axes[i, j]
            ax.imshow(a, interpolation="nearest", **kw)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=9)
        axes[i, 0].set_ylabel(f"risk {risk[i]:.2f}", fontsize=9)
    fig.suptitle("Autoencoder patches: highest-risk pixels (top rows) and a typical pixel (last row)", fontsize=10)
    fig.tight_layout()
    fig.savefig(dest)
    plt.close(fig)


def _truth_figures(seg: gpd.GeoDataFrame, truth: dict, dest_scores: Dest, dest_power: Dest) -> str:
    """Score distribution of leak vs other segments and recall per leak-amplitude bin at 0.1 false alarms/km."""
    from heattrack.evaluate import flagged_at_false_alarm_rate, score_from_rank

    leaks = truth["leaks"]  # GeoDataFrame: segment_id, amplitude_k, fwhm_m
    ok = seg[seg["status"] == "ok"]
    is_leak = ok["segment_id"].isin(set(leaks["segment_id"])).to_numpy()
    r = ok["risk"].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=110)
    bins = np.linspace(0, 1, 26)
    ax.hist(r[~is_leak], bins=bins, density=True, alpha=0.6, label=f"no leak ({(~is_leak).sum()})")
    ax.hist(r[is_leak], bins=bins, density=True, alpha=0.6, label=f"leak ({is_leak.sum()})")
    ax.set_xlabel("segment risk")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    ax.set_title("Segment risk: leaking vs other segments (simulator truth)", fontsize=10)
    fig.tight_layout()
    fig.savefig(dest_scores)
    plt.close(fig)
    # recall at 0.1 false alarms per km, split by the leak's peak ΔT
    length_km = ok.geometry.length.to_numpy() / 1000.0
    mask = flagged_at_false_alarm_rate(r, is_leak, length_km, 0.1)
    flagged = set(ok["segment_id"].to_numpy()[mask])
    amp = leaks.groupby("segment_id")["amplitude_k"].max()
    amp = amp[amp.index.isin(set(ok["segment_id"]))]
    edges = np.unique(np.quantile(amp.to_numpy(), np.linspace(0, 1, 5))) if len(amp) else np.array([0.0, 1.0])
    centres, recall, counts = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = amp[(amp >= lo) & ((amp < hi) | (hi == edges[-1]))]
        if len(sel):
            centres.append(0.5 * (lo + hi))
            recall.append(np.mean([s in flagged for s in sel.index]))
            counts.append(len(sel))
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=110)
    ax.plot(centres, recall, "o-")
    for c, rc, n in zip(centres, recall, counts):
        ax.annotate(f"n={n}", (c, rc), textcoords="offset points", xytext=(0, 6), fontsize=8, ha="center")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("leak peak ΔT at 10 m (K), bins by quartile")
    ax.set_ylabel("recall")
    ax.set_title("Detection power in this scene: recall at 0.1 false alarms / km", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(dest_power)
    plt.close(fig)
    total = (mask & is_leak).sum() / max(is_leak.sum(), 1)
    # the ranking's ROC-AUC with its DeLong interval: how much a scene with this many leaks can say at all
    auc, lo, hi = auc_interval(score_from_rank(ok["rank"]), is_leak)
    return (f"<p>{is_leak.sum()} leaking segments among {len(ok)} scored; segment ROC-AUC of the ranking {auc:.3f} "
            f"(95 % {lo:.2f}–{hi:.2f}); recall at 0.1 false alarms per km of "
            f"pipe: {total:.2f} (threshold: the top {mask.sum()} segments).</p>")


_CHANGE_COLOURS = {"new": "red", "persistent": "darkorange", "resolved": "green", "no_data": "0.5"}


def _threshold_z(summary) -> float:
    """The season's warming threshold (network z): the calibrated one, or ``new_z`` (changes.json before it)."""
    return round(summary.new_z_used if summary.new_z_used is not None else summary.new_z, 2)


def _calibration(summary) -> str:
    """How the season's threshold was set, where changes.json says (the tail-calibrated rule)."""
    if summary.new_z_used is None or summary.fitted_false_new_per_100km is None:
        return ""
    return (f" (the lower of changes.new_z = {summary.new_z:g} and the level at which this network's fitted warming "
            f"tail expects {summary.false_new_per_100km_target:g} leak-free segments per 100 km above it; at "
            f"{_threshold_z(summary):g} it expects {summary.fitted_false_new_per_100km:.2f})")


def _changes_section(changes: gpd.GeoDataFrame, seg: gpd.GeoDataFrame, extent: tuple, previous: str,
                     dest: Dest, summary=None) -> str:
    """Map + table of what changed since the previous season (``changes``: changes.geojson rows; ``summary``: the
    :class:`heattrack.io.records.ChangeSummary` of changes.json, for the expected false ``new``)."""
    ch = changes.to_crs(seg.crs) if len(changes) else changes
    fig, ax = plt.subplots(figsize=(9, 8), dpi=110)
    ax.add_collection(LineCollection(_lines(seg), colors="0.8", linewidths=0.6))
    for cl, colour in _CHANGE_COLOURS.items():
        lines = ch[(ch["kind"] == "segment") & (ch["change"] == cl)] if len(ch) else ch
        if len(lines):
            ax.add_collection(LineCollection(_lines(lines), colors=colour, linewidths=2.5, label=f"segment {cl}"))
        pts = ch[(ch["kind"] == "hotspot") & (ch["change"] == cl)] if len(ch) else ch
        if len(pts):
            ax.scatter(pts.geometry.x, pts.geometry.y, s=40, marker="o", facecolors="none", edgecolors=colour,
                       label=f"hotspot {cl}")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_title(f"Changes since {previous}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(dest)
    plt.close(fig)
    counts = ", ".join(f"{int((ch['change'] == cl).sum())} {cl}" for cl in _CHANGE_COLOURS) if len(ch) else "none"
    cols = ["priority", "kind", "id", "change", "risk", "previous_risk", "delta_t_k"]
    head = "".join(f"<th>{c}</th>" for c in cols)

    def fmt(v) -> str:
        return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else (
            f"{v:.3f}" if isinstance(v, float) else str(v))

    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r.get(c)))}</td>" for c in cols) + "</tr>"
                   for _, r in ch.head(40).iterrows()) if len(ch) else ""
    how = ""
    if summary is not None and summary.estimated_false_new is not None:
        how = (f" Of the {summary.segment_new} new segments about {summary.estimated_false_new} may be false "
               f"({summary.estimated_false_new_per_100km:.2f} per 100 km of pipe): as many segments cooled as much "
               "without a flag in either season (the same rule with the seasons swapped). A segment is new when its "
               f"points warmed by more than {_threshold_z(summary):g} network z"
               + (f" ({summary.new_warming_k:.2f} K of the ranking statistic this season)"
                  if summary.new_warming_k is not None else "")
               + " and it was not flagged last year" + _calibration(summary) + ".")
    elif summary is not None and summary.bound_false_new_per_100km is not None:
        how = (f" Compared by the previous rule ({html.escape(summary.note or 'no point values')}): "
               "Benjamini-Hochberg at q = "
               f"{summary.fdr_q:g}, a bound of {summary.bound_false_new_per_100km:.2f} false new per 100 km that "
               "clutter makes too low.")
    return (f"<h2>What changed since last year ({html.escape(previous)})</h2><p>{counts}.{how} Sorted for a field "
            "crew: new first, then persistent, resolved, and flagged in one year without clear data in the other; "
            "each by risk. Full table: <code>changes.geojson</code>.</p><figure><img src='changes_map.png' alt='changes since last "
            "season'><figcaption>Red: new since last season (visit first), orange: still there, green: gone (a "
            f"repair that worked); grey lines: the rest of the network.</figcaption></figure><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


