"""`--source stac` end to end against a STAC API on loopback (tests/stac_server.py): pystac-client search with
paging, per-tile pair selection by clear fraction, odc-stac loads of COGs over HTTP range requests, retries and
a clear error for a failing asset, Sentinel-2 baseline offsets from item metadata."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from conftest import SMALL_RUN, corner_network, split_scene
from stac_server import StacServer, items_from_scene
from typer.testing import CliRunner

from heattrack.cli import app
from heattrack.config import load_config
from heattrack.io.stac import StacSettings, pairable_landsat, s2_offset_from_item, search_items, select_pairs
from heattrack.simulate import SimulationSpec, simulate_scene

runner = CliRunner()
ARGS = ["--tile-km", "1.5", "--n-workers", "2"]


def _st(url: str, max_date_gap_days: float | None = None, **stac) -> StacSettings:
    """Settings as a run builds them: from the configuration (its defaults, these overrides)."""
    inp = {} if max_date_gap_days is None else {"max_date_gap_days": max_date_gap_days}
    return StacSettings.from_config(load_config(overrides={"stac": {"url": url, **stac}, "input": inp}))


def _run_ok(args: list[str], scene) -> None:
    res = runner.invoke(app, ["run", *args, "--pipes", str(scene / "pipes.geojson"), *ARGS])
    assert res.exit_code == 0, res.output


def _bbox(items: list[dict]) -> str:
    b = np.array([it["bbox"] for it in items if it["collection"] == "landsat-c2-l2"])
    return f"{b[:, 0].max():.5f},{b[:, 1].max():.5f},{b[:, 2].min():.5f},{b[:, 3].min():.5f}"


@pytest.fixture(scope="module")
def two_date_scene(tmp_path_factory):
    out = tmp_path_factory.mktemp("stac-scene") / "scene"
    simulate_scene(out, SimulationSpec(size_km=3.0, leaks=6, seed=12, dates=2))
    return out


@pytest.fixture(scope="module")
def server(two_date_scene, small_scene):
    root = two_date_scene.parent.parent
    with StacServer(root, page_size=1) as srv:
        yield srv


def test_search_follows_paging_and_filters_cloud_cover(server, two_date_scene):
    items = items_from_scene(two_date_scene, server.root, server.url)
    server.items = items
    n_ls = sum(it["collection"] == "landsat-c2-l2" for it in items)
    assert n_ls == 2
    st = _st(server.url)
    server.requests.clear()
    ls, s2 = search_items(st, tuple(float(v) for v in _bbox(items).split(",")))
    assert len(ls) == 2 and len(s2) == 2
    assert sum(p == "/search" for _, p in server.requests) >= 4  # one item per page: the next links were followed
    cloudy = items_from_scene(two_date_scene, server.root, server.url, cloud={ls[0]["id"]: 95.0})
    server.items = cloudy
    ls2, _ = search_items(_st(server.url, max_cloud_cover=80), (-180, -90, 180, 90))
    assert [it["id"] for it in ls2] == [ls[1]["id"]]


def test_pairs_are_ranked_by_clear_fraction_over_the_tile(server, two_date_scene):
    from heattrack.io.local import LocalSceneReader, discover_local_scenes
    from heattrack.orchestration.tiling import make_tile_grid

    items = items_from_scene(two_date_scene, server.root, server.url)
    server.items = items
    st = _st(server.url, pairs=2, max_date_gap_days=10)
    ls, s2 = search_items(st, (-180, -90, 180, 90))
    scenes = discover_local_scenes(two_date_scene)
    fp = LocalSceneReader(scenes[0]).scene
    from heattrack.io.local import scene_footprint

    area, crs = scene_footprint(fp)
    grid = make_tile_grid(area, crs, 150, 10.0)
    idx = grid.tiles[len(grid.tiles) // 2]
    gb = grid.tile_geobox(idx)
    pairs = select_pairs(ls, s2, gb, st)
    assert len(pairs) == 2 and pairs[0].clear_fraction >= pairs[1].clear_fraction
    # the ranking agrees with the clear fraction of the local files on the same coarse grid
    coarse = gb.zoom_out(30)
    local = {sc.landsat_product: LocalSceneReader(sc).clear_fraction(coarse) for sc in scenes}
    assert max(local, key=local.get) == pairs[0].landsat_product
    for p in pairs:
        assert p.date_gap_days is not None and p.date_gap_days <= 10
        assert p.s2_boa_offset == -1000.0 and "baseline" in p.s2_offset_source
    assert [p.landsat_product for p in select_pairs(ls, s2, gb, _st(server.url, pairs=1))] == \
        [pairs[0].landsat_product]


@pytest.mark.slow
def test_stac_run_equals_the_local_run_of_the_same_files(server, small_scene, tmp_path):
    items = items_from_scene(small_scene, server.root, server.url)
    server.items = items
    local_out, stac_out = tmp_path / "local", tmp_path / "stac"
    aoi = _bbox(items)
    _run_ok(["--input", str(small_scene), "--aoi", aoi, "--out", str(local_out)], small_scene)
    _run_ok(["--source", "stac", "--stac-url", server.url, "--aoi", aoi, "--out", str(stac_out)], small_scene)
    a = xr.open_zarr(local_out / "mosaic.zarr").load()
    b = xr.open_zarr(stac_out / "mosaic.zarr").load()
    a, b = xr.align(a, b, join="inner")
    assert a.sizes["x"] > 100 and a.sizes["y"] > 100
    _same_where_both_ran(a, b)
    np.testing.assert_allclose(b["risk"].values, a["risk"].values, atol=0.02, equal_nan=True)
    info = json.loads((stac_out / "run.json").read_text())
    assert info["inputs"]["source"] == "stac" and info["inputs"]["url"] == server.url
    per_tile = info["inputs"]["pairs_per_tile"]
    assert per_tile and all(len(v) == 1 and v[0]["clear_fraction"] > 0 for v in per_tile.values())


@pytest.mark.slow
def test_a_failing_asset_is_retried_then_fails_its_tile_with_a_clear_error(server, small_scene, tmp_path):
    items = items_from_scene(small_scene, server.root, server.url)
    server.items = items
    st_href = next(it for it in items if it["collection"] == "landsat-c2-l2")["assets"]["lwir11"]["href"]
    rel = st_href.split("/assets/", 1)[1]
    args = ["run", "--source", "stac", "--stac-url", server.url, "--aoi", _bbox(items),
            "--pipes", str(small_scene / "pipes.geojson"), *ARGS, "--set", "compute.retries=0"]
    server.fail[rel] = 2  # transient: two 503s, then the file
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "ok")])
    assert res.exit_code == 0, res.output
    server.fail[rel] = 10**6  # persistent
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "bad")])
    server.fail.pop(rel)
    assert res.exit_code == 1 and "Traceback" not in res.output
    info = json.loads((tmp_path / "bad" / "run.json").read_text())
    assert info["status"] == "failed"
    assert all("cannot read asset lwir11" in e for e in info["tiles_failed"].values())


def test_s2_offset_from_item_metadata():
    item = {"properties": {"s2:processing_baseline": "05.10", "datetime": "2025-01-16T02:00:00Z"}}
    assert s2_offset_from_item(item)[0] == -1000.0
    assert s2_offset_from_item({"properties": {"s2:processing_baseline": "03.01"}})[0] == 0.0
    assert s2_offset_from_item({"properties": {"earthsearch:boa_offset_applied": True,
                                               "s2:processing_baseline": "05.10"}})[0] == 0.0
    off, src = s2_offset_from_item({"properties": {"datetime": "2023-03-01T00:00:00Z"}})
    assert off == -1000.0 and "2022-01-25" in src


def test_stac_source_needs_url_and_aoi(small_scene, tmp_path):
    res = runner.invoke(app, ["run", "--source", "stac", "--pipes", str(small_scene / "pipes.geojson"),
                              "--aoi", "126.9,37.5,127.0,37.6", "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "stac.url is not set" in res.output
    res = runner.invoke(app, ["run", "--source", "stac", "--stac-url", "http://127.0.0.1:9", "--pipes",
                              str(small_scene / "pipes.geojson"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "needs an AOI" in res.output
    res = runner.invoke(app, ["run", "--source", "stac", "--stac-url", "http://127.0.0.1:9", "--pipes",
                              str(small_scene / "pipes.geojson"), "--aoi", "126.9,37.5,127.0,37.6",
                              "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "STAC" in res.output and "Traceback" not in res.output
    assert load_config(None, {**SMALL_RUN, "input.source": "stac"}).input.source == "stac"


@pytest.mark.slow
def test_download_is_resumable_and_runs_offline(server, two_date_scene, tmp_path):
    """download -> local layout per tile and date pair; an interrupted download re-fetches only what is missing
    or corrupt; `run --input DIR` then works on that folder without the server."""
    items = items_from_scene(two_date_scene, server.root, server.url)
    server.items = items
    aoi = _bbox(items)
    out = tmp_path / "data"
    args = ["download", "--stac-url", server.url, "--aoi", aoi, "--datetime", "2025-01-01/2025-02-28",
            "--tile-km", "1.5", "--set", "stac.pairs=2", "--out", str(out)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    index = json.loads((out / "download.json").read_text())
    assert index["grid"]["tile_px"] == 150 and index["tiles"] and not index["failed"]
    tifs = sorted(out.rglob("*.TIF")) + sorted(out.rglob("*.tif"))
    assert all(len(v) == 2 for v in index["tiles"].values())  # two date pairs per tile
    # per pair: 4 Landsat bands + every Sentinel-2 band the item offers (10 reflective + SCL)
    assert index["files"]["fetched"] == len(tifs) == 15 * 2 * len(index["tiles"])
    # interrupt: one file lost, one truncated -> only those two are fetched again
    tifs[0].unlink()
    tifs[-1].write_bytes(tifs[-1].read_bytes()[:100])
    server.requests.clear()
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    again = json.loads((out / "download.json").read_text())["files"]
    assert again == {"fetched": 2, "skipped": len(tifs) - 2}
    # offline: the run reads only the folder (the STAC server sees no request)
    server.requests.clear()
    res = runner.invoke(app, ["run", "--input", str(out), "--pipes", str(two_date_scene / "pipes.geojson"),
                              "--out", str(tmp_path / "run"), *ARGS])
    assert res.exit_code == 0, res.output
    run_info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_info["inputs"]["source"] == "download" and run_info["tiles_ok"] == len(index["tiles"])
    seg = (tmp_path / "run" / "segments.geojson").read_text()
    assert "risk_pair1" in seg and "risk_pair2" in seg
    res = runner.invoke(app, ["run", "--input", str(out), "--pipes", str(two_date_scene / "pipes.geojson"),
                              "--out", str(tmp_path / "run2"), "--tile-km", "3.0"])
    assert res.exit_code == 1 and "was downloaded for 150-px tiles" in res.output
    assert server.requests == []


def _same_where_both_ran(a, b, atol_k: float = 1e-3):
    """Tiles the STAC run skipped (its day has no clear pixel over them at ~100 m) hold no valid pixel in the local
    run either; everywhere else the two mosaics agree."""
    va, vb = a["valid"].values, b["valid"].values
    ran = np.isfinite(va) & np.isfinite(vb)
    assert ran.sum() > 50_000  # most of the 3 km scene (the rest of the aligned 4.5 km grid is outside it)
    assert np.nansum(va[~np.isfinite(vb)]) <= 0.001 * np.nansum(va)  # what STAC skipped had no data locally
    np.testing.assert_array_equal(va[ran], vb[ran])
    np.testing.assert_allclose(b["lst_plain"].values[ran], a["lst_plain"].values[ran], atol=atol_k, equal_nan=True)


@pytest.mark.slow
def test_tiles_are_filled_from_every_item_of_the_day(server, small_scene, tmp_path_factory, tmp_path):
    """Two items per sensor and day, each covering half the scene: every tile is processed on the mosaic of the
    day (odc-stac's solar-day grouping), and the valid pixels equal those of the local run of the uncut files."""
    split = split_scene(small_scene, tmp_path_factory.mktemp("split") / "scene")
    items = items_from_scene(split, server.root, server.url)
    assert sum(it["collection"] == "landsat-c2-l2" for it in items) == 2
    server.items = items
    whole = items_from_scene(small_scene, server.root, server.url)
    aoi = _bbox(whole)
    local_out, stac_out = tmp_path / "local", tmp_path / "stac"
    stac = ["--source", "stac", "--stac-url", server.url, "--aoi", aoi]
    _run_ok(["--input", str(small_scene), "--aoi", aoi, "--out", str(local_out)], small_scene)
    _run_ok([*stac, "--out", str(stac_out)], split)
    server.items = whole
    _run_ok([*stac, "--out", str(tmp_path / "whole")], split)
    a = xr.open_zarr(local_out / "mosaic.zarr").load()
    b = xr.open_zarr(stac_out / "mosaic.zarr").load()
    a, b = xr.align(a, b, join="inner")
    _same_where_both_ran(a, b, atol_k=0.01)  # the mosaic's seam: one pixel in 67k differs by 0.002 K
    info = json.loads((stac_out / "run.json").read_text())
    whole_run = json.loads((tmp_path / "whole" / "run.json").read_text())  # the same files uncut, through STAC
    assert info["tiles_ok"] == whole_run["tiles_ok"]
    days = [p for v in info["inputs"]["pairs_per_tile"].values() for p in v]
    assert any(len(p["landsat_items"]) == 2 and len(p["sentinel2_items"]) == 2 for p in days)
    # download applies the same rule: every item of the day that touches a tile lands in its folder, and the
    # offline run of that folder equals the STAC run
    server.items = items
    dl = tmp_path / "download"
    res = runner.invoke(app, ["download", "--stac-url", server.url, "--aoi", aoi, "--tile-km", "1.5",
                              "--out", str(dl)])
    assert res.exit_code == 0, res.output
    index = json.loads((dl / "download.json").read_text())
    assert not any("first item" in w for w in index["warnings"])
    pairs = [p for v in index["tiles"].values() for p in v]
    assert any(p["landsat_more"] and p["sentinel2_more"] for p in pairs)
    _run_ok(["--input", str(dl), "--out", str(tmp_path / "offline")], split)
    c = xr.open_zarr(tmp_path / "offline" / "mosaic.zarr").load()
    b2, c = xr.align(b, c, join="inner")
    np.testing.assert_array_equal(np.isfinite(b2["valid"].values), np.isfinite(c["valid"].values))
    np.testing.assert_allclose(c["lst_plain"].values, b2["lst_plain"].values, atol=0.01)


def test_a_national_search_can_keep_to_the_network(server, small_scene, tmp_path):
    """grid.network_only: a country's AOI, yet only the tiles near the pipes are chosen (so searched, downloaded and
    run); without it the whole AOI, the national mosaic."""
    from heattrack.orchestration.plan_catalogues import select_stac_tiles

    server.items = items_from_scene(small_scene, server.root, server.url)
    corner_network(small_scene, tmp_path / "corner.geojson")

    def tiles(network_only: bool) -> int:
        cfg = load_config(overrides={"input": {"source": "stac", "aoi": _bbox(server.items),
                                               "pipes": str(tmp_path / "corner.geojson")},
                                     "stac": {"url": server.url},
                                     "grid": {"tile_km": 0.5, "network_only": network_only,
                                              "network_buffer_m": 300}})
        return len(select_stac_tiles(cfg).grid.tiles)

    assert tiles(True) <= 16 < 25 <= tiles(False)


@pytest.mark.slow
def test_download_near_the_pipes_fetches_only_their_tiles(server, small_scene, tmp_path):
    """`download --pipes FILE`: the AOI's tiles near that network only (grid.network_only), so a national download
    fetches a network's cities, not the country."""
    server.items = items_from_scene(small_scene, server.root, server.url)
    corner_network(small_scene, tmp_path / "corner.geojson")
    args = ["download", "--stac-url", server.url, "--aoi", _bbox(server.items), "--datetime", "2025-01-01/2025-02-28",
            "--tile-km", "1.0", "--set", "grid.network_buffer_m=300"]
    res = runner.invoke(app, [*args, "--pipes", str(tmp_path / "corner.geojson"), "--out", str(tmp_path / "near")])
    assert res.exit_code == 0, res.output
    near = json.loads((tmp_path / "near" / "download.json").read_text())["tiles"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "all")])
    assert res.exit_code == 0, res.output
    everything = json.loads((tmp_path / "all" / "download.json").read_text())["tiles"]
    assert 0 < len(near) <= 9 < 16 <= len(everything) and set(near) <= set(everything)


def test_tiles_without_a_sentinel2_item_run_the_landsat_day_alone(server, small_scene, tmp_path):
    """A winter whose granules are all missing (here: a catalogue without Sentinel-2 items): `run --source stac` runs
    each tile's Landsat day alone, its own red and NIR the optics, as the local run of the same four Landsat files
    does, and says so; `download` fetches those days (download.json format 2: no Sentinel-2 in the entry) and the
    offline run of the folder equals the STAC run; with `stac.landsat_alone: false` both refuse with the counts."""
    import shutil

    server.items = [it for it in items_from_scene(small_scene, server.root, server.url)
                    if it["collection"] == "landsat-c2-l2"]
    local = tmp_path / "crop"
    local.mkdir()
    for f in (small_scene / "landsat").iterdir():
        if any(f"_{b}." in f.name for b in ("ST_B10", "QA_PIXEL", "SR_B4", "SR_B5")):  # the assets the server has
            shutil.copy(f, local / f.name)
    aoi = _bbox(server.items)
    _run_ok(["--input", str(local), "--aoi", aoi, "--out", str(tmp_path / "local")], small_scene)
    res = runner.invoke(app, ["run", "--source", "stac", "--stac-url", server.url, "--aoi", aoi, "--out",
                              str(tmp_path / "stac"), "--pipes", str(small_scene / "pipes.geojson"), *ARGS])
    assert res.exit_code == 0, res.output
    assert "have no usable Sentinel-2 partner" in res.output
    a = xr.open_zarr(tmp_path / "local" / "mosaic.zarr").load()
    b = xr.open_zarr(tmp_path / "stac" / "mosaic.zarr").load()
    _same_where_both_ran(*xr.align(a, b, join="inner"))
    info = json.loads((tmp_path / "stac" / "run.json").read_text())
    assert info["inputs"]["optics"] == "landsat"
    assert all(p["sentinel2"] is None for v in info["inputs"]["pairs_per_tile"].values() for p in v)
    dl = ["download", "--stac-url", server.url, "--aoi", aoi, "--tile-km", "1.5"]
    res = runner.invoke(app, [*dl, "--out", str(tmp_path / "dl")])
    assert res.exit_code == 0, res.output
    index = json.loads((tmp_path / "dl" / "download.json").read_text())
    assert index["format_version"] == 2 and index["tiles"] and not index["failed"]
    entries = [p for v in index["tiles"].values() for p in v]
    assert all(p["sentinel2"] is None and p["s2_clear_fraction"] is None for p in entries)
    assert not list((tmp_path / "dl").rglob("sentinel2"))
    res = runner.invoke(app, ["run", "--input", str(tmp_path / "dl"), "--out", str(tmp_path / "offline"), "--pipes",
                              str(small_scene / "pipes.geojson"), *ARGS])
    assert res.exit_code == 0, res.output
    c = xr.open_zarr(tmp_path / "offline" / "mosaic.zarr").load()
    _same_where_both_ran(*xr.align(b, c, join="inner"), atol_k=0.0)
    res = runner.invoke(app, [*dl, "--out", str(tmp_path / "dl2"), "--set", "stac.landsat_alone=false"])
    assert res.exit_code == 1 and "0 Sentinel-2 items" in res.output


def test_download_indexes_of_the_first_format_still_read_and_later_ones_are_refused(tmp_path):
    from heattrack.errors import InputError
    from heattrack.io.records import DownloadIndex

    pair = {"folder": "0_0/2025-01-15", "landsat": "LC09_X", "sentinel2": "S2B_Y", "landsat_date": "2025-01-15",
            "sentinel2_date": "2025-01-16", "clear_fraction": 0.9, "s2_clear_fraction": 0.8}
    v1 = {"format_version": 1, "season": "2024-25", "interval": None, "stac": {}, "grid": {
        "crs": "EPSG:32652", "tile_px": 1000, "resolution_m": 10.0, "halo_m": 320.0}, "tiles": {"0_0": [pair]},
        "tiles_without_pair": [], "files": {}, "failed": {}, "warnings": []}
    assert DownloadIndex.from_json(json.dumps(v1), "v1").tiles["0_0"][0].sentinel2 == "S2B_Y"
    with pytest.raises(InputError, match="format_version 3, this heattrack reads 1 or 2"):
        DownloadIndex.from_json(json.dumps({**v1, "format_version": 3}), "v3")


def _as_landsat7(item: dict, day: str, qa_href: str) -> dict:
    """``item`` as a Landsat 7 ETM+ item of ``day`` in a Collection 2 catalogue that holds Landsat 4-9 under one id
    (Planetary Computer's ETM+ keys: ST_B6 as ``lwir``, no ``lwir11``; platform ``landsat-7``), QA_PIXEL ``qa_href``."""
    le = json.loads(json.dumps(item))
    le["id"] = le["id"].replace("LC09", "LE07").replace("LC08", "LE07")
    le["properties"].update(datetime=f"{day}T02:00:00Z", platform="landsat-7")
    le["assets"]["lwir"] = le["assets"].pop("lwir11")
    le["assets"]["qa_pixel"] = {**le["assets"]["qa_pixel"], "href": qa_href}
    return le


def test_landsat_4_7_items_of_the_search_are_left_out_and_said_so(server, small_scene, tmp_path):
    """A clear Landsat 7 day in the search (ETM+'s ST_B6 as `lwir`) used to stop the whole plan ("STAC item LE07_...
    has no asset lwir11 ...; set stac.landsat_assets"): it is left out with a warning naming it, the Landsat 9 day is
    paired; a search that finds only such items fails in one line that says how to screen them."""
    import rasterio

    from heattrack.orchestration.plan_catalogues import select_stac_tiles

    items = items_from_scene(small_scene, server.root, server.url)
    ls = next(it for it in items if it["collection"] == "landsat-c2-l2")
    qa = next(small_scene.rglob("*QA_PIXEL.TIF"))
    clear = tmp_path / "clear_qa.tif"  # ETM+'s clear land value everywhere: the clearest day over every tile
    with rasterio.open(qa) as src:
        with rasterio.open(clear, "w", **src.profile) as dst:
            dst.write(np.full(src.shape, 5440, dtype=src.dtypes[0]), 1)
    le07 = _as_landsat7(ls, "2025-01-16", f"{server.url}/assets/{clear.relative_to(server.root).as_posix()}")
    server.items = [*items, le07]
    cfg = load_config(overrides={"input": {"source": "stac", "aoi": _bbox(items),
                                           "pipes": str(small_scene / "pipes.geojson")},
                                 "stac": {"url": server.url, "min_clear_fraction": 0.0}, "grid": {"tile_km": 1.5}})
    sel = select_stac_tiles(cfg)
    chosen = [sc.landsat_product for v in sel.chosen.values() for sc in v]
    assert chosen and set(chosen) == {ls["id"]}
    assert sel.n_items == {"landsat": 1, "sentinel2": 1, "landsat_not_used": 1}
    assert any("1 Landsat item of the search has no 'lwir11' asset and is not used: 1 of Landsat 4-7 (1 landsat-7"
               in w for w in sel.warnings)
    l2sr = {**json.loads(json.dumps(ls)), "id": ls["id"].replace("L2SP", "L2SR")}  # Landsat 9 reflectance alone
    l2sr["assets"].pop("lwir11")
    kept, why = pairable_landsat([ls, le07, l2sr], _st(server.url))
    assert kept == [ls] and "2 Landsat items" in why and "1 other (1 LC09: no surface temperature" in why
    server.items = [it for it in items if it is not ls] + [le07]
    res = runner.invoke(app, ["run", "--source", "stac", "--stac-url", server.url, "--aoi", _bbox(items),
                              "--pipes", str(small_scene / "pipes.geojson"), "--out", str(tmp_path / "o"), *ARGS])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "found 0 Landsat and 1 Sentinel-2 items" in res.output and "--thermal FILE" in res.output


@pytest.mark.slow
def test_a_season_screen_keeps_up_to_three_dates_per_tile(server, two_date_scene, tmp_path):
    """`screen --season` from a STAC API with stac.pairs unset: every clear date of the winter up to three per tile
    (here both of the two), where a run keeps one; an explicit stac.pairs stays."""
    items = items_from_scene(two_date_scene, server.root, server.url)
    server.items = items
    args = ["--source", "stac", "--stac-url", server.url, "--aoi", _bbox(items),
            "--pipes", str(two_date_scene / "pipes.geojson"), *ARGS]
    res = runner.invoke(app, ["screen", "--season", "2024-25", "--out", str(tmp_path / "season"), *args, "--dry-run"])
    assert res.exit_code == 0 and "Plan:" in res.output and not (tmp_path / "season").exists(), res.output
    assert "2025-01-15" in res.output and "2025-01-31" in res.output  # the season's plan: both dates per tile
    res = runner.invoke(app, ["screen", "--season", "2024-25", "--out", str(tmp_path / "season"), *args])
    assert res.exit_code == 0, res.output
    per_tile = json.loads((tmp_path / "season" / "run.json").read_text())["inputs"]["pairs_per_tile"]
    assert per_tile and all(len(v) == 2 for v in per_tile.values())
    assert "risk_pair1" in (tmp_path / "season" / "segments.geojson").read_text()
    res = runner.invoke(app, ["screen", "--season", "2024-25", "--out", str(tmp_path / "one"), *args,
                              "--set", "stac.pairs=1"])
    assert res.exit_code == 0, res.output
    per_tile = json.loads((tmp_path / "one" / "run.json").read_text())["inputs"]["pairs_per_tile"]
    assert per_tile and all(len(v) == 1 for v in per_tile.values())


def test_a_later_date_must_show_the_tile_clearly(server, two_date_scene, tmp_path):
    """With several pairs per tile (a season), a second Landsat day that shows the tile only through gaps in the cloud
    (under stac.min_clear_fraction clear) is not kept: it would cost a tile task and add cloud-edge noise, no view."""
    import rasterio

    from heattrack.io.local import LocalSceneReader, discover_local_scenes, scene_footprint
    from heattrack.orchestration.tiling import make_tile_grid

    items = items_from_scene(two_date_scene, server.root, server.url)
    landsat = sorted((it for it in items if it["collection"] == "landsat-c2-l2"), key=lambda it: it["id"])
    qa = next(two_date_scene.rglob(f"{landsat[1]['id']}_QA_PIXEL.TIF"))
    gaps = tmp_path / "gaps_qa.tif"  # cloud everywhere but one 30 m pixel in every 6 x 6 (~3 % clear)
    with rasterio.open(qa) as src:
        a = np.full(src.shape, 22280, dtype=src.dtypes[0])
        a[::6, ::6] = 21824
        with rasterio.open(gaps, "w", **src.profile) as dst:
            dst.write(a, 1)
    landsat[1]["assets"]["qa_pixel"] = {**landsat[1]["assets"]["qa_pixel"],
                                        "href": f"{server.url}/assets/{gaps.relative_to(server.root).as_posix()}"}
    server.items = items
    area, crs = scene_footprint(LocalSceneReader(discover_local_scenes(two_date_scene)[0]).scene)
    grid = make_tile_grid(area, crs, 150, 10.0)
    gb = grid.tile_geobox(grid.tiles[len(grid.tiles) // 2])
    for min_clear, n in ((0.05, 1), (0.0, 2)):
        st = _st(server.url, pairs=3, max_date_gap_days=10, min_clear_fraction=min_clear)
        ls, s2 = search_items(st, (-180, -90, 180, 90))
        pairs = select_pairs(ls, s2, gb, st)
        assert [p.landsat_product for p in pairs] == [landsat[0]["id"], landsat[1]["id"]][:n]
        assert len(pairs) < 2 or 0 < pairs[1].clear_fraction < 0.05


@pytest.mark.slow
def test_a_season_without_sentinel2_runs_several_landsat_days_alone(server, two_date_scene, tmp_path):
    """A season whose Sentinel-2 granules are all missing: each tile runs up to three of its clear Landsat days alone
    (here both), combined as any multi-date run."""
    server.items = [it for it in items_from_scene(two_date_scene, server.root, server.url)
                    if it["collection"] == "landsat-c2-l2"]
    args = ["--source", "stac", "--stac-url", server.url, "--aoi", _bbox(server.items),
            "--pipes", str(two_date_scene / "pipes.geojson"), *ARGS]
    res = runner.invoke(app, ["screen", "--season", "2024-25", "--out", str(tmp_path / "season"), *args])
    assert res.exit_code == 0, res.output
    info = json.loads((tmp_path / "season" / "run.json").read_text())
    per_tile = info["inputs"]["pairs_per_tile"]
    assert per_tile and all(len(v) == 2 and all(p["sentinel2"] is None for p in v) for v in per_tile.values())
    assert info["inputs"]["optics"] == "landsat"
    assert "risk_pair2" in (tmp_path / "season" / "segments.geojson").read_text()
