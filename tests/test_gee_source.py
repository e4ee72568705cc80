"""`--source gee` without network: the real earthengine-api builds every request (expressions, computePixels
grids, value:compute searches) through its own HTTP layer, which is replaced here by a fake transport that
answers from a simulated scene (the discovery document and algorithm signatures are the ones earthengine-api
ships for its own tests). Checks: pixels land on the tile's GeoBox exactly like the local reader's, requests
are split under the size limit, quota errors are retried then reported, credentials errors are clear and
never echo the key, scene selection pairs the nearest Sentinel-2, the Goyang Baekseok example config plans."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

ee = pytest.importorskip("ee")

from fake_ee import fake_earth_engine  # noqa: E402

from heattrack.config import load_config  # noqa: E402
from heattrack.errors import ConfigError, InputError  # noqa: E402
from heattrack.io import gee  # noqa: E402
from heattrack.io.local import LocalSceneReader, discover_local_scene, warp_band  # noqa: E402
from heattrack.orchestration.tiling import make_tile_grid  # noqa: E402


def _st(max_date_gap_days: float | None = None, **g) -> "gee.GeeSettings":
    """Settings as a run builds them: from the configuration (its defaults, these overrides)."""
    inp = {} if max_date_gap_days is None else {"max_date_gap_days": max_date_gap_days}
    return gee.GeeSettings.from_config(load_config(overrides={"gee": g, "input": inp}))

ROOT = Path(__file__).resolve().parents[1]
NEAREST = {"ST_B10", "QA_PIXEL", "SCL"}


class FakeEarthEngine:
    """httplib2-style transport: ``request(uri, method, body, headers)`` -> (response, content)."""

    def __init__(self, scene_dir: Path):
        self.scene = discover_local_scene(scene_dir)
        self.scene_dir = scene_dir
        self.no_s2 = False  # answer the Sentinel-2 searches with no image
        self.calls: list[dict] = []
        self.quota_errors = 0  # answer the next n computePixels calls with HTTP 429

    def _pixels(self, req: dict) -> bytes:
        import httplib2  # noqa: F401
        from affine import Affine
        from odc.geo.geobox import GeoBox
        from rasterio.enums import Resampling

        g = req["grid"]
        t = g["affineTransform"]
        gb = GeoBox((g["dimensions"]["height"], g["dimensions"]["width"]),
                    Affine(t["scaleX"], t["shearX"], t["translateX"], t["shearY"], t["scaleY"], t["translateY"]),
                    g["crsCode"])
        expr = json.dumps(req["expression"])
        if "S2_SR_HARMONIZED" in expr or "B4" in expr and "ST_B10" not in expr:
            paths = {b: self.scene.sentinel2[b] for b in gee.S2_BANDS}  # every band the server would return
        else:
            paths = {b: next((self.scene_dir / "landsat").glob(f"*_{b}.TIF"))
                     for b in (*gee.LANDSAT_BANDS, *(b for b in gee.ALONE_BANDS if b in expr))}
        arrays = {b: warp_band(p, gb, Resampling.nearest if b in NEAREST else Resampling.bilinear,
                               1 if b == "QA_PIXEL" else 0) for b, p in paths.items()}
        if "ST_B10" in arrays:  # the server-side cloud mask of heattrack.io.gee._image
            arrays["ST_B10"] = np.where((arrays["QA_PIXEL"] & gee._CLOUD_BITS) == 0, arrays["ST_B10"], 0)
        out = np.zeros(gb.shape.yx, np.dtype([(b, "<u2") for b in arrays]))
        for b, a in arrays.items():
            out[b] = a
        buf = io.BytesIO()
        np.save(buf, out)
        return buf.getvalue()

    def request(self, uri, method="GET", body=None, headers=None, redirections=5, connection_type=None):
        import httplib2

        req = json.loads(body) if body else {}
        self.calls.append({"uri": uri, "method": method, "body": req, "headers": dict(headers or {})})
        if uri.split("?")[0].endswith("image:computePixels"):
            if self.quota_errors:
                self.quota_errors -= 1
                err = {"error": {"code": 429, "message": "Too Many Requests", "status": "RESOURCE_EXHAUSTED"}}
                return httplib2.Response({"status": 429, "content-type": "application/json"}), json.dumps(err).encode()
            return httplib2.Response({"status": 200, "content-type": "application/octet-stream"}), self._pixels(req)
        if uri.split("?")[0].endswith("value:compute"):
            text = json.dumps(req)
            ld = datetime(2025, 1, 15, 2, tzinfo=timezone.utc).timestamp() * 1000
            if "S2_SR_HARMONIZED" in text and self.no_s2:
                result = {"ids": [], "times": []}
            elif "S2_SR_HARMONIZED" in text:
                result = {"ids": ["COPERNICUS/S2_SR_HARMONIZED/20250125T022019_X", "COPERNICUS/S2_SR_HARMONIZED/"
                                  "20250116T022019_T52SCG"], "times": [ld + 10 * 86400e3, ld + 86400e3]}
            else:
                result = {"ids": ["LANDSAT/LC09/C02/T1_L2/LC09_116034_20250115"], "times": [ld], "cloud": [4.0]}
            return httplib2.Response({"status": 200, "content-type": "application/json"}), \
                json.dumps({"result": result}).encode()
        return httplib2.Response({"status": 404, "content-type": "application/json"}), b'{"error": {"code": 404}}'

    def close(self):
        pass


@pytest.fixture
def fake_ee(small_scene):
    with fake_earth_engine(FakeEarthEngine(small_scene)) as http:
        yield http


def _tile(small_scene):
    from heattrack.io.local import scene_footprint

    sc = discover_local_scene(small_scene)
    area, crs = scene_footprint(sc)
    grid = make_tile_grid(area, crs, 150, 10.0)
    return sc, grid.tile_geobox(grid.tiles[len(grid.tiles) // 2]).pad(50)


SCENE = gee.GeeScene(landsat_id="LANDSAT/LC09/C02/T1_L2/LC09_116034_20250115",
                     s2_id="COPERNICUS/S2_SR_HARMONIZED/20250116T022019_T52SCG", landsat_product="LC09_116034_20250115",
                     landsat_date=None, s2_date=None)


def test_pixels_arrive_on_the_tile_geobox_like_the_local_reader(fake_ee, small_scene):
    sc, gb = _tile(small_scene)
    st = _st(project="test-project")
    got = gee.GeeSceneReader(SCENE, settings=st).read(gb)
    # the local reader of the same files, with the simulator's metadata offset (the harmonised collection has
    # it removed server-side, which the fake does not model: compare reflectance up to that offset)
    ref = LocalSceneReader(sc).read(gb)
    np.testing.assert_array_equal(np.isnan(got.lst), np.isnan(ref.lst))
    np.testing.assert_allclose(got.lst, ref.lst, equal_nan=True)
    np.testing.assert_array_equal(got.optical_clear, ref.optical_clear)
    px = [c for c in fake_ee.calls if c["uri"].split("?")[0].endswith("image:computePixels")]
    assert len(px) == 3  # landsat on the tile, landsat at 30 m (coregistration), sentinel-2: one each
    grid = px[0]["body"]["grid"]
    assert grid["crsCode"] == "EPSG:32652" and grid["affineTransform"]["scaleX"] == 10.0
    assert {"dimensions": {"width": gb.shape.x, "height": gb.shape.y}}.items() <= grid.items()
    assert px[0]["body"]["fileFormat"] == "NPY"  # ee's NUMPY_NDARRAY converter asks for .npy bytes
    # reflectance: the harmonised collection has no offset; the local files carry the simulator's baseline
    ok = np.isfinite(ref.red)
    np.testing.assert_allclose(got.red[ok] + sc.s2_boa_offset / 10000.0, ref.red[ok], atol=1e-6)


def test_requests_are_split_under_the_size_limit(fake_ee, small_scene):
    sc, gb = _tile(small_scene)
    whole = gee.fetch_bands(SCENE, "landsat", gb, _st())
    n0 = len(fake_ee.calls)
    small = _st(max_request_mb=0.2)  # 250 x 250 px x 8 bytes = 0.5 MB -> 3 windows
    parts = gee.fetch_bands(SCENE, "landsat", gb, small)
    calls = fake_ee.calls[n0:]
    assert len(calls) == 3
    assert all(c["body"]["grid"]["dimensions"]["width"] * c["body"]["grid"]["dimensions"]["height"] * 8 <= 0.2e6
               for c in calls)
    for b in whole:
        np.testing.assert_array_equal(parts[b], whole[b])


def test_quota_errors_are_retried_then_reported(fake_ee, small_scene):
    _, gb = _tile(small_scene)
    st = _st(retries=3, backoff_s=0.01)
    fake_ee.quota_errors = 2
    assert gee.fetch_bands(SCENE, "sentinel2", gb, st)["B04"].shape == gb.shape.yx
    fake_ee.quota_errors = 10
    with pytest.raises(InputError, match="Earth Engine pixels of .* failed: .*Too Many Requests"):
        gee.fetch_bands(SCENE, "sentinel2", gb, st)


def test_selection_pairs_the_nearest_sentinel2(fake_ee):
    st = _st(project="test-project", datetime="2024-12-01/2025-02-28", pairs=1, max_date_gap_days=10)
    pairs = gee.select_pairs(st, (126.78, 37.62, 126.82, 37.66))
    assert len(pairs) == 1 and pairs[0].s2_id.endswith("20250116T022019_T52SCG") and pairs[0].date_gap_days == 1.0
    searches = [c for c in fake_ee.calls if "value:compute" in c["uri"]]
    text = json.dumps(searches[0]["body"])
    assert "LANDSAT/LC08/C02/T1_L2" in text and "LANDSAT/LC09/C02/T1_L2" in text and "CLOUD_COVER" in text


def test_credentials_errors_are_clear_and_never_echo_the_key(tmp_path, monkeypatch):
    ee.Reset()
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    with pytest.raises(ConfigError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        gee.ensure_initialized(_st(project="p"))
    with pytest.raises(ConfigError, match="does not exist"):
        gee.ensure_initialized(_st(project="p", credentials_file=str(tmp_path / "nope.json")))
    key = tmp_path / "key.json"
    secret = "-----BEGIN PRIVATE KEY-----\nTOPSECRET123\n-----END PRIVATE KEY-----\n"
    key.write_text(json.dumps({"type": "service_account", "client_email": "sa@p.iam.gserviceaccount.com",
                               "private_key": secret}))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    with pytest.raises(ConfigError) as err:
        gee.ensure_initialized(_st(project="p"))
    assert "TOPSECRET" not in str(err.value) and str(key) in str(err.value)


def test_goyang_example_config_plans_a_run(fake_ee, small_scene):
    from heattrack.orchestration.plan import plan_run

    cfg = load_config(ROOT / "configs" / "goyang-baekseok-2018.yaml",
                      {"input.pipes": str(small_scene / "pipes.geojson"), "gee.project": "test-project",
                       "input.aoi": "126.785,37.630,126.815,37.650"})
    plan = plan_run(cfg)
    assert plan.source_info["source"] == "gee" and len(plan.readers) == 1
    assert plan.grid.crs.epsg == 5179 and plan.grid.tiles
    assert plan.scenes[0].landsat_id.startswith("LANDSAT/LC09")
    # a wider AOI kept to the network (grid.network_only): the tiles near the pipes only
    wide = {"input.aoi": "126.70,37.55,126.90,37.72", "grid.tile_km": 1.0, "grid.network_buffer_m": 300}
    whole = plan_run(load_config(ROOT / "configs" / "goyang-baekseok-2018.yaml", {
        "input.pipes": str(small_scene / "pipes.geojson"), "gee.project": "test-project", **wide}))
    near = plan_run(load_config(ROOT / "configs" / "goyang-baekseok-2018.yaml", {
        "input.pipes": str(small_scene / "pipes.geojson"), "gee.project": "test-project", **wide,
        "grid.network_only": True}))
    assert len(near.grid.tiles) < len(whole.grid.tiles) / 4 and len(near.pipes) == len(whole.pipes)
    fake_ee.no_s2 = True  # no Sentinel-2 image in the season: the Landsat scene alone, said in the plan's warnings
    alone = plan_run(cfg)
    assert alone.scenes[0].optics == "landsat" and alone.source_info["scenes"][0]["sentinel2"] == ""
    assert any("runs alone, its own reflective bands the optics" in w for w in alone.warnings)


def test_no_sentinel2_image_runs_the_landsat_scene_alone(fake_ee, small_scene, tmp_path):
    """No Sentinel-2 image within the gap of any Landsat scene: the least cloudy scene runs alone, its reflective
    bands fetched with it, read like the local reader of the same Landsat files alone; gee.landsat_alone false
    refuses as before."""
    import shutil

    fake_ee.no_s2 = True
    (scene,) = gee.select_pairs(_st(project="p", datetime="2025-01-01/2025-02-28"), (126.0, 37.0, 127.0, 38.0))
    assert scene.optics == "landsat" and scene.s2_date is None and "SR_B2" in scene.landsat
    assert gee.select_pairs(_st(project="p", datetime="2025-01-01/2025-02-28", landsat_alone=False),
                            (126.0, 37.0, 127.0, 38.0)) == []
    _, gb = _tile(small_scene)
    got = gee.GeeSceneReader(scene, settings=_st(project="p")).read(gb)
    (tmp_path / "ls").mkdir()
    for f in (small_scene / "landsat").iterdir():
        shutil.copy(f, tmp_path / "ls" / f.name)
    ref = LocalSceneReader(discover_local_scene(tmp_path / "ls", by_name=True)).read(gb)
    assert set(got.bands) == set(ref.bands) == {"B02", "B03", "B04", "B08", "B11", "B12"}
    np.testing.assert_allclose(got.lst, ref.lst, equal_nan=True)
    for b in got.bands:
        np.testing.assert_allclose(got.bands[b], ref.bands[b], equal_nan=True, atol=1e-6)
