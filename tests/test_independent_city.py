"""A city from benchmarks/independent_city.py, the generator that shares no code with heattrack.simulate, run end to
end: what a user's own data looks like to the readers (UTM 33, Landsat's 30 m grid half a pixel off Sentinel-2's,
the baseline >= 04.00 offset from MTD_MSIL2A.xml, QA clouds), and the science carrying over to it."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

pytestmark = pytest.mark.slow


def test_an_independent_city_runs_and_the_defaults_beat_the_baselines(tmp_path):
    from distributed import Client, LocalCluster
    from independent_city import evaluate_city, make_city, write_scene

    scene = tmp_path / "scene"
    write_scene(make_city(22, 4.0), scene, 22)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        row = evaluate_city(scene, tmp_path, client)
    # measured 2026-12-06 20:16 UTC: 10 m LST 1.74x bilinear (1.58x before the 20 m bands were given the 10 m bands'
    # detail: this city is where their blur was found), ROC-AUC 0.719 (0.735 before) vs the baseline's 0.673, visible
    # leaks in the top 5 % 1.0 vs 0.5 (2 leaks), the real-crop protocol on its Landsat 1.81x; a regression in any of
    # them fails here
    assert row["lst_gain"] > 1.2 and row["sharpen_methods"] == ["dms"]
    assert row["default_auc"] > row["baseline_auc"]
    assert row["default_visible_top5"] > row["baseline_visible_top5"]
    assert row["asc_dms_gain"] > 1.1 and row["asc_dms_used"] == "dms"
    info = json.loads((tmp_path / "default" / "run.json").read_text())["inputs"]
    assert info["s2_boa_offset"] == -1000 and "MTD" in info["s2_offset_source"]
    assert info["landsat_product"].startswith("LC08_L2SP_190026")


def test_a_users_layout_variants_read_as_the_plain_layout(tmp_path):
    """The same city as delivered by other tools: Landsat 9 names in a product subfolder with lower-case suffixes,
    the Sentinel-2 granule as JPEG 2000 in the neighbouring UTM zone (an MGRS tile across a zone border), the pipes as
    a GeoPackage in a projected CRS. Through the CLI, as a user runs it: it runs, ranks every segment it sees, and
    sharpens."""
    import geopandas as gpd
    import numpy as np
    import rasterio
    from independent_city import make_city, write_scene
    from rasterio.warp import Resampling, calculate_default_transform, reproject
    from typer.testing import CliRunner

    from heattrack.cli import app

    scene = tmp_path / "scene"
    write_scene(make_city(23, 3.0), scene, 23)
    product = scene / "landsat" / "LC09_L2SP_190026_20250203_20250210_02_T1"
    product.mkdir()
    for p in sorted((scene / "landsat").glob("*.TIF")):
        p.rename(product / p.name.replace("LC08_", "LC09_").replace(".TIF", ".tif"))
    for p in sorted((scene / "sentinel2").glob("*.tif")):
        with rasterio.open(p) as src:
            tr, w, h = calculate_default_transform(src.crs, "EPSG:32632", src.width, src.height, *src.bounds,
                                                   resolution=src.res[0])
            out = np.zeros((h, w), src.dtypes[0])
            reproject(src.read(1), out, src_transform=src.transform, src_crs=src.crs, dst_transform=tr,
                      dst_crs="EPSG:32632", src_nodata=0, dst_nodata=0,
                      resampling=Resampling.nearest if "SCL" in p.name else Resampling.bilinear)
            profile = dict(driver="JP2OpenJPEG", width=w, height=h, count=1, dtype=src.dtypes[0], crs="EPSG:32632",
                           transform=tr, nodata=0)
        with rasterio.open(p.with_suffix(".jp2"), "w", QUALITY=100, REVERSIBLE="YES", **profile) as dst:
            dst.write(out, 1)
        p.unlink()
    pipes = gpd.read_file(scene / "pipes.geojson")
    pipes.to_crs("EPSG:32633").to_file(tmp_path / "pipes.gpkg", driver="GPKG")
    res = CliRunner().invoke(app, ["run", "-i", str(scene), "-p", str(tmp_path / "pipes.gpkg"), "-o",
                                   str(tmp_path / "out"), "--n-workers", "1"])
    assert res.exit_code == 0, res.output
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run["inputs"]["landsat_product"].startswith("LC09_L2SP_190026")
    seg = gpd.read_file(tmp_path / "out" / "segments.geojson")
    assert len(seg) == len(pipes) and (seg["status"] == "ok").mean() > 0.9
    assert {t["sharpen"]["method"] for t in run["tile_summaries"].values()} & {"dms", "tsharp"}
