"""A Landsat scene on its own: its OLI reflectance bands as the optics where no Sentinel-2 granule comes with it, and
a scene delivered without ``QA_PIXEL`` screened on ``ST_B10``'s fill, a bright-and-cold cloud test and Fmask's water
test.

A Landsat Collection 2 Level-2 crop as USGS delivers it (``..._ST_B10.TIF`` and ``SR_B2``-``SR_B7`` in one folder,
the layout of ``../shared/data/real``'s Momotombo sample) is a scene heattrack runs on by itself. Its reflective bands
are read bilinearly onto the 10 m tile grid under the Sentinel-2 names of the nearest wavelengths
(:data:`~heattrack.kernels.predictors.LANDSAT_TO_S2`: SR_B4 is red B04, SR_B5 NIR B08, SR_B6/SR_B7 the SWIR B11/B12),
so the sharpener's predictor set is the same. They hold 30 m detail, not 10 m: the sharpened LST has 30 m detail on a
10 m grid (the outputs' layout, not their resolution), and no coregistration is needed (one platform, one geometry).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from odc.geo.geobox import GeoBox
from rasterio.enums import Resampling

from heattrack.kernels.calibrate import sr_dn_to_reflectance, st_dn_to_kelvin
from heattrack.kernels.predictors import LANDSAT_TO_S2

#: QA_PIXEL value used for pixels outside the scene: the fill bit.
QA_FILL_VALUE = 1
#: QA_PIXEL of a clear land pixel (the clear bit; cloud, shadow, snow and cirrus at low confidence): what a scene
#: delivered without its QA band is read as wherever ``ST_B10`` holds data and the blue band is not bright
CLEAR_QA_VALUE = 21824
#: QA_PIXEL's cloud bit: a pixel of a scene without QA_PIXEL that is bright in blue and cold (a cloud)
CLOUD_QA_VALUE = 1 << 3
#: a scene without QA_PIXEL counts a pixel as cloud where its blue (SR_B2) surface reflectance is above BRIGHT_BLUE
#: and its LST at least COLD_BELOW_K under the median of the tile's other pixels. On the Momotombo sample (61 % cloud
#: in its scene, no QA band in its files) 1.44 % of the crop is that bright, 16 K colder than the rest, and 1.33 % is
#: flagged; on simulated cities, whose bright roofs are 5-6 % of the pixels and no colder, 0.2-0.6 %. Cloud shadow
#: and thin cirrus are not caught
BRIGHT_BLUE = 0.2
COLD_BELOW_K = 5.0
#: QA_PIXEL of clear open water (the water bit on the clear land value): what the stand-in writes where Fmask's water
#: test holds (:func:`water_test`)
WATER_QA_VALUE = CLEAR_QA_VALUE | (1 << 7)

#: the reflective bands read beside ST_B10 when they are the optics (SR_B4 and SR_B5 are read for coregistration too)
LANDSAT_OPTICS_BANDS = tuple(LANDSAT_TO_S2)

#: ``warp(sensor, band, geobox, resampling, nodata)``: a reader's read of one band onto a tile
Warp = Callable[[str, str, GeoBox, Resampling, float], np.ndarray]


def water_test(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """Fmask's water test (Zhu & Woodcock 2012, the basis of USGS's CFMask, which writes QA_PIXEL's water bit) on
    surface reflectance: NDVI < 0.01 and NIR < 0.11, or 0 < NDVI < 0.1 and NIR < 0.05 — plus NIR at or below 0, which
    surface reflectance reaches over clear water (top-of-atmosphere reflectance, Fmask's input, does not; NDVI is
    undefined there). Snow and bright clouds fail it (NIR far above 0.11)."""
    red, nir = np.asarray(red, np.float32), np.asarray(nir, np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        nd = (nir - red) / (nir + red)
        return ((nir <= 0) | ((nd < 0.01) & (nir < 0.11)) | ((nd > 0) & (nd < 0.1) & (nir < 0.05))) & np.isfinite(nir)


def qa_stand_in(st: np.ndarray, blue: np.ndarray | None = None, red: np.ndarray | None = None,
                nir: np.ndarray | None = None) -> np.ndarray:
    """QA_PIXEL for a scene delivered without it: fill where ``st`` (ST_B10 DNs) has none, open water where ``red`` and
    ``nir`` (SR_B4, SR_B5 reflectance, when the scene has them) pass :func:`water_test`, cloud where ``blue`` (SR_B2)
    is bright and the LST cold (:data:`BRIGHT_BLUE`, :data:`COLD_BELOW_K`; before water), clear elsewhere."""
    st = np.asarray(st)
    out = np.where(st == 0, np.uint16(QA_FILL_VALUE), np.uint16(CLEAR_QA_VALUE))
    if red is not None and nir is not None:
        out[water_test(red, nir) & (st != 0)] = WATER_QA_VALUE
    if blue is not None:
        with np.errstate(invalid="ignore"):
            bright = (np.asarray(blue) > BRIGHT_BLUE) & (st != 0)
        rest = (st != 0) & ~bright
        if bright.any() and rest.any():
            kelvin = st_dn_to_kelvin(st)
            out[bright & (kelvin < np.median(kelvin[rest]) - COLD_BELOW_K)] = CLOUD_QA_VALUE
    return out


def landsat_optics(warp: Warp, geobox: GeoBox, landsat: Mapping[str, object], optional_bands: tuple[str, ...]
                   ) -> dict[str, np.ndarray]:
    """Surface reflectance (0-1, NaN at fill) of the scene's reflective bands on ``geobox`` under their Sentinel-2
    names: red B04 and NIR B08 always, the others where the scene has them and ``optional_bands`` (Sentinel-2 names,
    the sharpener's predictors) asks for them."""
    bands = {}
    for sr, s2 in LANDSAT_TO_S2.items():
        if sr in landsat and (s2 in ("B04", "B08") or s2 in optional_bands):
            bands[s2] = sr_dn_to_reflectance(warp("landsat", sr, geobox, Resampling.bilinear, 0))
    return bands


__all__ = ["BRIGHT_BLUE", "CLEAR_QA_VALUE", "CLOUD_QA_VALUE", "COLD_BELOW_K", "LANDSAT_OPTICS_BANDS", "QA_FILL_VALUE",
           "WATER_QA_VALUE", "landsat_optics", "qa_stand_in", "water_test"]
