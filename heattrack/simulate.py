"""Physics-informed synthetic scenes in the ``local`` source layout, with ground truth.

What is simulated (all seeded, deterministic):

* **City**: an irregular street grid (80-250 m blocks, arterials every few streets), buildings and parks in
  the blocks following a smooth urban-density field, bare fields at the fringe, a river.
* **Hidden drivers of winter daytime LST** that no optical band shows fully: albedo (roof brightness, seen
  partly through the red/NIR reflectance),
  soil moisture (a smooth 600 m field), anthropogenic heat per building, elevation (lapse rate), 20 m
  texture. So neither an NDVI regression nor any sharpener is exactly right.
* **District heating**: pipes under the streets of the dense city, cut into segments between intersections
  (ids ``DH-nnnnn``, diameters 150-800 mm), a small normal heat loss along every pipe (0.1-0.4 K within a few
  metres), and **leaks**: Gaussian warm plumes of 2-10 K and 10-30 m FWHM on chosen segments.
* **Distractors**: unrelated hot spots (vents, heated buildings) of 3-10 K and 20-60 m at least 150 m away
  from any pipe.
* **Sensors**: Sentinel-2 B04/B08 at 10 m (baseline 05.10, BOA_ADD_OFFSET -1000) and SCL at 20 m;
  Landsat ST_B10 = truth integrated over the 100 m TIRS footprint (``landsat_mission``: ETM+'s 60 m or TM's 120 m
  ST_B6), blurred by a 20 m optical PSF, sampled on a 30 m grid offset from the 10 m grid, with the mission's noise
  (TIRS 0.08 K; ``sim_sensors.LANDSAT_MISSIONS``) and a smooth 0.3 K atmospheric error, quantised to C2L2 DNs;
  QA_PIXEL with clouds, dilated rims, shadows and water.

Outputs: ``landsat/``, ``sentinel2/``, ``pipes.geojson`` (lon/lat) and ``truth/`` (``lst_10m.tif``,
``landcover_10m.tif``, ``leaks.geojson``, ``distractors.geojson``, ``truth.json``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from pyproj import Transformer
from scipy import ndimage

from heattrack.sim_sensors import (
    BARE,
    LANDSAT_MISSIONS,
    ROOF,
    STREET,
    VEGETATION,
    WATER,
    _smooth_field,
    _write_sensors,
    _write_tif,
    write_ecostress,
)


@dataclass(frozen=True)
class LSTPhysics:
    """How the hidden drivers make the true winter LST (K). Defaults: the embedded demo city; the simulator
    family (:func:`family_spec`) draws every field at random so that no sharpener or detector can be tuned to
    one functional form."""

    albedo_k: float = 7.0  # K per unit of (1 - albedo) ** albedo_power
    albedo_power: float = 1.0
    moisture_k: float = 2.5
    lapse_k_per_m: float = 0.0065
    texture_k: float = 0.35  # 20 m texture no optical band shows
    street_k: float = 1.2  # streets (asphalt) above the albedo law; hot roads lie on top of the pipes
    vegetation_k: float = 2.0  # cooling per unit of vegetation vigour
    vegetation_power: float = 1.0
    anthro_scale_k: float = 0.6  # gamma(2, scale) K of heat per building
    bare_dry_k: float = 0.8
    roof_texture: float = 0.0  # 10-30 m albedo texture on roofs and pavement (seen by every band)
    ndvi_coupling_k: float = 0.0  # extra K per unit NDVI-like term, a non-linear vegetation response
    water_k: float = 276.0


@dataclass(frozen=True)
class SimulationSpec:
    """Parameters of a synthetic region. Sizes in km/m, temperatures in K."""

    size_km: float = 12.0
    leaks: int = 18
    distractors: int | None = None  # default: as many as leaks
    seed: int = 3
    center_lon: float = 126.80
    center_lat: float = 37.64
    landsat_date: date = date(2025, 1, 15)
    s2_date_offset_days: int = 1
    cloud_fraction: float = 0.06
    s2_cloud_fraction: float = 0.02
    leak_k: tuple[float, float] = (2.0, 10.0)
    leak_fwhm_m: tuple[float, float] = (10.0, 30.0)
    urban_share: float = 0.55  # share of the region dense enough for district heating
    minor_street_pipes: float = 0.2  # share of dense-city minor streets with a pipe (arterials: all)
    air_temperature_k: float = 273.0
    dates: int = 1  # Landsat/Sentinel-2 date pairs; > 1 writes one sub-folder per date (multi-date layout)
    date_step_days: int = 16
    persistent_distractor_share: float = 0.5  # of the distractors, the share that stays on every date
    season: int = 0  # > 0: a later winter of the same city: some leaks repaired, some new, other weather, noise,
    #: clouds and transient heat sources; dates + 365 d/season
    season_repaired_share: float = 0.4  # of season 0's leaks, repaired by this season
    season_new_leaks: int | None = None  # new leaks this season (None: as many as were repaired)
    physics: LSTPhysics = LSTPhysics()
    distractor_k: tuple[float, float] = (3.0, 10.0)
    distractor_fwhm_m: tuple[float, float] = (20.0, 60.0)
    all_bands: bool = True  # every Sentinel-2 reflective band and Landsat SR_B2-B7 (False: B04/B08, SR_B4/B5)
    #: landsat: Landsat + Sentinel-2 products; airborne: only thermal/ (true 10 m LST + airborne_noise_k, the
    #: winter-night airborne thermography utilities fly), no Landsat, no optics
    sensor: str = "landsat"
    airborne_noise_k: float = 0.1
    #: spacing of TIRS's detector samples (m): 30 samples the footprint-blurred field at every 30 m pixel (an
    #: idealised product); ~100 samples it every 100 m, as TIRS does, and resamples those samples onto the 30 m
    #: grid by cubic interpolation, as Collection 2 does (the 30 m pixels then hold only the 100 m samples)
    tirs_sample_m: float = 30.0
    #: the Landsat mission written (footprint, band names: sim_sensors.LANDSAT_MISSIONS); the same draws for any
    landsat_mission: str = "LC09"
    slc_off_gap: float = 0.0  # ETM+'s scan-line corrector off (after 2003): the share of each scan lost (~0.22)
    #: ecostress: a winter-night 70 m pass (thermal/, ECOSTRESS L2T names): the day's land-cover contrast times
    #: night_contrast, night_cooling_k colder, distractors (sun-heated surfaces, some vents) at this share
    night_contrast: float = 0.35
    night_cooling_k: float = 6.0
    night_distractor_share: float = 0.5


def family_spec(member: int, size_km: float = 8.0, **overrides) -> SimulationSpec:
    """Member ``member`` of the simulator family: a city whose land cover, LST physics, clutter, leak
    strengths (1-15 K, sigma 4-30 m), distractor density and clouds are drawn at random (seeded by
    ``member``). Benchmarks tune on some members and report on others (``benchmarks/family.py``)."""
    r = np.random.default_rng([7919, member])
    physics = LSTPhysics(
        albedo_k=float(r.uniform(4.0, 11.0)), albedo_power=float(r.uniform(0.7, 2.0)),
        moisture_k=float(r.uniform(1.0, 4.0)), lapse_k_per_m=float(r.uniform(0.004, 0.009)),
        texture_k=float(r.uniform(0.15, 0.6)), street_k=float(r.uniform(0.0, 2.5)),
        vegetation_k=float(r.uniform(0.5, 3.5)), vegetation_power=float(r.uniform(0.6, 2.0)),
        anthro_scale_k=float(r.uniform(0.2, 1.2)), bare_dry_k=float(r.uniform(0.0, 1.5)),
        roof_texture=float(r.uniform(0.0, 0.06)), ndvi_coupling_k=float(r.uniform(-1.5, 1.5)),
        water_k=float(r.uniform(274.0, 278.0)))
    spec = SimulationSpec(
        size_km=size_km, seed=10_000 + member, leaks=int(r.integers(12, 30)),
        distractors=None, cloud_fraction=float(r.uniform(0.0, 0.12)),
        leak_k=(1.0, 15.0), leak_fwhm_m=(2.3548 * 4.0, 2.3548 * 30.0),
        urban_share=float(r.uniform(0.35, 0.8)), minor_street_pipes=float(r.uniform(0.1, 0.5)),
        air_temperature_k=float(r.uniform(265.0, 280.0)), physics=physics,
        distractor_k=(2.0, float(r.uniform(6.0, 14.0))), distractor_fwhm_m=(15.0, float(r.uniform(30.0, 80.0))))
    spec = replace(spec, distractors=int(round(spec.leaks * r.uniform(0.5, 2.0))))
    return replace(spec, **overrides)


def _gauss_blobs(shape, transform: Affine, xs, ys, amps, fwhms) -> np.ndarray:
    """Sum of isotropic Gaussians (peak ``amps`` K, FWHM m) centred at map coordinates."""
    out = np.zeros(shape, dtype=np.float32)
    res = transform.a
    for x, y, a, fw in zip(xs, ys, amps, fwhms):
        sig = fw / 2.3548
        c, r = ~transform @ (x, y)
        rad = int(np.ceil(4 * sig / res)) + 1
        r0, r1 = max(0, int(r) - rad), min(shape[0], int(r) + rad + 1)
        c0, c1 = max(0, int(c) - rad), min(shape[1], int(c) + rad + 1)
        if r0 >= r1 or c0 >= c1:
            continue
        yy, xx = np.mgrid[r0:r1, c0:c1]
        d2 = ((xx + 0.5 - c) ** 2 + (yy + 0.5 - r) ** 2) * res * res
        out[r0:r1, c0:c1] += a * np.exp(-d2 / (2 * sig * sig))
    return out


def _points_off_network(net, count: int, rng: np.random.Generator, n_px: int, t10: Affine,
                        max_tries: int = 10000) -> np.ndarray:
    """Up to ``count`` random map points (x, y) of the ``n_px`` square grid outside the prepared ``net``."""
    out, tries = [], 0
    while len(out) < count and tries < max_tries:
        tries += 1
        x, y = t10 @ (rng.uniform(0, n_px), rng.uniform(0, n_px))
        if not net.contains(shapely.Point(x, y)):
            out.append((x, y))
    return np.array(out).reshape(-1, 2)


def _breaks(rng, n_px: int, lo: float, hi: float, res: float) -> np.ndarray:
    """Street positions (pixel index) with spacings uniform in [lo, hi] m."""
    pos, out = rng.uniform(0, hi) / res, []
    while pos < n_px:
        out.append(int(pos))
        pos += rng.uniform(lo, hi) / res
    return np.array(out, dtype=np.int64)


def _other_winter(spec: SimulationSpec, lst, leak_field, dxy, dis_amp, dis_fwhm, dis_field, net, n, t10, shape):
    """A later winter (``spec.season`` > 0) of the same city, as the later dates of one winter differ: another
    offset and land-cover contrast of the weather and a smooth 0.35 K field, the transient heat sources redrawn
    (``persistent_distractor_share`` stay), and the RNG of this winter's sensor noise and clouds. Its own RNG: the
    first winter's draws stay as they were."""
    rw = np.random.default_rng([spec.seed, 2000 + spec.season])
    static = lst - leak_field - dis_field
    m = float(static.mean())
    lst = (m + rw.normal(0, 2.0) + rw.uniform(0.85, 1.15) * (static - m) + 0.35 * _smooth_field(rw, shape, 2.0))
    n_keep = int(round(spec.persistent_distractor_share * len(dxy)))
    fresh = _points_off_network(net, len(dxy) - n_keep, rw, n, t10)
    dxy = np.concatenate([dxy[:n_keep], fresh]) if len(fresh) else dxy[:n_keep]
    dis_amp = np.concatenate([dis_amp[:n_keep], rw.uniform(*spec.distractor_k, len(fresh))])
    dis_fwhm = np.concatenate([dis_fwhm[:n_keep], rw.uniform(*spec.distractor_fwhm_m, len(fresh))])
    dis_field = _gauss_blobs(shape, t10, dxy[:, 0], dxy[:, 1], dis_amp, dis_fwhm)
    return (lst + leak_field + dis_field).astype(np.float32), dxy, dis_amp, dis_fwhm, dis_field, rw


def simulate_scene(out: Path, spec: SimulationSpec = SimulationSpec()) -> dict:
    """Write a synthetic scene to ``out``; returns the truth summary (also in ``truth/truth.json``)."""
    out = Path(out)
    if spec.landsat_mission not in LANDSAT_MISSIONS:  # LC09 (TIRS, 100 m), LE07 (ETM+, 60 m), LT05 (TM, 120 m)
        raise ValueError(f"unknown landsat_mission {spec.landsat_mission!r}: {', '.join(LANDSAT_MISSIONS)}")
    if spec.season:  # the same winter date, ``season`` years later
        spec = replace(spec, landsat_date=spec.landsat_date + timedelta(days=365 * spec.season))
    rng = np.random.default_rng(spec.seed)
    res = 10.0
    n = int(round(spec.size_km * 1000 / res))
    n -= n % 6  # whole 20 m and 30 m pixels
    zone = int((spec.center_lon + 180) // 6) + 1
    crs = f"EPSG:{(32600 if spec.center_lat >= 0 else 32700) + zone}"
    cx, cy = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(spec.center_lon, spec.center_lat)
    x0 = np.floor((cx - n * res / 2) / 60.0) * 60.0
    y1 = np.floor((cy + n * res / 2) / 60.0) * 60.0
    t10 = Affine(res, 0, x0, 0, -res, y1)
    shape = (n, n)

    # ---- land cover ---------------------------------------------------------------------------------
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
    urban = 1.6 * np.exp(-((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / 0.09) + 0.6 * _smooth_field(rng, shape, n / 12)
    urban_thr = np.quantile(urban, 1 - spec.urban_share)
    lc = np.full(shape, VEGETATION, dtype=np.uint8)
    veg_vigour = np.clip(0.6 + 0.25 * _smooth_field(rng, shape, 30), 0.15, 1.0)
    moisture = np.clip(0.5 + 0.25 * _smooth_field(rng, shape, 60), 0.0, 1.0)
    fields = (urban < urban_thr - 0.4) & (_smooth_field(rng, shape, 40) > 0.3)
    lc[fields] = BARE
    rows = _breaks(rng, n, 80, 250, res)
    cols = _breaks(rng, n, 80, 250, res)
    albedo = np.full(shape, 0.18, dtype=np.float32)
    anthro = np.zeros(shape, dtype=np.float32)
    roof_red = np.zeros(shape, dtype=np.float32)
    # buildings and parks per block quarter
    rb = np.concatenate([[0], rows, [n]])
    cb = np.concatenate([[0], cols, [n]])
    for i in range(rb.size - 1):
        for j in range(cb.size - 1):
            r0, r1, c0, c1 = rb[i], rb[i + 1], cb[j], cb[j + 1]
            if r1 - r0 < 4 or c1 - c0 < 4:
                continue
            rm, cm = (r0 + r1) // 2, (c0 + c1) // 2
            for (a0, a1) in ((r0 + 1, rm), (rm, r1 - 1)):
                for (b0, b1) in ((c0 + 1, cm), (cm, c1 - 1)):
                    if a1 - a0 < 2 or b1 - b0 < 2:
                        continue
                    u = urban[(a0 + a1) // 2, (b0 + b1) // 2]
                    p_built = np.clip((u - urban_thr + 0.8) / 1.6, 0.02, 0.92)
                    if rng.random() < p_built:
                        m = 1 if (a1 - a0 > 4 and b1 - b0 > 4) else 0
                        lc[a0 + m:a1 - m, b0 + m:b1 - m] = ROOF
                        red_roof = rng.uniform(0.06, 0.32)
                        # albedo is broadband reflectance: the visible/NIR bands see it, but only partly
                        albedo[a0 + m:a1 - m, b0 + m:b1 - m] = np.clip(0.9 * red_roof + 0.06 + rng.normal(0, 0.04),
                                                                       0.05, 0.6)
                        anthro[a0 + m:a1 - m, b0 + m:b1 - m] = rng.gamma(2.0, 0.6)
                        roof_red[a0 + m:a1 - m, b0 + m:b1 - m] = red_roof
    # streets: segments between intersections where the city is, arterials everywhere
    arterial_r = set(rows[rng.random(rows.size) < 0.2].tolist())
    arterial_c = set(cols[rng.random(cols.size) < 0.2].tolist())
    street_segments = []  # (x0, y0, x1, y1, arterial) in pixel coords of centre lines
    for r in rows:
        for j in range(cb.size - 1):
            c0, c1 = cb[j], cb[j + 1]
            art = r in arterial_r
            if art or urban[min(r, n - 1), (c0 + c1) // 2] > urban_thr - 0.6:
                w = 2 if art else 1
                lc[max(0, r - w + 1):r + 1, c0:c1] = STREET
                street_segments.append((c0, r + 0.5 - 0.5 * (w - 1), c1, r + 0.5 - 0.5 * (w - 1), art))
    for c in cols:
        for i in range(rb.size - 1):
            r0, r1 = rb[i], rb[i + 1]
            art = c in arterial_c
            if art or urban[(r0 + r1) // 2, min(c, n - 1)] > urban_thr - 0.6:
                w = 2 if art else 1
                lc[r0:r1, max(0, c - w + 1):c + 1] = STREET
                street_segments.append((c + 0.5 - 0.5 * (w - 1), r0, c + 0.5 - 0.5 * (w - 1), r1, art))
    albedo[lc == STREET] = 0.08
    # river
    phase, amp, lam = rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.12), rng.uniform(0.5, 1.0)
    centre = (0.25 + 0.5 * rng.random()) + amp * np.sin(2 * np.pi * xx / lam + phase)
    water = np.abs(yy - centre) < rng.uniform(80, 160) / (n * res)
    lc[water] = WATER
    albedo[water] = 0.06
    albedo[lc == BARE] = np.clip(0.22 - 0.08 * moisture[lc == BARE], 0.1, 0.3)
    albedo[lc == VEGETATION] = 0.17 + 0.03 * (1 - veg_vigour[lc == VEGETATION])

    # ---- pipes along dense-city streets ------------------------------------------------------------
    segs = []
    for (c0, r0, c1, r1, art) in street_segments:
        rm, cm = int(min(n - 1, (r0 + r1) / 2)), int(min(n - 1, (c0 + c1) / 2))
        if urban[rm, cm] < urban_thr or water[rm, cm] or (not art and rng.random() > spec.minor_street_pipes):
            continue
        off = rng.uniform(-0.3, 0.3)  # up to 3 m from the street centre line
        horiz = r0 == r1
        p0 = t10 @ ((c0, r0 + off) if horiz else (c0 + off, r0))
        p1 = t10 @ ((c1, r1 + off) if horiz else (c1 + off, r1))
        line = shapely.LineString([p0, p1])
        if line.length < 30:
            continue
        dia = int(rng.choice([400, 500, 650, 800] if art else [150, 200, 250, 300]))
        segs.append((line, dia))
    if not segs:
        raise ValueError("the simulated region has no pipes; enlarge size_km or urban_share")
    lines = np.array([s[0] for s in segs], dtype=object)
    seg_ids = [f"DH-{i:05d}" for i in range(len(segs))]
    diam = np.array([s[1] for s in segs], dtype=np.float64)

    # ---- true LST at 10 m -------------------------------------------------------------------------
    ph = spec.physics
    elev = 60 + 40 * _smooth_field(rng, shape, n / 6)
    texture = ph.texture_k * _smooth_field(rng, shape, 2.0)
    # 10-30 m roof/pavement albedo texture (own RNG: the default city's draws stay as they were)
    rt = np.random.default_rng([spec.seed, 77])
    albedo_tex = np.zeros(shape, dtype=np.float32)
    if ph.roof_texture > 0:
        built = (lc == ROOF) | (lc == STREET)
        albedo_tex[built] = (ph.roof_texture * _smooth_field(rt, shape, rt.uniform(1.0, 3.0)))[built]
        albedo = np.clip(albedo + albedo_tex, 0.03, 0.7)
    lst = (spec.air_temperature_k + ph.albedo_k * (1 - albedo) ** ph.albedo_power - ph.moisture_k * moisture
           - ph.lapse_k_per_m * elev + texture).astype(np.float32)
    lst[lc == STREET] += ph.street_k
    lst[lc == ROOF] += anthro[lc == ROOF] * (ph.anthro_scale_k / 0.6)
    veg = lc == VEGETATION
    lst[veg] -= ph.vegetation_k * veg_vigour[veg] ** ph.vegetation_power
    lst[veg] += ph.ndvi_coupling_k * (veg_vigour[veg] - 0.6) ** 2
    lst[lc == BARE] += ph.bare_dry_k * (1 - moisture[lc == BARE])
    lst[water] = ph.water_k + 0.15 * texture[water]
    # normal heat loss of every pipe: narrow, proportional to diameter
    pipe_px = np.zeros(shape, dtype=np.float32)
    pts = shapely.get_coordinates(shapely.segmentize(lines, 5.0), return_index=True)
    coords, which = pts
    col, row = ~t10 @ (coords[:, 0], coords[:, 1])
    ok = (row >= 0) & (row < n) & (col >= 0) & (col < n)
    np.maximum.at(pipe_px, (row[ok].astype(int), col[ok].astype(int)), (0.1 + 0.3 * (diam[which[ok]] / 800.0)))
    lst += ndimage.gaussian_filter(pipe_px, 0.4).astype(np.float32)
    # leaks on chosen segments
    n_leaks = min(spec.leaks, len(segs))
    leak_seg = rng.choice(len(segs), size=n_leaks, replace=False)
    leak_pos = shapely.line_interpolate_point(lines[leak_seg], rng.uniform(0.15, 0.85, n_leaks), normalized=True)
    lxy = shapely.get_coordinates(leak_pos) + rng.normal(0, 2.0, (n_leaks, 2))
    leak_amp = rng.uniform(*spec.leak_k, n_leaks)
    leak_fwhm = rng.uniform(*spec.leak_fwhm_m, n_leaks)
    season_truth = {}
    if spec.season > 0:  # a later winter: own RNG, so the city, pipes and all later draws stay identical
        rs = np.random.default_rng([spec.seed, 1000 + spec.season])
        repaired = rs.choice(n_leaks, size=int(round(spec.season_repaired_share * n_leaks)), replace=False)
        keep = np.setdiff1d(np.arange(n_leaks), repaired)
        free = np.setdiff1d(np.arange(len(segs)), leak_seg)
        n_new = min(len(free), repaired.size if spec.season_new_leaks is None else spec.season_new_leaks)
        new_seg = rs.choice(free, size=n_new, replace=False)
        new_pos = shapely.line_interpolate_point(lines[new_seg], rs.uniform(0.15, 0.85, n_new), normalized=True)
        season_truth = {"season": spec.season,
                        "repaired_leak_segment_ids": sorted(seg_ids[i] for i in leak_seg[repaired]),
                        "persistent_leak_segment_ids": sorted(seg_ids[i] for i in leak_seg[keep]),
                        "new_leak_segment_ids": sorted(seg_ids[i] for i in new_seg)}
        leak_seg = np.concatenate([leak_seg[keep], new_seg])
        lxy = np.concatenate([lxy[keep], shapely.get_coordinates(new_pos) + rs.normal(0, 2.0, (n_new, 2))])
        # the leaks that stay are not the same strength every winter (flow, soil moisture): x U(0.7, 1.3)
        leak_amp = np.concatenate([leak_amp[keep] * rs.uniform(0.7, 1.3, keep.size), rs.uniform(*spec.leak_k, n_new)])
        leak_fwhm = np.concatenate([leak_fwhm[keep], rs.uniform(*spec.leak_fwhm_m, n_new)])
        n_leaks = leak_seg.size
    leak_field = _gauss_blobs(shape, t10, lxy[:, 0], lxy[:, 1], leak_amp, leak_fwhm)
    lst += leak_field
    # distractors, >= 150 m away from any pipe
    n_dis = spec.leaks if spec.distractors is None else spec.distractors
    net = shapely.union_all(lines).buffer(150.0)
    shapely.prepare(net)
    dxy = _points_off_network(net, n_dis, rng, n, t10)
    dis_amp = rng.uniform(*spec.distractor_k, len(dxy))
    dis_fwhm = rng.uniform(*spec.distractor_fwhm_m, len(dxy))
    dis_field = _gauss_blobs(shape, t10, dxy[:, 0], dxy[:, 1], dis_amp, dis_fwhm)
    lst += dis_field
    if spec.season > 0:  # another winter: other weather, transient heat sources, sensor noise and clouds
        lst, dxy, dis_amp, dis_fwhm, dis_field, rng = _other_winter(spec, lst, leak_field, dxy, dis_amp, dis_fwhm,
                                                                    dis_field, net, n, t10, shape)

    scene_dir = out if spec.dates == 1 else out / f"{spec.landsat_date:%Y-%m-%d}"
    base = {"lc": lc, "veg_vigour": veg_vigour, "moisture": moisture, "roof_red": roof_red, "water": water,
            "albedo_tex": albedo_tex}
    sensed = _write_sensors(scene_dir, lst, base, spec, spec.landsat_date, rng, crs, t10, x0, y1)
    cloud, s2_cloud, product, s2_date = sensed
    dates = [{"landsat_date": str(spec.landsat_date), "sentinel2_date": str(s2_date), "landsat_product": product,
              "folder": scene_dir.name if spec.dates > 1 else ".", "cloud_fraction_landsat": float(cloud.mean())}]
    # later dates: same city, pipes and leaks; new weather, noise, clouds, transient distractors
    static_lst = lst - leak_field - dis_field - texture
    n_keep = int(round(spec.persistent_distractor_share * len(dxy)))
    for k in range(1, spec.dates):
        rk = np.random.default_rng([spec.seed, k])
        d_k = spec.landsat_date + timedelta(days=k * spec.date_step_days)
        contrast = rk.uniform(0.85, 1.15)
        mean_static = float(static_lst.mean())
        lst_k = (mean_static + rk.normal(0, 2.0) + contrast * (static_lst - mean_static)
                 + 0.35 * _smooth_field(rk, shape, 2.0)).astype(np.float32)
        lst_k += _gauss_blobs(shape, t10, lxy[:, 0], lxy[:, 1], leak_amp * rk.uniform(0.7, 1.3, n_leaks), leak_fwhm)
        dk = np.concatenate([dxy[:n_keep], _points_off_network(net, len(dxy) - n_keep, rk, n, t10)])
        lst_k += _gauss_blobs(shape, t10, dk[:, 0], dk[:, 1], rk.uniform(*spec.distractor_k, len(dk)),
                              rk.uniform(*spec.distractor_fwhm_m, len(dk)))
        cloud_k, _, product_k, s2_k = _write_sensors(out / f"{d_k:%Y-%m-%d}", lst_k, base, spec, d_k, rk, crs,
                                                     t10, x0, y1)
        dates.append({"landsat_date": str(d_k), "sentinel2_date": str(s2_k), "landsat_product": product_k,
                      "folder": f"{d_k:%Y-%m-%d}", "cloud_fraction_landsat": float(cloud_k.mean())})

    if spec.sensor in ("airborne", "ecostress"):
        import shutil

        for d in ({scene_dir} | {out / x["folder"] for x in dates}):
            for sub in ("landsat", "sentinel2"):
                shutil.rmtree(d / sub, ignore_errors=True)
    if spec.sensor in ("ecostress", "landsat+ecostress"):  # a winter night: land-cover contrast shrinks, leaks stay
        static = lst - leak_field - dis_field
        m = float(static.mean())
        night = (m - spec.night_cooling_k + spec.night_contrast * (static - m) + leak_field
                 + spec.night_distractor_share * dis_field).astype(np.float32)
        lon = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x0 + n * res / 2, y1 - n * res / 2)[0]
        write_ecostress(out / "thermal", night, water, spec.cloud_fraction, spec.landsat_date, lon,
                        np.random.default_rng([spec.seed, 7070, spec.season] if spec.season else [spec.seed, 7070]), crs, t10, x0, y1)
    elif spec.sensor == "airborne":
        ra = np.random.default_rng([spec.seed, 4242, spec.season] if spec.season else [spec.seed, 4242])
        air = (lst + spec.airborne_noise_k * ra.standard_normal(shape)).astype(np.float32)
        _write_tif(out / "thermal" / f"airborne_lst_{spec.landsat_date:%Y%m%d}.tif", air, t10, crs, nodata=np.nan)
        (out / "thermal" / f"airborne_lst_{spec.landsat_date:%Y%m%d}.json").write_text(json.dumps(
            {"units": "K", "acquired": f"{spec.landsat_date}T22:00:00", "psf_m": 10.0}))
    elif spec.sensor not in ("landsat", "landsat+ecostress"):
        raise ValueError(f"unknown sensor {spec.sensor!r}: landsat, airborne, ecostress or landsat+ecostress")
    # ---- vectors and truth ------------------------------------------------------------------------
    pipes = gpd.GeoDataFrame({"segment_id": seg_ids, "diameter_mm": diam}, geometry=lines, crs=crs)
    pipes.to_crs("EPSG:4326").to_file(out / "pipes.geojson", driver="GeoJSON")
    truth_dir = out / "truth"
    _write_tif(truth_dir / "lst_10m.tif", lst.astype(np.float32), t10, crs)
    _write_tif(truth_dir / "landcover_10m.tif", lc, t10, crs, nodata=0)
    leaks = gpd.GeoDataFrame({"segment_id": [seg_ids[i] for i in leak_seg], "amplitude_k": leak_amp,
                              "fwhm_m": leak_fwhm}, geometry=gpd.points_from_xy(lxy[:, 0], lxy[:, 1]), crs=crs)
    leaks.to_crs("EPSG:4326").to_file(truth_dir / "leaks.geojson", driver="GeoJSON")
    dis = gpd.GeoDataFrame({"amplitude_k": dis_amp, "fwhm_m": dis_fwhm},
                           geometry=gpd.points_from_xy(dxy[:, 0], dxy[:, 1]), crs=crs)
    dis.to_crs("EPSG:4326").to_file(truth_dir / "distractors.geojson", driver="GeoJSON")
    summary = {
        "spec": {k: (str(v) if isinstance(v, date) else v) for k, v in asdict(spec).items()},
        "crs": crs, "size_px_10m": n, "n_segments": len(segs), "pipe_km": float(shapely.length(lines).sum() / 1000),
        "leak_segment_ids": sorted(seg_ids[i] for i in leak_seg), "n_distractors": int(len(dxy)),
        "landsat_product": product, "sentinel2_date": str(s2_date),
        "cloud_fraction_landsat": float(cloud.mean()), "cloud_fraction_s2": float(s2_cloud.mean()),
        "dates": dates, **season_truth,
    }
    (truth_dir / "truth.json").write_text(json.dumps(summary, indent=2))
    return summary
