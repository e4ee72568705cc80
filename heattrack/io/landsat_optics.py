"""A Landsat scene on its own: its OLI reflectance bands as the optics where no Sentinel-2 granule comes with it, and
a scene delivered without ``QA_PIXEL`` screened on ``ST_B10``'s fill alone.

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

from heattrack.kernels.calibrate import sr_dn_to_reflectance
from heattrack.kernels.predictors import LANDSAT_TO_S2

#: QA_PIXEL value used for pixels outside the scene: the fill bit.
QA_FILL_VALUE = 1
#: QA_PIXEL of a clear land pixel (the clear bit; cloud, shadow, snow and cirrus at low confidence): what a scene
#: delivered without its QA band is read as wherever ``ST_B10`` holds data
CLEAR_QA_VALUE = 21824
#: the reflective bands read beside ST_B10 when they are the optics (SR_B4 and SR_B5 are read for coregistration too)
LANDSAT_OPTICS_BANDS = tuple(LANDSAT_TO_S2)

#: ``warp(sensor, band, geobox, resampling, nodata)``: a reader's read of one band onto a tile
Warp = Callable[[str, str, GeoBox, Resampling, float], np.ndarray]


def qa_or_clear(qa: np.ndarray | None, st: np.ndarray) -> np.ndarray:
    """``qa`` as read, or for a scene without QA_PIXEL: clear wherever ``st`` (ST_B10 DNs) has data, fill elsewhere."""
    if qa is not None:
        return qa
    return np.where(np.asarray(st) == 0, np.uint16(QA_FILL_VALUE), np.uint16(CLEAR_QA_VALUE))


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


__all__ = ["CLEAR_QA_VALUE", "LANDSAT_OPTICS_BANDS", "QA_FILL_VALUE", "landsat_optics", "qa_or_clear"]
