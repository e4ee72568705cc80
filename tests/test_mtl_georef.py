"""A Landsat crop whose GeoTIFFs carry no georeferencing (as the xlandsat project distributes its sample scenes) is
placed by its product's MTL; the files themselves are never written."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox

from heattrack.errors import InputError
from heattrack.io.local import LocalSceneReader, discover_local_scenes, scene_footprint
from heattrack.io.rasterread import open_raster, raster_footprint
from heattrack.orchestration.plan import landsat_scene_warnings

REAL = Path(__file__).parent / "data" / "real" / "landsat-momotombo"
PRODUCT = "LC08_L2SP_017051_20151205_20200908_02_T1"


def _strip(src: Path, dst: Path) -> None:
    """``src``'s pixels (and nodata) in a GeoTIFF without CRS or transform."""
    with rasterio.open(src) as s:
        data, profile = s.read(), {k: v for k, v in s.profile.items() if k not in ("crs", "transform")}
    with pytest.warns(rasterio.errors.NotGeoreferencedWarning):
        with rasterio.open(dst, "w", **profile) as d:
            d.write(data)


def test_a_crop_without_georeferencing_reads_as_its_georeferenced_copy(tmp_path):
    """The bundled Momotombo crop (georeferenced by hand from its MTL, SOURCE.txt) stripped of its georeferencing: the
    scene is found, placed where the copy lies, read to the same arrays, and the run says how it was placed."""
    crop = tmp_path / "crop"
    crop.mkdir()
    for f in REAL.iterdir():
        (_strip if f.suffix == ".TIF" else shutil.copy)(f, crop / f.name)
    before = {f.name: f.read_bytes() for f in crop.iterdir()}
    (ref,) = discover_local_scenes(REAL)
    (sc,) = discover_local_scenes(crop)
    with open_raster(crop / f"{PRODUCT}_ST_B10.TIF") as src:
        assert src.crs == "EPSG:32616" and src.transform == Affine(30, 0, 544005, 0, -30, 1378995)
    (fp, crs), (want_fp, want_crs) = scene_footprint(sc), scene_footprint(ref)
    assert crs == want_crs and fp.boundingbox == want_fp.boundingbox
    b = fp.boundingbox
    gb = GeoBox.from_bbox((b.left + 3000, b.bottom + 3000, b.left + 4500, b.bottom + 4500), b.crs, resolution=10)
    got, want = LocalSceneReader(sc).read(gb), LocalSceneReader(ref).read(gb)
    for name in ("lst", "red", "nir", "optical_clear"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    assert sorted(got.bands) == sorted(want.bands) and np.isfinite(got.lst).mean() > 0.9
    for band in got.bands:
        np.testing.assert_array_equal(got.bands[band], want.bands[band])
    said = [w for w in landsat_scene_warnings([sc]) if "georeferencing" in w]
    assert said == [f"Landsat scene {PRODUCT}: its GeoTIFFs carry no georeferencing; placed on EPSG:32616 by its "
                    f"{PRODUCT}_MTL.txt (the upper-left pixel's centre and the grid size it gives)"]
    assert not any("georeferencing" in w for w in landsat_scene_warnings([ref]))
    assert {f.name: f.read_bytes() for f in crop.iterdir()} == before  # nothing written beside the user's files


def _mtl(folder: Path, product: str, xml: bool = False, **fields) -> None:
    """An MTL of the given fields, as text (``GROUP = ...``) or as USGS's XML form, a Level-1 group after them."""
    base = {"MAP_PROJECTION": '"UTM"', "DATUM": '"WGS84"', "UTM_ZONE": "23", "GRID_CELL_SIZE_REFLECTIVE": "30.00",
            "REFLECTIVE_LINES": "4", "REFLECTIVE_SAMPLES": "5", "CORNER_UL_PROJECTION_X_PRODUCT": "583500.000",
            "CORNER_UL_PROJECTION_Y_PRODUCT": "-2222700.000"}
    if xml:
        body = "".join(f"    <{k}>{v.strip(chr(34))}</{k}>\n" for k, v in {**base, **fields}.items())
        (folder / f"{product}_MTL.xml").write_text(
            f'<?xml version="1.0"?>\n<LANDSAT_METADATA_FILE>\n  <PROJECTION_ATTRIBUTES>\n{body}'
            "  </PROJECTION_ATTRIBUTES>\n  <LEVEL1_PROJECTION_PARAMETERS>\n    <UTM_ZONE>99</UTM_ZONE>\n"
            "  </LEVEL1_PROJECTION_PARAMETERS>\n</LANDSAT_METADATA_FILE>\n")
        return
    body = "".join(f"    {k} = {v}\n" for k, v in {**base, **fields}.items())
    (folder / f"{product}_MTL.txt").write_text(
        f"GROUP = LANDSAT_METADATA_FILE\n  GROUP = PROJECTION_ATTRIBUTES\n{body}  END_GROUP = PROJECTION_ATTRIBUTES\n"
        "  GROUP = LEVEL1_PROJECTION_PARAMETERS\n    UTM_ZONE = 99\n  END_GROUP = LEVEL1_PROJECTION_PARAMETERS\nEND\n")


@pytest.mark.parametrize("fields, placed", [
    ({}, (f"EPSG:{32623}", Affine(30, 0, 583485, 0, -30, -2222685))),  # south of the equator: negative northings
    ({"xml": True}, (f"EPSG:{32623}", Affine(30, 0, 583485, 0, -30, -2222685))),  # the MTL's XML form
    ({"xml": True, "REFLECTIVE_SAMPLES": "6"}, None),
    ({"REFLECTIVE_LINES": "400"}, None),  # the full scene's MTL beside a crop: not this grid
    ({"MAP_PROJECTION": '"PS"'}, None),  # polar stereographic (Antarctica): not placed
    ({"UTM_ZONE": "x"}, None),
    (None, None),  # no MTL at all
])
def test_which_mtl_places_a_band(tmp_path, fields, placed):
    product = "LC08_L2SP_218074_20190114_20200829_02_T1"
    path = tmp_path / f"{product}_ST_B10.TIF"
    with pytest.warns(rasterio.errors.NotGeoreferencedWarning):
        with rasterio.open(path, "w", driver="GTiff", width=5, height=4, count=1, dtype="uint16") as d:
            d.write(np.arange(20, dtype=np.uint16).reshape(1, 4, 5) + 1)
    if fields is not None:
        _mtl(tmp_path, product, **fields)
    with open_raster(path) as src:
        assert src.read(1).tolist() == (np.arange(20).reshape(4, 5) + 1).tolist()
        assert (None if src.crs is None else (src.crs.to_string(), src.transform)) == placed
    if placed is None:
        with pytest.raises(InputError, match=r"has no CRS \(not georeferenced; a Landsat band is placed by its "):
            raster_footprint(path)
    else:
        assert raster_footprint(path)[1] == placed[0]
