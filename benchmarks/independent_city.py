"""Test cities heattrack did not make: a scene generator that shares no code or model with ``heattrack.simulate``.

    .venv/bin/python benchmarks/independent_city.py --seeds 1 2 3 4 5 6 --json benchmarks/results/independent_6km.json
    .venv/bin/python benchmarks/independent_city.py --seeds 11 12 13 --size-km 12 --changes \
        --json benchmarks/results/independent_changes_12km.json     # two winters each, `heattrack screen`
    .venv/bin/python benchmarks/independent_city.py --seeds 1 2 3 4 5 6 --dates 3 \
        --json benchmarks/results/independent_6km_dates3.json       # three dates per winter

Nothing here was used to choose a default (the defaults were tuned on simulator-family members 0-11); the cities
are an out-of-family check of the same kind as the issue's independent generator, written from its description:

* **Land cover** of its own making: an irregular street grid (80-220 m blocks, 10-20 m wide streets, two diagonal
  arterials), a river, parks, and buildings as 10-30 m rectangles of random roof material inside the blocks.
* **Optics** from a spectral library of five materials (asphalt, roofs with a random brightness, dormant winter
  vegetation, bare soil, water) mixed per pixel with 3 % texture; Sentinel-2 L2A DNs with the baseline >= 04.00
  offset (+1000) and ``MTD_MSIL2A.xml``; 20 m bands as 2 x 2 means; SCL with its own clouds.
* **Winter LST** not of TsHARP's form: a power law of broadband albedo, a saturating vegetation cooling, a 1 km
  anthropogenic warm core, heat lost through each roof (0-3 K, invisible to the optics), warm streets and warmer
  ones above the pipes, water at its own temperature, correlated noise at 30 and 200 m.
* **Leaks** 2.5-9 K with a Gaussian sigma of 8-25 m on pipes, as many hot spots of the same kind >= 200 m from any
  pipe, 5 % cloud in the Landsat scene.
* **Landsat ST_B10** through a footprint of its own: a 100 m box (the TIRS detector) convolved with a Gaussian of
  15 m, sampled at the centres of a 30 m grid that is offset by half a 30 m pixel from the 10 m grid (Landsat's
  and Sentinel-2's grids do not share corners), 0.15 K noise, QA_PIXEL with cloud and dilated-cloud bits.

Each leak's sensor-visible peak is measured by passing that leak alone through the same footprint (no formula of
heattrack's). Per city: one run with the defaults and one with ``detect.method: baseline``; printed and written:
10 m LST RMSE gain over bilinear (``heattrack evaluate``), segment ROC-AUC of both rankings (and their paired
difference with its DeLong 95 % interval, per city and over the cities), and the share of
sensor-visible leaks (footprint peak >= 0.7 K) in the top 5 % of segments; and the real-crop protocol of
``heattrack validate-sharpening --factor 9 --eval-factor 3`` on the city's Landsat folder alone.

With ``--changes``: a second winter of each city (:func:`second_winter`: 40 % of the leaks repaired, as many new
ones, the rest x 0.7-1.3, half the off-pipe hot spots moved, other weather, noise and clouds), both screened with
the defaults: sensor-visible new leaks called ``new``, false ``new`` per 100 km, repaired ones called ``resolved``.

With ``--dates N``: each winter as N Landsat/Sentinel-2 pairs 16 days apart, one sub-folder each (:func:`other_date`:
the same leaks, half the off-pipe hot spots moved, its own weather, noise and clouds): what a season screened on
several clear dates sees (``screen --season`` from a catalogue keeps up to three). The 10 m LST gain of such a run
compares the dates' mean with the first date's truth, so it is not comparable with one date's.

With ``--st-only``: both rankings screen the city's ST band alone (``--thermal``: no optics, not sharpened); with
``--st-mission LE07`` (or ``LT05``) the ``ST_B6`` band of the same day as Landsat 7 ETM+ (60 m box) or Landsat 5 TM
(120 m) would have seen it (:data:`ARCHIVE_MISSIONS`; the same noise and cloud draws, scaled), in ``archive/``.

Written by the same team as heattrack, so not blind to its design: a second family, not a substitute for real data.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from heldout import paired_columns, pooled_difference, seen_at_the_leak, share_interval  # benchmarks/ folder
from rasterio.transform import from_origin
from scipy import ndimage

RES = 10.0
CRS = "EPSG:32633"  # central Europe, a zone heattrack's simulator never writes
X0, Y0 = 500_000.0, 5_560_000.0
BANDS = ("B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12")
LIBRARY = {  # reflectance per band, in BANDS' order
    "asphalt": (0.07, 0.08, 0.09, 0.13, 0.10, 0.11, 0.12, 0.13, 0.16, 0.14),
    "roof": (0.10, 0.11, 0.13, 0.18, 0.14, 0.16, 0.17, 0.19, 0.24, 0.21),
    "vegetation": (0.04, 0.06, 0.05, 0.30, 0.10, 0.22, 0.27, 0.30, 0.20, 0.10),
    "soil": (0.09, 0.12, 0.15, 0.21, 0.18, 0.20, 0.21, 0.22, 0.30, 0.27),
    "water": (0.06, 0.05, 0.03, 0.02, 0.03, 0.02, 0.02, 0.02, 0.01, 0.01),
}
VISIBLE_K = 0.7


def _noise(rng, shape, sigma_px: float) -> np.ndarray:
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_px, mode="wrap")
    return f / (f.std() + 1e-12)


def _lines(rng, n: int) -> list[tuple[int, int]]:
    """Street positions (first pixel, width in pixels) along one axis: blocks of 80-220 m."""
    out, p = [], int(rng.integers(3, 10))
    while p < n - 3:
        w = int(rng.integers(1, 3))
        out.append((p, w))
        p += w + int(rng.integers(8, 23))
    return out


def make_city(seed: int, size_km: float, tirs_sample_m: float = 30.0) -> dict:
    """The 10 m truth: material fractions, LST, streets, the pipes (street centrelines) and their leaks;
    ``tirs_sample_m``: how Landsat samples the footprint-blurred field (see :func:`_landsat_view`)."""
    rng = np.random.default_rng(seed)
    n = int(size_km * 1000 / RES)
    yy, xx = np.mgrid[0:n, 0:n]
    urban = np.clip(0.6 + 0.35 * _noise(rng, (n, n), n / 6), 0, 1)
    street = np.zeros((n, n), bool)
    rows, cols = _lines(rng, n), _lines(rng, n)
    for p, w in rows:
        street[p:p + w, :] = True
    for p, w in cols:
        street[:, p:p + w] = True
    for _ in range(2):  # diagonal arterials
        a = rng.uniform(-0.8, 0.8)
        b = rng.uniform(0.2, 0.8) * n
        street |= np.abs(yy - (a * xx + b)) < 1.2 * np.sqrt(1 + a * a)
    centre, waves, half_width = rng.uniform(0.25, 0.75), rng.uniform(3, 7), rng.uniform(3, 8)  # the river
    river = np.abs(yy - (n * centre + 0.08 * n * np.sin(xx / n * waves))) < half_width
    park = (_noise(rng, (n, n), 25) > 1.0) & ~street & ~river
    cell = int(rng.integers(1, 4))  # buildings as 10-30 m blocks of one roof each
    m = -(-n // cell)
    roof_draw = np.kron(rng.random((m, m)), np.ones((cell, cell)))[:n, :n]
    building = (roof_draw < 0.25 + 0.55 * urban) & ~street & ~river & ~park
    brightness = np.kron(rng.uniform(0.5, 2.0, (m, m)), np.ones((cell, cell)))[:n, :n]
    roof_heat = np.kron(rng.uniform(0.0, 3.0, (m, m)), np.ones((cell, cell)))[:n, :n]
    frac = {k: np.zeros((n, n)) for k in LIBRARY}
    frac["asphalt"][street] = 1.0
    frac["water"][river] = 1.0
    frac["vegetation"][park] = 0.9
    frac["soil"][park] = 0.1
    rest = ~street & ~river & ~park
    frac["roof"][rest & building] = 1.0
    garden = rest & ~building
    v = np.clip(0.5 + 0.3 * _noise(rng, (n, n), 3), 0.1, 0.95)
    frac["vegetation"][garden] = v[garden]
    frac["soil"][garden] = 1 - v[garden]
    refl = np.zeros((len(BANDS), n, n))
    for k, lib in LIBRARY.items():
        scale = brightness if k == "roof" else 1.0
        refl += frac[k][None] * (np.asarray(lib)[:, None, None] * scale)
    refl *= 1 + 0.03 * rng.standard_normal(refl.shape)
    refl = np.clip(refl, 0.0, 0.9)
    albedo = 0.3 * refl[2] + 0.35 * refl[3] + 0.2 * refl[8] + 0.15 * refl[0]
    pipes = _pipes(rng, rows, cols, n)
    on_pipe_street = np.zeros((n, n), bool)
    for g in pipes.geometry:
        (c0, r0), (c1, r1) = np.asarray(g.coords)[[0, -1]] / RES
        on_pipe_street[int(min(r0, r1)) - 1:int(max(r0, r1)) + 2, int(min(c0, c1)) - 1:int(max(c0, c1)) + 2] = True
    city = {"n": n, "refl": refl.astype(np.float32), "water": river, "veg": frac["vegetation"], "pipes": pipes,
            "albedo": albedo, "warm_core": ndimage.gaussian_filter(urban, 100), "roof": roof_heat * (frac["roof"] > 0),
            "street": street, "hot_road": on_pipe_street & street, "road_k": rng.uniform(0.5, 2.0),
            "tirs_sample_m": tirs_sample_m}
    leaks = _hot_spots(rng, city, on_pipe=True)
    distractors = _hot_spots(rng, city, on_pipe=False, count=len(leaks))
    return {**city, **_winter(rng, city, leaks, distractors, weather=(0.0, 1.0))}


def second_winter(city: dict, seed: int) -> dict:
    """The same city a year later: 40 % of the leaks repaired, as many new ones on other segments, the rest x U(0.7,
    1.3); half the hot spots away from the pipes moved; other weather (a level shift of -2..2 K and the albedo and
    vegetation terms x U(0.8, 1.2)), other noise."""
    rng = np.random.default_rng(seed + 5000)
    old = city["leaks"]
    repaired = rng.random(len(old)) < 0.4
    kept = old[~repaired].copy()
    scale = rng.uniform(0.7, 1.3, len(kept))
    kept["amplitude_k"], kept["peak_k"] = kept["amplitude_k"] * scale, kept["peak_k"] * scale  # the peak is linear
    new = _hot_spots(rng, city, on_pipe=True, count=int(repaired.sum()), avoid=set(old.segment_id))
    leaks = gpd.GeoDataFrame(pd.concat([kept.assign(kind="kept"), new.assign(kind="new")], ignore_index=True),
                             geometry="geometry")
    moved = rng.random(len(city["distractors"])) < 0.5
    distractors = pd.concat([city["distractors"][~moved],
                             _hot_spots(rng, city, on_pipe=False, count=int(moved.sum()))], ignore_index=True)
    later = _winter(rng, city, leaks, distractors, weather=(rng.uniform(-2.0, 2.0), rng.uniform(0.8, 1.2)))
    return {**city, **later, "repaired_segment_ids": sorted(set(old.segment_id[repaired]) - set(leaks.segment_id)),
            "new_segment_ids": sorted(set(new.segment_id))}


def landsat_day(year: int, day_offset: int = 0) -> date:
    """The Landsat acquisition of a winter's date: February 3rd of ``year`` plus ``day_offset`` days."""
    return date(year, 2, 3) + timedelta(days=day_offset)


def other_date(city: dict, seed: int, k: int) -> dict:
    """Date ``k`` (1, 2, ...) of the same winter, 16 days apart: the same leaks; half the hot spots away from the
    pipes moved (transient heat sources); its own weather (a level shift of -2..2 K, the albedo and vegetation terms x
    U(0.8, 1.2)) and noise; :func:`write_scene` then gives it its own clouds and sensor noise."""
    rng = np.random.default_rng(seed + 9000 + k)
    moved = rng.random(len(city["distractors"])) < 0.5
    distractors = pd.concat([city["distractors"][~moved],
                             _hot_spots(rng, city, on_pipe=False, count=int(moved.sum()))], ignore_index=True)
    return {**city, **_winter(rng, city, city["leaks"], distractors,
                              weather=(rng.uniform(-2.0, 2.0), rng.uniform(0.8, 1.2)))}


def write_winter(city: dict, out: Path, seed: int, dates: int, year: int = 2025) -> None:
    """The winter as ``dates`` Landsat/Sentinel-2 pairs 16 days apart, one sub-folder each (``INPUT/<date>/``, as
    ``heattrack simulate --dates`` writes them); ``pipes.geojson`` and ``truth/`` (the first date's) at the top. One
    date: :func:`write_scene` as it is."""
    if dates <= 1:
        write_scene(city, out, seed, year)
        return
    for k in range(dates):
        day = landsat_day(year, 16 * k)
        write_scene(city if k == 0 else other_date(city, seed, k), out / f"{day:%Y-%m-%d}", seed + 13 * k, year,
                    16 * k, truth=False)
    write_truth(city, out, seed)


def _winter(rng, city: dict, leaks: gpd.GeoDataFrame, distractors: pd.DataFrame, weather: tuple) -> dict:
    """One winter's 10 m LST: the land-cover terms under ``weather`` (level shift, scale of the albedo and
    vegetation terms), roof heat, warm streets and warmer ones over the pipes, noise, the river, the hot spots."""
    shift, gain = weather
    n = city["n"]
    lst = (271.5 + shift + gain * 6.0 * (1 - city["albedo"]) ** 3 - gain * 3.0 * (1 - np.exp(-3 * city["veg"]))
           + 1.5 * city["warm_core"] + city["roof"] + rng.uniform(0.5, 1.5) * city["street"]
           + 0.35 * _noise(rng, (n, n), 20) + 0.2 * _noise(rng, (n, n), 3))
    lst[city["water"]] = 275.0 + shift / 4 + 0.2 * rng.standard_normal(int(city["water"].sum()))
    lst += city["road_k"] * city["hot_road"]  # hot roads on top of the pipes
    for spot in (*leaks.itertuples(), *distractors.itertuples()):
        lst += _bump(n, spot.geometry, spot.amplitude_k, spot.sigma_m)
    return {"lst": lst.astype(np.float32), "leaks": leaks, "distractors": distractors}


def _bump(n: int, pt, amp: float, sig: float) -> np.ndarray:
    yy, xx = np.mgrid[0:n, 0:n]
    return amp * np.exp(-(((xx + 0.5) * RES - pt.x) ** 2 + ((yy + 0.5) * RES - pt.y) ** 2) / (2 * sig * sig))


def _pipes(rng, rows, cols, n: int) -> gpd.GeoDataFrame:
    """Pipes under 60 % of the streets, cut at the crossings into segments of one to three blocks."""
    cuts_x = [p * RES + w * RES / 2 for p, w in cols]
    cuts_y = [p * RES + w * RES / 2 for p, w in rows]
    geoms = []
    for horizontal, positions, cuts in ((True, cuts_y, cuts_x), (False, cuts_x, cuts_y)):
        for pos in positions:
            if rng.random() > 0.6:
                continue
            i = 0
            while i < len(cuts) - 1:
                j = min(len(cuts) - 1, i + int(rng.integers(1, 4)))
                a, b = cuts[i], cuts[j]
                geoms.append(shapely.LineString([(a, pos), (b, pos)] if horizontal else [(pos, a), (pos, b)]))
                i = j
    return gpd.GeoDataFrame({"segment_id": [f"P-{k:05d}" for k in range(len(geoms))],
                             "diameter_mm": rng.choice([150, 200, 300, 500], len(geoms))}, geometry=geoms)


def _hot_spots(rng, city: dict, on_pipe: bool, count: int | None = None, avoid: set = frozenset()
               ) -> gpd.GeoDataFrame:
    """Gaussian hot spots (2.5-9 K, sigma 8-25 m): on random pipe segments (not those in ``avoid``; one per
    segment), or >= 200 m from every pipe; with each one's peak seen through the Landsat footprint."""
    pipes, n = city["pipes"], city["n"]
    count = count if count is not None else max(6, len(pipes) // 60)
    network = shapely.union_all(pipes.geometry.values)
    rows: list[dict] = []
    taken = set(avoid)
    for _ in range(50 * max(count, 1)):
        if len(rows) >= count:
            break
        sid = None
        if on_pipe:
            k = int(rng.integers(len(pipes)))
            sid = pipes.segment_id.iloc[k]
            if sid in taken:
                continue
            pt = pipes.geometry.iloc[k].interpolate(rng.uniform(0.15, 0.85), normalized=True)
        else:
            pt = shapely.Point(rng.uniform(100, n * RES - 100, 2))
            if network.distance(pt) < 200:
                continue
        amp, sig = rng.uniform(2.5, 9.0), rng.uniform(8.0, 25.0)
        taken.add(sid)
        rows.append({"segment_id": sid, "amplitude_k": amp, "sigma_m": sig,
                     "peak_k": float(_landsat_view(_bump(n, pt, amp, sig), n, city["tirs_sample_m"]).max())
                     if on_pipe else np.nan,
                     "geometry": pt})
    return gpd.GeoDataFrame(rows, columns=["segment_id", "amplitude_k", "sigma_m", "peak_k", "geometry"],
                            geometry="geometry")


#: the archive's thermal sensors (``--st-mission``): detector box (10 m pixels) and noise (K), against this generator's
#: TIRS (a 100 m box, 0.15 K): ETM+ 60 m at twice the noise (its NEdT is about three times TIRS's), TM 120 m at 0.5 K
ARCHIVE_MISSIONS = {"LE07": (6, 0.3), "LT05": (12, 0.5)}


def _footprint(field: np.ndarray, box_px: int = 10) -> np.ndarray:
    """TIRS seen on the 10 m grid: a 100 m box (``box_px`` 10 m pixels) convolved with a Gaussian of 15 m."""
    return ndimage.gaussian_filter(ndimage.uniform_filter(field, box_px, mode="nearest"), 1.5, mode="nearest")


def _landsat_grid(n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Row/column coordinates (10 m pixel units) of the 30 m pixel centres: the 30 m grid starts 15 m before the
    10 m grid and reaches 45 m past it."""
    m = n // 3 + 2
    centres = -1.5 + 3 * np.arange(m) + 1.5  # 30 m pixel k spans [-1.5 + 3k, 1.5 + 3k) in 10 m pixels
    return centres - 0.5, centres - 0.5, m  # to pixel-centre index coordinates


def _landsat_view(field: np.ndarray, n: int, sample_m: float = 30.0, box_px: int = 10) -> np.ndarray:
    """``field`` (10 m) as Landsat's 30 m ST pixels see it: through the footprint (a ``box_px`` detector: 10 for
    TIRS, 6 for ETM+, 12 for TM), sampled at every 30 m pixel centre (``sample_m`` 30), or every ``sample_m`` metres
    and resampled onto the 30 m pixels by a cubic spline (100: TIRS's samples as Collection 2 resamples them)."""
    r, c, m = _landsat_grid(n)
    rr, cc = np.meshgrid(r, c, indexing="ij")
    blurred = _footprint(field, box_px)
    if sample_m <= 30.0:
        return ndimage.map_coordinates(blurred, [rr, cc], order=1, mode="nearest")
    step = sample_m / RES
    centres = np.arange(step / 2 - 0.5, n, step)
    sr, sc = np.meshgrid(centres, centres, indexing="ij")
    samples = ndimage.map_coordinates(blurred, [sr, sc], order=1, mode="nearest")
    u = (rr - centres[0]) / step
    v = (cc - centres[0]) / step
    return ndimage.map_coordinates(samples, [u, v], order=3, mode="nearest")


def write_scene(city: dict, out: Path, seed: int, year: int = 2025, day_offset: int = 0, truth: bool = True) -> None:
    """The city in heattrack's ``local`` layout (what a user downloads) plus, with ``truth``, ``pipes.geojson`` and
    ``truth/`` for ``heattrack evaluate`` (:func:`write_truth`); the Landsat day is February 3rd of ``year`` plus
    ``day_offset`` days (Sentinel-2 the day after)."""
    rng = np.random.default_rng(seed + 1000)
    day = landsat_day(year, day_offset)
    s2_day = day + timedelta(days=1)
    n = city["n"]
    (out / "landsat").mkdir(parents=True)
    (out / "sentinel2").mkdir()
    r, c, m = _landsat_grid(n)
    rr, cc = np.meshgrid(r, c, indexing="ij")
    st = _landsat_view(city["lst"], n, city.get("tirs_sample_m", 30.0))
    eps = rng.standard_normal(st.shape)
    st = st + 0.15 * eps
    cloud = _noise(rng, (m, m), 6) > 1.65  # ~5 %
    dilated = ndimage.binary_dilation(cloud, iterations=2) & ~cloud
    cold = 258.0 + rng.standard_normal(int(cloud.sum()))
    st[cloud] = cold
    water30 = ndimage.map_coordinates(city["water"].astype(float), [rr, cc], order=0, mode="nearest") > 0.5
    qa = np.where(water30, 21952, 21824).astype(np.uint16)
    qa[dilated] = 21826
    qa[cloud] = 22280
    lt = from_origin(X0 - 15.0, Y0 + 15.0, 30.0, 30.0)
    prod = f"LC08_L2SP_190026_{day:%Y%m%d}_{day + timedelta(days=7):%Y%m%d}_02_T1"
    prof = dict(driver="GTiff", width=m, height=m, count=1, crs=CRS, transform=lt, tiled=True, compress="deflate")
    _write(out / "landsat" / f"{prod}_ST_B10.TIF", np.round((st - 149.0) / 0.00341802).astype(np.uint16),
           {**prof, "dtype": "uint16", "nodata": 0})
    _write(out / "landsat" / f"{prod}_QA_PIXEL.TIF", qa, {**prof, "dtype": "uint16", "nodata": 1})
    if (mission := city.get("st_mission")) is not None:  # the same day as an archive sensor saw it (archive/)
        box_px, noise_k = ARCHIVE_MISSIONS[mission]
        arch_st = _landsat_view(city["lst"], n, city.get("tirs_sample_m", 30.0), box_px) + noise_k * eps
        arch_st[cloud] = cold
        (out / "archive").mkdir()
        arch = prod.replace("LC08", mission)
        _write(out / "archive" / f"{arch}_ST_B6.TIF", np.round((arch_st - 149.0) / 0.00341802).astype(np.uint16),
               {**prof, "dtype": "uint16", "nodata": 0})
        _write(out / "archive" / f"{arch}_QA_PIXEL.TIF", qa, {**prof, "dtype": "uint16", "nodata": 1})
    box3 = [ndimage.uniform_filter(b, 3, mode="nearest") for b in city["refl"]]
    for name, k in (("SR_B2", 0), ("SR_B3", 1), ("SR_B4", 2), ("SR_B5", 3), ("SR_B6", 8), ("SR_B7", 9)):
        sr = ndimage.map_coordinates(box3[k], [rr, cc], order=1, mode="nearest")
        _write(out / "landsat" / f"{prod}_{name}.TIF", np.round((sr + 0.2) / 0.0000275).astype(np.uint16),
               {**prof, "dtype": "uint16", "nodata": 0})
    s2cloud = _noise(rng, (n, n), 30) > 2.05  # ~2 %, elsewhere than Landsat's
    gran = f"T33UVP_{s2_day:%Y%m%d}T100151"
    for k, b in enumerate(BANDS):
        refl = np.where(s2cloud, 0.6, city["refl"][k])
        fine = b in ("B02", "B03", "B04", "B08")
        arr = refl if fine else refl.reshape(n // 2, 2, n // 2, 2).mean(axis=(1, 3))
        px = 10.0 if fine else 20.0
        _write(out / "sentinel2" / f"{gran}_{b}_{int(px)}m.tif", np.round(arr * 10000 + 1000).astype(np.uint16),
               dict(driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1, crs=CRS, dtype="uint16",
                    nodata=0, transform=from_origin(X0, Y0, px, px), tiled=True, compress="deflate"))
    scl = np.where(city["water"], 6, np.where(city["veg"] > 0.5, 4, 5)).astype(np.uint8)
    scl[s2cloud] = 9
    scl20 = scl[::2, ::2]
    _write(out / "sentinel2" / f"{gran}_SCL_20m.tif", scl20,
           dict(driver="GTiff", width=n // 2, height=n // 2, count=1, crs=CRS, dtype="uint8", nodata=0,
                transform=from_origin(X0, Y0, 20.0, 20.0), tiled=True, compress="deflate"))
    offsets = "".join(f'<BOA_ADD_OFFSET band_id="{i}">-1000</BOA_ADD_OFFSET>' for i in range(13))
    (out / "sentinel2" / "MTD_MSIL2A.xml").write_text(
        "<?xml version='1.0' encoding='UTF-8'?><n1:Level-2A_User_Product><General_Info><Product_Info>"
        f"<PRODUCT_START_TIME>{s2_day:%Y-%m-%d}T10:01:51.024Z</PRODUCT_START_TIME><PROCESSING_BASELINE>05.11"
        "</PROCESSING_BASELINE></Product_Info><Product_Image_Characteristics><BOA_ADD_OFFSET_VALUES_LIST>"
        f"{offsets}</BOA_ADD_OFFSET_VALUES_LIST></Product_Image_Characteristics></General_Info>"
        "</n1:Level-2A_User_Product>")
    if truth:
        write_truth(city, out, seed)


def write_truth(city: dict, out: Path, seed: int) -> None:
    """``pipes.geojson`` (lon/lat) and ``truth/`` (leaks, the 10 m LST, ``truth.json``) of the city in ``out``."""
    n = city["n"]
    (out / "truth").mkdir(parents=True)
    pipes = city["pipes"].copy()
    pipes["geometry"] = [shapely.LineString([(X0 + x, Y0 - y) for x, y in g.coords]) for g in pipes.geometry]
    pipes.set_crs(CRS).to_crs("EPSG:4326").to_file(out / "pipes.geojson", driver="GeoJSON")
    leaks = city["leaks"].copy()
    leaks["geometry"] = [shapely.Point(X0 + p.x, Y0 - p.y) for p in leaks.geometry]
    leaks.set_crs(CRS).to_file(out / "truth" / "leaks.geojson", driver="GeoJSON")
    _write(out / "truth" / "lst_10m.tif", city["lst"],
           dict(driver="GTiff", width=n, height=n, count=1, crs=CRS, dtype="float32", nodata=np.nan,
                transform=from_origin(X0, Y0, RES, RES)))
    (out / "truth" / "truth.json").write_text(json.dumps({
        "crs": CRS, "generator": "benchmarks/independent_city.py", "seed": seed,
        "leak_segment_ids": sorted(set(leaks.segment_id)), "n_segments": len(pipes),
        "new_leak_segment_ids": city.get("new_segment_ids", []),
        "repaired_leak_segment_ids": city.get("repaired_segment_ids", [])}))


def _write(path: Path, arr: np.ndarray, profile: dict) -> None:
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr, 1)


def evaluate_city(scene: Path, work: Path, client, sets: dict | None = None, st_only: bool = False) -> dict:
    """Both rankings of one city and the real-crop protocol on its Landsat folder; ``st_only``: the runs screen the
    scene's ``ST_B10`` band alone as a thermal raster (no optics, no sharpening), or the archive mission's ``ST_B6``
    where the scene has one (``archive/``, ``--st-mission``)."""
    from heattrack.config import load_config
    from heattrack.evaluate import aggregate_sharpen_compare, compare_rankings, evaluate_run, read_landsat_for_asc
    from heattrack.orchestration.run import run

    row: dict = {}
    leaks = gpd.read_file(scene / "truth" / "leaks.geojson").sort_values("peak_k", ascending=False)
    leaks = leaks.drop_duplicates("segment_id")
    for name, over in (("default", sets or {}), ("baseline", {"detect.method": "baseline"})):
        out = work / name
        src = {"input.thermal": next((scene / "archive").glob("*_ST_B6.TIF"), None)
               or next((scene / "landsat").glob("*_ST_B10.TIF"))} if st_only else {"input.input": scene}
        cfg = load_config(None, {**src, "input.pipes": scene / "pipes.geojson", **over})
        run(cfg, out, client=client)
        ev = evaluate_run(scene, out)
        seg = gpd.read_file(out / "segments.geojson")[["segment_id", "rank"]]
        rank = pd.to_numeric(seg["rank"], errors="coerce")
        share = dict(zip(seg.segment_id, rank / rank.notna().sum()))
        vis = leaks[leaks.peak_k >= VISIBLE_K]
        top = np.array([share.get(s, np.nan) <= 0.05 for s in vis.segment_id], dtype=bool)
        row[f"{name}_auc"] = ev["detection"]["roc_auc"]
        row[f"{name}_visible_top5"] = float(np.mean(top)) if len(top) else float("nan")
        row["n_visible"] = int(len(vis))
        # seen where the leak is (a clear point of its segment within SEEN_RADIUS_M): what a ranking could find
        seen = seen_at_the_leak(out, vis) if len(vis) else np.zeros(0, bool)
        row[f"n_visible_seen_{name}"] = int(seen.sum())
        row[f"{name}_visible_seen_top5"] = float(np.mean(top[seen])) if seen.any() else float("nan")
        if name == "default":
            row["lst_gain"] = ev["downscaling"]["rmse_ratio_bilinear_over_sharpened"]
            row["rmse_bilinear_k"] = ev["downscaling"]["rmse_bilinear_k"]
            row["rmse_sharpened_k"] = ev["downscaling"]["rmse_sharpened_k"]
            row["n_leaks"], row["n_segments"] = int(len(leaks)), int(len(seg))
            run_info = json.loads((out / "run.json").read_text())
            row["sharpen_methods"] = sorted({t.get("sharpen", {}).get("method", "?")
                                             for t in run_info["tile_summaries"].values()})
    row.update(paired_columns(compare_rankings(scene, work / "default", work / "baseline")))  # paired (DeLong)
    # the real-crop protocol of `heattrack validate-sharpening --factor 9 --eval-factor 3` on the city's Landsat
    lst, bands, _ = read_landsat_for_asc(scene / "landsat" if (scene / "landsat").is_dir()
                                         else sorted(scene.glob("*/landsat"))[0])  # several dates: the first
    asc = aggregate_sharpen_compare(lst, bands, factor=9, eval_factor=3)
    for m in ("tsharp", "dms"):
        row[f"asc_{m}_gain"] = asc["bilinear"]["rmse_k"] / asc[m]["rmse_k"]
    row["asc_dms_used"] = asc["dms"]["info"].get("method", "dms")
    return row


def evaluate_change(city0: dict, city1: dict, seed: int, root: Path, client, sets: dict | None = None,
                    dates: int = 1) -> dict:
    """Both winters screened with the defaults (``heattrack screen``), the later one against the earlier: sensor-visible
    new leaks called ``new``, false ``new`` per 100 km of pipe, visible repaired leaks called ``resolved``, false
    ``resolved``, and what the screen estimates of its own false ``new``."""
    from heattrack.config import load_config
    from heattrack.orchestration.screen import screen

    runs: dict[str, Path] = {}
    counts: dict = {}
    for k, (season, city, year) in enumerate((("2024-25", city0, 2025), ("2025-26", city1, 2026))):
        scene = root / f"winter{k}"
        write_winter(city, scene, seed + 7 * k, dates, year)  # clouds and noise of its own
        cfg = load_config(None, {"input.input": scene, "input.pipes": scene / "pipes.geojson", **(sets or {})})
        _, counts = screen(cfg, root / season, season, runs.get("2024-25"), client=client)
        runs[season] = root / season
    ch = gpd.read_file(runs["2025-26"] / "changes.geojson")
    seg = ch[ch["kind"] == "segment"].set_index("id")["change"] if len(ch) else pd.Series(dtype=str)
    called_new, called_res = set(seg[seg == "new"].index), set(seg[seg == "resolved"].index)
    new_ids, rep_ids = set(city1["new_segment_ids"]), set(city1["repaired_segment_ids"])
    peak1 = city1["leaks"].groupby("segment_id")["peak_k"].max()
    peak0 = city0["leaks"].groupby("segment_id")["peak_k"].max()
    vis_new = {i for i in new_ids if peak1.get(i, 0) >= VISIBLE_K}
    vis_rep = {i for i in rep_ids if peak0.get(i, 0) >= VISIBLE_K}
    pipe_km = float(gpd.read_file(runs["2025-26"] / "segments.gpkg").geometry.length.sum() / 1000)
    return {"pipe_km": pipe_km, "new": len(new_ids), "visible_new": len(vis_new),
            "visible_new_called_new": len(vis_new & called_new), "false_new": len(called_new - new_ids),
            "false_new_per_100km": len(called_new - new_ids) / pipe_km * 100,
            "estimated_false_new": counts.get("estimated_false_new"), "visible_repaired": len(vis_rep),
            "visible_repaired_called_resolved": len(vis_rep & called_res), "false_resolved": len(called_res - rep_ids)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--size-km", type=float, default=6.0)
    ap.add_argument("--tirs-sample-m", type=float, default=30.0, help="100: Landsat's thermal samples every 100 m, "
                    "resampled onto the 30 m pixels (as Collection 2 delivers them); 30: every 30 m pixel")
    ap.add_argument("--changes", action="store_true", help="two winters per city, `heattrack screen`: change classes")
    ap.add_argument("--landsat-alone", action="store_true", help="run on each city's Landsat scene alone (no "
                    "sentinel2/: the scene's own reflective bands are the optics; benchmarks/landsat_alone.py)")
    ap.add_argument("--st-only", action="store_true", help="screen each city's ST_B10 band alone as a thermal raster "
                    "(--thermal FILE: no optics, not sharpened)")
    ap.add_argument("--st-mission", choices=tuple(ARCHIVE_MISSIONS), default=None,
                    help="with --st-only: screen the ST_B6 band of the same day as Landsat 7 ETM+ (LE07: 60 m) or "
                    "Landsat 5 TM (LT05: 120 m) saw it (noise: ARCHIVE_MISSIONS); visible stays TIRS-visible")
    ap.add_argument("--dates", type=int, default=1, help="Landsat/Sentinel-2 pairs per winter, 16 days apart (one "
                    "sub-folder each): the same leaks, other weather, noise, clouds and transient hot spots")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", type=Path, help="keep the scenes and runs here")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="a configuration override for the runs with the defaults (repeatable; as `heattrack run "
                    "--set`): the same cities with a setting before and after a change")
    args = ap.parse_args()
    if args.st_mission and not args.st_only:
        ap.error("--st-mission needs --st-only (the paired chain reads Landsat 8/9)")
    if args.dates > 1 and (args.st_only or args.landsat_alone):
        ap.error("--dates > 1 runs the Landsat/Sentinel-2 pairs (not with --st-only or --landsat-alone)")
    from heattrack.config import load_config, parse_set_option
    from heattrack.orchestration.cluster import make_client

    sets = dict(parse_set_option(o) for o in args.sets)
    base = args.keep or Path(tempfile.mkdtemp(prefix="independent"))
    rows = []
    with make_client(load_config(None, {"compute.n_workers": 2})) as client:
        for seed in args.seeds:
            t0 = time.perf_counter()
            city = make_city(seed, args.size_km, args.tirs_sample_m)
            city["st_mission"] = args.st_mission
            if args.changes:
                row = evaluate_change(city, second_winter(city, seed), seed, base / f"city{seed}", client, sets,
                                      args.dates)
            else:
                write_winter(city, scene := base / f"city{seed}" / "scene", seed, args.dates)
                if args.landsat_alone:
                    from landsat_alone import landsat_only_copy

                    scene = landsat_only_copy(scene, base / f"city{seed}" / "alone")
                row = evaluate_city(scene, base / f"city{seed}", client, sets, args.st_only)
            rows.append({"seed": seed, **row, "seconds": round(time.perf_counter() - t0, 1)})
            print(json.dumps(rows[-1]), flush=True)
    df = pd.DataFrame(rows)
    if args.changes:
        summary = {k: float(df[k].sum()) for k in ("pipe_km", "new", "visible_new", "visible_new_called_new",
                                                   "false_new", "visible_repaired",
                                                   "visible_repaired_called_resolved", "false_resolved")}
        summary["false_new_per_100km"] = summary["false_new"] / summary["pipe_km"] * 100
        summary["worst_city_false_new_per_100km"] = float(df["false_new_per_100km"].max())
    else:
        cols = ["lst_gain", "default_auc", "baseline_auc", "default_visible_top5", "baseline_visible_top5",
                "asc_dms_gain", "asc_tsharp_gain"]
        print(df[["seed", *cols, "n_visible", "sharpen_methods"]].to_string(index=False))
        summary = {c: {"mean": float(df[c].mean()), "worst": float(df[c].min())} for c in cols}
        for name in ("default", "baseline"):
            hits = float((df[f"{name}_visible_top5"] * df["n_visible"]).sum())
            summary[f"{name}_visible_top5_pooled"] = hits / max(int(df["n_visible"].sum()), 1)
            summary[f"{name}_visible_top5_pooled_ci95"] = share_interval(hits, int(df["n_visible"].sum()))
            n_seen = int(df[f"n_visible_seen_{name}"].sum())
            seen_hits = float((df[f"{name}_visible_seen_top5"].fillna(0.0) * df[f"n_visible_seen_{name}"]).sum())
            summary[f"{name}_visible_seen_top5_pooled"] = {"hits": round(seen_hits), "n": n_seen,
                                                            "share": seen_hits / max(n_seen, 1),
                                                            "ci95": share_interval(seen_hits, n_seen)}
        summary["delta_auc_pooled"] = pooled_difference(df)  # default minus baseline, DeLong per city
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"size_km": args.size_km, "tirs_sample_m": args.tirs_sample_m,
                                         "st_b10_only": args.st_only, "st_mission": args.st_mission,
                                         "changes": args.changes, "dates": args.dates, "set": args.sets,
                                         "summary": summary,
                                         "rows": rows}, indent=2, default=str))


if __name__ == "__main__":
    main()
