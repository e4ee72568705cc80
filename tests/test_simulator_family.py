"""The simulator family: randomised members, every Sentinel-2 band written and read back."""

from pathlib import Path

import numpy as np
from odc.geo.geobox import GeoBox

from heattrack.io.local import LocalSceneReader, discover_local_scene
from heattrack.simulate import family_spec, simulate_scene


def test_family_members_differ_and_are_reproducible():
    a, b = family_spec(1), family_spec(2)
    assert a == family_spec(1) and a != b
    assert a.physics != b.physics and a.seed != b.seed
    assert a.leak_k == (1.0, 15.0) and round(a.leak_fwhm_m[0] / 2.3548) == 4 and round(a.leak_fwhm_m[1] / 2.3548) == 30
    assert family_spec(3, size_km=2.0, leaks=4).leaks == 4


def test_family_scene_has_every_band_and_the_reader_uses_them(tmp_path):
    truth = simulate_scene(tmp_path, family_spec(5, size_km=1.8, leaks=3))
    names = " ".join(p.name for p in (tmp_path / "sentinel2").iterdir())
    for b in ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12", "SCL"):
        assert f"_{b}_" in names
    assert len(list((tmp_path / "landsat").glob("*_SR_B*.TIF"))) == 6
    scene = discover_local_scene(tmp_path)
    assert set(scene.sentinel2) >= {"B02", "B05", "B8A", "B12"}
    import rasterio

    with rasterio.open(tmp_path / "truth" / "lst_10m.tif") as src:
        gb = GeoBox(src.shape, src.transform, src.crs.to_wkt())
    inp = LocalSceneReader(scene).read(gb[:60, :60])
    assert len(inp.bands) == 10 and inp.bands["B11"].shape == (60, 60)
    assert np.isfinite(inp.bands["B12"]).mean() > 0.9 and 0 < np.nanmean(inp.bands["B11"]) < 0.6
    np.testing.assert_array_equal(inp.bands["B04"], inp.red)
    assert truth["n_segments"] > 0


def test_tirs_sampled_every_100_m_holds_less_30_m_detail(tmp_path):
    """``tirs_sample_m=100``: the Landsat ST_B10 30 m pixels are a cubic resampling of 100 m detector samples (as
    Collection 2 delivers them), so their pixel-to-pixel differences are smaller than when every 30 m pixel samples
    the footprint-blurred field; the scene's level is the same."""
    from dataclasses import replace

    import rasterio

    def st(sample_m: float) -> np.ndarray:
        out = tmp_path / f"s{sample_m:g}"
        simulate_scene(out, replace(family_spec(5, size_km=2.4, leaks=3), cloud_fraction=0.0,
                                    tirs_sample_m=sample_m))
        with rasterio.open(next((out / "landsat").glob("*_ST_B10.TIF"))) as src:
            return src.read(1).astype(float) * 0.00341802 + 149.0

    a, b = st(30.0), st(100.0)
    detail = [float(np.median(np.abs(np.diff(x[5:-5, 5:-5], axis=1)))) for x in (a, b)]
    assert detail[1] < 0.9 * detail[0]  # 0.79 measured
    assert abs(np.median(a) - np.median(b)) < 0.3


def test_the_same_city_as_landsat_7_and_5_saw_it(tmp_path):
    """``landsat_mission``: the same city, clouds and reflectance under the mission's names, the thermal band through
    its detector: the 30 m detail of ETM+'s 60 m band follows the true LST's closer than TIRS's 100 m, TM's 120 m
    (and 0.5 K noise) less; an unknown mission is refused before anything is written."""
    from dataclasses import replace

    import pytest
    import rasterio
    from scipy import ndimage

    def read(path: Path) -> np.ndarray:
        with rasterio.open(path) as src:
            return src.read(1).astype(float)

    def band(mission: str, name: str) -> np.ndarray:
        return read(next((tmp_path / mission / "landsat").glob(f"{mission}_*_{name}.TIF")))

    for mission in ("LC09", "LE07", "LT05"):
        simulate_scene(tmp_path / mission, replace(family_spec(5, size_km=2.4, leaks=3), landsat_mission=mission))
    np.testing.assert_array_equal(band("LE07", "QA_PIXEL"), band("LC09", "QA_PIXEL"))
    np.testing.assert_array_equal(band("LE07", "SR_B3"), band("LC09", "SR_B4"))  # red: TM/ETM+ band 3, OLI band 4
    np.testing.assert_array_equal(band("LT05", "SR_B4"), band("LC09", "SR_B5"))  # NIR
    truth = read(tmp_path / "LC09" / "truth" / "lst_10m.tif")
    st_shape = band("LC09", "QA_PIXEL").shape
    true30 = ndimage.uniform_filter(truth, 3)[2::3, 2::3][: st_shape[0], : st_shape[1]]  # the 30 m pixels' truth
    clear = (band("LC09", "QA_PIXEL") == 21824)[: true30.shape[0], : true30.shape[1]]
    clear = ndimage.binary_erosion(clear, iterations=4)

    def detail(x: np.ndarray) -> np.ndarray:  # what a 7-pixel (210 m) mean leaves
        return (x - ndimage.uniform_filter(x, 7))[clear]

    corr = {m: float(np.corrcoef(detail(band(m, b)[: true30.shape[0], : true30.shape[1]]), detail(true30))[0, 1])
            for m, b in (("LC09", "ST_B10"), ("LE07", "ST_B6"), ("LT05", "ST_B6"))}
    assert corr["LE07"] > corr["LC09"] > corr["LT05"], corr
    with pytest.raises(ValueError, match="unknown landsat_mission 'LO08'"):
        simulate_scene(tmp_path / "x", replace(family_spec(5, size_km=1.2), landsat_mission="LO08"))
    assert not (tmp_path / "x").exists()


def test_etm_scan_line_gaps(tmp_path):
    """``slc_off_gap``: ETM+ after 2003 loses a band of every 480 m scan, fill in every band, the share asked for;
    the ST band alone reads NaN there."""
    from dataclasses import replace

    import rasterio
    from odc.geo.geobox import GeoBox

    from heattrack.io.thermal import ThermalReader, describe_thermal

    simulate_scene(tmp_path, replace(family_spec(5, size_km=2.4, leaks=3), landsat_mission="LE07", slc_off_gap=0.22,
                                     cloud_fraction=0.0))
    st_path = next((tmp_path / "landsat").glob("*_ST_B6.TIF"))
    with rasterio.open(st_path) as src:
        st, gb = src.read(1), GeoBox(src.shape, src.transform, src.crs)
    with rasterio.open(next((tmp_path / "landsat").glob("*_QA_PIXEL.TIF"))) as src:
        qa = src.read(1)
    gap = st == 0
    assert abs(gap.mean() - 0.22) < 0.02 and np.array_equal(gap, qa == 1)
    k = gap.shape[0] // 16
    assert set(gap[: 16 * k, 0].reshape(k, 16).sum(axis=1).tolist()) <= {3, 4}  # 105 m lost of every 480 m
    lst = ThermalReader(describe_thermal(st_path)).read(gb).lst
    assert np.isnan(lst[gap]).all() and np.isfinite(lst[~gap & (qa == 21824)]).all()
    simulate_scene(tmp_path / "two", replace(family_spec(5, size_km=2.4, leaks=3), landsat_mission="LE07",
                                             slc_off_gap=0.22, cloud_fraction=0.0, dates=2))
    gaps = []
    for st_path in sorted((tmp_path / "two").glob("*/landsat/*_ST_B6.TIF")):
        with rasterio.open(st_path) as src:
            gaps.append(src.read(1) == 0)
    assert len(gaps) == 2 and (gaps[0] & gaps[1]).mean() < 0.5 * gaps[0].mean()  # the next date's scans fall elsewhere
