"""Reduction of the per-tile records to the segment ranking and the hotspot table (one pass over the records;
the ranking statistic and detectability are the pure kernels of ``kernels/ranking.py``)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine

from heattrack.io.point_statistic import PointStatistic
from heattrack.io.records import NetworkSignature, TileSummary
from heattrack.io.store import TileRecords
from heattrack.kernels.lst import nanmean_layers
from heattrack.kernels.null_tail import MIN_SEGMENTS, fit_tail_null
from heattrack.kernels.ranking import (
    SegmentStatistic,
    chain_attenuation,
    combine_dates,
    network_share_visible,
    segment_shares,
    segment_statistic,
)
from heattrack.kernels.segments import score_segments, segment_argmax
from heattrack.orchestration.run_plan import RunPlan


def reduce_segments(plan: RunPlan, records: TileRecords) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, dict]:
    """Combine every tile record into the segment ranking and the hotspot table (grid CRS)."""
    n_pts = len(plan.points)
    p_risk = np.full(n_pts, np.nan)
    p_dt = np.full(n_pts, np.nan)
    labels = plan.date_labels
    p_risk_d = np.full((len(labels), n_pts), np.nan)
    p_stat_d = np.full((len(labels), n_pts), np.nan)
    p_err_d = np.full((len(labels), n_pts), np.nan)  # the source's LST uncertainty at the points (ECOSTRESS)
    p_base_d = np.full((len(labels), n_pts), np.nan)  # the network-neighbourhood clutter at the points (mdl_k)
    hs = {k: [] for k in ("hs_x", "hs_y", "hs_peak_dt", "hs_peak_score", "hs_area_m2")}
    ae = {k: [] for k in ("ae_in", "ae_rec", "ae_risk")}
    n_valid = n_pix = 0
    tiles = {}
    f = plan.cfg.thermal_factor
    mh, mw = plan.grid.mosaic_geobox.shape.yx
    overview = np.full((mh // f, mw // f), np.nan, np.float32)  # risk at the thermal pixel, from the records
    ov_stat = np.full((len(labels), mh // f, mw // f), np.nan, np.float32)  # leak-free evidence, for mdl_k
    injected = []  # measured attenuations of the injection test (calibration tiles)
    for idx, (arrays, summary) in zip(plan.grid.tiles, records.read_many(plan.grid.tiles)):
        if "injected_attenuation" in arrays:
            injected.append(arrays["injected_attenuation"])
        if "ov_risk" in arrays:
            r, c = plan.grid.tile_slices(idx)
            overview[r.start // f: r.stop // f, c.start // f: c.stop // f] = arrays["ov_risk"]
            if "ov_stat_by_date" in arrays:
                v = arrays["ov_stat_by_date"]
                ov_stat[: v.shape[0], r.start // f: r.stop // f, c.start // f: c.stop // f] = v
        p_risk[arrays["point_ids"]] = arrays["point_risk"]
        p_dt[arrays["point_ids"]] = arrays["point_dt"]
        by_date = arrays["point_risk_by_date"]
        p_risk_d[: by_date.shape[0], arrays["point_ids"]] = by_date
        stat = arrays["point_stat_by_date"]
        p_stat_d[: stat.shape[0], arrays["point_ids"]] = stat
        # records written before the neighbourhood clutter existed: the points' own values (the old base)
        base = arrays.get("point_base_by_date", stat)
        p_base_d[: base.shape[0], arrays["point_ids"]] = base
        if "point_err_by_date" in arrays:
            err = arrays["point_err_by_date"]
            p_err_d[: err.shape[0], arrays["point_ids"]] = err
        for k in hs:
            hs[k].append(arrays[k])
        if "ae_risk" in arrays:
            for k in ae:
                ae[k].append(arrays[k])
        n_valid += summary.n_valid
        n_pix += summary.pixels
        tiles[summary.tile] = summary
    cfg = plan.cfg
    scores = score_segments(p_risk, p_dt, plan.points.segment, len(plan.pipes), top_k=cfg.segments.top_k)
    seg = plan.pipes.copy()
    seg["risk"] = np.round(scores.risk, 4)
    seg["delta_t_k"] = np.round(scores.delta_t_k, 3)
    seg["n_clear_px"] = scores.n_clear_px
    # the share of the segment's sample points with clear data: a segment partly under cloud is ranked from its clear
    # part, and a leak under the cloud on the rest is not in its rank (benchmarks/family.py: "seen where the leak is")
    n_points = np.bincount(plan.points.segment, minlength=len(plan.pipes))
    seg["clear_share"] = np.round(np.where(n_points > 0, scores.n_clear_px / np.maximum(n_points, 1), 0.0), 3)
    seg["length_m"] = np.round(seg.geometry.length, 1)
    ok = np.isfinite(scores.risk)
    seg["status"] = np.where(ok, "ok", "no_data")
    by_date = [score_segments(p_risk_d[i], p_dt, plan.points.segment, len(plan.pipes), top_k=cfg.segments.top_k)
               for i in range(len(labels))]
    seg["n_dates"] = np.sum([np.isfinite(b.risk) for b in by_date], axis=0).astype(np.int64)
    if len(labels) > 1:  # per-date evidence: one column per Landsat date (STAC: per k-th best pair)
        for label, b in zip(labels, by_date):
            seg[f"risk_{label}"] = np.round(b.risk, 4)
    detectability = None
    if cfg.detect.method in ("residual", "baseline"):
        # the ranking statistic, z / p against the network-wide null, and each segment's detectability
        res = cfg.grid.resolution_m
        chains = plan.chains()
        model_atts = [chain_attenuation(plume_fwhm_px=cfg.segments.mdl_plume_fwhm_m / res, **c) for c in chains]
        measured = np.concatenate(injected) if injected else np.zeros(0)
        chain = chains[0] if len(chains) == 1 else None
        # the statistic's window along the pipe per chain, the share of a plume a window centred on it keeps, and per
        # segment the share expected where the leak's position along it is unknown (its ends cut the window)
        windows = [plan.scan_window_pts(c) for c in chains]
        shares = [segment_shares(c, cfg.segments.mdl_plume_fwhm_m / res, w, cfg.segments.spacing_m / res, n_points)
                  for c, w in zip(chains, windows)]
        short_gain = np.stack([seg_share / centred for seg_share, centred in shares])
        window_atts = np.array([centred for _, centred in shares])
        if measured.size >= 10:  # the injection test measured the Landsat chain's share over its window
            window_atts[np.array([c == plan.landsat_chain for c in chains])] = float(np.median(measured))
        has_err = bool(np.isfinite(p_err_d).any())  # a source with its own LST uncertainty (ECOSTRESS LST_err)
        st = segment_statistic(p_stat_d, plan.points.segment, len(plan.pipes),
                               window_atts if chain is None else window_atts[0],
                               cfg.segments.mdl_alpha, cfg.segments.mdl_plume_fwhm_m,
                               point_err_by_date=p_err_d if has_err else None,
                               point_base_by_date=p_base_d,
                               window_pts=windows if chain is None else windows[0],
                               short_gain=short_gain if chain is None else short_gain[:1],
                               # a fine thermal raster sees hot roads over the pipes as sharply as a leak: the default
                               # ranks its segments against the network around them (the baseline stays as it is)
                               relative_to_base=plan.fine_thermal and cfg.detect.method == "residual")
        ok = np.isfinite(st.stat_k)
        seg["status"] = np.where(ok, "ok", "no_data")
        seg["n_dates"] = st.n_dates
        if len(labels) > 1:  # per-date evidence: that date's statistic against that date's network null
            for label, s_d in zip(labels, st.per_date_k):
                seg[f"risk_{label}"] = np.round(1.0 - fit_tail_null(s_d).p_value(s_d), 4)
        seg["risk"] = np.round(np.where(ok, 1.0 - st.p_value, np.nan), 4)
        seg["stat_k"] = np.round(st.stat_k, 4)
        seg["z"] = np.round(st.z, 3)
        seg["p_value"] = st.p_value
        # at or above the flag level: p <= segments.mdl_alpha, the stated false-alarm share among leak-free segments
        seg["flagged"] = st.flagged
        # segments meeting at one hot crossing read the same maximum: the one whose whole length is warmer ranks
        # first (mean of its points' statistic, averaged over the dates)
        seg["stat_mean_k"] = np.round(st.mean_k, 4)
        seg["mdl_k"] = np.round(st.mdl_k, 2)
        seg["mdl_k_m2"] = np.round(st.mdl_k_m2, 0)
        key, tie = np.nan_to_num(st.stat_k, nan=-1e9), np.nan_to_num(st.mean_k, nan=-1e9)
        # each point's season value, for next season's change classes (where a segment warmed)
        point_stat = PointStatistic(segment_ids=plan.pipes["segment_id"].astype(str).to_numpy(),
                                    segment=plan.points.segment, x=plan.points.x, y=plan.points.y,
                                    stat_k=nanmean_layers(p_stat_d))
        mdl_view = mdl_raster(ov_stat, st, None if chain is not None else window_atts)
        detectability = {"alpha": cfg.segments.mdl_alpha, "plume_fwhm_m": cfg.segments.mdl_plume_fwhm_m,
                         "sensor_sigma_m": round(plan.sensor_sigma_m, 2), "attenuation": round(st.attenuation, 4),
                         "attenuation_model": [round(float(centred), 4) for _, centred in shares],
                         "attenuation_peak_model": [round(float(a), 4) for a in model_atts],
                         "window_points": windows[0] if chain is not None else windows,
                         "window_m": round(float(windows[0] * cfg.segments.spacing_m), 1),
                         "injection": {"plumes": int(measured.size), "median": round(float(np.median(measured)), 4)
                                       if measured.size else None},
                         "chain": chain,
                         **({} if chain is not None else {"chain_by_date": dict(zip(labels, chains)),
                                                          "attenuation_by_date": {k: round(float(v), 4) for k, v in
                                                                                  zip(labels, window_atts)}}),
                         "flag_level_k": round(st.flag_level_k, 4),
                         "flags": st.null_summary(cfg.segments.mdl_alpha),
                         "lst_err_weights": len(labels) > 1 and has_err,
                         "network_share_visible": network_share_visible(st.mdl_k, seg.geometry.length.to_numpy())}
    else:
        key = np.nan_to_num(scores.risk, nan=-1.0)
        tie = np.nan_to_num(scores.delta_t_k, nan=-1e9)
    _hottest_point(seg, plan, p_stat_d if "stat_k" in seg.columns else p_dt[None])
    order = np.lexsort((seg["segment_id"].values, -tie, -key))
    rank = np.full(len(seg), np.nan)
    ranked = order[ok[order]]
    rank[ranked] = np.arange(1, ranked.size + 1)
    seg["rank"] = rank
    seg["rank"] = seg["rank"].astype("Int64")
    seg = seg.sort_values("rank", na_position="last").reset_index(drop=True)
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in hs.items()}
    hot = gpd.GeoDataFrame({
        "delta_t_k": np.round(cat["hs_peak_dt"], 3), "peak_risk": np.round(cat["hs_peak_score"], 4),
        "area_m2": cat["hs_area_m2"]}, geometry=gpd.points_from_xy(cat["hs_x"], cat["hs_y"]), crs=seg.crs)
    if len(hot) and len(seg):
        tree = shapely.STRtree(seg.geometry.values)
        (src, tgt), dist = tree.query_nearest(hot.geometry.values, return_distance=True, all_matches=False)
        hot.loc[src, "segment_id"] = seg["segment_id"].values[tgt]
        hot.loc[src, "distance_m"] = np.round(dist, 1)
    else:
        hot["segment_id"] = None
        hot["distance_m"] = np.nan
    hot = hot.sort_values("delta_t_k", ascending=False).reset_index(drop=True)
    hot.insert(0, "hotspot_id", [f"hs-{i + 1:05d}" for i in range(len(hot))])
    stats = {"n_valid_px": int(n_valid), "n_px": int(n_pix), "tiles": tiles,
             "segments_ok": int(ok.sum()), "segments_no_data": int((~ok).sum()), "hotspots": int(len(hot))}
    if detectability is not None:
        stats["detectability"] = detectability
        stats["point_statistic"] = point_stat
    rows, cols = plan.grid.aoi_window()
    r0, c0 = rows.start // f, cols.start // f
    aoi = (slice(r0, -(-rows.stop // f)), slice(c0, -(-cols.stop // f)))  # the AOI on the thermal-pixel views
    ov_transform = plan.grid.mosaic_geobox.affine @ Affine.translation(c0 * f, r0 * f) @ Affine.scale(f)
    stats["risk_overview"] = (overview[aoi], ov_transform)
    if detectability is not None:
        stats["mdl_overview"] = (mdl_view[aoi], ov_transform)
    if ae["ae_risk"]:  # report examples: the 3 highest-risk pixels of the run and the lowest of the tile medians
        cat_ae = {k: np.concatenate(v) for k, v in ae.items()}
        order = np.argsort(-cat_ae["ae_risk"], kind="stable")
        pick = np.concatenate([order[:3], order[-1:]]) if len(order) > 3 else order
        stats["ae_examples"] = {k: v[pick] for k, v in cat_ae.items()}
    return seg, hot, stats


def mdl_raster(stat_by_date: np.ndarray, st: SegmentStatistic, attenuation_by_date: np.ndarray | None) -> np.ndarray:
    """``mdl_k`` for a pipe anywhere, per thermal pixel: the smallest peak (K) of the configured plume that would
    lift a leak-free point there (the pixel's median of the ranking statistic's field, ``stat_by_date``) to the
    run's flag level, as :func:`heattrack.kernels.ranking.segment_statistic` does per segment. Dates of different
    sensors (``attenuation_by_date``) are combined by :func:`heattrack.kernels.ranking.combine_dates` like the
    segments' dates, each weighted by its own spread (here over the raster, there over the network). NaN without
    data. Where the segments were ranked relative to the network around them, so is a pipe anywhere."""
    flat = stat_by_date.reshape(len(stat_by_date), -1)
    if attenuation_by_date is not None:
        typical, a = combine_dates(flat, np.asarray(attenuation_by_date, dtype=float))[0], 1.0
    else:
        typical, a = nanmean_layers(flat), st.attenuation
    if st.relative_to_base:  # the statistic is the excess over that clutter: a leak-free point reads ~0
        typical = np.where(np.isfinite(typical), 0.0, np.nan)
    with np.errstate(invalid="ignore"):
        mdl = np.where(np.isfinite(typical), np.maximum(st.flag_level_k - typical, 0.0) / a, np.nan)
    return mdl.reshape(stat_by_date.shape[1:]).astype(np.float32)


def _hottest_point(seg: gpd.GeoDataFrame, plan: RunPlan, point_values: np.ndarray) -> None:
    """``hot_lon``/``hot_lat``: the sample point with the strongest evidence (mean over dates) of each segment, in
    lon/lat, where a crew starts looking (NaN for a segment without data)."""
    from pyproj import Transformer

    idx = segment_argmax(nanmean_layers(point_values), plan.points.segment, len(seg))
    has = idx >= 0
    x = np.where(has, plan.points.x[np.maximum(idx, 0)], np.nan)
    y = np.where(has, plan.points.y[np.maximum(idx, 0)], np.nan)
    lon, lat = Transformer.from_crs(seg.crs, "EPSG:4326", always_xy=True).transform(x, y)
    seg["hot_lon"] = np.round(np.where(has, lon, np.nan), 6)
    seg["hot_lat"] = np.round(np.where(has, lat, np.nan), 6)


def network_signature(pipes: gpd.GeoDataFrame) -> NetworkSignature:
    """Identity of a pipe network version: segment count and a hash of the segment ids and geometries (grid CRS,
    centimetre precision). Two seasons can only be compared segment by segment when these agree."""
    import hashlib

    order = np.argsort(pipes["segment_id"].astype(str).values, kind="stable")
    ids = pipes["segment_id"].astype(str).values[order]
    wkbs = shapely.to_wkb(shapely.set_precision(pipes.geometry.values[order], 0.01))
    # one update of the joined records: the digest of the records fed one by one (SHA-256 streams)
    h = hashlib.sha256(b"".join(sid.encode() + b"\0" + wkb for sid, wkb in zip(ids, wkbs)))
    return NetworkSignature(n_segments=int(len(pipes)), sha256=h.hexdigest()[:16])


def alignment_warning(tile_summaries: dict[str, TileSummary]) -> str | None:
    """One sentence when the tile tasks moved a fine raster's pipe points onto the network's heat
    (``thermal.align_m``; each tile date's shift is in ``tile_summaries -> dates -> pipe_shift_m``), else None."""
    shifts = np.array([d["pipe_shift_m"] for t in tile_summaries.values() for d in t.dates if "pipe_shift_m" in d],
                      dtype=float).reshape(-1, 2)
    moved = np.hypot(shifts[:, 0], shifts[:, 1]) > 0
    if not moved.any():
        return None
    dx, dy = np.median(shifts[moved], axis=0)
    return (f"the pipe map was moved onto the thermal raster's street heat on {int(moved.sum())} of {len(shifts)} "
            f"tile dates (median {dx:+.0f} m east, {dy:+.0f} m north; thermal.align_m): check the network map's "
            "registration against the raster")


#: share of the network's length without a clear pixel above which the note becomes a warning of the run
UNSCREENED_WARN_SHARE = 0.2


def unscreened_note(seg: gpd.GeoDataFrame) -> tuple[str, float] | None:
    """One sentence on the segments no date saw clearly (``status`` no_data: cloud, cloud shadow, outside the scenes)
    and their share of the network's length; None when every segment was scored. They have no rank: a clean result
    says nothing about them."""
    nd = (seg["status"] != "ok").to_numpy()
    if not nd.any():
        return None
    length = seg["length_m"].to_numpy(dtype=float)
    share = float(length[nd].sum() / max(length.sum(), 1e-9))
    return (f"{int(nd.sum()):,} of {len(seg):,} segments ({length[nd].sum() / 1000:,.1f} of {length.sum() / 1000:,.1f} "
            f"km of pipe, {share:.0%}) had no clear pixel on the run's dates (cloud, cloud shadow or outside the "
            "scenes) and are not ranked: a clean result says nothing about them; another date screens them "
            "(an input folder with one sub-folder per date pair, or heattrack screen over the season)", share)


#: a ranked segment with clear data at fewer than this share of its sample points is *partly seen*: its score reads
#: the clear part only, and a leak under the cloud on the rest is not in it (the runs' ``clear_share``)
PARTLY_SEEN_SHARE = 0.5


def partly_seen(seg: gpd.GeoDataFrame) -> np.ndarray:
    """Per row of a segment table: ranked (``status`` ok) and seen on less than ``PARTLY_SEEN_SHARE`` of its sample
    points (``clear_share``); all False for a table without ``clear_share`` (runs of earlier versions)."""
    if "clear_share" not in seg.columns:
        return np.zeros(len(seg), dtype=bool)
    return ((seg["status"] == "ok") & (seg["clear_share"] < PARTLY_SEEN_SHARE)).to_numpy()


def partly_seen_note(seg: gpd.GeoDataFrame) -> str | None:
    """One sentence on the ranked segments seen on less than ``PARTLY_SEEN_SHARE`` of their length (``clear_share``):
    their rank reads their clear part only. None where there are none (or no ``clear_share``: older runs)."""
    part = partly_seen(seg)
    if not part.any():
        return None
    km = float(seg["length_m"].to_numpy(dtype=float)[part].sum()) / 1000
    return (f"{int(part.sum()):,} ranked segments ({km:,.1f} km) were seen on less than half of their length "
            f"(clear_share < {PARTLY_SEEN_SHARE:g}): their rank reads the clear part only, a leak under the cloud on "
            "the rest is not in it")


def detectability_note(seg: gpd.GeoDataFrame, plume_fwhm_m: float) -> str | None:
    """One sentence on what the screen could see: the share of the ranked network's length where a leak of 3, 5 and
    10 K peak (a ``plume_fwhm_m`` wide plume) would reach the flag level (``mdl_k``) and the median ``mdl_k``; None
    where no segment has one (a network too small for its null, an older run)."""
    if not {"mdl_k", "length_m", "status"} <= set(seg.columns):
        return None
    mdl = pd.to_numeric(seg["mdl_k"], errors="coerce").to_numpy(dtype=float)
    ok = np.isfinite(mdl) & (seg["status"] == "ok").to_numpy()
    if not ok.any():
        return None
    share = network_share_visible(mdl[ok], seg["length_m"].to_numpy(dtype=float)[ok])
    pct = {k: f"{v:.0%}" if v == 0 or v >= 0.01 else "under 1%" for k, v in share.items()}
    return (f"what this screen could see: a leak whose plume is {plume_fwhm_m:g} m wide would reach the flag level on "
            f"{pct['3']} of the ranked network at a 3 K peak, {pct['5']} at 5 K, {pct['10']} at 10 K (median mdl_k "
            f"{np.median(mdl[ok]):.1f} K; segments.geojson -> mdl_k, mapped in the report)")


def small_network_warning(seg: gpd.GeoDataFrame) -> str | None:
    """A sentence where fewer segments than the network's null needs (:data:`MIN_SEGMENTS`) were ranked by a
    statistic: none is flagged and detectability is not stated; their order still holds."""
    if "z" not in seg.columns or "status" not in seg.columns:
        return None
    n = int((seg["status"] == "ok").sum())
    if n == 0 or n >= MIN_SEGMENTS:
        return None
    return (f"only {n} segment{'s' if n > 1 else ''} ranked: the flag level and detectability come from the "
            f"network's own spread, which needs at least {MIN_SEGMENTS} segments, so none is flagged and mdl_k is "
            "not given; rank and stat_k still order them (screen a larger network, or read the rank alone)")


def unscreened_warning(seg: gpd.GeoDataFrame) -> str | None:
    """:func:`unscreened_note`'s sentence where more than ``UNSCREENED_WARN_SHARE`` of the network's length was not
    seen: a warning of the run (run.json, the report, the CLI)."""
    note = unscreened_note(seg)
    return note[0] if note is not None and note[1] > UNSCREENED_WARN_SHARE else None
