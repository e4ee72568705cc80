"""One tile task (read -> chain -> write region -> record) and its submission to Dask.

``TileTask`` is a frozen record that carries everything a worker needs (no hidden global state); the same
``process_tile`` runs on a Dask worker or in-process (tests, debugging).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from odc.geo.geobox import GeoBox

from heattrack.io.exports import COG_DIR, cog_predictor, tile_cog_bytes
from heattrack.io.location import OutputLocation
from heattrack.io.records import TileSummary
from heattrack.io.sources import SceneReader
from heattrack.io.store import TileRecords, write_tile_region
from heattrack.kernels.alignment import network_shift
from heattrack.kernels.chain import (
    ChainParams,
    ThermalProducts,
    cpu_evidence,
    detect_products,
    injected_attenuation,
    thermal_products,
)
from heattrack.kernels.lst import block_mean, block_median, nan_median_filter, nanmean_layers
from heattrack.kernels.ranking import network_neighbourhood_median
from heattrack.kernels.segments import (
    along_pipe_evidence_at_points,
    label_hotspots,
    on_pipe_peak,
    sample_at_points,
    window_max_at_points,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TileTask:
    """Everything one tile needs: where it is, what to read (one reader per date pair), how to compute,
    where to write."""

    index: tuple[int, int]
    geobox: GeoBox
    halo_px: int
    rows: slice
    cols: slice
    readers: tuple[SceneReader, ...]
    params: ChainParams
    point_ids: np.ndarray
    point_x: np.ndarray
    point_y: np.ndarray
    buffer_px: int
    hotspot_threshold: float
    hotspot_min_area_px: int
    mosaic_path: str
    out_dir: str
    model_path: str | None = None
    torch_threads: int = 1
    offpipe_radius_px: int = 0
    peak_radius_px: int = 0
    #: mosaic layers this task also writes as its own COG (``OUT/cog_tiles/<name>/<ix>_<iy>.tif``, the parts of
    #: the VRT mosaics) and the block factor of the coarse risk view it returns in its record
    cog_layers: tuple[tuple[str, str], ...] = ()
    cog_compression: str = "deflate"
    overview_factor: int = 10
    #: the detectability raster's clutter: median over this many thermal pixels square around each (odd; the
    #: network-neighbourhood scale of the segments' mdl_k, segments.mdl_clutter_cell_m x 3)
    clutter_window_px: int = 1
    #: run the injection test of the detectability model on this tile's sharpened dates (a few tiles per run)
    calibrate_plume_fwhm_px: float = 0.0
    #: ... and the window along the pipe (fine pixels) over which the segment statistic averages
    calibrate_along_px: int = 1
    #: other tiles' sample points in this tile's halo and the cell size of the network-neighbourhood clutter (the
    #: base of mdl_k, :func:`heattrack.kernels.ranking.network_neighbourhood_median`); 0: not computed
    halo_point_x: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    halo_point_y: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    clutter_cell_m: float = 0.0
    #: a fine raster: the pipe points may move up to this many pixels onto the network's heat, per date (0: never;
    #: :func:`heattrack.kernels.alignment.network_shift`)
    align_radius_px: int = 0

    @property
    def key(self) -> str:
        return f"tile-{self.index[0]}_{self.index[1]}"

    @property
    def needs_model(self) -> bool:
        return self.params.detector.method in ("ae", "fused")


def _max_rss_mb() -> float:
    """Peak resident memory of this (worker) process, MB: VmHWM of the current address space on Linux
    (``getrusage`` would report the parent's size for a spawned worker), else the current RSS."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import psutil

    return psutil.Process().memory_info().rss / 2**20


#: tiles computed in this process so far (the first pays the imports and the compiled kernels' loading)
_TILES_IN_PROCESS = itertools.count()


@dataclass
class PreparedDate:
    """Stage 1 of a tile for one date pair: thermal products and the optical bands stage 2 needs."""

    date_index: int
    thermal: ThermalProducts
    red: np.ndarray
    nir: np.ndarray
    coregistration: dict
    seconds: dict
    iforest_z: np.ndarray | None = None  # CPU detector evidence (fused/iforest), computed in this stage
    injected: np.ndarray | None = None  # measured attenuations of injected plumes (calibration tiles only)
    lst_err: np.ndarray | None = None  # the source's per-pixel LST uncertainty (K; ECOSTRESS LST_err)
    water_lst: np.ndarray | None = None  # LST of clear open water (TileInputs.water_lst): shown, never screened


def prepare_tile(task: TileTask, date_index: int) -> PreparedDate:
    """Read one date pair on the padded tile and run the thermal stage (CPU work)."""
    t0 = time.perf_counter()
    reader = task.readers[date_index]
    inputs = reader.read(task.geobox.pad(task.halo_px))
    t1 = time.perf_counter()
    params = task.params
    if getattr(reader, "thermal_only", False) and not params.direct_thermal:  # a thermal date of a mixed run
        params = dataclasses.replace(params, direct_thermal=True)
    th = thermal_products(inputs.lst, inputs.red, inputs.nir, inputs.optical_clear, params, inputs.bands)
    iforest_z = cpu_evidence(th, inputs.red, inputs.nir, params)
    injected = None
    t2 = time.perf_counter()
    if task.calibrate_plume_fwhm_px > 0 and not params.direct_thermal and th.evidence_k is not None:
        injected = injected_attenuation(inputs.lst, inputs.red, inputs.nir, inputs.optical_clear, params,
                                        inputs.bands, th, task.calibrate_plume_fwhm_px, task.buffer_px,
                                        along_px=task.calibrate_along_px,
                                        margin_px=task.halo_px, seed=task.index[0] * 7919 + task.index[1])
    t3 = time.perf_counter()
    # "thermal" includes the injection test of the calibration tiles (a few per run), "injection" is that part alone
    return PreparedDate(date_index, th, inputs.red, inputs.nir, inputs.coregistration,
                        {"read": t1 - t0, "thermal": t3 - t1, "injection": t3 - t2 if injected is not None else 0.0},
                        iforest_z, injected, inputs.lst_err, inputs.water_lst)


def _worker_address() -> str | None:
    """Address of the Dask worker running this task (None outside a worker)."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


def _mean_f32(layers: list[np.ndarray]) -> np.ndarray:
    return nanmean_layers(layers, np.float32)


def _tile_model(task: TileTask):
    """The saved autoencoder (loaded once per worker) or None (train on the tile)."""
    if not task.needs_model or task.model_path is None:
        return None
    from heattrack.io.models import load_model

    return load_model(Path(task.model_path), task.params.detector.device, task.params.detector.max_batch)


def _ae_examples(task: TileTask, model, prod, prep: PreparedDate, core) -> dict:
    """The 2 highest-risk pixels and the median-risk pixel of the tile core: input and reconstructed patches
    (for the report's autoencoder figure). Empty when the detector has no autoencoder."""
    if model is None:
        return {}
    from heattrack.kernels.detectors import ae_examples

    risk = np.where(prod.valid, prod.risk, np.nan)[core]
    if not np.isfinite(risk).any():
        return {}
    flat = np.nan_to_num(risk, nan=-1.0).ravel()
    order = np.argsort(-flat, kind="stable")
    n_ok = int(np.isfinite(risk).sum())
    pick = np.unique(np.concatenate([order[:2], order[[n_ok // 2]]]))
    r, c = np.unravel_index(pick, risk.shape)
    r, c = r + core[0].start, c + core[1].start
    th = prep.thermal
    x_in, x_rec = ae_examples(model, th.anomaly_k / th.sigma_k, th.ndvi, prep.red, prep.nir, r, c,
                              task.params.detector.patch)
    return {"ae_in": x_in, "ae_rec": x_rec, "ae_risk": prod.risk[r, c].astype(np.float32)}


@dataclass(frozen=True)
class TileResult:
    """What a tile computed, before anything is written: the mosaic layers of its core, the evidence at its pipe
    sample points, its hotspots and report examples, and its summary."""

    layers: dict[str, np.ndarray]  # zarr region (core of the tile)
    points: dict[str, np.ndarray]  # tile record arrays: pipe points, hotspots, autoencoder examples
    summary: TileSummary


def _clutter_overview(field: np.ndarray, halo: int, n: int, factor: int, window_px: int) -> np.ndarray:
    """Per thermal pixel of the tile's core: the median of ``field`` (the padded tile) in the pixel, then the median
    of those over ``window_px`` pixels square — computed on the padded tile's whole thermal pixels, so the core's
    edge pixels see their neighbours in the halo."""
    hb = (halo // factor) * factor  # the part of the halo that is whole thermal pixels
    sub = field[halo - hb: halo + n + hb, halo - hb: halo + n + hb]
    med = nan_median_filter(block_median(sub, factor), window_px)
    k = hb // factor
    return med[k: k + n // factor, k: k + n // factor]


def _water_shown(lst: np.ndarray, water_lst: np.ndarray | None) -> np.ndarray:
    """A date's LST layer with the product's own LST over clear open water where the chain left it empty: the sea or
    a lake beside a city is a measured surface temperature, not a hole (it is never sharpened or screened)."""
    return lst if water_lst is None else np.where(np.isnan(lst), water_lst, lst)


def _water_risk(risk: np.ndarray, prepared: Sequence[PreparedDate]) -> np.ndarray:
    """The risk layer with 0 over open water that no date screened: no land there for a pipe to warm (``valid`` stays 0
    there, so the coverage figures count land only; cloud stays NaN: a leak could be under it)."""
    water = [d.water_lst for d in prepared if d.water_lst is not None]
    if not water:
        return risk
    seen = np.logical_or.reduce([np.isfinite(w) for w in water])
    return np.where(np.isnan(risk) & seen, np.float32(0), risk)


def compute_tile(task: TileTask, prepared: Sequence[PreparedDate]) -> TileResult:
    """Stage 2 without side effects: detection per date (GPU when the worker has one), date combination,
    evidence at the pipe points, hotspots. Timings of the read and sharpening stage come with ``prepared``."""
    t0 = time.perf_counter()
    prepared = sorted(prepared, key=lambda p: p.date_index)
    if task.needs_model:
        import torch

        torch.set_num_threads(task.torch_threads)
    model = _tile_model(task)
    prods = []
    for prep in prepared:
        prod, model = detect_products(prep.thermal, prep.red, prep.nir, task.params, model,  # reused across dates
                                      iforest_z=prep.iforest_z)
        prods.append(prod)
    padded = task.geobox.pad(task.halo_px)
    h, n = task.halo_px, task.geobox.shape.y
    core = (slice(h, h + n), slice(h, h + n))
    examples = _ae_examples(task, model, prods[0], prepared[0], core)
    # dates combined: mean over the dates with clear data (one date: the arrays themselves)
    risk = _mean_f32([np.where(p.valid, p.risk, np.nan) for p in prods])
    anomaly = _mean_f32([np.where(p.valid, p.anomaly_k, np.nan) for p in prods])
    n_dates = np.sum([p.valid for p in prods], axis=0, dtype=np.uint8)
    valid = n_dates > 0
    layers = {"lst_10m": _mean_f32([_water_shown(p.lst_10m, d.water_lst) for p, d in zip(prods, prepared)])[core],
              "lst_plain": _mean_f32([_water_shown(p.lst_plain, d.water_lst) for p, d in zip(prods, prepared)])[core],
              "anomaly_k": anomaly[core], "risk": _water_risk(risk, prepared)[core],
              "valid": valid[core].astype(np.uint8), "n_dates": n_dates[core]}
    # evidence along pipes, per date: neighbourhood maximum within the buffer, read at the tile's sample points
    p_risk_d, p_dt_d, p_stat_d, ov_stat_d, p_err_d, p_base_d = [], [], [], [], [], []
    all_x, all_y = np.r_[task.point_x, task.halo_point_x], np.r_[task.point_y, task.halo_point_y]  # own, then halo
    peak_r = task.peak_radius_px if task.params.detector.method == "residual" else 0
    shifts = []
    for p, prep in zip(prods, prepared):
        # a fine raster read on the pipe's own pixel: the pipe map moved onto the network's heat, per date
        dx, dy, _ = network_shift(p.evidence_k, padded.affine, task.point_x, task.point_y, task.align_radius_px) \
            if task.align_radius_px > 0 and p.evidence_k is not None else (0.0, 0.0, 0.0)
        shifts.append([round(dx, 2), round(dy, 2)])
        px, py = task.point_x + dx, task.point_y + dy
        pr = along_pipe_evidence_at_points(p.risk, padded.affine, px, py, task.buffer_px, task.offpipe_radius_px)
        pd = window_max_at_points(p.anomaly_k, padded.affine, px, py, task.buffer_px)
        pv = sample_at_points(p.valid.astype(np.float32), padded.affine, px, py)
        pr[pv != 1] = np.nan  # a pipe point under cloud has no evidence of its own
        peak = on_pipe_peak(p.evidence_k, task.buffer_px, peak_r)
        ps = sample_at_points(peak, padded.affine, px, py)
        ps[pv != 1] = np.nan
        if task.clutter_cell_m > 0:  # the clutter a leak would sit on: the network around each point, halo included
            halo_x, halo_y = task.halo_point_x + dx, task.halo_point_y + dy
            ph = sample_at_points(peak, padded.affine, halo_x, halo_y)
            ph[sample_at_points(p.valid.astype(np.float32), padded.affine, halo_x, halo_y) != 1] = np.nan
            base = network_neighbourhood_median(np.r_[ps, ph], all_x, all_y, task.clutter_cell_m)
            p_base_d.append(base[: ps.size].astype(np.float32))
        p_err_d.append(np.full(ps.shape, np.nan, np.float32) if prep.lst_err is None else
                       window_max_at_points(prep.lst_err, padded.affine, px, py, task.buffer_px))
        # what a leak-free pipe point would read anywhere in the tile, per thermal pixel: the detectability raster
        ov_stat_d.append(_clutter_overview(np.where(p.valid, peak, np.nan), h, n, task.overview_factor,
                                           task.clutter_window_px))
        p_stat_d.append(ps)
        p_risk_d.append(pr)
        p_dt_d.append(pd)
    blobs = label_hotspots(risk[core], anomaly[core], task.hotspot_threshold, task.hotspot_min_area_px)
    hx, hy = task.geobox.affine @ (blobs.col + 0.5, blobs.row + 0.5)
    res2 = abs(task.geobox.affine.a * task.geobox.affine.e)
    points = {
        "point_ids": task.point_ids, "point_risk": _mean_f32(p_risk_d), "point_dt": _mean_f32(p_dt_d),
        "point_risk_by_date": np.stack(p_risk_d), "point_stat_by_date": np.stack(p_stat_d),
        **({"point_err_by_date": np.stack(p_err_d)} if any(p.lst_err is not None for p in prepared) else {}),
        **({"point_base_by_date": np.stack(p_base_d)} if p_base_d else {}),
        "hs_x": np.asarray(hx, dtype=np.float64), "hs_y": np.asarray(hy, dtype=np.float64),
        "hs_peak_dt": blobs.peak_delta_t_k, "hs_peak_score": blobs.peak_score, "hs_area_m2": blobs.area_px * res2,
        "ov_risk": block_mean(layers["risk"], task.overview_factor).astype(np.float32),
        "ov_stat_by_date": np.stack(ov_stat_d),
        **({"injected_attenuation": np.concatenate(inj)} if (inj := [p.injected for p in prepared
                                                                      if p.injected is not None]) else {}),
        **examples,
    }
    core_valid = valid[core]
    t_detect = time.perf_counter() - t0
    summary = TileSummary(
        tile=f"{task.index[0]}_{task.index[1]}",
        valid_fraction=float(core_valid.mean()),
        n_valid=int(core_valid.sum()),
        n_points=int(task.point_ids.size),
        n_hotspots=int(blobs.area_px.size),
        seconds={"read": sum(p.seconds["read"] for p in prepared),
                 "compute": sum(p.seconds["thermal"] for p in prepared) + t_detect, "detect": t_detect,
                 "injection": sum(p.seconds["injection"] for p in prepared)},
        pixels=int(n * n),
        max_rss_mb=_max_rss_mb(),
        worker=_worker_address(),
        sharpen=prods[0].info,
        coregistration=prepared[0].coregistration,
        dates=[{"valid_fraction": float(p.valid[core].mean()), "coregistration": prep.coregistration,
                **({"pipe_shift_m": sh} if task.align_radius_px > 0 else {}),
                "sigma_k": p.info.get("sigma_k")} for p, prep, sh in zip(prods, prepared, shifts)],
        process_task_index=next(_TILES_IN_PROCESS),
    )
    return TileResult(layers, points, summary)


def write_tile(task: TileTask, result: TileResult) -> TileSummary:
    """The tile's zarr region and COG parts, then its record (the completion mark, last); returns the summary
    with timings."""
    t0 = time.perf_counter()
    write_tile_region(task.mosaic_path, task.rows, task.cols, result.layers)
    out = OutputLocation(task.out_dir)
    crs = task.geobox.crs.to_wkt()
    for var, name in task.cog_layers:
        cog = tile_cog_bytes(result.layers[var], task.geobox.affine, crs, predictor=cog_predictor(var),
                             compression=task.cog_compression)
        out.write_bytes(cog, COG_DIR, name, f"{task.index[0]}_{task.index[1]}.tif")
    sec = dict(result.summary.seconds)
    sec["write"] = time.perf_counter() - t0
    sec["total"] = sec["read"] + sec["compute"] + sec["write"]
    summary = result.summary.model_copy(update={"seconds": sec})
    TileRecords(task.out_dir).write(task.index, result.points, summary)
    return summary


def finish_tile(task: TileTask, *prepared: PreparedDate) -> TileSummary:
    """Stage 2 on a worker: :func:`compute_tile` then :func:`write_tile`. Returns the tile summary."""
    return write_tile(task, compute_tile(task, prepared))


def process_tile(task: TileTask) -> TileSummary:
    """Both stages of one tile in one process (CPU-only clusters, tests, debugging)."""
    return finish_tile(task, *(prepare_tile(task, i) for i in range(len(task.readers))))


def cluster_has_gpu_workers(client) -> bool:
    """True when any worker of the cluster declares a ``GPU`` resource (``--resources GPU=1``)."""
    workers = client.scheduler_info().get("workers", {})
    return any(float(w.get("resources", {}).get("GPU", 0)) > 0 for w in workers.values())


@dataclass
class TileOutcome:
    index: tuple[int, int]
    summary: TileSummary | None = None
    error: str | None = None


def run_tiles(client, tasks: Sequence[TileTask], retries: int = 2,
              on_done: Callable[[TileOutcome], None] | None = None, gpu_pool: bool = False) -> list[TileOutcome]:
    """Submit every task to Dask (retried ``retries`` times) and collect outcomes as they finish.

    When the detector needs the autoencoder and the cluster has GPU workers, each tile becomes one CPU task
    per date (read + sharpen, no resource) and one stage-2 task that requires ``GPU=1`` (detection, writes);
    otherwise one task per tile does both. ``gpu_pool``: the cluster was configured with GPU workers that may
    still be queued (Slurm jobs, Kubernetes pods), so split even if none has joined yet. A tile that still
    fails is reported in its outcome; the others carry on.
    """
    from distributed import as_completed

    split = bool(tasks) and tasks[0].needs_model and (gpu_pool or cluster_has_gpu_workers(client))
    if split:
        log.info("GPU workers present: autoencoder stage of each tile requires resource GPU=1")
    futures = {}
    for t in tasks:
        if split:
            preps = [client.submit(prepare_tile, t, i, key=f"prepare-{t.key}-d{i}", retries=retries, pure=False)
                     for i in range(len(t.readers))]
            fut = client.submit(finish_tile, t, *preps, key=t.key, retries=retries, pure=False,
                                resources={"GPU": 1})
        else:
            fut = client.submit(process_tile, t, key=t.key, retries=retries, pure=False)
        futures[fut] = t
    outcomes = []
    for fut in as_completed(futures):
        task = futures[fut]
        try:
            out = TileOutcome(task.index, summary=fut.result())
        except Exception as exc:  # a tile's failure is data for the run summary, not a crash of the run
            msg = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            out = TileOutcome(task.index, error=f"{exc.__class__.__name__}: {msg}")
            log.error("tile %s failed: %s", task.key, out.error)
        outcomes.append(out)
        if on_done is not None:
            on_done(out)
        fut.release()
    return outcomes
