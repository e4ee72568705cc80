"""Bands onto a grid of another CRS (the national grid, EPSG:5179, against UTM products): the reader's own nearest and
bilinear warp against the exact interpolation and against GDAL's warp."""

import numpy as np
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox
from pyproj import Transformer
from rasterio.enums import Resampling

from heattrack.io.rasterread import _warp_other_crs, source_positions, warp_band
from heattrack.kernels import warp as warp_kernel

UTM = "EPSG:32652"
NATIONAL = "EPSG:5179"


@pytest.fixture(scope="module")
def band(tmp_path_factory):
    """A 10 m uint16 band in UTM zone 52 near Seoul: texture at every scale, a nodata hole, nodata 0."""
    rng = np.random.default_rng(4)
    a = 800 + 2000 * rng.random((300, 280))
    a += 400 * np.sin(np.arange(280) / 7.0)[None, :]
    a = a.astype(np.uint16)
    a[100:104, 50:53] = 0
    path = tmp_path_factory.mktemp("warp") / "band.tif"
    with rasterio.open(path, "w", driver="GTiff", width=280, height=300, count=1, dtype="uint16", crs=UTM,
                       transform=Affine(10, 0, 302880, 0, -10, 4171140), nodata=0, tiled=True, blockxsize=64,
                       blockysize=64) as dst:
        dst.write(a, 1)
    return path, a.astype(float)


def _national_box(shape=(200, 180), res=10.0, dx=0.0, dy=0.0) -> GeoBox:
    x, y = Transformer.from_crs(UTM, NATIONAL, always_xy=True).transform(303400 + dx, 4170600 + dy)
    return GeoBox(shape, Affine(res, 0, round(x) + 0.37, 0, -res, round(y) + 0.81), NATIONAL)


def _exact_bilinear(a: np.ndarray, gb: GeoBox, rr: np.ndarray, cc: np.ndarray):
    x, y = gb.affine @ (cc + 0.5, rr + 0.5)
    col, row = ~Affine(10, 0, 302880, 0, -10, 4171140) @ Transformer.from_crs(NATIONAL, UTM, always_xy=True).transform(
        x, y)
    c0, r0 = np.floor(col - 0.5).astype(int), np.floor(row - 0.5).astype(int)
    fx, fy = col - 0.5 - c0, row - 0.5 - r0
    ok = (r0 >= 0) & (c0 >= 0) & (r0 + 1 < a.shape[0]) & (c0 + 1 < a.shape[1])
    r0, c0, fx, fy = r0[ok], c0[ok], fx[ok], fy[ok]
    taps = np.stack([a[r0, c0], a[r0, c0 + 1], a[r0 + 1, c0], a[r0 + 1, c0 + 1]])
    v = (a[r0, c0] * (1 - fx) * (1 - fy) + a[r0, c0 + 1] * fx * (1 - fy) + a[r0 + 1, c0] * (1 - fx) * fy
         + a[r0 + 1, c0 + 1] * fx * fy)
    return ok, (taps > 0).all(axis=0), v


def test_bilinear_onto_the_national_grid_is_the_exact_interpolation(band):
    """Each pixel is the bilinear interpolation at its centre's exact position (pyproj) to the integer rounding
    (GDAL's warp: within its approximate transformer's 0.125 px of it; on a whole tile up to ~10 DN)."""
    path, a = band
    gb = _national_box()
    ours = warp_band(path, gb, Resampling.bilinear, 0)
    gdal = warp_band(path, gb, Resampling.bilinear, 0, windowed=False)
    rng = np.random.default_rng(0)
    rr, cc = rng.integers(0, gb.height, 3000), rng.integers(0, gb.width, 3000)
    ok, clean, exact = _exact_bilinear(a, gb, rr, cc)
    err = np.abs(ours[rr[ok], cc[ok]].astype(float) - exact)[clean]
    assert err.max() <= 0.52  # rounding half up, and the lattice: ~1e-5 px on a texture of ~2000 DN per px
    both = (ours > 0) & (gdal > 0)  # beside the hole too: the weights of the taps with data renormalised, as GDAL's
    assert np.abs(ours.astype(float) - gdal)[both].mean() < 1.0 and np.abs(ours.astype(float) - gdal)[both].max() < 30
    assert ours.dtype == gdal.dtype and np.array_equal(ours == 0, gdal == 0)  # the same nodata (hole, outside)


def test_nearest_onto_the_national_grid_equals_gdal_but_at_pixel_edges(band):
    path, _ = band
    for gb in (_national_box(), _national_box(dx=-900, dy=700)):  # inside, and reaching past the raster's corner
        ours = warp_band(path, gb, Resampling.nearest, 0)
        gdal = warp_band(path, gb, Resampling.nearest, 0, windowed=False)
        assert (ours == 0).mean() == pytest.approx((gdal == 0).mean(), abs=2e-3)
        assert (ours != gdal).mean() < 3e-3  # centres within GDAL's approximation of a pixel edge
    assert (ours == 0).mean() > 0.1  # the second box reaches past the raster


def test_float_band_with_holes_renormalises_over_the_taps_with_data(tmp_path):
    a = np.full((60, 60), 280.0, dtype=np.float32)
    a[:, 30:] = 290.0
    a[20:40, 29] = np.nan  # a column of holes at the step
    path = tmp_path / "lst.tif"
    with rasterio.open(path, "w", driver="GTiff", width=60, height=60, count=1, dtype="float32", crs=UTM,
                       transform=Affine(10, 0, 302880, 0, -10, 4171140), nodata=np.nan) as dst:
        dst.write(a, 1)
    x, y = Transformer.from_crs(UTM, NATIONAL, always_xy=True).transform(303080, 4170940)
    gb = GeoBox((30, 30), Affine(10, 0, x, 0, -10, y), NATIONAL)
    out = warp_band(path, gb, Resampling.bilinear, np.nan)
    gdal = warp_band(path, gb, Resampling.bilinear, np.nan, windowed=False)
    assert out.dtype == np.float32 and np.isfinite(out).mean() > 0.8
    assert np.array_equal(np.isfinite(out), np.isfinite(gdal))  # no value only where the centre's pixel has none
    assert np.nanmin(out) >= 280.0 and np.nanmax(out) <= 290.0  # weights over the finite taps only: no NaN bleed


def test_the_python_path_gives_the_compiled_values(band, monkeypatch):
    path, _ = band
    gb = _national_box((40, 50))
    with rasterio.open(path) as src:
        fast = _warp_other_crs(src, gb, Resampling.bilinear, 0)
        monkeypatch.setattr(warp_kernel, "compiled", lambda fn: None)
        slow = _warp_other_crs(src, gb, Resampling.bilinear, 0)
    assert np.array_equal(fast, slow)


def test_coarser_grids_and_other_resamplings_go_to_gdal(band):
    path, _ = band
    with rasterio.open(path) as src:
        assert _warp_other_crs(src, _national_box(res=30.0), Resampling.bilinear, 0) is None  # GDAL averages more
        assert _warp_other_crs(src, _national_box(res=30.0), Resampling.nearest, 0) is None
        assert _warp_other_crs(src, _national_box(res=9.0), Resampling.nearest, 0) is not None
        assert _warp_other_crs(src, _national_box(), Resampling.cubic, 0) is None
        same_crs = GeoBox((20, 20), Affine(10, 0, 303000.3, 0, -10, 4170000), UTM)
        assert _warp_other_crs(src, same_crs, Resampling.bilinear, 0) is None  # same CRS: GDAL, as before


def test_lattice_positions_are_the_exact_transform(band):
    path, _ = band
    gb = _national_box((130, 70))
    with rasterio.open(path) as src:
        rows, cols, pc, pr = source_positions(gb, src.transform, src.crs.wkt, lattice_px=64)
    assert rows.tolist() == [0, 64, 128, 129] and cols.tolist() == [0, 64, 69]
    x, y = gb.affine @ (cols[1] + 0.5, rows[2] + 0.5)
    col, row = ~Affine(10, 0, 302880, 0, -10, 4171140) @ Transformer.from_crs(NATIONAL, UTM, always_xy=True).transform(
        x, y)
    assert (pc[2, 1], pr[2, 1]) == pytest.approx((col, row), abs=1e-9)
