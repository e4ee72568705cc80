"""Bad input through the CLI: one line, exit code 1, no traceback, no final outputs."""

import json

import numpy as np
import pytest
import rasterio
from conftest import copy_scene
from typer.testing import CliRunner

from heattrack.cli import app

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, ["run", *map(str, args)])


def _assert_clean_failure(res, match, out=None):
    text = res.output
    assert res.exit_code == 1, text
    assert "Traceback" not in text
    errors = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and match in errors[0], text
    if out is not None:
        for name in ("segments.geojson", "lst_10m.tif", "risk_10m.tif", "report", "config.yaml", "mosaic.zarr"):
            assert not (out / name).exists(), name


def test_missing_band(small_scene, tmp_path):
    d = copy_scene(small_scene, tmp_path / "in")
    next((d / "sentinel2").glob("*SCL*")).unlink()
    _assert_clean_failure(_run("--input", d, "--pipes", d / "pipes.geojson", "--out", tmp_path / "o"),
                          "no Sentinel-2 SCL file", tmp_path / "o")


def test_corrupt_raster(small_scene, tmp_path):
    d = copy_scene(small_scene, tmp_path / "in")
    st = next((d / "landsat").glob("*_ST_B10.TIF"))
    st.write_bytes(st.read_bytes()[:300])  # truncated file
    _assert_clean_failure(_run("--input", d, "--pipes", d / "pipes.geojson", "--out", tmp_path / "o"),
                          "cannot read raster", tmp_path / "o")


def test_pipes_in_metres(small_scene, tmp_path):
    import geopandas as gpd

    g = gpd.read_file(small_scene / "pipes.geojson").to_crs(32652)
    fc = json.loads(g.to_json())
    fc.pop("crs", None)
    bad = tmp_path / "metres.geojson"
    bad.write_text(json.dumps(fc))
    _assert_clean_failure(_run("--input", small_scene, "--pipes", bad, "--out", tmp_path / "o"),
                          "not lon/lat", tmp_path / "o")


def test_pipes_elsewhere(small_scene, tmp_path):
    far = tmp_path / "far.geojson"
    far.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
                   "geometry": {"type": "LineString", "coordinates": [[24.9, 60.1], [24.91, 60.1]]}}]}))
    _assert_clean_failure(_run("--input", small_scene, "--pipes", far, "--out", tmp_path / "o"),
                          "does not overlap", tmp_path / "o")


def test_aoi_outside_data(small_scene, tmp_path):
    _assert_clean_failure(_run("--input", small_scene, "--pipes", small_scene / "pipes.geojson", "--aoi",
                               "south-africa", "--out", tmp_path / "o"), "does not overlap", tmp_path / "o")


def test_all_cloud_scene(small_scene, tmp_path):
    d = copy_scene(small_scene, tmp_path / "in")
    qa = next((d / "landsat").glob("*_QA_PIXEL.TIF"))
    with rasterio.open(qa, "r+") as src:
        src.write(np.full((src.height, src.width), 22280, dtype=np.uint16), 1)
    _assert_clean_failure(_run("--input", d, "--pipes", d / "pipes.geojson", "--out", tmp_path / "o"),
                          "no clear, non-fill thermal pixel", tmp_path / "o")


def test_bad_config_value(small_scene, tmp_path):
    _assert_clean_failure(_run("--input", small_scene, "--pipes", small_scene / "pipes.geojson", "--set",
                               "downscale.method=magic", "--out", tmp_path / "o"), "downscale.method")


def test_unknown_scheduler_is_clean(small_scene, tmp_path):
    res = _run("--input", small_scene, "--pipes", small_scene / "pipes.geojson", "--scheduler", "pbs",
               "--out", tmp_path / "o")
    _assert_clean_failure(res, "unknown scheduler")


def test_non_empty_foreign_output_folder(small_scene, tmp_path):
    o = tmp_path / "o"
    o.mkdir()
    (o / "precious.txt").write_text("keep me")
    _assert_clean_failure(_run("--input", small_scene, "--pipes", small_scene / "pipes.geojson", "--out", o),
                          "holds no heattrack run")
    _assert_clean_failure(_run("--input", small_scene, "--pipes", small_scene / "pipes.geojson", "--out", o,
                               "--overwrite"), "refusing to delete")
    assert (o / "precious.txt").read_text() == "keep me"


def test_tile_command_writes_grid(tmp_path):
    res = runner.invoke(app, ["tile", "--aoi", "south-korea", "--tile-km", "48", "--out", str(tmp_path / "t.geojson")])
    assert res.exit_code == 0, res.output
    fc = json.loads((tmp_path / "t.geojson").read_text())
    assert len(fc["features"]) > 30 and fc["features"][0]["properties"]["crs"] == "EPSG:5179"
    assert "EPSG:5179" in res.output


@pytest.mark.parametrize("cmd", ["run", "simulate", "demo", "report", "tile", "evaluate"])
def test_every_command_has_help(cmd):
    res = runner.invoke(app, [cmd, "--help"])
    assert res.exit_code == 0 and "--verbose" in res.output


def test_synthetic_source_simulates_then_runs(tmp_path):
    out = tmp_path / "o"
    args = ["run", "--source", "synthetic", "--out", str(out), "--tile-km", "1.5", "--n-workers", "1",
            "--set", "simulate.size_km=3", "--set", "simulate.leaks=3"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (out / "scene" / "truth" / "truth.json").exists() and (out / "segments.geojson").exists()
    first = (out / "scene" / "pipes.geojson").stat().st_mtime_ns
    res = runner.invoke(app, [*args, "--resume"])  # the scene is reused, not simulated again
    assert res.exit_code == 0, res.output
    assert (out / "scene" / "pipes.geojson").stat().st_mtime_ns == first
