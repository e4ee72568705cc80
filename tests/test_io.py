import json
import shutil

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from affine import Affine
from conftest import REAL, copy_scene, split_scene
from odc.geo.geobox import GeoBox
from rasterio.enums import Resampling

from heattrack.errors import InputError
from heattrack.io.local import LocalSceneReader, discover_local_scene, raster_footprint, scene_footprint, warp_band
from heattrack.io.pipes import read_pipes


def test_discover_simulated_scene(small_scene):
    scene = discover_local_scene(small_scene)
    assert set(scene.landsat) == {"ST_B10", "QA_PIXEL", "SR_B4", "SR_B5"}
    assert scene.landsat_date.isoformat() == "2025-01-15" and scene.s2_date.isoformat() == "2025-01-16"
    assert scene.s2_boa_offset == -1000.0 and "BOA_ADD_OFFSET" in scene.s2_offset_source
    assert scene.date_gap_days == 1


def test_reader_reads_only_the_window_onto_the_geobox(small_scene):
    scene = discover_local_scene(small_scene)
    fp, crs = scene_footprint(scene)
    b = fp.boundingbox
    gb = GeoBox((100, 100), Affine(10, 0, b.left + 500, 0, -10, b.bottom + 1500), crs)
    inp = LocalSceneReader(scene).read(gb)
    assert inp.lst.shape == (100, 100) and inp.red.dtype == np.float32
    ok = np.isfinite(inp.lst)
    assert ok.mean() > 0.3 and 255 < np.nanmedian(inp.lst) < 300
    assert np.nanmax(inp.red) < 0.6 and np.nanmin(inp.nir) > -0.05  # the -1000 offset was applied
    # against the truth: the nearest-resampled 30 m LST is within a few K of the 10 m truth
    truth = warp_band(small_scene / "truth" / "lst_10m.tif", gb, Resampling.nearest, np.nan)
    clear = ok & inp.optical_clear
    assert abs(np.nanmean(inp.lst[clear] - truth[clear])) < 0.5


def test_windowed_reads_equal_the_warp_where_the_grids_line_up(small_scene):
    """Where the tile grid lines up with a band's own grid (Sentinel-2 onto the 10 m grid; 20 m bands with
    nearest), warp_band reads a plain window; it must give exactly the array the GDAL warp gives, also where the
    tile reaches past the raster. Grids that do not line up (a fractional shift) are warped."""
    from heattrack.io.rasterread import _upsample, _upsample_offsets, aligned_index

    scene = discover_local_scene(small_scene)
    fp, crs = scene_footprint(scene)
    b = fp.boundingbox
    boxes = [GeoBox((150, 170), Affine(10, 0, b.left - 700, 0, -10, b.top + 400), crs),  # past the corner
             GeoBox((120, 90), Affine(10, 0, b.left + 1200, 0, -10, b.top - 800), crs)]
    with rasterio.open(scene.sentinel2["B11"]) as src:  # on the Sentinel-2 10 m grid, past the 20 m raster's corner
        s2 = src.transform
    boxes.append(GeoBox((160, 150), Affine(10, 0, s2.c - 700, 0, -10, s2.f + 400), crs))
    shifted = GeoBox((60, 60), Affine(10, 0, b.left + 1203.5, 0, -10, b.top - 800), crs)
    used = 0
    for path in [*scene.sentinel2.values(), *scene.landsat.values()]:
        if path.suffix.lower() not in (".tif", ".tiff"):
            continue
        for gb in boxes:
            for rs in (Resampling.nearest, Resampling.bilinear):
                for nodata in (0, 1):
                    fast = warp_band(path, gb, rs, nodata)
                    assert np.array_equal(fast, warp_band(path, gb, rs, nodata, windowed=False)), (path.name, rs)
                with rasterio.open(path) as src:
                    used += aligned_index(src, gb, rs) is not None
        with rasterio.open(path) as src:
            assert aligned_index(src, shifted, Resampling.nearest) is None
    assert used >= 12  # B04, B08 both ways and SCL with nearest, on every box
    with rasterio.open(scene.sentinel2["B11"]) as src:  # 20 m bilinear there: upsampled without a warp, as above
        assert _upsample(src, *_upsample_offsets(src, boxes[2], Resampling.bilinear), boxes[2], 0) is not None


def test_nearest_reads_half_a_pixel_off_the_grid_equal_the_warp(small_scene):
    """Landsat's 30 m grid has its corners 15 m off Sentinel-2's 10 m grid: every third tile pixel's centre lies on a
    Landsat pixel's edge. The plain read must pick the pixel GDAL's nearest warp picks there (right of / below the
    edge), also past the raster's corner; a 10 m band half a pixel off (every centre on an edge) is warped."""
    from heattrack.io.rasterread import aligned_index

    scene = discover_local_scene(small_scene)
    read = 0
    for path in (scene.landsat["ST_B10"], scene.landsat["QA_PIXEL"], scene.sentinel2["SCL"], scene.sentinel2["B04"]):
        with rasterio.open(path) as src:
            t, crs = src.transform, src.crs
        for dx, dy, shape in ((15, -15, (130, 140)), (-705, 415, (150, 170)), (t.a + 5, -5, (90, 120)),
                              (25, -35, (100, 100))):
            gb = GeoBox(shape, Affine(10, 0, t.c + dx, 0, -10, t.f + dy), crs)
            with rasterio.open(path) as src:
                index = aligned_index(src, gb, Resampling.nearest)
            for nodata in (0, 1):
                fast = warp_band(path, gb, Resampling.nearest, nodata)
                assert np.array_equal(fast, warp_band(path, gb, Resampling.nearest, nodata, windowed=False)), \
                    (path.name, dx, dy)
            ratio = round(t.a / 10)
            assert (index is None) == (ratio == 1), (path.name, ratio)
            if index is not None:
                centres = (np.arange(shape[1]) + dx / 10 + 0.5) / ratio  # in source pixels from the raster's edge
                read += int((centres == np.floor(centres)).any())  # some centre on an edge: the ties were read
    assert read >= 6  # the Landsat bands (ratio 3) and SCL (ratio 2) on the boxes with ties


def test_bilinear_reads_half_a_pixel_off_the_grid_equal_the_warp(small_scene):
    """The coregistration reads Landsat SR_B5 bilinear onto a 30 m grid of the tile, half a Landsat pixel off its own:
    upsampled without a warp (weights 1/2) as are 20 m bands half a pixel off the 10 m grid (ratio 2); the integers
    must be the warp's. A ratio of 3 half a pixel off (weights in sixths, not exact in binary) is warped."""
    from heattrack.io.rasterread import _upsample_offsets

    scene = discover_local_scene(small_scene)
    cases = [(scene.landsat["SR_B5"], 30, 1), (scene.sentinel2["B11"], 10, 2), (scene.landsat["SR_B5"], 10, None)]
    for path, res, ratio in cases:
        with rasterio.open(path) as src:
            t, crs = src.transform, src.crs
        for dx, dy, shape in ((res * 1.5, -res * 1.5, (60, 70)), (-res * 2.5, res * 1.5, (80, 50))):
            gb = GeoBox(shape, Affine(res, 0, t.c + dx, 0, -res, t.f + dy), crs)
            with rasterio.open(path) as src:
                up = _upsample_offsets(src, gb, Resampling.bilinear)
            assert (up[0] if up else None) == ratio, (path.name, res)
            fast = warp_band(path, gb, Resampling.bilinear, 0)
            assert np.array_equal(fast, warp_band(path, gb, Resampling.bilinear, 0, windowed=False)), (path.name, dx)


@pytest.mark.parametrize("dtype, src_nodata, nodata", [("uint8", 255, np.nan), ("uint8", 255, 0),
                                                         ("float32", np.nan, 0.0), ("float32", np.nan, np.nan),
                                                         ("uint16", None, 0)])
def test_windowed_reads_keep_the_warps_nodata_and_dtype(tmp_path, dtype, src_nodata, nodata):
    """ECOSTRESS flags are uint8 read with a NaN nodata (GDAL returns floats then) and thermal rasters hold NaN
    holes: where the window cannot give the warp's answer it must warp."""
    rng = np.random.default_rng(0)
    a = (rng.random((20, 20)) * 200).astype(dtype)
    if src_nodata is not None:
        a[0, :] = src_nodata
        a[7, 7] = src_nodata
    path = tmp_path / "band.tif"
    with rasterio.open(path, "w", driver="GTiff", width=20, height=20, count=1, dtype=dtype, crs="EPSG:32652",
                       transform=Affine(70, 0, 0, 0, -70, 1400), nodata=src_nodata) as dst:
        dst.write(a, 1)
    for res, rs in ((10, Resampling.nearest), (70, Resampling.bilinear), (10, Resampling.bilinear),
                    (35, Resampling.bilinear)):  # also upsampled: the warper's weights around the holes
        gb = GeoBox((160, 160), Affine(res, 0, -4 * res, 0, -res, 1400 + 4 * res), "EPSG:32652")
        fast, ref = warp_band(path, gb, rs, nodata), warp_band(path, gb, rs, nodata, windowed=False)
        assert fast.dtype == ref.dtype and np.array_equal(fast, ref, equal_nan=True), (dtype, src_nodata, nodata, res)


def test_the_reader_reads_only_the_bands_the_sharpener_uses(small_scene):
    from heattrack.config import Config
    from heattrack.orchestration.run_plan import optical_reader_options

    scene = discover_local_scene(small_scene)
    fp, crs = scene_footprint(scene)
    b = fp.boundingbox
    gb = GeoBox((60, 60), Affine(10, 0, b.left + 500, 0, -10, b.bottom + 1500), crs)
    offered = {k for k in scene.sentinel2 if k != "SCL"}
    default = LocalSceneReader(scene, **optical_reader_options(Config())).read(gb)
    assert set(default.bands) == offered & {"B02", "B03", "B04", "B08", "B11", "B12"}
    every = Config.model_validate({"downscale": {"dms_bands": ["B02", "B03", "B04", "B05", "B06", "B07", "B08",
                                                                "B8A", "B11", "B12"]}})
    assert set(LocalSceneReader(scene, **optical_reader_options(every)).read(gb).bands) == offered
    tsharp = Config.model_validate({"downscale": {"method": "tsharp"}})
    assert set(LocalSceneReader(scene, **optical_reader_options(tsharp)).read(gb).bands) == {"B04", "B08"}


def test_outside_the_scene_is_fill(small_scene):
    scene = discover_local_scene(small_scene)
    fp, crs = scene_footprint(scene)
    b = fp.boundingbox
    gb = GeoBox.from_bbox((b.right + 1000, b.top + 1000, b.right + 2000, b.top + 2000), crs, resolution=10)
    inp = LocalSceneReader(scene).read(gb)
    assert not np.isfinite(inp.lst).any() and not inp.optical_clear.any()


def test_open_water_keeps_its_temperature_apart_from_the_screened_lst(small_scene):
    """QA_PIXEL's clear water (the simulated river): never in ``lst`` (not land), but its measured surface temperature
    comes in ``water_lst`` for the LST layers; cloud over water is in neither."""
    from heattrack.kernels.calibrate import st_dn_to_kelvin

    scene = discover_local_scene(small_scene)
    fp, crs = scene_footprint(scene)
    gb = GeoBox.from_bbox(fp.boundingbox, crs, resolution=10)
    inp = LocalSceneReader(scene).read(gb)
    qa = warp_band(scene.landsat["QA_PIXEL"], gb, Resampling.nearest, 1)
    st = warp_band(scene.landsat["ST_B10"], gb, Resampling.nearest, 0)
    water = qa == 21952  # clear water, no cloud bit
    assert water.sum() > 1000 and np.isfinite(inp.water_lst[water]).all()
    np.testing.assert_array_equal(inp.water_lst[water], st_dn_to_kelvin(st)[water])
    assert not np.isfinite(inp.water_lst[~water]).any() and not np.isfinite(inp.lst[water]).any()
    assert 270 < np.nanmedian(inp.water_lst) < 285  # the simulated river's winter water
    screened = LocalSceneReader(scene, mask_water=False).read(gb)  # input.mask_water: false screens water as land
    assert screened.water_lst is None and np.isfinite(screened.lst[water]).all()
    r, c = next((r, c) for r in range(0, qa.shape[0] - 50, 50) for c in range(0, qa.shape[1] - 50, 50)
                if not (qa[r:r + 50, c:c + 50] & 128).any())
    assert LocalSceneReader(scene).read(gb[r:r + 50, c:c + 50]).water_lst is None  # a tile without water: nothing


def test_the_scene_footprint_leaves_out_fill_of_either_sensor(small_scene, tmp_path):
    """A Landsat scene's fill corner and a Sentinel-2 granule's empty half (its orbit's edge) are not data: the
    run's default area is where both hold data (a fully filled scene keeps its bounding box exactly)."""
    full, _ = scene_footprint(discover_local_scene(small_scene))
    d = copy_scene(small_scene, tmp_path / "edge")
    st = next((d / "landsat").glob("*_ST_B10.TIF"))
    with rasterio.open(st, "r+") as r:
        a = r.read(1)
        a[: a.shape[0] // 2, : a.shape[1] // 2] = 0  # Landsat fill: the north-west quarter
        r.write(a, 1)
    scl = next((d / "sentinel2").glob("*SCL*"))
    with rasterio.open(scl, "r+") as r:
        a = r.read(1)
        a[:, int(a.shape[1] * 0.75):] = 0  # Sentinel-2 no data: the eastern quarter
        r.write(a, 1)
    fp, _ = scene_footprint(discover_local_scene(d))
    b, bf = fp.boundingbox, full.boundingbox
    assert 0.5 < fp.area / full.area < 0.6  # 1 - 1/4 - 3/16, give or take a decimated pixel
    assert b.right < bf.right - 0.2 * (bf.right - bf.left) and b.bottom == bf.bottom
    from odc.geo.geom import point

    nw = point(bf.left + 0.2 * (bf.right - bf.left), bf.top - 0.2 * (bf.top - bf.bottom), fp.crs)
    assert full.contains(nw) and not fp.contains(nw)


def test_a_landsat_date_without_a_granule_borrows_the_nearest_dates_optics(small_scene, tmp_path, caplog):
    """A season folder where one Landsat date has no Sentinel-2 of its own (winter: the granules of that week were
    cloudy): it is read with the granule of the nearest date, said in a warning, instead of refusing the season."""
    import shutil

    from heattrack.io.local import discover_local_scenes

    copy_scene(small_scene, tmp_path / "season" / "d1")
    shutil.copytree(small_scene / "landsat", tmp_path / "season" / "d2" / "landsat")
    for f in (tmp_path / "season" / "d2" / "landsat").iterdir():
        f.rename(f.with_name(f.name.replace("_20250115_", "_20250131_")))
    with caplog.at_level("WARNING"):
        scenes = discover_local_scenes(tmp_path / "season")
    assert [str(sc.landsat_date) for sc in scenes] == ["2025-01-15", "2025-01-31"]
    assert scenes[1].sentinel2 == scenes[0].sentinel2 and scenes[1].s2_date == scenes[0].s2_date
    assert "has no sentinel2/: its Landsat date 2025-01-31 is paired with the granule of" in caplog.text
    shutil.rmtree(tmp_path / "season" / "d1" / "sentinel2")  # no date has a granule: each its own optics
    assert [sc.optics for sc in discover_local_scenes(tmp_path / "season")] == ["landsat", "landsat"]


def test_a_day_split_over_two_products_reads_as_one_mosaic(small_scene, tmp_path):
    """Two Landsat products (neighbouring WRS rows) and two Sentinel-2 granules (MGRS tiles) of one day in one
    folder: discovered as one scene and read as the day's mosaic, equal to the uncut files; one date per folder."""
    whole = discover_local_scene(small_scene)
    split = discover_local_scene(split_scene(small_scene, tmp_path / "split"))
    assert len(split.landsat_more) == 1 and len(split.sentinel2_more) == 1
    assert "_116034_" in split.landsat_product and split.landsat_date == whole.landsat_date
    fp_whole, crs = scene_footprint(whole)
    fp_split, _ = scene_footprint(split)
    assert abs(fp_split.area - fp_whole.area) < 1e-6 * fp_whole.area  # the union of the halves
    b = fp_whole.boundingbox
    gb = GeoBox.from_bbox((b.left, b.bottom, b.right, b.top), crs, resolution=10)
    a, c = LocalSceneReader(whole).read(gb), LocalSceneReader(split).read(gb)
    np.testing.assert_array_equal(a.lst, c.lst)  # nearest: exact across the seam
    np.testing.assert_array_equal(a.optical_clear, c.optical_clear)
    assert set(a.bands) == set(c.bands)
    for band in a.bands:  # bilinear: only the seam's pixels differ (a half's edge pixel blends fewer neighbours)
        off = np.abs(a.bands[band] - c.bands[band]) > 1e-3
        assert off.mean() < 0.01 and off.any(axis=0).sum() <= 6, band
    other = tmp_path / "split" / "landsat"
    for f in other.glob("*_116035_*"):
        f.rename(f.with_name(f.name.replace("_20250115_", "_20250131_")))
    with pytest.raises(InputError, match="several dates"):
        discover_local_scene(tmp_path / "split")


def _coarser_copy(src, dst, factor: int) -> None:
    with rasterio.open(src) as r:
        prof = r.profile | {"width": r.width // factor, "height": r.height // factor,
                            "transform": r.transform @ Affine.scale(factor), "blockxsize": 128, "blockysize": 128}
        data = r.read(1, out_shape=(prof["height"], prof["width"]), resampling=Resampling.nearest)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(dst, "w", **prof) as w:
        w.write(data, 1)


def test_unpacked_products_are_found_in_their_folders(small_scene, tmp_path):
    """A Landsat product unpacked into its own folder and a Sentinel-2 ``.SAFE`` (IMG_DATA/R10m, R20m, R60m, the
    same bands at several resolutions, QI_DATA masks, MTD_MSIL2A.xml at its root) read exactly as the flat layout:
    each band from its finest file, the BOA offset from the SAFE's metadata."""
    flat = discover_local_scene(small_scene)
    scene = tmp_path / "unpacked"
    product = scene / "landsat" / flat.landsat_product
    product.mkdir(parents=True)
    for f in (small_scene / "landsat").iterdir():
        shutil.copy(f, product / f.name)
    safe = scene / "sentinel2" / "S2B_MSIL2A_20250116T022019_N0511_R003_T52SCG_20250116T041520.SAFE"
    img = safe / "GRANULE" / "L2A_T52SCG_A040000_20250116T022019" / "IMG_DATA"
    for f in (small_scene / "sentinel2").glob("*.tif"):
        res = f.stem.rsplit("_", 1)[1]
        (img / f"R{res}").mkdir(parents=True, exist_ok=True)
        shutil.copy(f, img / f"R{res}" / f.name)
        _coarser_copy(f, img / "R60m" / f.name.replace(f"_{res}.", "_60m."), 60 // int(res[:2]))
        if res == "10m":  # the SAFE's R20m folder holds the 10 m bands again at 20 m
            _coarser_copy(f, img / "R20m" / f.name.replace("_10m.", "_20m."), 2)
    _coarser_copy(img / "R20m" / "T52SCG_20250116T022019_SCL_20m.tif", safe / "GRANULE" / "QI_DATA" /
                  "MSK_CLDPRB_20m.tif", 1)
    shutil.copy(small_scene / "sentinel2" / "MTD_MSIL2A.xml", safe / "MTD_MSIL2A.xml")
    found = discover_local_scene(scene)
    assert {b: p.name for b, p in found.landsat.items()} == {b: p.name for b, p in flat.landsat.items()}
    assert {b: p.relative_to(img).as_posix() for b, p in found.sentinel2.items()} == {
        b: f"R{p.stem.rsplit('_', 1)[1]}/{p.name}" for b, p in flat.sentinel2.items()}
    assert found.s2_boa_offset == -1000.0 and found.s2_offset_source == flat.s2_offset_source
    fp, crs = scene_footprint(flat)
    b = fp.boundingbox
    gb = GeoBox((120, 130), Affine(10, 0, b.left + 400, 0, -10, b.top - 300), crs)
    a, c = LocalSceneReader(flat).read(gb), LocalSceneReader(found).read(gb)
    np.testing.assert_array_equal(a.lst, c.lst)
    assert set(a.bands) == set(c.bands) and all(np.array_equal(a.bands[k], c.bands[k], equal_nan=True)
                                                for k in a.bands)


def test_stac_items_in_folders_named_by_item_id(small_scene, tmp_path):
    """Two Sentinel-2 granules kept as a STAC download keeps them: a folder per item, named by its id, holding the
    assets under their asset names (``B04.tif``, ``SCL.tif``) and the item JSON: the granule from the folder's name,
    the date and baseline from the item; read as the same mosaic as the granules under their product names."""
    split = split_scene(small_scene, tmp_path / "split")
    items = tmp_path / "items"
    shutil.copytree(split / "landsat", items / "landsat")
    for f in sorted((split / "sentinel2").glob("*.tif")):
        tile, when, band = f.name.split("_")[:3]
        folder = items / "sentinel2" / f"S2B_{tile[1:]}_{when[:8]}_0_L2A"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, folder / f"{band}.tif")
        (folder / f"{folder.name}.json").write_text(json.dumps({"type": "Feature", "properties": {
            "datetime": "2025-01-16T02:20:19Z", "s2:processing_baseline": "05.11"}}))
    a, b = discover_local_scene(split), discover_local_scene(items)
    assert len(b.sentinel2_more) == 1 and b.s2_date == a.s2_date and b.s2_boa_offset == -1000.0
    assert [m["B04"].parent.name for m in (b.sentinel2, *b.sentinel2_more)] == ["S2B_52SCG_20250116_0_L2A",
                                                                                "S2B_52SCH_20250116_0_L2A"]
    fp, crs = scene_footprint(a)
    bb = fp.boundingbox
    gb = GeoBox.from_bbox((bb.left, bb.bottom, bb.right, bb.top), crs, resolution=10)
    ra, rb = LocalSceneReader(a).read(gb), LocalSceneReader(b).read(gb)
    np.testing.assert_array_equal(ra.optical_clear, rb.optical_clear)
    assert all(np.array_equal(ra.bands[k], rb.bands[k], equal_nan=True) for k in ra.bands)


def test_jp2_sentinel2_is_accepted(small_scene, tmp_path):
    scene_dir = copy_scene(small_scene, tmp_path / "jp2scene")
    for p in list((scene_dir / "sentinel2").glob("*_B0[48]_10m.tif")):
        rasterio.shutil.copy(p, p.with_suffix(".jp2"), driver="JP2OpenJPEG", QUALITY="100", REVERSIBLE="YES")
        p.unlink()
    scene = discover_local_scene(scene_dir)
    assert scene.sentinel2["B04"].suffix == ".jp2"
    fp, crs = scene_footprint(scene)
    b = fp.boundingbox
    gb = GeoBox.from_bbox((b.left, b.bottom, b.left + 300, b.bottom + 300), crs, resolution=10)
    ref = LocalSceneReader(discover_local_scene(small_scene)).read(gb)
    got = LocalSceneReader(scene).read(gb)
    np.testing.assert_allclose(got.red, ref.red)


def test_missing_band_and_corrupt_raster(small_scene, tmp_path):
    d = copy_scene(small_scene, tmp_path / "s")
    next((d / "sentinel2").glob("*B08*")).unlink()
    with pytest.raises(InputError, match="no Sentinel-2 B08 file"):  # a granule given: its bands are required
        discover_local_scene(d)
    next((d / "landsat").glob("*_ST_B10.TIF")).unlink()
    with pytest.raises(InputError, match="no Landsat ST_B10 file"):
        discover_local_scene(d)
    d2 = copy_scene(small_scene, tmp_path / "s2")
    b04 = next((d2 / "sentinel2").glob("*B04*"))
    b04.write_bytes(b"this is not a geotiff" * 10)
    with pytest.raises(InputError, match="cannot read raster .*B04"):
        scene_footprint(discover_local_scene(d2))
    for part in (3, 6, 9):  # an interrupted copy: the header and the first blocks stored, no tail
        d3 = copy_scene(small_scene, tmp_path / f"s3_{part}")
        b08 = next((d3 / "sentinel2").glob("*B08*"))
        b08.write_bytes(b08.read_bytes()[: b08.stat().st_size * part // 10])
        with pytest.raises(InputError, match="cannot read raster .*B08"):
            scene_footprint(discover_local_scene(d3))
    with pytest.raises(InputError, match="does not exist"):
        discover_local_scene(tmp_path / "nowhere")


def test_baseline_from_real_stac_item_and_names(tmp_path):
    s2 = tmp_path / "in" / "sentinel2"
    (tmp_path / "in" / "landsat").mkdir(parents=True)
    s2.mkdir()
    src = REAL / "s2-western-sahara"
    shutil.copy(next(src.glob("*.json")), s2)
    for b in ("B04", "B08", "SCL"):
        shutil.copy(next(src.glob("*_SCL.tif")), s2 / f"S2A_29RKH_20200219_0_L2A_{b}.tif")
    for b in ("ST_B10", "QA_PIXEL"):
        shutil.copy(next((REAL / "landsat-amazonas-cloud").glob(f"*_{b}.TIF")), tmp_path / "in" / "landsat")
    scene = discover_local_scene(tmp_path / "in")
    assert scene.s2_boa_offset == 0.0 and "02.14" in scene.s2_offset_source   # real item: baseline 02.14
    assert scene.s2_date.isoformat() == "2020-02-19" and scene.landsat_date.isoformat() == "2020-10-31"


def test_real_all_cloud_landsat_scene_has_almost_no_clear_pixel():
    scene_dir = REAL / "landsat-amazonas-cloud"
    from heattrack.kernels.qa import landsat_clear_mask
    with rasterio.open(next(scene_dir.glob("*_QA_PIXEL.TIF"))) as src:
        qa = src.read(1)
    assert landsat_clear_mask(qa).mean() < 0.01  # MTL says 99.94 % cloud


def test_footprint_rejects_ungeoreferenced(tmp_path):
    p = tmp_path / "x.tif"
    with rasterio.open(p, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint16") as dst:
        dst.write(np.ones((1, 4, 4), dtype="uint16"))
    with pytest.raises(InputError, match="no CRS"):
        raster_footprint(p)


# -- pipes --------------------------------------------------------------------------------------------------

def test_real_osm_pipes_get_stable_ids():
    f = REAL / "osm-helsinki-heat" / "helsinki_district_heating_pipes_osm.geojson"
    a = read_pipes(f)
    assert len(a) == 20 and a["segment_id"].is_unique and a.crs.to_epsg() == 4326
    assert a["segment_id"].str.startswith("seg-").all()
    b = read_pipes(f)
    assert a["segment_id"].tolist() == b["segment_id"].tolist()
    assert 2.0 < a.to_crs(3067).length.sum() / 1000 < 2.6  # ~2.3 km in SOURCE.txt


def test_pipes_in_metres_declared_lonlat_is_refused(tmp_path):
    p = tmp_path / "bad.geojson"
    p.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {
        "segment_id": "a"}, "geometry": {"type": "LineString", "coordinates": [[305000, 4165000], [305100, 4165000]]}}]}))
    with pytest.raises(InputError, match="not lon/lat"):
        read_pipes(p)


def test_pipes_with_empty_null_3d_and_unmergeable_features_are_read_and_sampled(tmp_path, caplog):
    """A utility export's odd features: an empty line and a null geometry are skipped with a warning (they used to
    break the sample points), heights are dropped, a MultiLineString whose parts do not touch stays one segment."""
    from heattrack.kernels.segments import sample_segment_points

    def feat(geometry):
        return {"type": "Feature", "properties": {}, "geometry": geometry}

    feats = [feat({"type": "LineString", "coordinates": [[24.94, 60.17, 12.0], [24.95, 60.17, 14.0]]}),
             feat({"type": "LineString", "coordinates": []}), feat(None),
             feat({"type": "MultiLineString", "coordinates": [[[24.94, 60.18], [24.945, 60.18]],
                                                             [[24.946, 60.181], [24.95, 60.181]]]})]
    p = tmp_path / "odd.geojson"
    p.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    with caplog.at_level("WARNING"):
        pipes = read_pipes(p)
    assert len(pipes) == 2 and "2 features without a line geometry" in caplog.text
    assert not pipes.geometry.has_z.any() and list(pipes.geom_type) == ["LineString", "MultiLineString"]
    pts = sample_segment_points(pipes.to_crs(3067).geometry.values, 10.0)
    assert np.isfinite(pts.x).all() and set(pts.segment.tolist()) == {0, 1} and len(pts) > 100


def test_whole_number_ids_stored_as_floats_are_integers(tmp_path):
    """A DBF's numeric field gives 17.0: the id is 17 (and comes back as the number 17); 18.5 stays as written."""
    from heattrack.io.pipes import ids_as_given

    def write(values):
        feats = [{"type": "Feature", "properties": {"segment_id": v}, "geometry": {"type": "LineString", "coordinates": [
            [24.94, 60.17 + i * 1e-3], [24.95, 60.17 + i * 1e-3]]}} for i, v in enumerate(values)]
        (tmp_path / "p.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
        return read_pipes(tmp_path / "p.geojson")

    pipes = write([17.0, 18.0])
    assert pipes["segment_id"].tolist() == ["17", "18"]
    assert ids_as_given(pipes, pipes)["segment_id"].tolist() == [17, 18]
    pipes = write([17.0, 18.5])
    assert pipes["segment_id"].tolist() == ["17.0", "18.5"] and ids_as_given(pipes, pipes) is pipes


def test_pipes_diameter_from_osm_or_utility_columns(tmp_path):
    """OSM's `diameter` tag (mm) or a utility export's DN fills `diameter_mm` for the field list and the map."""
    feats = [{"type": "Feature", "properties": {"diameter": d}, "geometry": {"type": "LineString", "coordinates": [
        [24.94, 60.17 + i * 1e-3], [24.95, 60.17 + i * 1e-3]]}} for i, d in enumerate(["300", "unknown"])]
    p = tmp_path / "osm.geojson"
    p.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    assert read_pipes(p)["diameter_mm"].tolist()[0] == 300.0 and np.isnan(read_pipes(p)["diameter_mm"].iloc[1])
    dn = [dict(f, properties={"DN": 150}) for f in feats]
    p.write_text(json.dumps({"type": "FeatureCollection", "features": dn}))
    assert read_pipes(p)["diameter_mm"].tolist() == [150.0, 150.0]


def test_pipes_gpkg_any_crs_and_ids(small_scene, tmp_path):
    import geopandas as gpd

    g = gpd.read_file(small_scene / "pipes.geojson").to_crs(32652)
    g.to_file(tmp_path / "p.gpkg", driver="GPKG")
    out = read_pipes(tmp_path / "p.gpkg")
    assert out.crs.to_epsg() == 32652 and out["segment_id"].tolist() == g["segment_id"].tolist()
    assert (out["diameter_mm"] > 0).all()
    g2 = g.copy()
    g2.loc[1, "segment_id"] = g2.loc[0, "segment_id"]
    g2.to_file(tmp_path / "dup.gpkg", driver="GPKG")
    with pytest.raises(InputError, match="duplicate segment_id"):
        read_pipes(tmp_path / "dup.gpkg")
    (tmp_path / "junk.geojson").write_text("{not json")
    with pytest.raises(InputError, match="cannot read"):
        read_pipes(tmp_path / "junk.geojson")


def test_transient_read_errors_are_retried_with_backoff(small_scene, monkeypatch):
    scene = discover_local_scene(small_scene)
    fp, crs = scene_footprint(scene)
    b = fp.boundingbox
    gb = GeoBox((50, 50), Affine(10, 0, b.left + 500, 0, -10, b.bottom + 1000), crs)
    real_open, calls, sleeps = rasterio.open, {"n": 0}, []

    def flaky_open(*a, **k):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise rasterio.errors.RasterioIOError("HTTP 503 (injected)")
        return real_open(*a, **k)

    monkeypatch.setattr(rasterio, "open", flaky_open)
    monkeypatch.setattr("time.sleep", lambda s: sleeps.append(s))
    out = warp_band(scene.landsat["ST_B10"], gb, Resampling.nearest, 0)
    assert out.shape == (50, 50) and (out > 0).any()
    assert sleeps == [0.5, 1.0]
    calls["n"] = -10  # now it keeps failing: a clear error after the last attempt
    monkeypatch.setattr(rasterio, "open", lambda *a, **k: (_ for _ in ()).throw(
        rasterio.errors.RasterioIOError("HTTP 503 (injected)")))
    with pytest.raises(InputError, match="cannot read raster"):
        warp_band(scene.landsat["ST_B10"], gb, Resampling.nearest, 0)


def test_s2_offset_from_sensing_date_when_no_metadata(small_scene, tmp_path):
    d = copy_scene(small_scene, tmp_path / "s")
    (d / "sentinel2" / "MTD_MSIL2A.xml").unlink()
    scene = discover_local_scene(d)
    assert scene.s2_boa_offset == -1000.0 and "sensing date 2025-01-16" in scene.s2_offset_source
    for p in (d / "sentinel2").glob("*.tif"):
        p.rename(p.with_name(p.name.replace("20250116", "20211201")))
    scene = discover_local_scene(d)
    assert scene.s2_boa_offset == 0.0 and scene.s2_date.isoformat() == "2021-12-01"
    # names without a date (B04.tif, as some archives keep them): the Landsat date of the pair decides (2025: >= 04.00)
    for p in (d / "sentinel2").glob("*.tif"):
        p.rename(p.with_name(p.name.split("_")[2] + ".tif"))
    scene = discover_local_scene(d)
    assert scene.s2_date is None and scene.s2_boa_offset == -1000.0 and "Landsat date 2025-01-15" in \
        scene.s2_offset_source


def test_coregistration_finds_and_corrects_an_injected_landsat_offset(small_scene, tmp_path):
    """Landsat georeferenced 30 m east and 15 m south of the truth: the per-tile phase correlation finds it
    and the corrected thermal read matches the truth better than the uncorrected one."""
    from heattrack.io.local import CoregParams

    d = copy_scene(small_scene, tmp_path / "shifted")
    for p in (d / "landsat").glob("*.TIF"):
        with rasterio.open(p, "r+") as src:
            t = src.transform
            src.transform = Affine(t.a, t.b, t.c + 30.0, t.d, t.e, t.f - 15.0)
    scene = discover_local_scene(d)
    fp, crs = scene_footprint(discover_local_scene(small_scene))
    b = fp.boundingbox
    gb = GeoBox((200, 200), Affine(10, 0, b.left + 500, 0, -10, b.top - 500), crs)
    est = LocalSceneReader(scene).landsat_shift(gb)
    # phase correlation with a parabolic peak fit: about a quarter of a 30 m pixel
    assert est["applied"] and est["dx_m"] == pytest.approx(30, abs=9) and est["dy_m"] == pytest.approx(-15, abs=9)
    reference = LocalSceneReader(discover_local_scene(small_scene)).read(gb).lst  # the unshifted scene
    fixed = LocalSceneReader(scene).read(gb)
    raw = LocalSceneReader(scene, coreg=CoregParams(enabled=False)).read(gb)
    assert raw.coregistration is None and fixed.coregistration["applied"]
    err = lambda lst: float(np.nanmean(np.abs(lst - reference)))  # noqa: E731
    assert err(fixed.lst) < 0.6 * err(raw.lst)
    # correctly registered data: a sub-threshold shift is recorded but not applied
    ok = LocalSceneReader(discover_local_scene(small_scene)).landsat_shift(gb)
    assert not ok["applied"] and abs(ok["dx_m"]) < 6 and abs(ok["dy_m"]) < 6


def test_downloaded_sentinel2_names_keep_granules_apart():
    """Earth Search names every asset B04.tif: with several items of one day the download prefixes the item id,
    whose MGRS tile is what the local reader groups the granules by."""
    from pathlib import Path

    from heattrack.io.download import s2_file_name
    from heattrack.io.local import _s2_granule

    es = "https://example.com/sentinel-2-c1-l2a/52/S/CG/2025/1/S2B_T52SCG_20250110T021349_L2A/B04.tif"
    assert s2_file_name(es, "S2B_52SCG_20250110_0_L2A", several=False) == "B04.tif"
    named = s2_file_name(es, "S2B_52SCG_20250110_0_L2A", several=True)
    assert named == "S2B_52SCG_20250110_0_L2A_B04.tif" and _s2_granule(Path(named)) == "52SCG"
    pc = "https://x.blob.core.windows.net/T52SCH_20250110T021349_B04_10m.tif?sig=abc"
    assert s2_file_name(pc, "S2B_MSIL2A_20250110T021349_R060_T52SCH_20250110T060000", several=True) == \
        "T52SCH_20250110T021349_B04_10m.tif"
    assert _s2_granule(Path("T52SCH_20250110T021349_B04_10m.tif")) == "52SCH"


def test_tile_cog_bytes_is_a_cog_with_nan_aware_average_overviews():
    """A tile's layer as the tile task writes it: COG layout, deflate, the pixels as given, and overviews that
    average the finite pixels (a cloud edge does not turn a coarse view NaN or cold)."""
    from heattrack.io.exports import tile_cog_bytes
    from heattrack.kernels.lst import block_mean

    v = np.random.default_rng(0).normal(280, 2, (128, 128)).astype(np.float32)
    v[:9, :] = np.nan
    with rasterio.MemoryFile(tile_cog_bytes(v, Affine(10, 0, 0, 0, -10, 1280), "EPSG:32652", overview_count=3)) as m, \
            m.open() as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and src.profile["compress"] == "deflate"
        assert src.overviews(1) == [2, 4, 8] and np.isnan(src.nodata)
        np.testing.assert_array_equal(src.read(1), v)
        half = src.read(1, out_shape=(64, 64))
    np.testing.assert_allclose(half, block_mean(v, 2), rtol=1e-6)


def test_the_risk_layer_is_stored_without_the_floating_point_predictor_and_comes_back_exactly():
    """Risk is mostly runs of exact zeros: deflate keeps them short without the floating-point predictor (which
    LST needs); either way the pixels come back as written."""
    from heattrack.io.exports import cog_predictor, tile_cog_bytes

    rng = np.random.default_rng(1)
    risk = np.where(rng.random((512, 512)) < 0.75, 0.0, rng.random((512, 512))).astype(np.float32)
    risk[:40] = np.nan
    sizes = {}
    for pred in (3, cog_predictor("risk")):
        data = tile_cog_bytes(risk, Affine(10, 0, 0, 0, -10, 5120), "EPSG:32652", predictor=pred)
        with rasterio.MemoryFile(data) as m, m.open() as src:
            assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and src.profile["compress"] == "deflate"
            assert src.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR", "1") == str(pred)
            np.testing.assert_array_equal(src.read(1), risk)
        sizes[pred] = len(data)
    assert cog_predictor("risk") == 1 and cog_predictor("lst_10m") == 3
    assert sizes[1] < 0.9 * sizes[3]


@pytest.mark.parametrize("codec", ["deflate", "zstd"])
def test_cogs_are_written_with_the_configured_codec_and_come_back_exactly(tmp_path, codec):
    """report.cog_compression: a tile's COG, the coarse views and the single COG streamed from the mosaic are
    written with the codec asked for, lossless; a codec the exports do not offer is refused."""
    import zarr

    from heattrack.io.exports import tile_cog_bytes, write_cog, write_overview

    rng = np.random.default_rng(2)
    v = rng.normal(280, 2, (300, 260)).astype(np.float32)
    v[:20] = np.nan
    tr = Affine(10, 0, 0, 0, -10, 3000)
    with rasterio.MemoryFile(tile_cog_bytes(v, tr, "EPSG:32652", compression=codec)) as m, m.open() as src:
        assert src.profile["compress"] == codec and src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        np.testing.assert_array_equal(src.read(1), v)
    write_overview(v, tr, "EPSG:32652", tmp_path / "ov.tif", codec)
    group = zarr.open_group(str(tmp_path / "m.zarr"), mode="w", zarr_format=2)
    group.create_array("lst_10m", shape=v.shape, chunks=(128, 128), dtype="float32")[:] = v
    write_cog(tmp_path / "m.zarr", "lst_10m", slice(10, 290), slice(0, 250), tr, "EPSG:32652", tmp_path / "one.tif",
              compression=codec)
    for name, want in (("ov.tif", v), ("one.tif", v[10:290, :250])):
        with rasterio.open(tmp_path / name) as src:
            assert src.profile["compress"] == codec
            np.testing.assert_array_equal(src.read(1), want)
    with pytest.raises(ValueError, match="not one of deflate, zstd"):
        tile_cog_bytes(v, tr, "EPSG:32652", compression="lzw")


@pytest.mark.parametrize("crs", ["EPSG:32652", "+proj=aeqd +lat_0=37 +lon_0=127 +datum=WGS84 +units=m +no_defs"])
def test_mosaic_template_is_the_file_set_xarray_writes_and_the_driver_skips_dask_array(tmp_path, crs):
    """The template's empty variables are written by zarr itself: the same files, byte for byte, as xarray's
    ``to_zarr`` of dask arrays with ``compute=False`` (what earlier versions wrote and readers expect); and creating it
    does not import dask.array (~0.6 s of the run's serial start)."""
    import subprocess
    import sys

    import dask.array as da
    import xarray as xr
    from odc.geo.xr import xr_coords

    from heattrack.io.store import MOSAIC_VARIABLES, create_mosaic_template

    gb = GeoBox((300, 250), Affine(10, 0, 280000, 0, -10, 4190000), crs)
    attrs = {"title": "t", "tiles": [[1, 2], [3, 4]], "processing_hash": "abc"}
    create_mosaic_template(tmp_path / "new.zarr", gb, 100, attrs)
    data_vars = {name: xr.DataArray(da.full(gb.shape.yx, fill, dtype=dtype, chunks=(100, 100)), dims=("y", "x"),
                                    attrs={**var_attrs, "grid_mapping": "spatial_ref"})
                 for name, (dtype, fill, var_attrs) in MOSAIC_VARIABLES.items()}
    xr.Dataset(data_vars, coords=xr_coords(gb, crs_coord_name="spatial_ref"),
               attrs={k: json.dumps(v) if isinstance(v, list) else v for k, v in attrs.items()}).to_zarr(
        str(tmp_path / "ref.zarr"), mode="w", compute=False, consolidated=True, zarr_format=2,
        encoding={name: {"chunks": (100, 100), "_FillValue": fill} for name, (_, fill, _) in MOSAIC_VARIABLES.items()})
    ref = {p.relative_to(tmp_path / "ref.zarr"): p.read_bytes() for p in (tmp_path / "ref.zarr").rglob("*")
           if p.is_file()}
    new = {p.relative_to(tmp_path / "new.zarr"): p.read_bytes() for p in (tmp_path / "new.zarr").rglob("*")
           if p.is_file()}
    assert new == ref
    code = ("import sys\nfrom pathlib import Path\nfrom affine import Affine\nfrom odc.geo.geobox import GeoBox\n"
            "from heattrack.io.store import create_mosaic_template\n"
            f"create_mosaic_template(Path({str(tmp_path / 'sub.zarr')!r}),\n"
            "    GeoBox((50, 50), Affine(10, 0, 0, 0, -10, 0), 'EPSG:32652'), 25, {})\n"
            "print('dask.array' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
