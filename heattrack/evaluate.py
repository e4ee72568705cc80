"""Validation against truth: downscaling RMSE/bias and segment detection metrics.

``segment_metrics`` and ``lst_errors`` are pure functions; ``evaluate_run`` reads a simulated scene's
``truth/`` and a finished run's outputs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from rasterio.enums import Resampling

from heattrack.errors import InputError
from heattrack.kernels.roc import auc_interval, paired_auc_difference

log = logging.getLogger(__name__)

FALSE_ALARM_RATES_PER_KM = (0.05, 0.1, 0.5)


def lst_errors(estimate: np.ndarray, truth: np.ndarray) -> dict:
    """RMSE and bias (K) of ``estimate - truth`` over pixels where both are finite."""
    ok = np.isfinite(estimate) & np.isfinite(truth)
    if not ok.any():
        return {"rmse_k": float("nan"), "bias_k": float("nan"), "n_px": 0}
    d = estimate[ok].astype(np.float64) - truth[ok]
    return {"rmse_k": float(np.sqrt(np.mean(d * d))), "bias_k": float(d.mean()), "n_px": int(ok.sum())}


def flagged_at_false_alarm_rate(risk: np.ndarray, is_leak: np.ndarray, length_km: np.ndarray,
                                rate_per_km: float) -> np.ndarray:
    """Boolean mask of the segments flagged when the risk threshold is set so that non-leaking flagged
    segments stay at or below ``rate_per_km`` per km of pipe in the evaluated network."""
    order = np.argsort(-risk, kind="stable")
    fa = np.cumsum(~is_leak[order])
    k = int(np.searchsorted(fa, rate_per_km * length_km.sum(), side="right"))  # first k keep fa <= allowed
    flagged = np.zeros(risk.shape, bool)
    flagged[order[:k]] = True
    return flagged


def recall_at_false_alarm_rate(risk: np.ndarray, is_leak: np.ndarray, length_km: np.ndarray,
                               rate_per_km: float) -> float:
    """Share of leaking segments flagged at ``rate_per_km`` false alarms per km of pipe."""
    flagged = flagged_at_false_alarm_rate(risk, is_leak, length_km, rate_per_km)
    return float((flagged & is_leak).sum() / max(is_leak.sum(), 1))


def segment_metrics(risk: np.ndarray, is_leak: np.ndarray, length_km: np.ndarray) -> dict:
    """ROC-AUC, PR-AUC, recall in the top 5 % of segments, recall at stated false-alarm rates per km."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    ok = np.isfinite(risk)
    r, y, L = risk[ok], is_leak[ok].astype(bool), length_km[ok]
    out = {"n_segments": int(ok.size), "n_scored": int(ok.sum()), "n_leaks": int(is_leak.sum()),
           "n_leaks_scored": int(y.sum()), "pipe_km_scored": float(L.sum())}
    if y.sum() == 0 or y.all():
        return {**out, "roc_auc": float("nan"), "pr_auc": float("nan"), "recall_top5pct": float("nan")}
    k = max(1, int(np.ceil(0.05 * r.size)))
    top = np.argsort(-r, kind="stable")[:k]
    out.update({
        "roc_auc": float(roc_auc_score(y, r)),
        "roc_auc_ci95": list(auc_interval(r, y)[1:]),  # DeLong: how far another draw of the leaks could move it
        "pr_auc": float(average_precision_score(y, r)),
        "recall_top5pct": float(y[top].sum() / y.sum()),
        "recall_at_false_alarms_per_km": {str(a): recall_at_false_alarm_rate(r, y, L, a)
                                          for a in FALSE_ALARM_RATES_PER_KM},
    })
    return out


def score_from_rank(rank) -> np.ndarray:
    """A run's ``rank`` column as a score (minus the rank: rank 1 is the most suspicious; NaN for a segment without
    data, which ranks last)."""
    r = pd.to_numeric(pd.Series(rank), errors="coerce").to_numpy(dtype=float)
    return np.where(np.isfinite(r), -r, np.nan)


def _read_truth(scene: Path) -> dict:
    truth_file = Path(scene) / "truth" / "truth.json"
    if not truth_file.exists():
        raise InputError(f"{scene} has no truth/truth.json: evaluation needs a simulated scene")
    return json.loads(truth_file.read_text())


def _segments_file(out: Path) -> Path:
    path = Path(out) / "segments.geojson"
    if not path.exists():
        raise InputError(f"{out} holds no finished run (segments.geojson missing)")
    return path


def ranking_score(out: Path) -> pd.Series:
    """A finished run's ranking as a score per ``segment_id`` (:func:`score_from_rank`)."""
    seg = gpd.read_file(_segments_file(out), columns=["segment_id", "rank"], ignore_geometry=True)
    return pd.Series(score_from_rank(seg["rank"]), index=seg["segment_id"].to_numpy())


def compare_rankings(scene: Path, out_a: Path, out_b: Path) -> dict:
    """Segment ROC-AUC of run ``out_a``'s ranking minus ``out_b``'s on the same simulated ``scene``, paired over the
    segments both scored: the difference, its DeLong standard error, 95 % interval and two-sided p-value
    (:func:`heattrack.kernels.roc.paired_auc_difference`)."""
    truth = _read_truth(scene)
    a, b = ranking_score(out_a), ranking_score(out_b)
    b = b.reindex(a.index)
    return paired_auc_difference(a.to_numpy(), b.to_numpy(), a.index.isin(truth["leak_segment_ids"]))


def evaluate_run(scene: Path, out: Path) -> dict:
    """Compare a finished run in ``out`` with the truth of the simulated ``scene``."""
    scene, out = Path(scene), Path(out)
    truth, seg_file = _read_truth(scene), _segments_file(out)
    import rioxarray  # noqa: F401  (registers .rio)

    ds = xr.open_zarr(out / "mosaic.zarr")
    t = xr.open_dataarray(scene / "truth" / "lst_10m.tif", engine="rasterio").squeeze("band", drop=True)
    ref = ds["lst_10m"].rio.write_crs(ds["spatial_ref"].attrs["crs_wkt"])
    t_on = t.rio.reproject_match(ref, resampling=Resampling.nearest, nodata=np.nan)
    valid = ds["valid"].values == 1
    truth_arr = np.where(valid, t_on.values, np.nan)
    sharp = lst_errors(ds["lst_10m"].values, truth_arr)
    plain = lst_errors(ds["lst_plain"].values, truth_arr)
    seg = gpd.read_file(seg_file)
    leaks = set(truth["leak_segment_ids"])
    length_km = seg.to_crs(truth["crs"]).geometry.length.to_numpy() / 1000.0
    det = segment_metrics(score_from_rank(seg["rank"]), seg["segment_id"].isin(leaks).to_numpy(), length_km)
    return {
        "scene": str(scene), "run": str(out),
        "downscaling": {"rmse_sharpened_k": sharp["rmse_k"], "bias_sharpened_k": sharp["bias_k"],
                        "rmse_bilinear_k": plain["rmse_k"], "bias_bilinear_k": plain["bias_k"],
                        "n_px": sharp["n_px"],
                        "rmse_ratio_bilinear_over_sharpened": plain["rmse_k"] / sharp["rmse_k"]
                        if sharp["rmse_k"] else float("nan")},
        "detection": det,
    }


def aggregate_sharpen_compare(lst: np.ndarray, bands: dict[str, np.ndarray], factor: int = 3,
                              methods: tuple[str, ...] = ("bilinear", "tsharp", "dms"), seed: int = 0,
                              eval_factor: int = 1, psf_sigma_m: float | None = None,
                              pixel_m: float = 30.0, known: dict[str, np.ndarray] | None = None,
                              psf_from_data: bool = True, regions: dict[str, np.ndarray] | None = None) -> dict:
    """Validation protocol without fine truth: aggregate LST by ``factor``, sharpen it back with the fine
    optical bands, compare with the original (RMSE/bias in K) for each method.

    ``bands``: reflectances 0-1 on the LST grid, Sentinel-2 names (``B04``, ``B08`` required; Landsat SR bands
    mapped with :data:`heattrack.kernels.predictors.LANDSAT_TO_S2`). Inputs are cropped to a multiple of
    ``factor``. The aggregated LST is a block mean of a field that already carries the sensor footprint, so
    DMS aggregates its predictors with that footprint (``psf_sigma_m``, default Landsat TIRS's, in pixels of
    ``pixel_m``; with ``psf_from_data``, as the chain does, widened to the product's footprint the scene shows:
    :func:`heattrack.kernels.footprint.product_footprint`). Mind that Landsat ST at 30 m already carries only ~100 m
    information: a method that adds true 30 m detail is penalised against a 30 m "truth" that lacks it.
    ``eval_factor`` > 1 compares after averaging both by that factor (e.g. factor 9 = 270 m, eval_factor 3 =
    compared at 90 m).
    Each method also gets ``rmse_seen_k`` / ``bias_seen_k``: its field seen through the same footprint
    (Gaussian ``psf_sigma_m``) before that averaging, as the sensor would have recorded it — the like-for-like
    comparison with pixels that carry the footprint; ``rmse_k`` is the plain one (the issue's protocol).
    ``known``: fields on the LST grid scored the same way under their own names (a simulated scene's true LST:
    what a perfect sharpener would deliver, the protocol's own ceiling).
    ``regions``: boolean masks on the LST grid (e.g. land and water); each method then also gets ``by_region``, its
    RMSE as is and seen over each (at ``eval_factor``, a compared cell belongs to a region where most of it does).
    """
    from heattrack.config import Config
    from heattrack.kernels.dms import DMSParams, dms_sharpen, local_window_cells
    from heattrack.kernels.features import ndvi
    from heattrack.kernels.footprint import product_footprint
    from heattrack.kernels.lst import SharpenResult, bilinear_sharpen, block_mean, tsharp_sharpen
    from heattrack.kernels.predictors import LANDSAT_TIRS_PSF_SIGMA_M, predictor_stack, psf_blur

    step = int(np.lcm(factor, eval_factor))
    h, w = (lst.shape[0] // step) * step, (lst.shape[1] // step) * step
    lst = lst[:h, :w]
    bands = {k: np.asarray(v, dtype=np.float32)[:h, :w] for k, v in bands.items()}
    nd = ndvi(bands["B04"], bands["B08"])
    valid = np.isfinite(lst) & np.isfinite(nd)
    coarse = block_mean(np.where(valid, lst, np.nan), factor, 0.5)
    truth = np.where(valid, lst, np.nan)
    sigma_px = (LANDSAT_TIRS_PSF_SIGMA_M if psf_sigma_m is None else psf_sigma_m) / pixel_m

    window_m = Config().downscale.dms_local_window_m
    local = local_window_cells(window_m, pixel_m * factor)  # the chain's window (m) in this protocol's coarse cells

    def run_dms():
        stack, names = predictor_stack(bands, valid)
        params, footprint = DMSParams(seed=seed, psf_sigma_px=sigma_px, local_window=local), None
        if psf_from_data:
            params, footprint = product_footprint(np.where(valid, lst, np.nan), stack, valid, params)
        res = dms_sharpen(coarse, stack, valid, factor, params, names=names)
        return SharpenResult(res.lst, {**res.info, "footprint": footprint} if footprint else res.info, res.expected)

    runners = {
        "bilinear": lambda: bilinear_sharpen(coarse, valid, factor),
        "tsharp": lambda: tsharp_sharpen(coarse, nd, valid, factor),
        "dms": run_dms,
    }
    results = {"factor": factor, "eval_factor": eval_factor, "n_px": int(valid.sum()),
               "bands": sorted(bands)}
    ref = block_mean(truth, eval_factor, 0.5) if eval_factor > 1 else truth

    within = {k: (block_mean(np.asarray(m[:h, :w], np.float32), eval_factor) > 0.5 if eval_factor > 1
                  else np.asarray(m[:h, :w], bool)) for k, m in (regions or {}).items()}

    def compared(est: np.ndarray, region: str | None = None) -> dict:
        if eval_factor > 1:
            est = block_mean(np.where(np.isfinite(truth), est, np.nan), eval_factor, 0.5)
        return lst_errors(est if region is None else np.where(within[region], est, np.nan), ref)

    def score(name: str, field: np.ndarray, info: dict) -> None:
        seen_field = psf_blur(field, sigma_px)  # NaN stays NaN
        e, seen = compared(field), compared(seen_field)
        results[name] = {"rmse_k": e["rmse_k"], "bias_k": e["bias_k"], "rmse_seen_k": seen["rmse_k"],
                         "bias_seen_k": seen["bias_k"], "info": info}
        if within:
            results[name]["by_region"] = {k: {"rmse_k": (r := compared(field, k))["rmse_k"], "n_px": r["n_px"],
                                              "rmse_seen_k": compared(seen_field, k)["rmse_k"]} for k in within}

    for name in methods:
        res = runners[name]()
        score(name, res.lst, res.info)
    cell = f"{pixel_m * factor:g} m"
    used = results.get("dms", {}).get("info", {}).get("local_models", {}).get("used")
    results["dms_local_models"] = (
        f"DMS local models: off here ({window_m:g} m windows need at least 3 coarse pixels; these are {cell}), so "
        "this protocol does not test them." if not local else
        f"DMS local models ({local} cells of {cell} per window): {'used' if used else 'not used'} on this scene.")
    fp = results.get("dms", {}).get("info", {}).get("footprint")
    results["dms_footprint"] = "" if not fp else (
        f"DMS saw the thermal pixels through a {fp['psf_sigma_px'] * pixel_m:.0f} m footprint (Gaussian sigma; "
        + ("estimated from the scene, r2 " + f"{fp['r2']:.2f}" if fp["source"] == "estimated" else
           "the sensor's: the scene did not tell") + f"; TIRS alone {sigma_px * pixel_m:.0f} m).")
    results["dms_guard"] = guard_line(results.get("dms", {}).get("info", {}))
    results["dms_notes"] = " ".join(n for n in (results["dms_guard"], results["dms_local_models"],
                                                results["dms_footprint"]) if n)
    for name, field in (known or {}).items():
        score(name, np.asarray(field, dtype=np.float32)[:h, :w], {"method": "known"})
    return results


def land_and_water(bands: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """Land and open water of a scene's reflectances (water: MNDWI = (green - SWIR1) / (green + SWIR1) > 0, Xu 2006,
    from B03 and B11), for errors over each apart; None where the scene lacks those bands or holds hardly any water
    (under 5 % of its pixels, or of its land)."""
    if "B03" not in bands or "B11" not in bands:
        return None
    g, sw = (np.asarray(bands[b], dtype=np.float32) for b in ("B03", "B11"))
    with np.errstate(invalid="ignore", divide="ignore"):
        water = (g - sw) / (g + sw) > 0
    share = float(water.mean())
    return {"land": ~water, "water": water} if 0.05 <= share <= 0.95 else None


def region_line(res: dict) -> str:
    """One sentence of each method's gain over bilinear over land and over water apart (``by_region`` of
    :func:`aggregate_sharpen_compare`); empty without regions."""
    if "by_region" not in res.get("bilinear", {}):
        return ""
    parts = []
    for region, base in res["bilinear"]["by_region"].items():
        gains = ", ".join(f"{m} {base['rmse_k'] / res[m]['by_region'][region]['rmse_k']:.2f}x"
                          for m in ("tsharp", "dms") if m in res)
        parts.append(f"over {region} ({base['n_px']} compared cells; bilinear {base['rmse_k']:.3f} K) {gains}")
    return ("Gain over bilinear " + "; ".join(parts) + " (water: MNDWI > 0 from the green and SWIR1 bands; a coast's "
            "sharp edge can carry a crop's whole gain).")


def guard_line(info: dict) -> str:
    """The DMS guard's decision in one sentence: what it delivered, why, and its two checks' RMSE per candidate (the
    held-out coarse cells, one scale up); empty where the guard did not run (``info`` of a DMS result)."""
    held, up = info.get("holdout_rmse_k"), info.get("scale_up_rmse_k")
    if not held or not up:
        return ""
    held_s, up_s = (", ".join(f"{m} {d[m]:.3f}" for m in ("dms", "tsharp", "bilinear") if m in d) for d in (held, up))
    why = (info.get("reason") or "DMS passed both checks").removeprefix("guard: ")
    return (f"DMS guard: delivered {info.get('method', 'dms')} ({why}); RMSE (K) on the held-out coarse cells "
            f"{held_s}; one scale up {up_s}.")


def read_landsat_for_asc(folder: Path) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    """ST_B10 (K) and every SR band SR_B2..SR_B7 present (reflectance, keyed by the Sentinel-2 band of the
    same wavelength: SR_B4 -> B04, SR_B5 -> B08; SR_B4 and SR_B5 required) of the one Landsat C2L2 scene in
    ``folder`` (or ``folder/landsat``), masked by QA_PIXEL when present. Returns LST, bands, product name."""
    from heattrack.io.rasterread import open_raster
    from heattrack.kernels.calibrate import sr_dn_to_reflectance, st_dn_to_kelvin
    from heattrack.kernels.predictors import LANDSAT_TO_S2
    from heattrack.kernels.qa import landsat_clear_mask

    folder = Path(folder)
    if (folder / "landsat").is_dir():
        folder = folder / "landsat"
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder")

    scenes = sorted(p.name[: -len("_ST_B10.TIF")] for p in folder.iterdir() if p.name.upper().endswith("_ST_B10.TIF"))
    if len(scenes) > 1:
        log.warning("%s holds %d Landsat scenes; validating the first, %s (a folder per scene validates the others)",
                    folder, len(scenes), scenes[0])
    prefix = scenes[0].upper() if scenes else ""

    def band(name: str, required: bool = True):  # of the one scene: a band missing from it is not taken from another
        hits = sorted(p for p in folder.iterdir() if p.name.upper().startswith(prefix)
                      and p.name.upper().endswith(f"_{name}.TIF"))
        if not hits:
            if required:
                raise InputError(f"{folder}: no *_{name}.TIF (aggregate-sharpen-compare needs ST_B10, SR_B4, SR_B5)")
            return None, None
        try:
            with open_raster(hits[0]) as src:  # a crop without georeferencing is read as it is, without warnings
                return src.read(1), hits[0].name
        except Exception as exc:
            raise InputError(f"cannot read raster {hits[0]}: {str(exc).splitlines()[0]}") from None

    st, name = band("ST_B10")
    lst = st_dn_to_kelvin(st)
    bands = {}
    for sr, s2 in LANDSAT_TO_S2.items():
        dn, _ = band(sr, required=sr in ("SR_B4", "SR_B5"))
        if dn is not None:
            if dn.shape != st.shape:
                raise InputError(f"{folder}: {sr} is {dn.shape[1]}x{dn.shape[0]} px, ST_B10 "
                                 f"{st.shape[1]}x{st.shape[0]}: bands must share one grid")
            bands[s2] = sr_dn_to_reflectance(dn)
    qa, _ = band("QA_PIXEL", required=False)
    if qa is not None:
        lst[~landsat_clear_mask(qa)] = np.nan
    if not np.isfinite(lst).any():
        raise InputError(f"{folder}: no clear, non-fill ST_B10 pixel")
    return lst, bands, name.rsplit("_ST_B10", 1)[0]
