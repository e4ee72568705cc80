import numpy as np
import pytest
from scipy import ndimage

from heattrack.kernels.coreg import phase_correlation_shift


@pytest.mark.parametrize("dy,dx", [(0.0, 0.0), (2.0, -3.0), (-5.0, 4.0), (0.5, 1.5)])
def test_phase_correlation_recovers_known_shifts(rng, dy, dx):
    base = ndimage.gaussian_filter(rng.normal(size=(160, 160)), 2.5)
    moved = ndimage.shift(base, (dy, dx), order=3, mode="wrap")
    s = phase_correlation_shift(base[16:-16, 16:-16], moved[16:-16, 16:-16])
    assert s.dy == pytest.approx(dy, abs=0.35) and s.dx == pytest.approx(dx, abs=0.35)
    assert s.peak > 0.3


def test_unrelated_images_have_a_low_peak_and_nan_is_tolerated(rng):
    a = ndimage.gaussian_filter(rng.normal(size=(96, 96)), 2)
    b = ndimage.gaussian_filter(rng.normal(size=(96, 96)), 2)
    assert phase_correlation_shift(a, b).peak < 0.1
    a2 = a.copy()
    a2[:10, :10] = np.nan
    s = phase_correlation_shift(a2, ndimage.shift(a, (1, 2), order=1, mode="wrap"))
    assert s.dy == pytest.approx(1, abs=0.4) and s.dx == pytest.approx(2, abs=0.4)
    with pytest.raises(ValueError):
        phase_correlation_shift(a, a[:-1])
