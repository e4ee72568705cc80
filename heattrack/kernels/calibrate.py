"""Digital numbers to physical units (kelvin, surface reflectance 0-1).

Scale factors are the published Collection 2 Level-2 and Sentinel-2 L2A ones; fill values become NaN.
"""

from __future__ import annotations

import numpy as np

ST_B10_SCALE = 0.00341802
ST_B10_OFFSET = 149.0
SR_SCALE = 0.0000275
SR_OFFSET = -0.2
S2_QUANTIFICATION = 10000.0
#: BOA_ADD_OFFSET of processing baseline >= 04.00 (products from 2022-01-25 on).
S2_BOA_ADD_OFFSET_N0400 = -1000.0


def st_dn_to_kelvin(dn: np.ndarray, nodata: int = 0) -> np.ndarray:
    """Landsat C2L2 ``ST_B10`` DN (uint16) -> land-surface temperature in K (float32, NaN at fill)."""
    dn = np.asarray(dn)
    out = dn.astype(np.float32) * np.float32(ST_B10_SCALE) + np.float32(ST_B10_OFFSET)
    out[dn == nodata] = np.nan
    return out


def sr_dn_to_reflectance(dn: np.ndarray, nodata: int = 0) -> np.ndarray:
    """Landsat C2L2 ``SR_Bn`` DN -> surface reflectance (float32, nominally 0-1, NaN at fill)."""
    dn = np.asarray(dn)
    out = dn.astype(np.float32) * np.float32(SR_SCALE) + np.float32(SR_OFFSET)
    out[dn == nodata] = np.nan
    return out


def s2_dn_to_reflectance(dn: np.ndarray, boa_add_offset: float = 0.0, nodata: int = 0) -> np.ndarray:
    """Sentinel-2 L2A DN -> surface reflectance: ``(DN + BOA_ADD_OFFSET) / 10000`` (NaN at DN 0)."""
    dn = np.asarray(dn)
    out = (dn.astype(np.float32) + np.float32(boa_add_offset)) / np.float32(S2_QUANTIFICATION)
    out[dn == nodata] = np.nan
    return out


def s2_boa_offset_for_baseline(baseline: str | None) -> float | None:
    """BOA_ADD_OFFSET implied by a processing baseline such as ``"05.10"`` (None when unknown)."""
    if not baseline:
        return None
    try:
        major = float(baseline)
    except ValueError:
        return None
    return S2_BOA_ADD_OFFSET_N0400 if major >= 4.0 else 0.0
