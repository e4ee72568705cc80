"""`heattrack screen`: two simulated winters of one city (some leaks persist, some repaired, some new) ->
changes.geojson classes; refusal of a previous run on another grid or network version; the change rule."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
from typer.testing import CliRunner

from heattrack.cli import app
from heattrack.kernels.changes import change_class, match_points
from heattrack.orchestration.screen import season_interval
from heattrack.simulate import SimulationSpec, simulate_scene

runner = CliRunner()
ARGS = ["--tile-km", "1.5", "--n-workers", "2"]
#: strong, wide leaks so that detection is not what this test measures (the change rule and its wiring are)
STRONG = dict(size_km=3.0, leaks=6, seed=11, leak_k=(40.0, 60.0), leak_fwhm_m=(30.0, 40.0), cloud_fraction=0.0,
              distractors=0)


@pytest.fixture(scope="module")
def seasons(tmp_path_factory):
    root = tmp_path_factory.mktemp("seasons")
    truth = [simulate_scene(root / f"s{k}", SimulationSpec(**STRONG, season=k)) for k in (0, 1)]
    runs = root / "runs"
    res = runner.invoke(app, ["screen", "--season", "2024-25", "--input", str(root / "s0"), "--pipes",
                              str(root / "s0" / "pipes.geojson"), "--out", str(runs / "2024-25"), *ARGS])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["screen", "--season", "2025-26", "--previous", str(runs / "2024-25"), "--input",
                              str(root / "s1"), "--pipes", str(root / "s1" / "pipes.geojson"),
                              "--out", str(runs / "2025-26"), *ARGS])
    assert res.exit_code == 0, res.output
    assert "changes since" in res.output
    assert "may be false" in res.output  # the warming rule: both seasons wrote their point values
    assert all((runs / s / "point_statistic.npz").exists() for s in ("2024-25", "2025-26"))
    return root, runs, truth


@pytest.mark.slow
def test_changes_classify_persistent_new_and_repaired_leaks(seasons):
    root, runs, truth = seasons
    t1 = truth[1]
    ch = gpd.read_file(runs / "2025-26" / "changes.geojson")
    seg = ch[ch["kind"] == "segment"].set_index("id")["change"]
    seen = [gpd.read_file(runs / s / "segments.gpkg").set_index("segment_id")["risk"].notna()
            for s in ("2024-25", "2025-26")]
    checked = 0
    for sid in t1["persistent_leak_segment_ids"]:
        if not (seen[0][sid] and seen[1][sid]):  # no clear data in a season (edge of the scene): cannot tell
            assert seg.get(sid) in (None, "no_data", "new")
            continue
        checked += 1
        assert seg.get(sid) == "persistent", sid
    for sid in t1["new_leak_segment_ids"]:
        assert seg.get(sid) == "new", sid
    for sid in t1["repaired_leak_segment_ids"]:
        assert seg.get(sid) == "resolved", sid
    assert checked >= 2
    # sorted for a field crew: new first, then persistent, then resolved
    order = {"new": 0, "persistent": 1, "resolved": 2, "no_data": 3}
    ranks = [order[c] for c in ch["change"]]
    assert ranks == sorted(ranks) and list(ch["priority"]) == list(range(1, len(ch) + 1))
    info = json.loads((runs / "2025-26" / "run.json").read_text())
    assert info["season"] == "2025-26" and info["previous"]["season"] == "2024-25"
    how = json.loads((runs / "2025-26" / "changes.json").read_text())
    assert how["rule"] == "warming" and 0.0 < how["new_warming_k"] < 10.0  # what a segment needed to be called new
    page = (runs / "2025-26" / "report" / "index.html").read_text()
    assert f"{how['new_warming_k']:.2f} K of the ranking statistic this season" in page
    # the season's threshold: at most changes.new_z, calibrated on this network's warming tail, and said so
    assert how["new_z_used"] <= how["new_z"] and how["false_new_per_100km_target"] == 0.25
    assert (how["fitted_false_new_per_100km"] is None) == ("fitted warming tail" not in page)
    assert info["network"]["n_segments"] == t1["n_segments"]
    page = (runs / "2025-26" / "report" / "index.html").read_text()
    assert "What changed since last year (2024-25)" in page and "changes_map.png" in page
    assert (runs / "2025-26" / "report" / "changes_map.png").stat().st_size > 10_000
    # the map's change layer and the segments' popups carry the same classes as changes.geojson
    js = (runs / "2025-26" / "report" / "map" / "data" / "changes.js").read_text()
    layer = json.loads(js[len("HT.add("):-len(");\n")])["features"]
    assert sorted((f["id"], f["change"]) for f in layer) == sorted(zip(ch["id"].astype(str), ch["change"]))
    top = json.loads((runs / "2025-26" / "report" / "map" / "data" / "top.js").read_text()[len("HT.add("):-len(");\n")])
    seg_change = dict(zip(ch.loc[ch["kind"] == "segment", "id"], ch.loc[ch["kind"] == "segment", "change"]))
    assert any(f["p"][7] for f in top["features"])
    assert all(f["p"][7] == seg_change.get(f["p"][0]) for f in top["features"])


@pytest.mark.slow
def test_previous_run_on_another_grid_or_network_is_refused(seasons, tmp_path):
    root, runs, _ = seasons
    base = ["screen", "--season", "2025-26", "--previous", str(runs / "2024-25"), "--input", str(root / "s1"),
            "--n-workers", "2"]
    res = runner.invoke(app, [*base, "--pipes", str(root / "s1" / "pipes.geojson"), "--tile-km", "3.0",
                              "--out", str(tmp_path / "a")])
    assert res.exit_code == 1 and "another grid" in res.output and "tile_px" in res.output
    assert not (tmp_path / "a").exists()  # refused before any tile ran
    pipes = gpd.read_file(root / "s1" / "pipes.geojson")
    pipes.iloc[1:].to_file(tmp_path / "pipes_v2.geojson", driver="GeoJSON")
    res = runner.invoke(app, [*base, "--pipes", str(tmp_path / "pipes_v2.geojson"), "--tile-km", "1.5",
                              "--out", str(tmp_path / "b")])
    assert res.exit_code == 1 and "another pipe-network version" in res.output
    res = runner.invoke(app, [*base[:3], "--previous", str(tmp_path), *base[5:], "--pipes",
                              str(root / "s1" / "pipes.geojson"), "--out", str(tmp_path / "c")])
    assert res.exit_code == 1 and "no run.json" in res.output


def test_change_rule():
    nan = np.nan
    prev = np.array([0.9, 0.9, 0.1, 0.1, 0.9, nan, 0.7])
    prev_n = np.array([2, 2, 2, 2, 2, 0, 1])
    cur = np.array([0.8, 0.2, 0.9, 0.1, nan, 0.95, 0.9])
    cur_n = np.array([2, 2, 2, 2, 0, 2, 1])
    got = change_class(prev, prev_n, cur, cur_n, threshold=0.5, min_dates=2)
    assert list(got) == ["persistent", "resolved", "new", "stable", "no_data", "new", "stable"]


def test_hotspot_matching_and_season_interval():
    match, gone = match_points(np.array([[0, 0], [500, 0]]), np.array([[10, 5], [900, 0]]), 60.0)
    assert list(match) == [0, -1] and list(gone) == [False, True]
    assert season_interval("2025-26") == "2025-12-01/2026-02-28"
    assert season_interval("2027-28") == "2027-12-01/2028-02-29"
    res = runner.invoke(app, ["screen", "--season", "2025", "--out", "x"])
    assert res.exit_code == 1 and "YYYY-YY" in res.output


def test_current_season_and_auto_previous(tmp_path):
    from datetime import date

    from heattrack.orchestration.screen import current_season, resolve_season_args

    assert current_season(date(2026, 2, 15)) == "2025-26"
    assert current_season(date(2025, 12, 3)) == "2025-26"
    assert current_season(date(2026, 10, 1)) == "2025-26"
    season, out, prev = resolve_season_args("2025-26", str(tmp_path / "runs" / "{season}"), "auto")
    assert out == tmp_path / "runs" / "2025-26" and prev is None  # no finished previous season yet
    (tmp_path / "runs" / "2024-25").mkdir(parents=True)
    (tmp_path / "runs" / "2024-25" / "run.json").write_text("{}")
    assert resolve_season_args("2025-26", str(tmp_path / "runs" / "{season}"), "auto")[2] == \
        tmp_path / "runs" / "2024-25"


def test_the_season_sets_the_search_interval_and_dates_of_every_catalogue_source():
    """A season searches its winter, on three dates per tile where stac.pairs / gee.pairs is unset (a run: one);
    whatever the user set stays."""
    from heattrack.config import load_config
    from heattrack.config_sources import SEASON_PAIRS
    from heattrack.io.gee import GeeSettings
    from heattrack.io.stac import StacSettings
    from heattrack.orchestration.screen import season_interval, with_season_search

    interval = season_interval("2024-25")
    for src in ("stac", "gee", "ecostress"):
        cfg = with_season_search(load_config(None, {"input.source": src}), interval)
        assert getattr(cfg, src).datetime == interval
        kept = with_season_search(load_config(None, {"input.source": src, f"{src}.datetime": "2024-01-01/2024-01-31"}),
                                  interval)
        assert getattr(kept, src).datetime == "2024-01-01/2024-01-31"
    assert with_season_search(load_config(None, {}), interval) == load_config(None, {})
    assert SEASON_PAIRS == 3
    run = {"input.source": "stac", "stac.url": "http://x"}
    assert StacSettings.from_config(load_config(None, run)).pairs == 1
    assert StacSettings.from_config(with_season_search(load_config(None, run), interval)).pairs == 3
    two = with_season_search(load_config(None, {**run, "stac.pairs": 2}), interval)
    assert StacSettings.from_config(two).pairs == 2
    gee = {"input.source": "gee", "gee.project": "p"}
    assert GeeSettings.from_config(load_config(None, gee)).pairs == 1
    assert GeeSettings.from_config(with_season_search(load_config(None, gee), interval)).pairs == 3
    assert load_config(None, {"input.source": "ecostress"}).ecostress.passes == \
        with_season_search(load_config(None, {"input.source": "ecostress"}), interval).ecostress.passes


@pytest.mark.slow
def test_a_previous_season_without_point_values_is_compared_by_the_previous_rule(seasons, tmp_path):
    import shutil

    from heattrack.config import load_config
    from heattrack.orchestration.screen import change_summary, compare_seasons

    root, runs, _ = seasons
    old = tmp_path / "2024-25"
    shutil.copytree(runs / "2024-25", old)
    (old / "point_statistic.npz").unlink()  # as an earlier version wrote it
    cfg = load_config(runs / "2025-26" / "config.yaml")
    ch, how = compare_seasons(old, runs / "2025-26", cfg)
    assert how["rule"] == "fdr" and "no point_statistic.npz" in how["why"]
    summary = change_summary(how, int((ch["change"] == "new").sum()), 100.0, cfg, "2024-25")
    assert summary.rule == "fdr" and summary.bound_false_new_per_100km is not None and summary.note == how["why"]
    ch_now, how_now = compare_seasons(runs / "2024-25", runs / "2025-26", cfg)
    assert how_now["rule"] == "warming" and how_now["estimated_false_new"] >= 0
    other = tmp_path / "baseline-2024-25"  # ranked by another statistic: its point values do not compare
    shutil.copytree(runs / "2024-25", other)
    text = (other / "config.yaml").read_text()
    assert "method: residual" in text
    (other / "config.yaml").write_text(text.replace("method: residual", "method: baseline"))
    _, how_other = compare_seasons(other, runs / "2025-26", cfg)
    assert how_other["rule"] == "fdr" and "different statistics" in how_other["why"]


def test_network_signature_is_the_digest_earlier_seasons_recorded():
    """A screen compares this season's network signature with the one a previous season's run.json holds: the digest
    must stay the one of the segment records fed one by one (id, NUL, WKB at centimetre precision, sorted by id)."""
    import hashlib

    import shapely

    from heattrack.orchestration.reduce import network_signature

    rng = np.random.default_rng(4)
    lines = [shapely.LineString(rng.uniform(0, 1000, (3, 2))) for _ in range(40)]
    pipes = gpd.GeoDataFrame({"segment_id": [f"S{i:03d}" for i in rng.permutation(40)]}, geometry=lines,
                             crs="EPSG:32652")
    h = hashlib.sha256()
    for sid, geom in sorted(zip(pipes["segment_id"], pipes.geometry)):
        h.update(sid.encode() + b"\0" + shapely.to_wkb(shapely.set_precision(geom, 0.01)))
    sig = network_signature(pipes)
    assert sig.n_segments == 40 and sig.sha256 == h.hexdigest()[:16]


@pytest.mark.slow
def test_hotspots_under_cloud_in_either_season_are_no_data_not_resolved_or_new(seasons, tmp_path):
    """A hotspot of last season where this season saw nothing (cloud, the scene's edge) cannot be called resolved,
    nor one of this season where last season saw nothing new: both are ``no_data``, as segments are."""
    import shutil

    import zarr

    from heattrack.config import load_config
    from heattrack.orchestration.screen import compare_seasons

    _, runs, _ = seasons
    cfg = load_config(runs / "2025-26" / "config.yaml")
    before, _ = compare_seasons(runs / "2024-25", runs / "2025-26", cfg)
    hot = before[before["kind"] == "hotspot"]
    assert "persistent" in set(hot["change"])
    clouded = tmp_path / "2025-26"
    shutil.copytree(runs / "2025-26", clouded)
    n = zarr.open_array(str(clouded / "mosaic.zarr" / "n_dates"), mode="r+")
    x_mid = n.shape[1] // 2
    n[:, x_mid:] = 0  # this season saw nothing east of the middle
    hs = gpd.read_file(clouded / "hotspots.geojson")
    xs = np.asarray(zarr.open_array(str(clouded / "mosaic.zarr" / "x"), mode="r")[:])
    east = hs.to_crs(cfg.grid.crs or before.crs).geometry.x.to_numpy() >= xs[x_mid] if len(hs) else np.zeros(0, bool)
    hs[~east].to_file(clouded / "hotspots.geojson", driver="GeoJSON")  # and found no hotspot there
    after, _ = compare_seasons(runs / "2024-25", clouded, cfg)
    prev = gpd.read_file(runs / "2024-25" / "hotspots.geojson").to_crs(before.crs)
    prev = prev[prev["peak_risk"] >= cfg.changes.risk_threshold]
    n_east = int((prev.geometry.x.to_numpy() >= xs[x_mid]).sum())
    assert n_east  # the test needs last season's hotspots in the clouded half

    def east_classes(table):
        h = table[table["kind"] == "hotspot"]
        return list(h.loc[h.geometry.x.to_numpy() >= xs[x_mid], "change"])

    assert east_classes(after) == ["no_data"] * n_east  # not resolved
    # last season's hotspots are named by its run: no id of this season's numbering is repeated
    ids = after.loc[after["kind"] == "hotspot", "id"]
    assert ids.is_unique and ids.str.startswith("2024-25/hs-").sum() >= n_east
    # the reverse: last season clouded where this season's hotspots are -> no_data, not new
    swapped, _ = compare_seasons(clouded, runs / "2024-25", cfg)
    assert east_classes(swapped) == ["no_data"] * n_east
