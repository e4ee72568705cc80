"""A Landsat Collection 2 Level-2 surface-temperature band screened on its own, as a thermal raster (``--thermal FILE``
or ``INPUT/thermal/``): the product's surface temperature without optics to sharpen it, for a user who holds the ST
band (USGS's ST bundle, an export of the band alone) but no reflective bands or Sentinel-2 granule. Landsat 8/9's
``ST_B10`` (TIRS, ~100 m), and the archive's ``ST_B6``: Landsat 7 ETM+ (1999-2022, 60 m: the sharpest thermal band
Landsat flew) and Landsat 4-5 TM (1982-2013, 120 m), for winters before Landsat 8 (the paired chain reads Landsat 8/9).

The band's scaled counts become kelvin (DN x 0.00341802 + 149.0 on every mission; DN 0 is fill, ETM+'s scan-line
gaps after 2003 among it). Beside it, by the product's name: ``QA_PIXEL`` screens fill, cloud, dilated cloud, cirrus
(Landsat 8/9), cloud shadow and snow and keeps clear open water apart (shown, never screened, as in the Landsat +
Sentinel-2 chain), and ``ST_QA`` (the product's uncertainty, DN x 0.01 K; -9999 fill) drops pixels above
``thermal.max_st_qa_k`` (5 K: real products' clear land reads 2-3 K, more near clouds). Without ``QA_PIXEL`` nothing is
screened, and the run says so. The footprint is the mission's thermal detector (:data:`LANDSAT_ST_MISSIONS`), which
the detectability model and the ranking's windows follow; the 30 m pixels are read as they are (nearest), as the
paired chain reads them.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
from odc.geo.geobox import GeoBox
from rasterio.enums import Resampling

from heattrack.io.landsat_optics import QA_FILL_VALUE
from heattrack.io.local import RASTER_SUFFIXES
from heattrack.io.mtl_georef import LANDSAT_PRODUCT_ID, landsat_st_band, placed_by_mtl_warning
from heattrack.io.rasterread import warp_band
from heattrack.kernels.calibrate import st_dn_to_kelvin
from heattrack.kernels.qa import landsat_screen_masks

#: TIRS's footprint (m): the ST product's 30 m pixels carry ~100 m information (../shared/README.md)
LANDSAT_ST_PSF_M = 100.0
LANDSAT_ST_SENSOR = "Landsat ST_B10 (no optics)"
#: the sensor name and thermal footprint (m, the detector's ground sample before Collection 2 resamples it onto
#: 30 m pixels) of each mission's ST band, by the product id's first four letters
LANDSAT_ST_MISSIONS = {
    "LC08": (LANDSAT_ST_SENSOR, LANDSAT_ST_PSF_M), "LC09": (LANDSAT_ST_SENSOR, LANDSAT_ST_PSF_M),
    "LE07": ("Landsat 7 ETM+ ST_B6 (no optics)", 60.0),
    "LT05": ("Landsat 4-5 TM ST_B6 (no optics)", 120.0), "LT04": ("Landsat 4-5 TM ST_B6 (no optics)", 120.0),
}
#: the sensor names of ST bands screened alone (:class:`heattrack.io.thermal.ThermalScene.sensor`)
LANDSAT_ST_SENSORS = frozenset(name for name, _ in LANDSAT_ST_MISSIONS.values())
ST_QA_SCALE = 0.01  # K per ST_QA count
ST_QA_FILL = -9999
_LAYERS = ("QA_PIXEL", "ST_QA")


def _product_files(path: Path) -> dict[str, Path]:
    """The rasters of ``path``'s product in its folder, by layer name (``QA_PIXEL``, ``ST_QA``, ``SR_B4`` ...; any case
    of the suffix), from one listing of the folder."""
    name = Path(path).name
    prefix = name[: name.upper().rindex(f"_{landsat_st_band(path)}.")].upper() + "_"
    out: dict[str, Path] = {}
    for f in sorted(Path(path).parent.iterdir()):
        stem, _, suffix = f.name.rpartition(".")
        if stem.upper().startswith(prefix) and f".{suffix.lower()}" in RASTER_SUFFIXES:
            out.setdefault(stem.upper()[len(prefix):], f)
    return out


def landsat_st_fields(path: Path) -> dict:
    """:class:`heattrack.io.thermal.ThermalScene` fields of a Landsat ST band (:func:`is_landsat_st`): its quality
    layers, date, sensor and footprint."""
    m = LANDSAT_PRODUCT_ID.search(Path(path).name)
    sensor, psf_m = LANDSAT_ST_MISSIONS[m.group(0)[:4].upper()]
    try:
        when: date | None = datetime.strptime(m.group(2), "%Y%m%d").date()
    except ValueError:
        when = None
    files = _product_files(path)
    masks = tuple((layer, files[layer]) for layer in _LAYERS if layer in files)
    return {"masks": masks, "when": when, "acquired": when.isoformat() if when else None,
            "sensor": sensor, "psf_m": psf_m}


def landsat_st_warnings(scenes) -> list[str]:
    """The run's warnings for Landsat ST bands screened alone: placed by the product's MTL, no ``QA_PIXEL`` (clouds
    not screened), and Landsat 8/9's reflective bands beside the band, which the paired chain would use."""
    out = []
    for sc in scenes:
        if sc.sensor not in LANDSAT_ST_SENSORS:
            continue
        if (placed := placed_by_mtl_warning(sc.path)) is not None:
            out.append(placed)
        if not any(layer == "QA_PIXEL" for layer, _ in sc.masks):
            out.append(f"{sc.path.name}: no QA_PIXEL beside it: clouds, shadows and water are not screened (a cold "
                       "cloud lowers the network's statistic, a cloud edge can rank as heat)")
        if sc.sensor == LANDSAT_ST_SENSOR and {"SR_B4", "SR_B5"} <= set(_product_files(sc.path)):
            out.append(f"{sc.path.name}: screened as a thermal raster without optics; its folder holds SR_B4 and "
                       "SR_B5: --input on that folder sharpens it and removes the land cover's heat first")
    return out


def read_landsat_st(scene, geobox: GeoBox) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """``scene``'s LST on ``geobox`` (K, float32; NaN at fill and outside) with its flags: ``(lst, cloud, water,
    err)`` for :func:`heattrack.io.thermal.mask_lst_and_water` — ``cloud`` non-zero where ``QA_PIXEL`` rejects the
    pixel other than for water (none without ``QA_PIXEL``), ``water`` non-zero on clear open water, ``err`` the
    ``ST_QA`` uncertainty in K (None without it; NaN at its fill)."""
    lst = st_dn_to_kelvin(warp_band(scene.path, geobox, Resampling.nearest, 0))
    layers = dict(scene.masks)
    if "QA_PIXEL" in layers:
        qa = warp_band(layers["QA_PIXEL"], geobox, Resampling.nearest, QA_FILL_VALUE)  # outside: fill, screened
        screened, water = landsat_screen_masks(qa)
        cloud = (~screened & ~water).astype(np.uint8)
        water = water.astype(np.uint8)
    else:
        cloud = water = np.zeros(lst.shape, dtype=np.uint8)
    err = None
    if "ST_QA" in layers:
        dn = warp_band(layers["ST_QA"], geobox, Resampling.nearest, ST_QA_FILL)
        err = np.where(dn == ST_QA_FILL, np.nan, dn.astype(np.float32) * np.float32(ST_QA_SCALE)).astype(np.float32)
    return lst, cloud, water, err


__all__ = ["LANDSAT_ST_MISSIONS", "LANDSAT_ST_PSF_M", "LANDSAT_ST_SENSOR", "LANDSAT_ST_SENSORS", "landsat_st_fields",
           "landsat_st_warnings", "read_landsat_st"]
