"""The pipe map moved onto the network's heat on a fine raster (kernels.alignment.network_shift)."""

from __future__ import annotations

import numpy as np
from affine import Affine

from heattrack.kernels.alignment import network_shift
from heattrack.kernels.segments import sample_at_points

T = Affine(10.0, 0.0, 0.0, 0.0, -10.0, 640.0)  # 64 x 64 pixels of 10 m, north up


def _network(rows=(30,), cols=(20,), k=2.0, seed=0):
    """Excess heat along streets (rows and columns of pixels) over 0.2 K noise, and points every 10 m on them."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, 0.2, (64, 64)).astype(np.float32)
    for r in rows:
        a[r, :] += k
    for c in cols:
        a[:, c] += k
    return a


def _points_on(rows=(30,), cols=(20,), dr=0, dc=0):
    """Pixel-centre points along the streets, offset by ``dr`` rows and ``dc`` columns (a map that is off)."""
    xs, ys = [], []
    for r in rows:
        xs.append(np.arange(64) * 10.0 + 5.0 + dc * 10.0)
        ys.append(np.full(64, 640.0 - (r + dr) * 10.0 - 5.0))
    for c in cols:
        xs.append(np.full(64, (c + dc) * 10.0 + 5.0))
        ys.append(640.0 - np.arange(64) * 10.0 - 5.0 - dr * 10.0)
    return np.concatenate(xs), np.concatenate(ys)


def test_a_map_two_pixels_off_is_moved_back_onto_the_streets():
    a = _network()
    x, y = _points_on(dr=2, dc=-1)  # the map 20 m south and 10 m west of the streets
    dx, dy, gain = network_shift(a, T, x, y, radius_px=2)
    assert dy == 20.0 and dx in (5.0, 10.0) and gain > 1.0  # +5 m from a pixel centre reads the next pixel already
    assert np.nanmedian(sample_at_points(a, T, x + dx, y + dy)) > 1.8  # every point back on its street
    dx1, dy1, _ = network_shift(a, T, x, y, radius_px=1)  # 20 m is beyond a radius of one pixel: not all of it
    assert np.nanmedian(sample_at_points(a, T, x + dx1, y + dy1)) < 1.8


def test_a_right_map_stays_and_a_leak_or_flat_ground_moves_nothing():
    a = _network()
    x, y = _points_on()
    assert network_shift(a, T, x, y, radius_px=2) == (0.0, 0.0, 0.0)
    flat = np.random.default_rng(1).normal(0.0, 0.2, (64, 64)).astype(np.float32)
    flat[40:44, 10:14] += 8.0  # one hot spot beside the points: the median of the network does not follow it
    assert network_shift(flat, T, x, y, radius_px=2) == (0.0, 0.0, 0.0)
    assert network_shift(a, T, x, y, radius_px=0) == (0.0, 0.0, 0.0)
    assert network_shift(a, T, x[:10], y[:10], radius_px=2) == (0.0, 0.0, 0.0)  # too few points to tell
