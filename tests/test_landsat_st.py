"""A Landsat ST band screened on its own as a thermal raster (``--thermal FILE``): counts to kelvin, QA_PIXEL and
ST_QA beside it, the mission's footprint (Landsat 8/9 ST_B10, Landsat 4-7 ST_B6), the run's warnings."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox

from heattrack.io.landsat_st import LANDSAT_ST_MISSIONS, LANDSAT_ST_SENSOR, landsat_st_warnings
from heattrack.io.mtl_georef import landsat_st_band
from heattrack.io.thermal import ThermalReader, describe_thermal

PRODUCT = "LC08_L2SP_116034_20250115_20250116_02_T1"
REAL = Path(__file__).parent / "data" / "real" / "landsat-momotombo"
X0, Y0 = 300000.0, 4160000.0


def _band(folder: Path, name: str, data: np.ndarray, dtype: str, product: str = PRODUCT) -> Path:
    path = folder / f"{product}_{name}.TIF"
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype=dtype,
                       crs="EPSG:32652", transform=Affine(30.0, 0, X0, 0, -30.0, Y0)) as dst:
        dst.write(data.astype(dtype), 1)
    return path


def _dn(kelvin: float) -> int:
    return int(round((kelvin - 149.0) / 0.00341802))


@pytest.fixture
def st_product(tmp_path):
    """20 x 20 pixels of 30 m at 280 K: a cloud in rows 0-3, open water in rows 16-19 / cols 0-4 (291 K), an uncertain
    band (ST_QA 3 K) in rows 8-9, fill in the last four pixels of the last row; elsewhere ST_QA 0.5 K."""
    st = np.full((20, 20), _dn(280.0))
    st[16:, :5] = _dn(291.0)
    st[19, 16:] = 0
    qa = np.full((20, 20), 21824)
    qa[:4] = 22280
    qa[16:, :5] = 21952
    qa[19, 16:] = 1
    st_qa = np.full((20, 20), 50)
    st_qa[8:10] = 300
    st_qa[19, 16:] = -9999
    path = _band(tmp_path, "ST_B10", st, "uint16")
    _band(tmp_path, "QA_PIXEL", qa, "uint16")
    _band(tmp_path, "ST_QA", st_qa, "int16")
    return path


def test_an_st_b10_band_is_read_as_kelvin_screened_by_its_quality_layers(st_product):
    sc = describe_thermal(st_product, max_st_qa_k=2.0)
    assert (sc.sensor, sc.units, sc.psf_m, sc.psf_source, sc.pixel_m) == (LANDSAT_ST_SENSOR, "K", 100.0, "sensor", 30.0)
    assert sc.landsat_date == date(2025, 1, 15) and [k for k, _ in sc.masks] == ["QA_PIXEL", "ST_QA"]
    assert sc.stated_m == 100.0  # the ranking's windows follow TIRS's footprint, not the 30 m pixels
    geobox = GeoBox((60, 60), Affine(10.0, 0, X0, 0, -10.0, Y0), "EPSG:32652")
    got = ThermalReader(sc).read(geobox)
    lst = got.lst
    px = lambda r, c: lst[3 * r + 1, 3 * c + 1]  # noqa: E731 - the 10 m pixel at the centre of 30 m pixel (r, c)
    assert px(5, 5) == pytest.approx(280.0, abs=0.002) and got.lst_err[16, 16] == pytest.approx(0.5)
    assert np.isnan(lst[:12]).all()  # cloud
    assert np.isnan(lst[24:30]).all()  # ST_QA 3 K > 2 K
    assert np.isnan(lst[57:, 48:]).all()  # fill
    assert np.isnan(lst[48:, :15]).all() and np.nanmean(got.water_lst[48:, :15]) == pytest.approx(291.0, abs=0.002)
    assert np.isfinite(lst[12:24]).all() and np.isfinite(lst[30:48]).all()
    assert landsat_st_warnings([sc]) == []


def test_without_qa_pixel_nothing_is_screened_and_the_run_says_so(st_product):
    for layer in ("QA_PIXEL", "ST_QA"):
        (st_product.parent / f"{PRODUCT}_{layer}.TIF").unlink()
    sc = describe_thermal(st_product)
    assert sc.masks == ()
    geobox = GeoBox((60, 60), Affine(10.0, 0, X0, 0, -10.0, Y0), "EPSG:32652")
    lst = ThermalReader(sc).read(geobox).lst
    assert np.isnan(lst).sum() == 4 * 9 and np.nanmax(lst) == pytest.approx(291.0, abs=0.002)  # only the fill
    (warning,) = landsat_st_warnings([sc])
    assert "no QA_PIXEL" in warning


def test_a_float_export_in_kelvin_named_st_b10_is_not_scaled_again(tmp_path):
    path = tmp_path / f"{PRODUCT}_ST_B10.TIF"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=1, dtype="float32", crs="EPSG:32652",
                       transform=Affine(30.0, 0, X0, 0, -30.0, Y0)) as dst:
        dst.write(np.full((1, 8, 8), 275.5, np.float32))
    sc = describe_thermal(path)
    assert sc.sensor != LANDSAT_ST_SENSOR and sc.psf_m == 30.0
    lst = ThermalReader(sc).read(GeoBox((24, 24), Affine(10.0, 0, X0, 0, -10.0, Y0), "EPSG:32652")).lst
    assert np.allclose(lst, 275.5)


def test_the_real_momotombo_st_b10_alone(tmp_path):
    """The real crop's ST_B10 with its MTL and reflective bands beside it: kelvin in the scene's range, its date, no
    QA_PIXEL (warned), and the hint that its folder sharpens it; stripped of its georeferencing, placed by the MTL."""
    st = next(REAL.glob("*_ST_B10.TIF"))
    sc = describe_thermal(st)
    assert sc.sensor == LANDSAT_ST_SENSOR and sc.landsat_date == date(2015, 12, 5)
    warnings = landsat_st_warnings([sc])
    assert len(warnings) == 2 and "no QA_PIXEL" in warnings[0] and "--input" in warnings[1]
    with rasterio.open(st) as src:
        geobox = GeoBox((90, 90), src.transform * Affine.translation(100, 100) * Affine.scale(1 / 3), src.crs)
        dn = src.read(1)[100:130, 100:130]
    lst = ThermalReader(sc).read(geobox).lst
    assert np.allclose(lst[1::3, 1::3], np.where(dn == 0, np.nan, dn * 0.00341802 + 149.0), equal_nan=True)
    assert 280.0 < np.nanmedian(lst) < 320.0
    bare = tmp_path / "crop"
    bare.mkdir()
    shutil.copy(next(REAL.glob("*_MTL.txt")), bare)
    with rasterio.open(st) as src:
        profile = {k: v for k, v in src.profile.items() if k not in ("crs", "transform")}
        with rasterio.open(bare / st.name, "w", **profile) as dst:
            dst.write(src.read())
    import warnings as w

    with w.catch_warnings():
        w.simplefilter("ignore")  # rasterio's NotGeoreferencedWarning on writing the stripped copy
        placed = describe_thermal(bare / st.name)
    assert np.array_equal(ThermalReader(placed).read(geobox).lst, lst, equal_nan=True)
    assert "placed on EPSG:32616" in landsat_st_warnings([placed])[0]


@pytest.mark.slow
@pytest.mark.parametrize("mission", ["LC09", "LE07"])
def test_a_simulated_city_screened_from_its_st_band_alone(tmp_path, mission):
    from distributed import Client, LocalCluster

    from heattrack.config import load_config
    from heattrack.evaluate import evaluate_run
    from heattrack.orchestration.run import run
    from heattrack.simulate import family_spec, simulate_scene

    scene = tmp_path / "city"
    simulate_scene(scene, family_spec(5, size_km=3.0, leaks=10, leak_k=(6.0, 14.0), landsat_mission=mission))
    st = next((scene / "landsat").glob("*_ST_B*.TIF"))
    cfg = load_config(None, {"input.thermal": st, "input.pipes": scene / "pipes.geojson", "grid.tile_km": 1.5})
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cl, \
            Client(cl) as client:
        run(cfg, tmp_path / "out", client=client)
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    sensor, psf_m = LANDSAT_ST_MISSIONS[mission]
    assert (info["inputs"]["sensor"], info["inputs"]["psf_m"]) == (sensor, psf_m)
    assert info["inputs"]["quality_layers"] == ["QA_PIXEL"]
    assert all(t["sharpen"]["method"] == "none" for t in info["tile_summaries"].values())
    assert any("SR_B4 and SR_B5" in w for w in info["warnings"]) == (mission == "LC09")  # Landsat 8/9's optics
    page = (tmp_path / "out" / "report" / "index.html").read_text()
    assert f"{sensor.removesuffix(' (no optics)')} band <code>" in page and "no optics: not sharpened" in page
    assert f"a 20 m leak plume keeps about 1/{13 if mission == 'LC09' else 5} of its peak" in page
    assert "Sentinel-2 None" not in page
    ev = evaluate_run(scene, tmp_path / "out")
    assert ev["detection"]["roc_auc"] > 0.75, ev["detection"]


def test_an_input_folder_with_the_st_band_alone_points_to_thermal(st_product):
    from heattrack.errors import InputError
    from heattrack.io.local import discover_local_scenes

    folder = st_product.parent.parent / "scene"
    (folder / "landsat").mkdir(parents=True)
    for f in st_product.parent.glob(f"{PRODUCT}_*.TIF"):
        shutil.copy(f, folder / "landsat")
    with pytest.raises(InputError, match=r"--thermal FILE, or move them from landsat/ to INPUT/thermal/"):
        discover_local_scenes(folder)


def test_an_st_bundle_in_a_thermal_folder_is_one_date(st_product):
    """USGS's ST bundle unpacked into INPUT/thermal/: the ST_B10 band is the date, its other files are not."""
    from heattrack.io.thermal import discover_thermal

    folder = st_product.parent.parent / "scene"
    (folder / "thermal").mkdir(parents=True)
    for f in st_product.parent.glob(f"{PRODUCT}_*.TIF"):
        shutil.copy(f, folder / "thermal")
    shutil.copy(folder / "thermal" / f"{PRODUCT}_ST_QA.TIF", folder / "thermal" / f"{PRODUCT}_ST_TRAD.TIF")
    scenes, dropped = discover_thermal(folder, None, max_st_qa_k=2.0)
    assert [sc.path.name for sc in scenes] == [st_product.name] and dropped == []
    assert [k for k, _ in scenes[0].masks] == ["QA_PIXEL", "ST_QA"]


@pytest.mark.parametrize(("mission", "psf_m"), [("LE07", 60.0), ("LT05", 120.0)])
def test_a_landsat_4_7_st_b6_band_is_read_with_its_missions_footprint(tmp_path, mission, psf_m):
    """The archive's ST_B6 (ETM+ 60 m, TM 120 m): the same counts, QA_PIXEL and ST_QA as ST_B10, its own footprint;
    an ETM+ scan-line gap (fill) is screened. The Landsat 4-7 SR bands beside it are not Landsat 8/9's: no hint."""
    product = PRODUCT.replace("LC08", mission)
    st = np.full((20, 20), _dn(275.0))
    st[:, 7] = 0  # a scan-line gap
    qa = np.full((20, 20), 21824)
    qa[:4] = 22280
    qa[:, 7] = 1
    path = _band(tmp_path, "ST_B6", st, "uint16", product)
    _band(tmp_path, "QA_PIXEL", qa, "uint16", product)
    for b in ("SR_B4", "SR_B5"):
        _band(tmp_path, b, np.full((20, 20), 20000), "uint16", product)
    sc = describe_thermal(path)
    assert (sc.sensor, sc.psf_m, sc.psf_source) == (LANDSAT_ST_MISSIONS[mission][0], psf_m, "sensor")
    assert sc.stated_m == psf_m  # the ranking's windows follow the mission's footprint
    assert sc.landsat_date == date(2025, 1, 15) and [k for k, _ in sc.masks] == ["QA_PIXEL"]
    lst = ThermalReader(sc).read(GeoBox((60, 60), Affine(10.0, 0, X0, 0, -10.0, Y0), "EPSG:32652")).lst
    assert np.isnan(lst[:12]).all() and np.isnan(lst[:, 21:24]).all()  # cloud, gap
    assert np.nanmin(lst) == pytest.approx(275.0, abs=0.002) and np.isfinite(lst[12:, 24:]).all()
    assert landsat_st_warnings([sc]) == []


def test_the_st_band_is_the_one_its_mission_has():
    from heattrack.io.mtl_georef import LANDSAT_ST_BANDS

    assert set(LANDSAT_ST_MISSIONS) == set(LANDSAT_ST_BANDS)  # every mission read has its sensor and footprint
    assert landsat_st_band(Path(f"{PRODUCT}_ST_B10.TIF")) == "ST_B10"
    assert landsat_st_band(Path(PRODUCT.replace("LC08", "LE07") + "_st_b6.tif")) == "ST_B6"
    assert landsat_st_band(Path(f"{PRODUCT}_ST_B6.TIF")) is None  # Landsat 8's band 6 is no thermal band
    assert landsat_st_band(Path(PRODUCT.replace("LC08", "LT05") + "_ST_B10.TIF")) is None
    assert landsat_st_band(Path(PRODUCT.replace("LC08", "LE07") + "_ST_QA.TIF")) is None


def test_landsat_7_products_in_an_input_folder_point_to_thermal(tmp_path):
    """The Landsat + Sentinel-2 chain reads Landsat 8/9: an ETM+ product in landsat/ (or found by name) is refused
    in one line that says how to screen its ST_B6; in INPUT/thermal/ its ST_B6 is the date."""
    from heattrack.errors import InputError
    from heattrack.io.local import discover_local_scenes
    from heattrack.io.thermal import discover_thermal

    product = PRODUCT.replace("LC08", "LE07")
    for sub in ("a/landsat", "b/x", "c/thermal"):
        folder = tmp_path / sub
        folder.mkdir(parents=True)
        _band(folder, "ST_B6", np.full((8, 8), _dn(275.0)), "uint16", product)
        _band(folder, "QA_PIXEL", np.full((8, 8), 21824), "uint16", product)
    for sub in ("a", "b"):
        with pytest.raises(InputError, match=r"Landsat 4-7 surface-temperature band: .*--thermal FILE or in INPUT/th"):
            discover_local_scenes(tmp_path / sub)
    scenes, _ = discover_thermal(tmp_path / "c", None, max_st_qa_k=2.0)
    assert [sc.path.name for sc in scenes] == [f"{product}_ST_B6.TIF"] and scenes[0].psf_m == 60.0


@pytest.mark.parametrize(("folder", "mission", "psf_m", "when"), [
    ("landsat7-etm-eodatasets", "LE07", 60.0, date(2021, 3, 31)),
    ("landsat5-tm-eodatasets", "LT05", 120.0, date(1998, 3, 8))])
def test_a_real_landsat_4_7_st_b6_product(folder, mission, psf_m, when):
    """USGS's ETM+ and TM ST_B6 (eo-datasets' decimated copies): the MTL's scale and offset are the ones applied, the
    band is its mission's with its footprint, date and quality layers; Landsat 4-7's QA_PIXEL values screen fill and
    cloud and keep water apart; ST_QA at the default limit (thermal.max_st_qa_k, 5 K) keeps nearly all clear land,
    where ECOSTRESS's 2 K would drop most of it (the clear pixels' median is 2.3 K on both)."""
    from heattrack.config import load_config
    from heattrack.kernels.calibrate import ST_B10_OFFSET, ST_B10_SCALE

    folder = Path(__file__).parent / "data" / "real" / folder
    mtl = next(folder.glob("*_MTL.txt")).read_text()
    assert f"TEMPERATURE_MULT_BAND_ST_B6 = {ST_B10_SCALE}" in mtl and f"TEMPERATURE_ADD_BAND_ST_B6 = {ST_B10_OFFSET}" in mtl
    limits = load_config(None, {}).thermal
    sc = describe_thermal(next(folder.glob("*_ST_B6.TIF")), None, limits.max_lst_err_k, limits.max_st_qa_k)
    assert (sc.sensor, sc.psf_m, sc.landsat_date) == (LANDSAT_ST_MISSIONS[mission][0], psf_m, when)
    assert [k for k, _ in sc.masks] == ["QA_PIXEL", "ST_QA"]
    with rasterio.open(sc.path) as src:
        dn, geobox = src.read(1), GeoBox(src.shape, src.transform, src.crs)
    with rasterio.open(dict(sc.masks)["QA_PIXEL"]) as src:
        qa = src.read(1)
    got = ThermalReader(sc).read(geobox)
    land = qa == 5440  # Landsat 4-7's clear land (no cirrus bit)
    clear = land & np.isfinite(got.lst)
    assert clear.sum() > 0.95 * land.sum() and np.isnan(got.lst[(qa & 1) == 1]).all()
    assert np.isnan(got.lst[qa == 5896]).all()  # cloud
    assert np.allclose(got.lst[clear], dn[clear] * ST_B10_SCALE + ST_B10_OFFSET, atol=1e-3)
    assert 280.0 < np.median(got.lst[clear]) < 305.0 and np.isfinite(got.water_lst[qa == 5504]).any()
    strict = ThermalReader(describe_thermal(sc.path, max_st_qa_k=2.0)).read(geobox)
    assert (land & np.isfinite(strict.lst)).sum() < 0.25 * land.sum()
