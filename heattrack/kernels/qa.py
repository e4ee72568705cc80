"""Quality masks from Landsat C2L2 ``QA_PIXEL`` bits and Sentinel-2 L2A ``SCL`` classes.

Pure numpy: integer arrays in, boolean "clear" arrays out (True = usable land pixel).
"""

from __future__ import annotations

import numpy as np

# Landsat Collection 2 QA_PIXEL bit positions (USGS LSDS-1619).
QA_FILL = 0
QA_DILATED_CLOUD = 1
QA_CIRRUS = 2
QA_CLOUD = 3
QA_CLOUD_SHADOW = 4
QA_SNOW = 5
QA_CLEAR = 6
QA_WATER = 7

#: Bits that make a Landsat pixel unusable for land-surface temperature.
LANDSAT_REJECT_BITS: tuple[int, ...] = (
    QA_FILL,
    QA_DILATED_CLOUD,
    QA_CIRRUS,
    QA_CLOUD,
    QA_CLOUD_SHADOW,
    QA_SNOW,
    QA_WATER,
)

#: Sentinel-2 SCL classes that are never usable: no data, saturated/defective, cloud shadow,
#: cloud medium/high probability, thin cirrus, snow.  Water (6) is masked separately (``mask_water``).
SCL_REJECT_CLASSES: tuple[int, ...] = (0, 1, 3, 8, 9, 10, 11)
SCL_WATER = 6


def _bits_mask(bits: tuple[int, ...]) -> int:
    return int(sum(1 << b for b in bits))


def landsat_clear_mask(qa_pixel: np.ndarray, reject_bits: tuple[int, ...] = LANDSAT_REJECT_BITS) -> np.ndarray:
    """True where a ``QA_PIXEL`` value has none of ``reject_bits`` set (fill, cloud, shadow, snow, water...)."""
    qa = np.asarray(qa_pixel).astype(np.uint32, copy=False)
    return (qa & np.uint32(_bits_mask(reject_bits))) == 0


def landsat_water_mask(qa_pixel: np.ndarray) -> np.ndarray:
    """True where the ``QA_PIXEL`` water bit (7) is set."""
    return (np.asarray(qa_pixel).astype(np.uint32, copy=False) >> QA_WATER) & 1 == 1


def landsat_screen_masks(qa_pixel: np.ndarray, mask_water: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(screened, water)`` of a ``QA_PIXEL`` array: the pixels whose LST is screened for leaks (none of the reject
    bits; with ``mask_water`` False, open water is screened too), and the clear open water kept apart (the water bit
    and none of the others: fill, cloud, cirrus, shadow, snow; none without ``mask_water``). Water's surface
    temperature is a measurement: the LST layers show it, the risk layer has 0 there; it is never screened."""
    others = tuple(b for b in LANDSAT_REJECT_BITS if b != QA_WATER)
    if not mask_water:
        return landsat_clear_mask(qa_pixel, others), np.zeros(np.shape(qa_pixel), dtype=bool)
    return landsat_clear_mask(qa_pixel), landsat_water_mask(qa_pixel) & landsat_clear_mask(qa_pixel, others)


def scl_clear_mask(scl: np.ndarray, mask_water: bool = True) -> np.ndarray:
    """True where a Sentinel-2 SCL class is usable land (classes 2, 4, 5, 7; and 6 when ``mask_water`` is False)."""
    reject = SCL_REJECT_CLASSES + ((SCL_WATER,) if mask_water else ())
    return ~np.isin(np.asarray(scl), np.asarray(reject, dtype=np.int64))
