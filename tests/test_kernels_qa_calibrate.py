import numpy as np
import pytest

from heattrack.kernels.calibrate import (
    s2_boa_offset_for_baseline,
    s2_dn_to_reflectance,
    sr_dn_to_reflectance,
    st_dn_to_kelvin,
)
from heattrack.kernels.qa import landsat_clear_mask, landsat_water_mask, scl_clear_mask


def test_landsat_typical_qa_values():
    qa = np.array([21824, 21952, 22280, 21762, 23824, 1, 21824 | (1 << 5)], dtype=np.uint16)
    #             clear   water  cloud  dilated shadow fill snow
    assert landsat_clear_mask(qa).tolist() == [True, False, False, False, False, False, False]
    assert landsat_water_mask(qa).tolist() == [False, True, False, False, False, False, False]


def test_scl_classes():
    scl = np.arange(12)
    clear = scl_clear_mask(scl)
    assert np.flatnonzero(clear).tolist() == [2, 4, 5, 7]
    assert np.flatnonzero(scl_clear_mask(scl, mask_water=False)).tolist() == [2, 4, 5, 6, 7]


def test_st_scale_offset_and_fill():
    k = st_dn_to_kelvin(np.array([0, 36408, 65535], dtype=np.uint16))
    assert np.isnan(k[0])
    assert k[1] == pytest.approx(36408 * 0.00341802 + 149.0, abs=1e-3)  # ~273.4 K
    assert k[2] == pytest.approx(373.0, abs=0.1)


def test_reflectance_scalings():
    assert sr_dn_to_reflectance(np.array([7273 + 7273 * 0], dtype=np.uint16))[0] == pytest.approx(0.0, abs=1e-3)
    r = s2_dn_to_reflectance(np.array([0, 1500, 2000], dtype=np.uint16), boa_add_offset=-1000)
    assert np.isnan(r[0]) and r[1] == pytest.approx(0.05) and r[2] == pytest.approx(0.1)


@pytest.mark.parametrize("baseline,expected", [("02.14", 0.0), ("04.00", -1000.0), ("05.10", -1000.0),
                                               (None, None), ("garbage", None)])
def test_baseline_offset(baseline, expected):
    assert s2_boa_offset_for_baseline(baseline) == expected
