"""ECOSTRESS L2T LSTE: a simulated night pass in the local `thermal/` layout (NASA's file names and quality layers)
and the same files served by a loopback STAC API as CMR-STAC items, with a day pass beside it that the time-of-day
rule must leave out; the Earthdata token reaches the asset requests and never the outputs."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timezone

import numpy as np
import pytest
import rasterio
import xarray as xr
from conftest import SMALL_RUN, corner_network
from odc.geo.geom import box
from stac_server import StacServer, _footprint
from typer.testing import CliRunner

from heattrack.cli import app
from heattrack.io.ecostress import group_passes, pass_key
from heattrack.io.thermal import ECOSTRESS_NAME, describe_thermal, keep_time_of_day, mask_lst, solar_hour
from heattrack.simulate import SimulationSpec, simulate_scene

runner = CliRunner()
ARGS = ["--tile-km", str(SMALL_RUN["grid.tile_km"]), "--n-workers", "2"]
COLLECTION = "ECO_L2T_LSTE_002"


def test_time_of_day_rule_and_masks():
    utc = datetime(2025, 1, 15, 14, 30, tzinfo=timezone.utc)
    assert solar_hour(utc, 127.5) == pytest.approx(23.0)
    assert keep_time_of_day(23.0, date(2025, 1, 15), 37.5, "auto")  # a winter night
    assert not keep_time_of_day(12.5, date(2025, 1, 15), 37.5, "auto")  # a winter day
    assert keep_time_of_day(12.5, date(2025, 7, 15), 37.5, "auto")  # summer: any
    assert not keep_time_of_day(12.5, date(2025, 7, 15), -37.5, "auto")  # southern winter
    assert keep_time_of_day(12.5, date(2025, 1, 15), 37.5, "day") and keep_time_of_day(None, None, 0, "night")
    lst = np.array([[270.0, 271.0, np.nan, 273.0, 274.0]], np.float32)
    out = mask_lst(lst, np.array([[0, 1, 0, 0, 0]]), np.array([[0, 0, 0, 1, 0]]),
                   np.array([[0.5, 0.5, 0.5, 0.5, 2.5]], np.float32), max_err_k=2.0)
    np.testing.assert_array_equal(np.isfinite(out), [[True, False, False, False, False]])
    assert pass_key("ECOv002_L2T_LSTE_35698_014_52SCG_20250115T143248_0712_01", utc) == "ECOSTRESS orbit 35698"


def test_each_tile_takes_the_passes_clear_over_it():
    from heattrack.io.ecostress import passes_per_tile

    west, east, cloudy = np.zeros((4, 8), bool), np.zeros((4, 8), bool), np.zeros((4, 8), bool)
    west[:, :4], east[:, 4:] = True, True
    windows = {(0, 0): (slice(0, 4), slice(0, 4)), (1, 0): (slice(0, 4), slice(4, 8)), (2, 0): (slice(0, 4), slice(8, 12))}
    acquired = ["2025-01-20T14:00:00Z", "2025-01-05T14:00:00Z", "2025-01-10T14:00:00Z"]
    got = passes_per_tile([west, east, cloudy], windows, acquired, n=2, min_clear=0.05)
    assert got == {(0, 0): [(0, 1.0)], (1, 0): [(1, 1.0)]}  # the empty window (outside every map) is left out
    both = passes_per_tile([west, west | east, cloudy], windows, acquired, n=2, min_clear=0.05)
    assert both[(0, 0)] == [(1, 1.0), (0, 1.0)]  # two passes, in time order


@pytest.fixture(scope="module")
def eco_scene(tmp_path_factory):
    """A 3 km ECOSTRESS night pass (local layout) plus a day pass of the same tile (its files renamed to 04:00
    UTC, about 12:30 local solar time in January)."""
    root = tmp_path_factory.mktemp("eco")
    scene = root / "scene"
    simulate_scene(scene, SimulationSpec(size_km=3.0, leaks=6, seed=21, sensor="ecostress"))
    day = root / "day"
    day.mkdir()
    for f in (scene / "thermal").iterdir():
        m = ECOSTRESS_NAME.match(f.name)
        name = f.name.replace(m.group(2), "20250116T040000").replace("_35698_", "_35711_")
        shutil.copy(f, day / name)
    return root


def _items(root, base_url) -> list[dict]:
    """CMR-STAC-like items (one per L2T tile, assets named after the layers) for every LST file below ``root``."""
    items = []
    for lst in sorted(root.rglob("*_LST.tif")):
        m = ECOSTRESS_NAME.match(lst.name)
        when = datetime.strptime(m.group(2), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
        bbox, geom = _footprint(lst)
        assets = {layer: {"href": f"{base_url}/assets/{lst.with_name(f'{m.group(1)}_{layer}.tif').relative_to(root).as_posix()}",
                          "type": "image/tiff; application=geotiff; profile=cloud-optimized", "roles": ["data"]}
                  for layer in ("LST", "LST_err", "cloud", "water")}
        items.append({"type": "Feature", "stac_version": "1.0.0", "id": m.group(1), "collection": COLLECTION,
                      "bbox": bbox, "geometry": geom, "links": [], "stac_extensions": [], "assets": assets,
                      "properties": {"datetime": when.isoformat().replace("+00:00", "Z")}})
    return items


def test_passes_are_grouped_and_kept_by_local_solar_time(eco_scene):
    items = _items(eco_scene, "http://unused")
    aoi = box(*items[0]["bbox"], "EPSG:4326")
    kept, dropped = group_passes(items, aoi, "auto")
    assert [sc.pass_id for sc in kept] == ["ECOSTRESS orbit 35698"] and 22 < kept[0].solar_hour < 24
    assert len(dropped) == 1 and "35711" in dropped[0] and "solar time" in dropped[0]
    assert len(group_passes(items, aoi, "any")[0]) == 2


def test_local_ecostress_tile_is_read_with_its_quality_layers(eco_scene):
    lst = next((eco_scene / "scene" / "thermal").glob("*_LST.tif"))
    sc = describe_thermal(lst, max_err_k=2.0)
    assert sc.sensor == "ECOSTRESS" and sc.psf_m == 70.0 and sc.pixel_m == 70.0
    assert [k for k, _ in sc.masks] == ["cloud", "water", "LST_err"] and 22 < sc.solar_hour < 24
    assert str(sc.landsat_date) == "2025-01-15"


@pytest.mark.slow
def test_ecostress_from_stac_runs_end_to_end_like_the_local_files(eco_scene, tmp_path, monkeypatch):
    scene = eco_scene / "scene"
    monkeypatch.setenv("EARTHDATA_TOKEN", "s3cr3t-earthdata-token")
    with StacServer(eco_scene, page_size=1) as srv:
        srv.items = _items(eco_scene, srv.url)
        b = srv.items[0]["bbox"]
        aoi = f"{b[0] + 0.002:.5f},{b[1] + 0.002:.5f},{b[2] - 0.002:.5f},{b[3] - 0.002:.5f}"
        out = tmp_path / "stac"
        res = runner.invoke(app, ["run", "--source", "ecostress", "--aoi", aoi, "--pipes", str(scene / "pipes.geojson"),
                                  "--out", str(out), *ARGS, "--set", f"ecostress.stac_url={srv.url}",
                                  "--datetime", "2025-01-01/2025-01-31"])  # --datetime: the chosen catalogue's
        assert res.exit_code == 0, res.output
        assert srv.auth and all(a == "Bearer s3cr3t-earthdata-token" for a in srv.auth)
    info = json.loads((out / "run.json").read_text())
    assert info["inputs"]["source"] == "ecostress" and info["inputs"]["sensor"] == "ECOSTRESS"
    assert [d["landsat_product"] for d in info["inputs"]["dates"]] == ["ECOSTRESS orbit 35698"]
    assert any("35711" in w and "solar time" in w for w in info["warnings"])  # the day pass, left out
    assert info["detectability"]["sensor_sigma_m"] == pytest.approx(70 / np.sqrt(12), abs=0.01)
    # the 70 m pixel read bilinearly onto the 10 m grid keeps ~6 % of a 20 m plume's peak (not a 20 m Gaussian's 15 %),
    # and the statistic's window along the pipe (~120 m) most of that (0.85 of it)
    det = info["detectability"]
    assert det["chain"]["factor"] == 7 and 0.05 < det["attenuation_peak_model"][0] < 0.08
    assert 10 <= det["window_points"] <= 14 and 0.6 < det["attenuation"] / det["attenuation_peak_model"][0] < 0.95
    assert "ECOSTRESS pass" in (page := (out / "report" / "index.html").read_text()) and "10 m LST:" not in page
    for f in out.rglob("*"):
        if f.is_file() and f.suffix in (".json", ".yaml", ".html", ".geojson", ".js"):
            assert "s3cr3t" not in f.read_text(errors="replace"), f
    # the same files through the local thermal/ layout: the same temperatures where both have data
    local = tmp_path / "local"
    res = runner.invoke(app, ["run", "--input", str(scene), "--aoi", aoi, "--pipes", str(scene / "pipes.geojson"),
                              "--out", str(local), *ARGS])
    assert res.exit_code == 0, res.output
    a = xr.open_zarr(out / "mosaic.zarr").load()
    c = xr.open_zarr(local / "mosaic.zarr").load()
    a, c = xr.align(a, c, join="inner")
    va, vc = np.isfinite(a["lst_plain"].values), np.isfinite(c["lst_plain"].values)
    both = va & vc
    assert both.sum() > 0.95 * max(va.sum(), vc.sum()) and both.sum() > 50_000
    assert np.abs(a["lst_plain"].values[both] - c["lst_plain"].values[both]).max() < 0.05
    with rasterio.open(out / "risk_10m.vrt") as v:
        assert np.isfinite(v.read(1)).mean() > 0.5


class FakeEcostressEngine:
    """Earth Engine's HTTP layer for ``NASA/ECOSTRESS/L2T_LSTE/V2``: value:compute answers the pass search from
    the simulated files, computePixels warps their layers onto the requested grid (LST bilinear, the rest
    nearest; outside the pass: LST 0, flags 1, LST_err 99, as the server-side unmask does)."""

    def __init__(self, root):
        self.lst = {ECOSTRESS_NAME.match(p.name).group(1): p for p in sorted(root.rglob("*_LST.tif"))}
        self.pixel_calls = 0

    def request(self, uri, method="GET", body=None, headers=None, redirections=5, connection_type=None):
        import io

        import httplib2
        from affine import Affine
        from odc.geo.geobox import GeoBox
        from rasterio.enums import Resampling

        from heattrack.io.local import warp_band

        req = json.loads(body) if body else {}
        ok = httplib2.Response({"status": 200, "content-type": "application/json"})
        if uri.split("?")[0].endswith("value:compute"):
            ids = [f"NASA/ECOSTRESS/L2T_LSTE/V2/{k}" for k in self.lst]
            times = [datetime.strptime(ECOSTRESS_NAME.match(p.name).group(2), "%Y%m%dT%H%M%S").replace(
                tzinfo=timezone.utc).timestamp() * 1000 for p in self.lst.values()]
            return ok, json.dumps({"result": {"ids": ids, "times": times}}).encode()
        if uri.split("?")[0].endswith("image:computePixels"):
            self.pixel_calls += 1
            g = req["grid"]
            t = g["affineTransform"]
            gb = GeoBox((g["dimensions"]["height"], g["dimensions"]["width"]),
                        Affine(t["scaleX"], t["shearX"], t["translateX"], t["shearY"], t["scaleY"], t["translateY"]),
                        g["crsCode"])
            key = next(k for k in self.lst if k in json.dumps(req["expression"]))
            lst = self.lst[key]
            out = np.zeros(gb.shape.yx, np.dtype([(k, "<f4") for k in ("LST", "LST_err", "cloud", "water")]))
            for layer, fill in (("LST", 0.0), ("LST_err", 99.0), ("cloud", 1.0), ("water", 1.0)):
                a = warp_band(lst.with_name(lst.name.replace("_LST.tif", f"_{layer}.tif")), gb,
                              Resampling.bilinear if layer == "LST" else Resampling.nearest, np.nan)
                out[layer] = np.where(np.isfinite(a) & (a != 255), a, fill)
            buf = io.BytesIO()
            np.save(buf, out)
            return httplib2.Response({"status": 200, "content-type": "application/octet-stream"}), buf.getvalue()
        return httplib2.Response({"status": 404, "content-type": "application/json"}), b'{"error": {"code": 404}}'

    def close(self):
        pass


@pytest.mark.slow
def test_ecostress_from_earth_engine_runs_end_to_end_offline(eco_scene, tmp_path):
    """The real earthengine-api builds the search and computePixels requests; the chain runs on an in-process
    Dask cluster (the fake transport lives in this process) and equals the local run of the same files."""
    pytest.importorskip("ee")
    from distributed import Client
    from fake_ee import fake_earth_engine

    from heattrack.config import load_config
    from heattrack.orchestration.run import run

    scene = eco_scene / "scene"
    with fake_earth_engine(FakeEcostressEngine(eco_scene)) as http:
        items = _items(eco_scene, "http://unused")
        b = items[0]["bbox"]
        aoi = f"{b[0] + 0.002:.5f},{b[1] + 0.002:.5f},{b[2] - 0.002:.5f},{b[3] - 0.002:.5f}"
        cfg = load_config(None, {"input.source": "ecostress", "input.aoi": aoi, "input.pipes": scene / "pipes.geojson",
                                 "ecostress.api": "gee", "ecostress.datetime": "2025-01-01/2025-01-31",
                                 "gee.project": "test-project", "grid.tile_km": 1.5})
        with Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
            res = run(cfg, tmp_path / "gee", client=client)
        assert not res.failed and http.pixel_calls >= 1
    info = json.loads((tmp_path / "gee" / "run.json").read_text())
    assert info["inputs"]["api"] == "gee" and info["inputs"]["dates"][0]["items"][0].startswith("NASA/ECOSTRESS")
    assert any("35711" in w for w in info["warnings"])  # the day pass, left out
    res = runner.invoke(app, ["run", "--input", str(scene), "--aoi", aoi, "--pipes", str(scene / "pipes.geojson"),
                              "--out", str(tmp_path / "local"), *ARGS])
    assert res.exit_code == 0, res.output
    a = xr.open_zarr(tmp_path / "gee" / "mosaic.zarr").load()
    c = xr.open_zarr(tmp_path / "local" / "mosaic.zarr").load()
    a, c = xr.align(a, c, join="inner")
    va, vc = np.isfinite(a["lst_plain"].values), np.isfinite(c["lst_plain"].values)
    assert (va & vc).sum() > 0.95 * max(va.sum(), vc.sum()) and (va & vc).sum() > 50_000
    assert np.abs(a["lst_plain"].values[va & vc] - c["lst_plain"].values[va & vc]).max() < 0.05


@pytest.mark.slow
def test_a_mixed_winter_combines_landsat_and_ecostress_dates(tmp_path):
    """Landsat + Sentinel-2 and an ECOSTRESS night pass in one folder: one run, each date read its own way (the
    Landsat date sharpened, the pass ranked directly), combined per segment with the pass weighted by its
    detectability; per-date columns name the sensor."""
    scene = tmp_path / "scene"
    simulate_scene(scene, SimulationSpec(size_km=3.0, leaks=6, seed=23, sensor="landsat+ecostress"))
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", "--input", str(scene), "--pipes", str(scene / "pipes.geojson"), "--out", str(out),
                              *ARGS])
    assert res.exit_code == 0, res.output
    info = json.loads((out / "run.json").read_text())
    assert info["inputs"]["source"] == "mixed" and info["inputs"]["sensors"] == ["ECOSTRESS", "Landsat 8/9"]
    att = info["detectability"]["attenuation_by_date"]
    # the 70 m pass keeps more of a 20 m plume than Landsat's ~100 m footprint (read on ST_B10's 30 m pixels:
    # 0.054 vs 0.037 measured; on the 100 m blocks, detect.rank_grid thermal, Landsat kept under half the pass's)
    assert set(att) == {"2025-01-15", "2025-01-15-ecostress"} and att["2025-01-15-ecostress"] > 1.2 * att["2025-01-15"]
    assert info["detectability"]["attenuation"] == 1.0  # the statistic is in K of the plume's peak
    # the pass's LST_err reached the reduction (there it weights the dates of each segment)
    assert info["detectability"]["lst_err_weights"] is True
    rec = np.load(next((out / ".heattrack" / "tiles").glob("*.npz")))
    err = rec["point_err_by_date"]
    has = np.isfinite(err).any(axis=1)
    assert has.sum() == 1 and 0.7 < np.nanmedian(err[has]) < 1.1  # Landsat: none; the pass: 0.8-1.0 K
    assert all(len(t["dates"]) == 2 and min(d["valid_fraction"] for d in t["dates"]) > 0
               for t in info["tile_summaries"].values())
    import geopandas as gpd

    seg = gpd.read_file(out / "segments.geojson")
    assert {"risk_2025-01-15", "risk_2025-01-15-ecostress", "stat_k", "mdl_k"} <= set(seg.columns)
    assert seg["n_dates"].max() == 2
    assert "Mixed winter: 2 dates" in (out / "report" / "index.html").read_text()
    bad = runner.invoke(app, ["run", "--input", str(scene), "--pipes", str(scene / "pipes.geojson"),
                              "--out", str(tmp_path / "bad"), *ARGS, "--set", "detect.method=local"])
    assert bad.exit_code == 1 and "mixing Landsat and thermal" in bad.output


def test_an_ecostress_search_can_keep_to_the_network(eco_scene, tmp_path, monkeypatch):
    """grid.network_only with ECOSTRESS passes: the AOI's tiles near the pipes only, the passes chosen for those."""
    from heattrack.config import load_config
    from heattrack.orchestration.plan import plan_run

    corner_network(eco_scene / "scene", tmp_path / "corner.geojson")
    monkeypatch.setenv("EARTHDATA_TOKEN", "s3cr3t-earthdata-token")
    with StacServer(eco_scene, page_size=1) as srv:
        srv.items = _items(eco_scene, srv.url)
        bb = srv.items[0]["bbox"]

        def tiles(network_only: bool) -> int:
            cfg = load_config(overrides={
                "input": {"source": "ecostress", "pipes": str(tmp_path / "corner.geojson"),
                          "aoi": f"{bb[0] + 0.002:.5f},{bb[1] + 0.002:.5f},{bb[2] - 0.002:.5f},{bb[3] - 0.002:.5f}"},
                "ecostress": {"stac_url": srv.url, "datetime": "2025-01-01/2025-01-31"},
                "grid": {"tile_km": 0.5, "network_buffer_m": 300, "network_only": network_only}})
            return len(plan_run(cfg).grid.tiles)

        near, whole = tiles(True), tiles(False)
    assert near <= 16 and whole >= 25
