"""Scenes as the agencies deliver them: folders named otherwise than ``landsat/`` and ``sentinel2/`` (or none), and a
Landsat scene without a Sentinel-2 granule (its own reflective bands as the optics) or without QA_PIXEL."""

import json
import shutil

import numpy as np
import pytest
import rasterio
from odc.geo.geobox import GeoBox
from rasterio.enums import Resampling
from typer.testing import CliRunner

from heattrack.cli import app
from heattrack.errors import InputError
from heattrack.io.local import LocalSceneReader, discover_local_scenes, scene_footprint, warp_band
from heattrack.kernels.calibrate import sr_dn_to_reflectance

runner = CliRunner()


def _flat(src, dst, landsat_only: bool = False, drop: tuple[str, ...] = ()):
    """The scene's rasters in one folder (Sentinel-2's too unless ``landsat_only``), without the bands in ``drop``."""
    dst.mkdir(parents=True)
    subs = ("landsat",) if landsat_only else ("landsat", "sentinel2")
    for f in (f for sub in subs for f in (src / sub).iterdir()):
        if not any(f"_{b}." in f.name for b in drop):
            shutil.copy(f, dst / f.name)
    return dst


def _box(scene):
    b = scene_footprint(scene)[0].boundingbox
    return GeoBox.from_bbox((b.left + 600, b.bottom + 600, b.left + 1200, b.bottom + 1200), b.crs, resolution=10)


def test_delivered_folder_names_and_a_flat_folder_read_as_the_layout(small_scene, tmp_path):
    """``landsat-c2l2/`` + ``sentinel2-l2a/`` (the layout of ../shared/data/real/rio-tiler-pds) and all files in one
    folder: the files are told apart by name and read exactly as the ``landsat/`` + ``sentinel2/`` layout."""
    ref = discover_local_scenes(small_scene)[0]
    named = tmp_path / "named"
    shutil.copytree(small_scene / "landsat", named / "landsat-c2l2")
    shutil.copytree(small_scene / "sentinel2", named / "sentinel2-l2a")
    for folder in (named, _flat(small_scene, tmp_path / "flat")):
        (sc,) = discover_local_scenes(folder)
        assert sc.optics == "sentinel2" and sc.landsat_product == ref.landsat_product
        assert {b: p.name for b, p in sc.landsat.items()} == {b: p.name for b, p in ref.landsat.items()}
        assert {b: p.name for b, p in sc.sentinel2.items()} == {b: p.name for b, p in ref.sentinel2.items()}
        assert (sc.s2_boa_offset, sc.s2_date) == (ref.s2_boa_offset, ref.s2_date)
        got, want = LocalSceneReader(sc).read(_box(sc)), LocalSceneReader(ref).read(_box(ref))
        np.testing.assert_array_equal(got.lst, want.lst)
        np.testing.assert_array_equal(got.red, want.red)
    (tmp_path / "none").mkdir()
    shutil.copytree(small_scene / "sentinel2", tmp_path / "none" / "s2")
    with pytest.raises(InputError, match="holds no Landsat C2L2 scene") as err:
        discover_local_scenes(tmp_path / "none")
    assert "archives" not in str(err.value)
    (tmp_path / "none" / "LC08_L2SP_017051_20151205_20200908_02_T1.tar").write_bytes(b"")  # as USGS delivers it
    with pytest.raises(InputError, match=r"archives \(LC08_L2SP_017051_20151205_20200908_02_T1.tar\): unpack them"):
        discover_local_scenes(tmp_path / "none")


def test_date_folders_of_delivered_files_are_dates_of_one_run(small_scene, tmp_path):
    """A season as one folder per date, each holding a scene's files as delivered (no landsat/ inside): one scene per
    folder, in date order; a date without a granule of its own reads its Landsat bands as the optics."""
    first = _flat(small_scene, tmp_path / "season" / "b-first")
    second = _flat(small_scene, tmp_path / "season" / "a-second", landsat_only=True)
    for f in second.iterdir():
        f.rename(f.with_name(f.name.replace("_20250115_", "_20250131_")))
    scenes = discover_local_scenes(tmp_path / "season")
    assert [str(sc.landsat_date) for sc in scenes] == ["2025-01-15", "2025-01-31"]
    assert [sc.optics for sc in scenes] == ["sentinel2", "landsat"] and scenes[0].landsat["ST_B10"].parent == first
    assert len(discover_local_scenes(tmp_path / "season", max_dates=1)) == 1
    # one day's two Landsat products unpacked side by side, the granule beside them: one scene, not two dates
    day = tmp_path / "day"
    shutil.copytree(small_scene / "landsat", day / "LC09_L2SP_116034_20250115_20250116_02_T1")
    shutil.copytree(small_scene / "sentinel2", day / "s2")
    for f in shutil.copytree(small_scene / "landsat", day / "row035").iterdir():
        f.rename(f.with_name(f.name.replace("_116034_", "_116035_")))
    (sc,) = discover_local_scenes(day)
    assert sc.optics == "sentinel2" and len(sc.landsat_more) == 1


def test_a_landsat_scene_alone_is_read_with_its_own_reflective_bands(small_scene, tmp_path):
    (sc,) = discover_local_scenes(_flat(small_scene, tmp_path / "ls", landsat_only=True))
    assert sc.optics == "landsat" and sc.s2_date is None and sc.date_gap_days is None
    assert {"SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"} <= set(sc.landsat)
    gb = _box(sc)
    got = LocalSceneReader(sc).read(gb)
    assert got.coregistration is None and set(got.bands) == {"B02", "B03", "B04", "B08", "B11", "B12"}
    want_red = sr_dn_to_reflectance(warp_band(sc.landsat["SR_B4"], gb, Resampling.bilinear, 0))
    np.testing.assert_array_equal(got.red, want_red)
    assert got.optical_clear.mean() > 0.5 and not (got.optical_clear & ~np.isfinite(got.lst)).any()
    # the reader reads only the predictors the sharpener asks for
    only = LocalSceneReader(sc, optional_bands=("B11",)).read(gb)
    assert set(only.bands) == {"B04", "B08", "B11"}
    # a pair read from the same folder keeps Sentinel-2's bands: the Landsat SR bands beyond red and NIR are not read
    (pair,) = discover_local_scenes(small_scene)
    assert set(pair.landsat) == {"ST_B10", "QA_PIXEL", "SR_B4", "SR_B5"}
    with pytest.raises(InputError, match=r"SR_B4, SR_B5 \(no Sentinel-2 granule"):  # red and NIR: the minimum
        discover_local_scenes(_flat(small_scene, tmp_path / "bare", landsat_only=True, drop=("SR_B5",)))


def test_a_scene_without_qa_pixel_screens_bright_cold_clouds_and_open_water(small_scene, tmp_path):
    """No QA_PIXEL: every thermal pixel with data is screened, but for a cloud (bright in SR_B2 and 5 K colder than the
    rest of the tile) and open water; a bright roof at the tile's temperature stays."""
    folder = _flat(small_scene, tmp_path / "noqa", drop=("QA_PIXEL",))
    (sc,) = discover_local_scenes(folder)
    assert "QA_PIXEL" not in sc.landsat and "SR_B2" in sc.landsat and sc.optics == "sentinel2"
    gb = _box(sc)
    before = LocalSceneReader(sc).read(gb)
    for band, values in (("SR_B2", (25455, 25455)), ("ST_B10", (32475, None))):  # reflectance 0.5; 260.0 K
        with rasterio.open(sc.landsat[band]) as src:
            profile, a = src.profile, src.read(1)
        col, row = (int(v) for v in ~src.transform * (gb.affine.c, gb.affine.f))  # the tile's corner, 30 m pixels
        for (r, c), v in zip(((row + 2, col + 2), (row + 12, col + 12)), values):  # a cloud, a roof: 6 x 6 pixels
            if v is not None:
                a[r: r + 6, c: c + 6] = v
        with rasterio.open(sc.landsat[band], "w", **profile) as dst:
            dst.write(a, 1)
    got = LocalSceneReader(sc).read(gb)
    blue = sr_dn_to_reflectance(warp_band(sc.landsat["SR_B2"], gb, Resampling.nearest, 0))
    cold = warp_band(sc.landsat["ST_B10"], gb, Resampling.nearest, 0) == 32475
    assert (blue > 0.2)[cold].all() and cold.sum() >= 300 and ((blue > 0.2) & ~cold).sum() >= 300
    assert np.isnan(got.lst[cold]).all()  # the cloud: out
    roof = (blue > 0.4) & ~cold  # the planted roof (the scene's own bright pixels are below 0.4)
    assert roof.sum() >= 300 and np.isfinite(got.lst[roof]).all()  # bright but as warm as the tile: kept
    assert (np.isfinite(got.lst[~cold]) == np.isfinite(before.lst[~cold])).mean() > 0.99
    # open water by Fmask's test on SR_B4 / SR_B5: where the scene's own QA_PIXEL (dropped here) has its water bit
    whole = GeoBox.from_bbox(scene_footprint(sc)[0].boundingbox, sc_crs := scene_footprint(sc)[1], resolution=10)
    qa_file = next(p for p in (small_scene / "landsat").iterdir() if "_QA_PIXEL" in p.name)
    qa_water = (warp_band(qa_file, whole, Resampling.nearest, 1) >> 7) & 1 == 1
    scene = LocalSceneReader(sc).read(whole)
    said = np.isfinite(scene.water_lst)
    assert sc_crs and qa_water.sum() > 1000 and (said == qa_water).mean() > 0.95 and said[qa_water].mean() > 0.85
    assert np.isnan(scene.lst[said]).all()  # never screened: shown in the LST layers from water_lst


def test_qa_stand_in_for_a_scene_without_qa_pixel():
    from heattrack.io.landsat_optics import CLEAR_QA_VALUE, CLOUD_QA_VALUE, QA_FILL_VALUE, WATER_QA_VALUE, qa_stand_in
    from heattrack.kernels.qa import landsat_clear_mask

    st = np.full((64, 64), 38000, np.uint16)  # 278.9 K
    st[:, :4] = 0  # fill
    st[10:20, 10:20] = 32475  # 260 K: cold
    blue = np.full((64, 64), 0.05, np.float32)
    blue[10:20, 10:30] = 0.4  # bright: a cloud where cold, a roof where not
    qa = qa_stand_in(st, blue)
    assert (qa[:, :4] == QA_FILL_VALUE).all() and (qa[10:20, 10:20] == CLOUD_QA_VALUE).all()
    assert (qa[10:20, 20:30] == CLEAR_QA_VALUE).all() and landsat_clear_mask(qa).sum() == 64 * 60 - 100
    np.testing.assert_array_equal(qa_stand_in(st) == CLEAR_QA_VALUE, st != 0)
    # open water (Fmask's test on red and NIR surface reflectance); snow, dark vegetation and asphalt are not water
    red, nir = np.full((64, 64), 0.06, np.float32), np.full((64, 64), 0.30, np.float32)  # vegetation
    for rows, (r, n) in {(30, 34): (0.03, 0.01), (34, 38): (0.004, -0.006), (38, 42): (0.05, 0.04),  # water
                         (42, 46): (0.80, 0.75), (46, 50): (0.03, 0.25), (50, 54): (0.08, 0.10)}.items():
        red[rows[0]:rows[1]], nir[rows[0]:rows[1]] = r, n
    qa = qa_stand_in(st, blue, red, nir)
    assert (qa[30:42, 4:] == WATER_QA_VALUE).all() and (qa[42:54, 4:] == CLEAR_QA_VALUE).all()
    assert (qa[:, :4] == QA_FILL_VALUE).all() and (qa[10:20, 10:20] == CLOUD_QA_VALUE).all()  # fill and cloud first
    assert not landsat_clear_mask(qa[30:42]).any()  # water is not screened (shown from its own LST, never ranked)


def test_run_on_a_landsat_crop_as_usgs_delivers_it(small_scene, tmp_path):
    """The Momotombo layout: one folder of ``LC08_L2SP_..._SR_B2..B7`` and ``ST_B10`` (no QA_PIXEL, no Sentinel-2).
    The run completes, meets the output contract and says twice what it could not do."""
    folder = _flat(small_scene, tmp_path / "crop", landsat_only=True, drop=("QA_PIXEL",))
    out = tmp_path / "o"
    res = runner.invoke(app, ["run", "--input", str(folder), "--pipes", str(small_scene / "pipes.geojson"),
                              "--out", str(out), "--tile-km", "1.5", "--n-workers", "2"])
    assert res.exit_code == 0, res.output
    assert "no Sentinel-2 granule" in res.output and "no QA_PIXEL" in res.output
    info = json.loads((out / "run.json").read_text())
    assert info["inputs"]["optics"] == "landsat" and info["inputs"]["sentinel2_date"] is None
    assert sum("no Sentinel-2 granule" in w for w in info["warnings"]) == 1
    assert {t["sharpen"]["method"] for t in info["tile_summaries"].values()} <= {"dms", "tsharp", "bilinear"}
    for name in ("lst_10m.tif", "risk_10m.tif"):
        with rasterio.open(out / name) as src:
            assert np.isfinite(src.read(1)).mean() > 0.5
    feats = json.loads((out / "segments.geojson").read_text())["features"]
    assert sum(f["properties"]["status"] == "ok" for f in feats) > 0.5 * len(feats)
    assert "its own reflective bands as the optics" in (out / "report" / "index.html").read_text()
