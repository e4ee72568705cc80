"""The simulator's sensors: Sentinel-2 L2A reflectance of every band, Landsat C2L2 ST/QA/SR products and the file
writer, from the true 10 m LST and land cover of :mod:`heattrack.simulate` (which owns the city and its truth)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import rasterio
from affine import Affine
from scipy import ndimage

from heattrack.kernels.predictors import LANDSAT_TO_S2, S2_10M_BANDS

#: Landsat 4-7's TM / ETM+ surface reflectance -> the Sentinel-2 band of the nearest wavelength
TM_TO_S2 = {"SR_B1": "B02", "SR_B2": "B03", "SR_B3": "B04", "SR_B4": "B08", "SR_B5": "B11", "SR_B7": "B12"}
#: the simulated missions (``SimulationSpec.landsat_mission``): thermal detector footprint (m), ST band, SR bands,
#: sensor noise (K): TIRS 100 m (NEdT ~0.05 K, Montanaro et al. 2014; 0.08 here), ETM+ 60 m (NEdT about three times
#: TIRS's), TM 120 m (NEdT 0.5 K)
LANDSAT_MISSIONS = {"LC09": (100.0, "ST_B10", LANDSAT_TO_S2, 0.08), "LE07": (60.0, "ST_B6", TM_TO_S2, 0.15),
                    "LT05": (120.0, "ST_B6", TM_TO_S2, 0.5)}

if TYPE_CHECKING:  # the spec is read, not built, here
    from heattrack.simulate import SimulationSpec

# land-cover codes of truth/landcover_10m.tif
WATER, STREET, ROOF, VEGETATION, BARE = 1, 2, 3, 4, 5
QA_CLEAR_LAND, QA_CLEAR_WATER, QA_CLOUD, QA_DILATED, QA_SHADOW = 21824, 21952, 22280, 21762, 23824


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    f = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_px, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-9)


def _write_tif(path: Path, data: np.ndarray, transform: Affine, crs: str, nodata=None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                       dtype=data.dtype, crs=crs, transform=transform, nodata=nodata, tiled=True,
                       blockxsize=256, blockysize=256, compress="deflate") as dst:
        dst.write(data, 1)


#: reflectance per land cover for the bands other than red/NIR: (water, street, bare at moisture 0 / 1 delta,
#: vegetation at vigour 0 / 1 delta) -- coarse spectral shapes of the usual endmembers
_SPECTRA = {  # band: (water, street, bare, bare_wet_delta, veg, veg_vigour_delta, roof_factor, roof_add)
    "B02": (0.06, 0.07, 0.10, -0.03, 0.05, -0.02, 0.85, 0.0),
    "B03": (0.05, 0.075, 0.13, -0.04, 0.08, -0.01, 0.92, 0.0),
    "B05": (0.03, 0.085, 0.19, -0.05, 0.13, 0.02, 1.0, 0.01),
    "B06": (0.02, 0.09, 0.21, -0.05, 0.22, 0.12, 1.0, 0.02),
    "B07": (0.02, 0.095, 0.22, -0.06, 0.26, 0.17, 1.0, 0.02),
    "B8A": (0.02, 0.10, 0.23, -0.06, 0.29, 0.21, 1.0, 0.025),
    "B11": (0.01, 0.12, 0.32, -0.12, 0.22, -0.04, 1.05, 0.05),
    "B12": (0.01, 0.11, 0.27, -0.12, 0.12, -0.04, 0.95, 0.03),
}


def _reflectances(base: dict, spec: SimulationSpec, rng: np.random.Generator, when: date) -> dict:
    """Sentinel-2 surface reflectance (0-1) per band on the 10 m grid. Red and NIR use ``rng`` as they always
    did (the default city is unchanged); the other bands draw their noise from their own seeded RNG."""
    lc, v, moisture = base["lc"], base["veg_vigour"], base["moisture"]
    roof_red, water, tex = base["roof_red"], base["water"], base["albedo_tex"]
    shape = lc.shape
    red = np.empty(shape, dtype=np.float32)
    nir = np.empty(shape, dtype=np.float32)
    sel = lc == VEGETATION
    red[sel], nir[sel] = 0.09 - 0.05 * v[sel], 0.15 + 0.22 * v[sel]
    sel = lc == BARE
    red[sel], nir[sel] = 0.17 - 0.06 * moisture[sel], 0.22 - 0.06 * moisture[sel]
    sel = lc == STREET
    red[sel], nir[sel] = 0.08, 0.10
    sel = lc == ROOF
    red[sel], nir[sel] = roof_red[sel], roof_red[sel] + 0.02
    red[water], nir[water] = 0.04, 0.02
    red, nir = red + 0.8 * tex, nir + 0.9 * tex
    red = ndimage.gaussian_filter(red, 0.5) * (1 + 0.03 * rng.standard_normal(shape))
    nir = ndimage.gaussian_filter(nir, 0.5) * (1 + 0.03 * rng.standard_normal(shape))
    out = {"B04": red.astype(np.float32), "B08": nir.astype(np.float32)}
    if not spec.all_bands:
        return out
    rb = np.random.default_rng([spec.seed, when.toordinal()])
    for band, (w, st, bare, bare_wet, veg, veg_v, roof_f, roof_a) in _SPECTRA.items():
        a = np.empty(shape, dtype=np.float32)
        sel = lc == VEGETATION
        a[sel] = veg + veg_v * v[sel]
        sel = lc == BARE
        a[sel] = bare + bare_wet * moisture[sel]
        a[lc == STREET] = st
        sel = lc == ROOF
        a[sel] = roof_f * roof_red[sel] + roof_a
        a[water] = w
        a = a + tex
        a = ndimage.gaussian_filter(a, 0.5) * (1 + 0.03 * rb.standard_normal(shape))
        out[band] = a.astype(np.float32)
    return dict(sorted(out.items()))


def _write_sensors(out: Path, lst: np.ndarray, base: dict, spec: SimulationSpec, landsat_date: date,
                   rng: np.random.Generator, crs: str, t10: Affine, x0: float, y1: float):
    """Sentinel-2 and Landsat products of one date from the true 10 m LST; returns (cloud, s2_cloud, product,
    s2_date)."""
    lc, water = base["lc"], base["water"]
    shape = lst.shape
    n = shape[0]
    # ---- Sentinel-2 (10 m reflectance, 20 m SCL) ---------------------------------------------------
    refl = _reflectances(base, spec, rng, landsat_date)
    s2_cloud = _smooth_field(rng, shape, 25)
    s2_cloud = s2_cloud > np.quantile(s2_cloud, 1 - spec.s2_cloud_fraction)
    for b, a in refl.items():
        a[s2_cloud] = 0.45 + 0.02 * (b >= "B08")
    offset = 1000.0
    dn = {b: np.clip(np.round(np.clip(a, 0, 1) * 10000 + offset), 1, 65535).astype(np.uint16) for b, a in refl.items()}
    scl10 = np.select([lc == WATER, lc == VEGETATION], [6, 4], 5).astype(np.uint8)
    scl10[s2_cloud] = 9
    scl10[ndimage.binary_dilation(s2_cloud, iterations=3) & ~s2_cloud] = 8
    scl = scl10[::2, ::2]
    s2_date = landsat_date + timedelta(days=spec.s2_date_offset_days)
    stamp = f"{s2_date:%Y%m%d}T022019"
    tile = "T52SCG"
    s2_dir = out / "sentinel2"
    for b, a in dn.items():
        if b in S2_10M_BANDS:
            _write_tif(s2_dir / f"{tile}_{stamp}_{b}_10m.tif", a, t10, crs, nodata=0)
        else:  # 20 m bands: the mean of each 2 x 2 block, as the MSI delivers them
            a20 = a.reshape(n // 2, 2, n // 2, 2).mean(axis=(1, 3)).round().astype(np.uint16)
            _write_tif(s2_dir / f"{tile}_{stamp}_{b}_20m.tif", a20, t10 @ Affine.scale(2), crs, nodata=0)
    _write_tif(s2_dir / f"{tile}_{stamp}_SCL_20m.tif", scl, t10 @ Affine.scale(2), crs, nodata=0)
    (s2_dir / "MTD_MSIL2A.xml").write_text(
        "<?xml version='1.0' encoding='UTF-8'?>\n<n1:Level-2A_User_Product>\n<General_Info><Product_Info>\n"
        f"<PRODUCT_START_TIME>{s2_date:%Y-%m-%d}T02:20:19.024Z</PRODUCT_START_TIME>\n"
        "<PROCESSING_BASELINE>05.10</PROCESSING_BASELINE>\n</Product_Info>\n<Product_Image_Characteristics>\n"
        "<QUANTIFICATION_VALUES_LIST><BOA_QUANTIFICATION_VALUE unit=\"none\">10000</BOA_QUANTIFICATION_VALUE>"
        "</QUANTIFICATION_VALUES_LIST>\n<BOA_ADD_OFFSET_VALUES_LIST>\n"
        + "".join(f"<BOA_ADD_OFFSET band_id=\"{b}\">-1000</BOA_ADD_OFFSET>\n" for b in range(13))
        + "</BOA_ADD_OFFSET_VALUES_LIST>\n</Product_Image_Characteristics>\n</General_Info>\n"
        "</n1:Level-2A_User_Product>\n")

    # ---- Landsat (30 m grid offset by 15 m, TIRS footprint) ----------------------------------------
    n30 = n // 3 - 1
    t30 = Affine(30.0, 0, x0 + 15.0, 0, -30.0, y1 - 15.0)
    detector_m, st_band, sr_bands, noise_k = LANDSAT_MISSIONS[spec.landsat_mission]
    footprint = ndimage.uniform_filter(lst, size=int(detector_m // 10), mode="nearest")  # detector integration
    footprint = ndimage.gaussian_filter(footprint, 2.0, mode="nearest")  # optics, ~20 m sigma
    r30, c30 = np.mgrid[0:n30, 0:n30]
    cx30, cy30 = t30 @ (c30 + 0.5, r30 + 0.5)
    cc, rr = ~t10 @ (cx30, cy30)
    if spec.tirs_sample_m > 30.0:  # detector samples every tirs_sample_m (with their noise), cubic onto 30 m
        k = spec.tirs_sample_m / 10.0
        s = (np.arange(int(np.ceil(n / k)) + 3) - 1.0) * k + 0.37 * k  # sample centres, 10 m pixel coordinates
        samples = ndimage.map_coordinates(footprint, np.meshgrid(s - 0.5, s - 0.5, indexing="ij"), order=1,
                                          mode="nearest")
        samples += noise_k * rng.standard_normal(samples.shape)
        st = ndimage.map_coordinates(samples, [(rr - s[0]) / k, (cc - s[0]) / k], order=3,
                                     mode="nearest").astype(np.float32)
        st += 0.3 * _smooth_field(rng, st.shape, n30 / 4)
    else:
        st = ndimage.map_coordinates(footprint, [rr - 0.5, cc - 0.5], order=1, mode="nearest").astype(np.float32)
        st += 0.3 * _smooth_field(rng, st.shape, n30 / 4) + noise_k * rng.standard_normal(st.shape).astype(np.float32)
    water30 = ndimage.map_coordinates(water.astype(np.float32), [rr - 0.5, cc - 0.5], order=0) > 0.5
    cloud_field = _smooth_field(rng, st.shape, 8)
    cloud = cloud_field > np.quantile(cloud_field, 1 - spec.cloud_fraction) if spec.cloud_fraction > 0 else \
        np.zeros(st.shape, bool)
    dilated = ndimage.binary_dilation(cloud, iterations=2) & ~cloud
    shadow = np.roll(cloud, (4, 5), axis=(0, 1)) & ~cloud & ~dilated
    st[cloud] = 258.0 + 3.0 * cloud_field[cloud]
    st[dilated] = 0.5 * st[dilated] + 0.5 * 262.0
    st[shadow] -= 1.5
    qa = np.full(st.shape, QA_CLEAR_LAND, dtype=np.uint16)
    qa[water30] = QA_CLEAR_WATER
    qa[shadow] = QA_SHADOW
    qa[dilated] = QA_DILATED
    qa[cloud] = QA_CLOUD
    st_dn = np.clip(np.round((st - 149.0) / 0.00341802), 1, 65535).astype(np.uint16)
    sr = {}
    for b_ls, b_s2 in sr_bands.items():
        if b_s2 not in refl:
            continue
        a30 = ndimage.map_coordinates(ndimage.uniform_filter(refl[b_s2], 3), [rr - 0.5, cc - 0.5], order=1)
        sr[b_ls] = np.clip(np.round((a30 + 0.2) / 0.0000275), 1, 65535).astype(np.uint16)
    if spec.slc_off_gap > 0:  # ETM+ after 2003-05-31: a band of every 480 m scan (16 lines) lost, scans tilted ~8 deg,
        # where the scans fall shifting from date to date (a draw of its own: the other draws stay those of SLC-on)
        phase = np.random.default_rng([spec.seed, 6060, landsat_date.toordinal()]).uniform(0.0, 480.0)
        gap = (30.0 * r30 + 30.0 * np.tan(np.radians(8.0)) * c30 + phase) % 480.0 < spec.slc_off_gap * 480.0
        qa[gap], st_dn[gap] = 1, 0  # fill in every band, as USGS delivers the gaps
        for a in sr.values():
            a[gap] = 0
    d = landsat_date
    product = f"{spec.landsat_mission}_L2SP_116034_{d:%Y%m%d}_{d + timedelta(days=1):%Y%m%d}_02_T1"
    ls_dir = out / "landsat"
    _write_tif(ls_dir / f"{product}_{st_band}.TIF", st_dn, t30, crs, nodata=0)
    _write_tif(ls_dir / f"{product}_QA_PIXEL.TIF", qa, t30, crs, nodata=1)
    for b, a in sr.items():
        _write_tif(ls_dir / f"{product}_{b}.TIF", a, t30, crs, nodata=0)

    return cloud, s2_cloud, product, s2_date


def write_ecostress(folder: Path, lst_night: np.ndarray, water: np.ndarray, cloud_fraction: float, when: date,
                    lon: float, rng: np.random.Generator, crs: str, t10: Affine, x0: float, y1: float,
                    noise_k: float = 0.3) -> str:
    """An ECOSTRESS L2T LSTE (V2) tile of a night pass, named and laid out as NASA ships it: ``_LST`` (K, 70 m,
    the 10 m night LST through a 70 m detector footprint and ~15 m optics, ``noise_k`` random and 0.3 K smooth
    calibration noise, cloud tops where cloudy), ``_cloud``, ``_water`` (1 = flagged) and ``_LST_err`` (K).
    Acquired at 23:00 local solar time. Returns the product prefix."""
    n = lst_night.shape[0]
    n70 = n // 7
    t70 = Affine(70.0, 0, x0, 0, -70.0, y1)
    footprint = ndimage.gaussian_filter(lst_night, 1.5, mode="nearest")[: n70 * 7, : n70 * 7]
    lst = footprint.reshape(n70, 7, n70, 7).mean(axis=(1, 3)).astype(np.float32)
    lst += (0.3 * _smooth_field(rng, lst.shape, n70 / 4) + noise_k * rng.standard_normal(lst.shape)).astype(np.float32)
    wat = water[: n70 * 7, : n70 * 7].reshape(n70, 7, n70, 7).mean(axis=(1, 3)) > 0.5
    field = _smooth_field(rng, lst.shape, 4)
    cloud = field > np.quantile(field, 1 - cloud_fraction) if cloud_fraction > 0 else np.zeros(lst.shape, bool)
    lst[cloud] = 250.0 + 2.0 * field[cloud]  # cloud tops: the mask is what keeps them out
    err = np.where(cloud, 3.0, 0.8 + 0.2 * rng.random(lst.shape)).astype(np.float32)
    utc = datetime(when.year, when.month, when.day) + timedelta(hours=23.0 - lon / 15.0)
    prefix = f"ECOv002_L2T_LSTE_35698_014_52SCG_{utc:%Y%m%dT%H%M%S}_0712_01"
    _write_tif(folder / f"{prefix}_LST.tif", lst, t70, crs, nodata=np.nan)
    _write_tif(folder / f"{prefix}_LST_err.tif", err, t70, crs, nodata=np.nan)
    _write_tif(folder / f"{prefix}_cloud.tif", cloud.astype(np.uint8), t70, crs, nodata=255)
    _write_tif(folder / f"{prefix}_water.tif", wat.astype(np.uint8), t70, crs, nodata=255)
    return prefix
