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
    res = _run("--input", small_scene, "--pipes", far, "--out", tmp_path / "o")
    assert "latitude first" not in res.output  # elsewhere, not swapped


def test_pipes_written_latitude_first_are_named_as_such(small_scene, tmp_path):
    import geopandas as gpd
    import shapely

    g = gpd.read_file(small_scene / "pipes.geojson")
    g = g.set_geometry(gpd.GeoSeries(shapely.transform(g.geometry.values, lambda xy: xy[:, ::-1]), crs=g.crs))
    g.to_file(tmp_path / "latlon.geojson", driver="GeoJSON")
    _assert_clean_failure(_run("--input", small_scene, "--pipes", tmp_path / "latlon.geojson", "--out", tmp_path / "o"),
                          "seems written latitude first", tmp_path / "o")


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


@pytest.mark.slow
def test_a_run_that_fails_after_its_tiles_ends_on_its_one_line_only(small_scene, tmp_path):
    """Every optical pixel under cloud (SCL 9): the tiles run, the reduction finds nothing and the run fails. Its
    terminal shows the error alone: no worker's warning of a report warm-up cut off by the cluster's close (worker
    processes write to the real stderr, so the command runs in a subprocess here)."""
    import subprocess
    import sys

    d = copy_scene(small_scene, tmp_path / "in")
    scl = next((d / "sentinel2").glob("*SCL*"))
    with rasterio.open(scl, "r+") as src:
        src.write(np.full((src.height, src.width), 9, dtype=src.dtypes[0]), 1)
    res = subprocess.run([sys.executable, "-m", "heattrack", "run", "--input", str(d), "--pipes",
                          str(d / "pipes.geojson"), "--out", str(tmp_path / "o"), "--tile-km", "3"],
                         capture_output=True, text=True, timeout=300)
    text = res.stdout + res.stderr
    assert res.returncode == 1 and "no tile produced a single valid pixel" in text, text[-2000:]
    assert "CancelledError" not in text and "Traceback" not in text, text[-2000:]


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


COMMANDS = [c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands]


def test_the_help_lists_every_command():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    assert len(COMMANDS) >= 12 and all(c in res.output for c in COMMANDS)


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(cmd):
    res = runner.invoke(app, [cmd, "--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    callback = next(c.callback for c in app.registered_commands if (c.name or c.callback.__name__) in (cmd, cmd.replace("-", "_")))
    assert callback.__doc__.strip().split("\n")[0][:40] in " ".join(res.output.split())
    if "--scheduler" in res.output:  # every scheduler that works is named
        assert all(s in res.output for s in ("local", "slurm", "kubernetes", "tcp://"))


def test_dry_run_prints_the_plan_and_writes_nothing(small_scene, tmp_path):
    out = tmp_path / "o"
    res = runner.invoke(app, ["run", "--input", str(small_scene), "--pipes", str(small_scene / "pipes.geojson"),
                              "--out", str(out), "--tile-km", "1.5", "--dry-run", "--scheduler", "slurm",
                              "--set", "slurm.jobs=8", "--set", "slurm.processes=2"], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert not out.exists()
    assert "Plan: 9 tiles of 150 x 150 px" in res.output and "LC09_L2SP" in res.output
    assert "workers: 16 (slurm.jobs x slurm.processes)" in res.output and "nothing was read or written" in res.output


def test_the_input_folders_own_network_and_a_missing_folder(small_scene, tmp_path):
    """Without --pipes a local input folder's pipes.geojson is the network (the dry run plans with it); a folder that
    does not exist is named as such, not as a missing network; a folder without one says so."""
    res = runner.invoke(app, ["run", "--input", str(small_scene), "--out", str(tmp_path / "o"), "--dry-run"],
                        terminal_width=200)
    assert res.exit_code == 0 and "Plan:" in res.output, res.output
    missing = _run("--input", tmp_path / "nowhere", "--out", tmp_path / "o")
    _assert_clean_failure(missing, f"input folder {tmp_path / 'nowhere'} does not exist", tmp_path / "o")
    assert "Dask cluster" not in missing.output  # refused before any worker started
    d = copy_scene(small_scene, tmp_path / "in")
    (d / "pipes.geojson").unlink()
    _assert_clean_failure(_run("--input", d, "--out", tmp_path / "o"),
                          f"no pipe network given (--pipes FILE); {d} has no pipes.geojson or pipes.gpkg",
                          tmp_path / "o")


def test_dry_run_estimate_adds_up(small_scene):
    from heattrack.config import load_config
    from heattrack.orchestration.dryrun import estimate
    from heattrack.orchestration.plan import plan_run

    cfg = load_config(overrides={"input": {"input": str(small_scene), "pipes": str(small_scene / "pipes.geojson")},
                                 "grid": {"tile_km": 1.5}, "compute": {"n_workers": 3, "plan_tile_mpx_s": 0.5}})
    est = estimate(plan_run(cfg))
    assert est.n_tiles == 9 and est.pixels == 9 * 150 * 150 and est.workers == 3
    assert est.seconds_tiles == pytest.approx(est.pixels / (0.5e6 * 3))
    side = 1500 + 2 * cfg.grid.halo_m  # the padded window of one tile, one date
    # Landsat ST + QA; the default DMS bands: B02 B03 B04 B08 at 10 m, B11 B12 + SCL at 20 m
    assert est.bytes_read == 9 * int((side / 30) ** 2 * 4 + (side / 10) ** 2 * 8 + (side / 20) ** 2 * 5)
    # the driver: fixed + per km of pipe, + the two single COGs of a small AOI
    import geopandas as gpd

    km = gpd.read_file(small_scene / "pipes.geojson").pipe(lambda g: g.to_crs(g.estimate_utm_crs())).length.sum() / 1e3
    c = cfg.compute
    fixed = c.plan_driver_s + 9 * c.plan_driver_s_per_tile + c.plan_driver_s_per_km * km
    aoi = est.seconds_driver - fixed
    assert 0 < aoi < 2 * 9 * 150 * 150 / (c.plan_cog_mpx_s * 1e6)
    no_cogs = estimate(plan_run(cfg.model_copy(update={"report": cfg.report.model_copy(
        update={"single_cog_max_mpx": 0.0})})))
    assert no_cogs.seconds_driver == pytest.approx(fixed, rel=1e-3)


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
