"""``heattrack screen``: run one winter season and compare it with the previous season's run.

The previous run is found through its run record (``run.json``): it must have finished, and have the same grid
(CRS, tile size, resolution) and the same pipe-network version (segment ids and geometries) as this season,
else the comparison is refused with the reason. Output, beside the run's own files: ``changes.geojson`` (every
segment whose class is not ``stable`` and every hotspot that is new, persistent or resolved; sorted so a field
crew starts at the top) and a report section "What changed since last year". Rule: :mod:`heattrack.kernels.changes`.
"""

from __future__ import annotations

import calendar
import logging
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from heattrack.config import Config, load_config
from heattrack.config_sources import SEASON_PAIRS
from heattrack.errors import ConfigError, HeattrackError, InputError
from heattrack.io.exports import write_geojson
from heattrack.io.point_statistic import FILE_NAME as POINTS_FILE
from heattrack.io.point_statistic import read_point_statistic
from heattrack.io.records import ChangeSummary, GridInfo, NetworkSignature, PreviousSeason, RunRecord
from heattrack.kernels.changes import (
    CHANGE_CLASSES,
    calibrated_new_z,
    change_class,
    change_class_fdr,
    change_class_warming,
    expected_false_per_100km,
    match_points,
    reversed_new,
    segment_warming,
)
from heattrack.kernels.segments import network_level, points_to_pixels, strongest_nearby
from heattrack.orchestration.finalize import rebuild_report
from heattrack.orchestration.plan import plan_run
from heattrack.orchestration.reduce import network_signature
from heattrack.orchestration.run import RunResult, run
from heattrack.orchestration.tiling import grid_crs_label

log = logging.getLogger(__name__)

_SEASON = re.compile(r"^(\d{4})-(\d{2})$")
#: order in changes.geojson: what a field crew should look at first
_PRIORITY = {"new": 0, "persistent": 1, "resolved": 2, "no_data": 3}
#: the warming rule's second suppression: a candidate within this many thermal footprints of one more than
#: 1 / SPILLOVER_RATIO times stronger is its echo (tuned on simulator-family members 0-5, benchmarks/changes.py)
SPILLOVER_FOOTPRINTS = 3.0
SPILLOVER_RATIO = 0.7


def current_season(today=None) -> str:
    """The winter season a scheduled screening should process on ``today``: from December on, the season that
    started this December; January to November, the one that started last December (e.g. 2026-02-15 ->
    ``'2025-26'``)."""
    from datetime import date

    d = today or date.today()
    y = d.year if d.month == 12 else d.year - 1
    return f"{y}-{(y + 1) % 100:02d}"


def previous_season(season: str) -> str:
    season_interval(season)  # validates
    y = int(season[:4]) - 1
    return f"{y}-{(y + 1) % 100:02d}"


def resolve_season_args(season: str, out: str, previous: str | None) -> tuple[str, Path, Path | None]:
    """``--season current`` -> today's season; ``{season}`` in ``--out`` -> the season; ``--previous auto`` ->
    the previous season's folder beside ``out`` when it holds a finished run (else no comparison)."""
    if season == "current":
        season = current_season()
    season_interval(season)
    out_p = Path(str(out).replace("{season}", season))
    prev = None
    if previous == "auto":
        cand = out_p.parent / previous_season(season)
        prev = cand if (cand / "run.json").exists() else None
    elif previous is not None:
        prev = Path(str(previous).replace("{season}", previous_season(season)))
    return season, out_p, prev


def season_interval(season: str) -> str:
    """``'2025-26'`` -> ``'2025-12-01/2026-02-28'`` (December to the end of February, the heating season's
    coldest, leaf-off months)."""
    m = _SEASON.match(season or "")
    if not m or (int(m.group(1)) + 1) % 100 != int(m.group(2)):
        raise ConfigError(f"season {season!r} is not of the form YYYY-YY with consecutive years, e.g. 2025-26")
    y = int(m.group(1))
    return f"{y}-12-01/{y + 1}-02-{calendar.monthrange(y + 1, 2)[1]:02d}"


def read_previous(previous: Path) -> RunRecord:
    """The previous season's run record; clear errors when it is not a finished heattrack run."""
    info_file = Path(previous) / "run.json"
    if not info_file.exists():
        raise InputError(f"--previous {previous}: no run.json (not a heattrack run folder)")
    info = RunRecord.load(info_file).require_ok(f"--previous {previous}")
    for need in ("segments.gpkg", "hotspots.geojson"):
        if not (Path(previous) / need).exists():
            raise InputError(f"--previous {previous}: {need} is missing")
    if info.network is None or info.grid is None:
        raise InputError(f"--previous {previous}: its run.json has no grid or network signature; rerun that season "
                         "with this version")
    return info


def check_comparable(prev: RunRecord, grid: GridInfo, network: NetworkSignature, previous: Path) -> None:
    """Refuse a previous run on another grid or another network version (naming what differs)."""
    pg = prev.grid
    diffs = [f"{k} {getattr(pg, k)!r} vs {getattr(grid, k)!r}" for k in ("crs", "tile_px", "resolution_m")
             if getattr(pg, k) != getattr(grid, k)]
    if diffs:
        raise InputError(f"--previous {previous} was run on another grid ({'; '.join(diffs)}): seasons are "
                         "compared tile by tile, so use the same grid.crs, grid.tile_km and grid.resolution_m")
    pn = prev.network
    if pn != network:
        raise InputError(f"--previous {previous} used another pipe-network version ({pn.n_segments} segments, "
                         f"signature {pn.sha256}; now {network.n_segments}, {network.sha256}): segment "
                         "ids or geometries changed, so segments cannot be compared one to one")


def compare_seasons(previous: Path, current: Path, cfg: Config) -> tuple[gpd.GeoDataFrame, dict]:
    """Change table of segments and hotspots (grid CRS), sorted new, persistent, resolved, no_data, each by
    current (resolved: previous) risk; and how it was decided (``rule``; with the warming rule the estimated number
    of false ``new``, with the previous rule ``why``) and the network's ``pipe_km``."""
    c = cfg.changes
    prev = gpd.read_file(Path(previous) / "segments.gpkg").set_index("segment_id")
    cur = gpd.read_file(Path(current) / "segments.gpkg")
    p = prev.reindex(cur["segment_id"].values)
    how: dict = {"pipe_km": float(cur.geometry.length.sum()) / 1000.0}
    if "z" in cur.columns and "z" in p.columns:  # statistic rankings
        z_prev, z_cur = p["z"].to_numpy(dtype=float), cur["z"].to_numpy(dtype=float)
        d_prev, d_cur = p["n_dates"].fillna(0).to_numpy(), cur["n_dates"].to_numpy()
        lines = cur.geometry.values
        radius = cfg.downscale.thermal_resolution_m
        warming, why = point_warming(Path(previous), Path(current), cur["segment_id"].to_numpy(str),
                                     c.warming_sigma_m)
        if warming is not None:  # where the segment's points warmed (cooled): the warming rule
            cls, n_false, needed_k, (z_used, fitted) = _classes_by_warming((z_prev, d_prev, z_cur, d_cur), warming,
                                                                           lines, radius, c, how["pipe_km"])
            how |= {"rule": "warming", "estimated_false_new": n_false, "new_warming_k": needed_k, "new_z_used": z_used,
                    "fitted_false_new": fitted}
        else:  # no point values to compare: Benjamini-Hochberg on the segments' z
            cls = change_class_fdr(z_prev, d_prev, z_cur, d_cur, c.fdr_q, c.min_dates)
            for name, z, frame in (("new", z_cur, cur), ("resolved", z_prev, p)):
                tb = frame["stat_mean_k"].to_numpy(dtype=float) if "stat_mean_k" in frame.columns else None
                cand = cls == name
                cls = np.where(cand & ~strongest_nearby(z, lines, cand, radius, tb), "stable", cls)
            how |= {"rule": "fdr", "why": why}
    else:
        cls = change_class(p["risk"].to_numpy(dtype=float), p["n_dates"].fillna(0).to_numpy(),
                           cur["risk"].to_numpy(dtype=float), cur["n_dates"].to_numpy(), c.risk_threshold,
                           c.min_dates)
    seg = gpd.GeoDataFrame({
        "kind": "segment", "id": cur["segment_id"].values, "change": cls,
        "risk": cur["risk"].values, "previous_risk": p["risk"].to_numpy(dtype=float),
        "delta_t_k": cur["delta_t_k"].values, "n_dates": cur["n_dates"].values,
        "previous_n_dates": p["n_dates"].to_numpy(dtype=float)}, geometry=cur.geometry.values, crs=cur.crs)
    seg = seg[seg["change"] != "stable"]
    hot = _hotspot_changes(Path(previous), Path(current), cur.crs, c)
    out = gpd.GeoDataFrame(list(seg.to_dict("records")) + list(hot.to_dict("records")), geometry="geometry",
                           crs=cur.crs) if len(seg) + len(hot) else seg
    if len(out):
        key = np.where(out["change"] == "resolved", out["previous_risk"], out["risk"]).astype(float)
        out = out.assign(_p=out["change"].map(_PRIORITY), _r=-np.nan_to_num(key, nan=-1.0))
        out = out.sort_values(["_p", "_r", "kind", "id"], kind="stable").drop(columns=["_p", "_r"])
        out.insert(0, "priority", np.arange(1, len(out) + 1))
    return out.reset_index(drop=True), how


def change_summary(how: dict, n_new: int, pipe_km: float, cfg: Config, previous_season: str | None) -> ChangeSummary:
    """The record of how a season's change classes were decided (``changes.json``)."""
    rule = how.get("rule", "risk")
    extra: dict = {}
    if rule == "warming":
        n_false = how["estimated_false_new"]
        needed = how.get("new_warming_k")
        fitted = how.get("fitted_false_new", float("nan"))
        extra = {"new_z": cfg.changes.new_z, "fdr_q": cfg.changes.fdr_q, "estimated_false_new": n_false,
                 "estimated_false_new_per_100km": round(n_false / pipe_km * 100.0, 3) if pipe_km > 0 else None,
                 "new_warming_k": round(needed, 3) if needed is not None and np.isfinite(needed) else None,
                 "new_z_used": round(how["new_z_used"], 3) if "new_z_used" in how else None,
                 "false_new_per_100km_target": cfg.changes.false_new_per_100km,
                 "fitted_false_new_per_100km": round(fitted / pipe_km * 100.0, 3)
                 if pipe_km > 0 and np.isfinite(fitted) else None}
    elif rule == "fdr":
        extra = {"fdr_q": cfg.changes.fdr_q, "bound_false_new_per_100km": round(
            expected_false_per_100km(n_new, cfg.changes.fdr_q, pipe_km), 3), "note": how.get("why")}
    return ChangeSummary(previous_season=previous_season, rule=rule, pipe_km=round(pipe_km, 2), segment_new=n_new,
                         **extra)


def point_warming(previous: Path, current: Path, segment_ids: np.ndarray, sigma_m: float = 0.0
                  ) -> tuple[tuple | None, str | None]:
    """Per segment of ``segment_ids``, the largest warming and cooling of its points between the seasons (the
    change smoothed over the network with a Gaussian of ``sigma_m``) and their mean change
    (:func:`heattrack.kernels.changes.segment_warming`); else None and why the points do not compare."""
    a, b = read_point_statistic(previous / POINTS_FILE), read_point_statistic(current / POINTS_FILE)
    if a is None:
        return None, f"{previous} has no {POINTS_FILE} (run by an earlier version, or ranked by a 0-1 risk)"
    if b is None:
        return None, f"{current} has no {POINTS_FILE}"
    if methods := _other_methods(previous, current):
        return None, (f"the seasons were ranked by different statistics (detect.method {methods[0]} and "
                      f"{methods[1]}), whose point values do not compare")
    if not a.same_points(b):
        return None, ("the two seasons sampled different points along the pipes (another segments.spacing_m?): rerun "
                      "the previous season with this configuration to compare point by point")
    order = pd.Index(b.segment_ids).get_indexer(segment_ids)
    ok = order >= 0
    return tuple(np.where(ok, v[np.maximum(order, 0)], np.nan)
                 for v in segment_warming(a.stat_k, b.stat_k, b.segment, len(b.segment_ids), (b.x, b.y), sigma_m)), None


def _classes_by_warming(seasons: tuple, warming: tuple, lines: np.ndarray, radius: float, c, pipe_km: float
                        ) -> tuple[np.ndarray, int, float, tuple[float, float]]:
    """The warming rule's classes (``seasons``: previous z, dates, current z, dates; ``warming``: largest warming,
    cooling and mean change per segment), its estimate of the false ``new``, after one call per hot place, the
    warming (K, smoothed) a segment's points needed this season to be called ``new``, and the season's threshold
    (network z; :func:`calibrated_new_z` for ``changes.false_new_per_100km`` over ``pipe_km``) with the fitted tail's
    expected number of segments above it."""
    up, down, mean_change = warming
    z_used, fitted = calibrated_new_z(*seasons, up, c.fdr_q, c.min_dates, c.new_z,
                                      c.false_new_per_100km * pipe_km / 100.0)
    args = (*seasons, up, down, c.fdr_q, c.min_dates, z_used, c.min_change_k)
    cls, z_up, z_down = change_class_warming(*args)
    needed_k = max(network_level(np.where(np.isfinite(z_up), up, np.nan), z_used), c.min_change_k)
    decoy, z_decoy = reversed_new(*args)
    # one call per hot place: of the candidates within the footprint the strongest; within one z (the noise: MAD)
    # of each other, the one whose points changed most on average (their largest changes are one footprint's; the
    # body locates the leak). Within SPILLOVER_FOOTPRINTS footprints a much weaker one is the echo of a strong
    # change (the ranking's local background carries a change a few hundred metres), not a change of its own
    for name, z, body in (("new", z_up, mean_change), ("resolved", z_down, -mean_change),
                          ("decoy", z_decoy, -mean_change)):
        cand = decoy if name == "decoy" else cls == name
        keep = strongest_nearby(z, lines, cand, radius, body, tie_within=1.0) & strongest_nearby(
            z, lines, cand, SPILLOVER_FOOTPRINTS * radius, body, ratio=SPILLOVER_RATIO)
        if name == "decoy":
            decoy = cand & keep
        else:
            cls = np.where(cand & ~keep, "stable", cls)
    return cls, int(decoy.sum()), needed_k, (z_used, fitted)


def _other_methods(previous: Path, current: Path) -> tuple[str, str] | None:
    """The two seasons' ``detect.method`` when they differ (read from their config.yaml; unknown: None)."""
    try:
        a, b = (load_config(f / "config.yaml").detect.method for f in (previous, current))
    except HeattrackError:  # a missing or older configuration: nothing to compare
        return None
    return (a, b) if a != b else None


def _hotspot_changes(previous: Path, current: Path, crs, c) -> gpd.GeoDataFrame:
    prev = gpd.read_file(previous / "hotspots.geojson").to_crs(crs)
    cur = gpd.read_file(current / "hotspots.geojson").to_crs(crs)
    prev = prev[prev["peak_risk"] >= c.risk_threshold]
    cur = cur[cur["peak_risk"] >= c.risk_threshold]
    pxy = np.c_[prev.geometry.x, prev.geometry.y] if len(prev) else np.zeros((0, 2))
    cxy = np.c_[cur.geometry.x, cur.geometry.y] if len(cur) else np.zeros((0, 2))
    match, gone = match_points(pxy, cxy, c.hotspot_match_m)
    # where the other season had no clear pixel, a hotspot that appeared or went cannot be told from the cloud
    seen_before = clear_at(previous, cxy, c.min_dates)
    seen_now = clear_at(current, pxy, c.min_dates)
    rows = []
    for i, (_, h) in enumerate(cur.iterrows()):
        m = match[i]
        change = "persistent" if m >= 0 else "new" if seen_before[i] else "no_data"
        rows.append({"kind": "hotspot", "id": h["hotspot_id"], "change": change,
                     "risk": h["peak_risk"], "previous_risk": prev["peak_risk"].iloc[m] if m >= 0 else np.nan,
                     "delta_t_k": h["delta_t_k"], "segment_id": h.get("segment_id"), "geometry": h.geometry})
    for j in np.flatnonzero(gone):  # named by last season's run (its numbering, not this season's)
        h = prev.iloc[j]
        rows.append({"kind": "hotspot", "id": f"{Path(previous).name}/{h['hotspot_id']}",
                     "change": "resolved" if seen_now[j] else "no_data",
                     "risk": np.nan,
                     "previous_risk": h["peak_risk"], "delta_t_k": np.nan, "segment_id": h.get("segment_id"),
                     "geometry": h.geometry})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs) if rows else \
        gpd.GeoDataFrame({"kind": []}, geometry=[], crs=crs)


def clear_at(run_dir: Path, xy: np.ndarray, min_dates: int) -> np.ndarray:
    """Whether the run in ``run_dir`` had clear data (``n_dates`` >= ``min_dates`` in its mosaic) at each point
    ``xy`` (grid CRS, the nearest 10 m pixel); True everywhere when its mosaic cannot be read (a run copied without
    ``mosaic.zarr``: the hotspots' classes as before)."""
    import rioxarray  # noqa: F401  (the .rio accessor: the mosaic's grid)
    import xarray as xr

    if len(xy) == 0:
        return np.zeros(0, bool)
    try:
        with xr.open_zarr(Path(run_dir) / "mosaic.zarr") as ds:
            n = ds["n_dates"]
            row, col = points_to_pixels(n.rio.transform(), xy[:, 0], xy[:, 1])
            inside = (row >= 0) & (row < n.sizes["y"]) & (col >= 0) & (col < n.sizes["x"])
            vals = n.isel(y=xr.DataArray(row[inside]), x=xr.DataArray(col[inside])).values  # only the chunks hit
    except (OSError, KeyError, ValueError, IndexError) as exc:
        log.warning("%s: cannot read where it had clear data (%s); hotspots that appeared or went are classed "
                    "without it", run_dir, exc)
        return np.ones(len(xy), bool)
    out = np.zeros(len(xy), bool)
    out[inside] = np.nan_to_num(vals, nan=0.0) >= min_dates
    return out


def with_season_search(cfg: Config, interval: str) -> Config:
    """``cfg`` searching its catalogue source (stac, gee, ecostress) as a season: the season's interval unless a search
    interval is set, and ``SEASON_PAIRS`` dates per tile unless ``stac.pairs`` / ``gee.pairs`` is set (ECOSTRESS keeps
    its ``ecostress.passes``)."""
    src = cfg.input.source
    if src not in ("stac", "gee", "ecostress"):
        return cfg
    section = getattr(cfg, src)
    update = {} if section.datetime else {"datetime": interval}
    if src in ("stac", "gee") and section.pairs is None:
        update["pairs"] = SEASON_PAIRS
    return cfg.model_copy(update={src: section.model_copy(update=update)}) if update else cfg


def screen(cfg: Config, out: Path, season: str, previous: Path | None, resume: bool = False,
           overwrite: bool = False, progress=None, client=None) -> tuple[RunResult, dict]:
    """Run ``season`` into ``out`` and, with ``previous``, write ``changes.geojson`` and the report section.
    Returns the run result and the change counts. ``client``: an existing Dask client (else one is made)."""
    interval = season_interval(season)
    if "://" in str(out):
        raise ConfigError("heattrack screen writes to a local folder (compare, then copy to object storage)")
    cfg = with_season_search(cfg, interval)
    prev_info = read_previous(previous) if previous is not None else None
    plan = plan_run(cfg)
    if prev_info is not None:  # refuse before any tile runs
        grid = GridInfo(crs=grid_crs_label(plan.grid.crs), tile_px=plan.grid.tile_px,
                        resolution_m=plan.grid.resolution_m)
        check_comparable(prev_info, grid, network_signature(plan.pipes), previous)
    info = {"season": season, "season_interval": interval,
            "previous": None if prev_info is None else PreviousSeason(
                folder=str(previous), season=prev_info.season, processing_hash=prev_info.processing_hash)}
    result = run(cfg, out, resume=resume, overwrite=overwrite, progress=progress, plan=plan, info=info,
                 client=client)
    counts: dict = {}
    if previous is not None:
        changes, how = compare_seasons(previous, Path(out), cfg)
        write_geojson(changes, Path(out) / "changes.geojson")
        counts = {f"{k}_{cl}": int(((changes["kind"] == k) & (changes["change"] == cl)).sum())
                  for k in ("segment", "hotspot") for cl in CHANGE_CLASSES if cl != "stable"} if len(changes) else {}
        summary = change_summary(how, counts.get("segment_new", 0), how["pipe_km"], cfg, prev_info.season)
        (Path(out) / "changes.json").write_text(summary.to_json())
        counts |= summary.model_dump(include={"rule", "estimated_false_new", "estimated_false_new_per_100km",
                                              "bound_false_new_per_100km", "note", "new_warming_k", "new_z_used",
                                              "fitted_false_new_per_100km"}, exclude_none=True)
        rebuild_report(Path(out))  # adds the "what changed" section from changes.geojson
    return result, counts
