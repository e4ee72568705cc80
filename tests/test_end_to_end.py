"""simulate -> run through a real LocalCluster -> outputs, CRS, resume, report, evaluation."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr
from conftest import SHARED_REAL, copy_scene
from typer.testing import CliRunner

from heattrack.cli import app
from heattrack.config import ReportConfig
from heattrack.evaluate import evaluate_run

runner = CliRunner()
pytestmark = pytest.mark.slow
ARGS = ["--tile-km", "1.5", "--n-workers", "2"]


@pytest.fixture(scope="module")
def finished_run(small_scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    res = runner.invoke(app, ["run", "--input", str(small_scene), "--pipes", str(small_scene / "pipes.geojson"),
                              "--out", str(out), *ARGS])
    assert res.exit_code == 0, res.output
    return out


def test_outputs_contract(finished_run, small_scene):
    out = finished_run
    for name in ("mosaic.zarr", "lst_10m.tif", "risk_10m.tif", "segments.geojson", "segments.gpkg",
                 "hotspots.geojson", "config.yaml", "run.json", "report/index.html", "report/risk_map.png",
                 "report/lst_before_after.png", "report/score_histogram.png"):
        assert (out / name).exists(), name
    assert not (out / ".heattrack" / "staging").exists()
    for tif, lo, hi in (("lst_10m.tif", 240, 320), ("risk_10m.tif", 0, 1)):
        with rasterio.open(out / tif) as r:
            assert r.crs.to_epsg() == 32652 and r.res == (10.0, 10.0)
            assert r.overviews(1) and r.profile["tiled"]
            a = r.read(1)
            assert np.isfinite(a).mean() > 0.5 and lo <= np.nanmin(a) and np.nanmax(a) <= hi
    ds = xr.open_zarr(out / "mosaic.zarr")
    assert ds["risk"].rio.crs.to_epsg() == 32652
    assert ds["lst_10m"].attrs["units"] == "K"
    assert ds["lst_10m"].chunks[0][0] == 150  # chunks = tiles
    seg = gpd.read_file(out / "segments.geojson")
    pipes = gpd.read_file(small_scene / "pipes.geojson")
    assert sorted(seg["segment_id"]) == sorted(pipes["segment_id"])
    ok = seg["status"] == "ok"
    assert ok.mean() > 0.5
    assert seg.loc[ok, "risk"].between(0, 1).all() and seg.loc[~ok, "risk"].isna().all()
    assert sorted(seg.loc[ok, "rank"].astype(int)) == list(range(1, ok.sum() + 1))
    x, y = seg.geometry.values[0].coords[0]
    assert 120 < x < 135 and 30 < y < 45
    hot = gpd.read_file(out / "hotspots.geojson")
    assert {"segment_id", "delta_t_k", "area_m2", "distance_m"} <= set(hot.columns)
    cfg = (out / "config.yaml").read_text()
    assert "tile_km: 1.5" in cfg
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "ok" and info["tiles_ok"] == info["grid"]["n_tiles"] > 1
    # each worker process numbers its tiles from 0 (its first pays the imports: benchmarks/scale.py leaves it out)
    by_worker: dict = {}
    for t in info["tile_summaries"].values():
        by_worker.setdefault(t["worker"], []).append(t["process_task_index"])
    assert all(sorted(ix) == list(range(len(ix))) for ix in by_worker.values()), by_worker
    # the injection test measured the sharpened chain's share of a 20 m plume's peak; mdl_k uses it
    inj, det = info["detectability"]["injection"], info["detectability"]
    assert inj["plumes"] >= 10 and det["attenuation"] == inj["median"]
    assert 0.3 < inj["median"] / det["attenuation_model"][0] < 1.5
    # the flags: how many segments reached the flag level, and how many a leak-free network would have put there
    flags, stat = det["flags"], seg.loc[ok, "stat_k"].to_numpy(float)
    assert flags["flagged"] == int((stat >= det["flag_level_k"]).sum()) == int(seg["flagged"].sum())
    assert not seg.loc[~ok, "flagged"].any()
    crews = pd.read_csv(out / "top_segments.csv")
    top = seg.set_index("segment_id").loc[crews["segment_id"], "flagged"].to_numpy()
    assert crews["flagged"].tolist() == top.astype(int).tolist()
    assert flags["expected_false_flags"] == pytest.approx(det["alpha"] * ok.sum(), abs=0.05)
    assert flags["fitted"] and flags["scale_k"] > 0


def test_the_detectability_raster_agrees_with_the_segments(finished_run):
    """mdl_k_overview.tif: the smallest flagged plume peak for a pipe anywhere, per thermal pixel. Under the
    network it must tell the same story as the segments' own mdl_k (same flag level, same attenuation)."""
    from scipy.stats import spearmanr

    out = finished_run
    seg = gpd.read_file(out / "segments.gpkg")
    with rasterio.open(out / "mdl_k_overview.tif") as src:
        mdl = src.read(1)
        assert src.res == (100.0, 100.0)
        mid = [g.interpolate(0.5, normalized=True) for g in seg.geometry]
        at_seg = np.array([v[0] for v in src.sample([(p.x, p.y) for p in mid])])
    assert np.isfinite(mdl).mean() > 0.3 and np.nanmin(mdl) >= 0
    ok = (seg["status"] == "ok").to_numpy() & np.isfinite(at_seg) & np.isfinite(seg["mdl_k"].to_numpy())
    assert ok.sum() > 20
    # both are neighbourhood quantities (the segments' network within ~750 m, the raster's pixels within 700 m); on
    # this homogeneous city they span only ~+-5 %, so they must agree in level, and in pattern as far as it goes
    # the raster is for a long pipe, a window centred on the plume; a segment keeps another share of it (expected over
    # where the leak sits: a short one more of the peak, its ends less of the window), and its mdl_k differs by that
    from heattrack.kernels.ranking import segment_shares

    det = json.loads((out / "run.json").read_text())["detectability"]
    n_pts = np.maximum(np.ceil(seg["length_m"].to_numpy() / 10.0).astype(int), 1)
    per_seg, centred = segment_shares(det["chain"], det["plume_fwhm_m"] / 10.0, det["window_points"], 1.0, n_pts)
    seg_mdl = (seg["mdl_k"].to_numpy() * per_seg / centred)[ok]
    assert spearmanr(at_seg[ok], seg_mdl).statistic > 0.15
    assert 0.8 < np.median(at_seg[ok]) / np.median(seg_mdl) < 1.25
    assert np.mean(np.abs(np.log(at_seg[ok] / np.maximum(seg_mdl, 1e-6))) < np.log(1.5)) > 0.9


def test_tile_cogs_and_their_vrt_equal_the_single_cog(finished_run):
    """Each tile task writes its own COGs; the VRT over them (no pixel read by the driver) is the same raster as
    the single COG streamed from the mosaic, and the coarse risk view is its block mean at the thermal pixel."""
    out = finished_run
    info = json.loads((out / "run.json").read_text())
    for layer in ("lst_10m", "risk_10m"):
        parts = sorted((out / "cog_tiles" / layer).glob("*.tif"))
        assert len(parts) == info["tiles_ok"]
        with rasterio.open(parts[0]) as p:
            assert p.profile["tiled"] and len(p.overviews(1)) >= 1 and p.res == (10.0, 10.0)
        with rasterio.open(out / f"{layer}.vrt") as v, rasterio.open(out / f"{layer}.tif") as c:
            assert v.transform == c.transform and v.crs == c.crs and v.shape == c.shape
            np.testing.assert_array_equal(v.read(1), c.read(1))
    with rasterio.open(out / "risk_overview.tif") as o, rasterio.open(out / "risk_10m.tif") as c:
        assert o.res == (100.0, 100.0) and o.crs == c.crs
        ov, fine = o.read(1), c.read(1)
        # the view's 100 m cells are aligned to the tiles, the single COG to the AOI window (10 m): place the COG
        # on the view's 10 m grid, then compare whole cells inside both
        r0, c0 = round((o.transform.f - c.transform.f) / 10), round((c.transform.c - o.transform.c) / 10)
        sub = np.full((ov.shape[0] * 10, ov.shape[1] * 10), np.nan, np.float32)
        h, w = min(sub.shape[0] - r0, fine.shape[0]), min(sub.shape[1] - c0, fine.shape[1])
        sub[r0:r0 + h, c0:c0 + w] = fine[:h, :w]
        cells = sub.reshape(ov.shape[0], 10, ov.shape[1], 10)
        whole = np.isfinite(cells).all(axis=(1, 3))  # cells the AOI window does not cut, without NaN
        mean = np.where(whole, np.nan_to_num(cells).mean(axis=(1, 3)), np.nan)
        both = whole & np.isfinite(ov)
        assert both.sum() > 100
        np.testing.assert_allclose(ov[both], mean[both], atol=1e-5)


@pytest.mark.skipif(not (SHARED_REAL.parent.parent / "tools" / "check_outputs.py").exists(),
                    reason="shared/tools/check_outputs.py not beside the checkout")
def test_shared_output_checker(finished_run, small_scene):
    tool = SHARED_REAL.parent.parent / "tools" / "check_outputs.py"
    res = subprocess.run([sys.executable, str(tool), str(finished_run), str(small_scene / "pipes.geojson")],
                         capture_output=True, text=True)
    assert res.returncode == 0 and "outputs ok" in res.stdout, res.stdout + res.stderr


def test_sharpening_beats_bilinear_against_truth(finished_run, small_scene):
    ev = evaluate_run(small_scene, finished_run)
    d = ev["downscaling"]
    assert d["rmse_sharpened_k"] < d["rmse_bilinear_k"]
    assert abs(d["bias_sharpened_k"]) < 0.2
    assert 0.0 <= ev["detection"]["roc_auc"] <= 1.0


def test_evaluate_against_a_second_run(finished_run, small_scene):
    """`heattrack evaluate --against`: the ROC-AUC carries its interval, and a run compared with itself differs by
    exactly nothing (paired over the same segments)."""
    res = runner.invoke(app, ["evaluate", "--scene", str(small_scene), "--out", str(finished_run), "--against",
                              str(finished_run)])
    assert res.exit_code == 0, res.output
    det = json.loads(res.stdout)["detection"]
    lo, hi = det["roc_auc_ci95"]
    assert lo <= det["roc_auc"] <= hi
    vs = det["against"]
    assert vs["delta"] == 0.0 and vs["p_value"] == 1.0 and vs["auc_a"] == pytest.approx(det["roc_auc"])


def test_report_truth_section_states_the_ranking_with_its_interval(finished_run, small_scene, tmp_path):
    """`heattrack report OUT --truth SCENE`: the truth section gives the ranking's ROC-AUC (the one `evaluate` gives)
    with its 95 % interval, so a reader sees how much a scene with this many leaks can say."""
    out = tmp_path / "copy"
    shutil.copytree(finished_run, out)
    res = runner.invoke(app, ["report", str(out), "--truth", str(small_scene)])
    assert res.exit_code == 0, res.output
    text = (out / "report" / "index.html").read_text()
    m = re.search(r"segment ROC-AUC of the ranking (\d\.\d{3}) \(95 % (\d\.\d{2})–(\d\.\d{2})\)", text)
    assert m, "no ROC-AUC in the truth section"
    auc, lo, hi = (float(g) for g in m.groups())
    assert lo <= auc <= hi
    assert auc == pytest.approx(evaluate_run(small_scene, finished_run)["detection"]["roc_auc"], abs=5e-4)


def test_resume_reprocesses_only_missing_tiles(finished_run, small_scene, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(finished_run, out)
    before = xr.open_zarr(out / "mosaic.zarr").load()
    seg_before = gpd.read_file(out / "segments.geojson")
    markers = sorted((out / ".heattrack" / "tiles").glob("*.npz"))
    victim = markers[len(markers) // 2]
    victim.unlink()
    mtimes = {p.name: p.stat().st_mtime_ns for p in markers if p != victim}
    res = runner.invoke(app, ["run", "--input", str(small_scene), "--pipes", str(small_scene / "pipes.geojson"),
                              "--out", str(out), "--resume", *ARGS])
    assert res.exit_code == 0, res.output
    assert f"{len(markers) - 1} of {len(markers)} tiles already complete" in res.output
    assert victim.exists()
    assert {p.name: p.stat().st_mtime_ns for p in markers if p != victim} == mtimes  # others untouched
    after = xr.open_zarr(out / "mosaic.zarr").load()
    for v in ("lst_10m", "risk", "valid"):
        np.testing.assert_array_equal(before[v].values, after[v].values)
    seg_after = gpd.read_file(out / "segments.geojson")
    assert seg_before[["segment_id", "risk", "rank"]].equals(seg_after[["segment_id", "risk", "rank"]])


def test_rerun_with_other_config_is_refused(finished_run, small_scene):
    res = runner.invoke(app, ["run", "--input", str(small_scene), "--pipes", str(small_scene / "pipes.geojson"),
                              "--out", str(finished_run), "--resume", "--method", "bilinear", *ARGS])
    assert res.exit_code == 1 and "different configuration" in res.output and "Traceback" not in res.output


def _thumbnails(report: Path) -> tuple[set, set]:
    """The segments whose map popup shows a thumbnail (top.js), and the thumbnails the report holds."""
    top = json.loads((report / "map" / "data" / "top.js").read_text()[len("HT.add("):-len(");\n")])
    col = top["fields"].index("thumb")
    return ({f["p"][0] for f in top["features"] if f["p"][col]},
            {p.stem for p in (report / "map" / "thumbs").glob("*.png")})


def test_report_rebuild(finished_run, tmp_path):
    out = tmp_path / "r"
    shutil.copytree(finished_run, out)
    promised, drawn = _thumbnails(out / "report")  # the run's: its figures and thumbnails drawn on a worker
    assert len(promised) == ReportConfig().thumbnails and promised == drawn
    shutil.rmtree(out / "report")
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert _thumbnails(out / "report") == (promised, drawn)  # drawn here this time
    page = (out / "report" / "index.html").read_text()
    assert "The top 20" in page and "risk_map.png" in page and '<div id="map">' in page
    tiles = json.loads((out / "run.json").read_text())["tile_summaries"].values()
    methods = [t["sharpen"]["method"] for t in tiles]  # how the 10 m LST was made, as the tiles recorded it
    assert f"{methods[0]} on {methods.count(methods[0])}" in page and f"of {len(methods)} tiles" in page
    flags = json.loads((out / "run.json").read_text())["detectability"]["flags"]
    assert f"<b>{flags['flagged']}</b> segments reached the flag level" in page
    assert (out / "report" / "map.html").exists() and (out / "report" / "map" / "data" / "top.js").exists()
    for img in ("risk_map.png", "score_histogram.png", "lst_before_after.png"):
        assert (out / "report" / img).stat().st_size > 10_000
    bad = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert bad.exit_code == 1 and "no finished heattrack run" in bad.output


def test_a_run_above_the_single_cog_size_writes_only_the_tile_cogs_and_a_report(small_scene, tmp_path):
    """National runs: no single-process COG (report.single_cog_max_mpx), the VRT mosaics are the rasters and the
    report's map layer and figures come from the coarse risk view the tile records carry. With
    ``report.cog_compression=zstd`` every COG the run writes is zstd (the default deflate: the other tests)."""
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", "--input", str(small_scene), "--pipes", str(small_scene / "pipes.geojson"),
                              "--out", str(out), *ARGS, "--set", "report.single_cog_max_mpx=0",
                              "--set", "report.cog_compression=zstd"])
    assert res.exit_code == 0, res.output
    assert not (out / "risk_10m.tif").exists() and not (out / "lst_10m.tif").exists()
    cogs = [*(out / "cog_tiles").rglob("*.tif"), out / "risk_overview.tif", out / "mdl_k_overview.tif"]
    for cog in cogs:
        with rasterio.open(cog) as src:
            assert src.profile["compress"] == "zstd", cog
    with rasterio.open(out / "risk_10m.vrt") as v:
        assert v.res == (10.0, 10.0) and np.isfinite(v.read(1)).mean() > 0.5
    index = (out / "report" / "map" / "data" / "index.js").read_text()
    assert '"risk_tiles"' in index and list((out / "report" / "map" / "risk").rglob("*.png"))
    html = (out / "report" / "index.html").read_text()
    assert "risk_10m.vrt" in html and "risk_map.png" in html


def test_a_run_on_the_national_grid_of_another_crs(small_scene, finished_run, tmp_path):
    """The Korean national grid (EPSG:5179, rotated ~1 degree against the scene's UTM zone 52): every band is
    resampled by heattrack's warp; the mosaic is in EPSG:5179, every segment is there, the sharpened LST still beats
    bilinear against the truth, and the ranking finds the leaks about as well as on the UTM grid."""
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", "--input", str(small_scene), "--pipes", str(small_scene / "pipes.geojson"),
                              "--out", str(out), "--tile-km", "3", "--n-workers", "1", "--set", "grid.crs=EPSG:5179"])
    assert res.exit_code == 0, res.output
    assert "tiles on EPSG:5179, the scenes on EPSG:32652" in " ".join(res.output.split())  # the trade-off is said
    ds = xr.open_zarr(out / "mosaic.zarr")
    assert ds["lst_10m"].rio.write_crs(ds["spatial_ref"].attrs["crs_wkt"]).rio.crs.to_epsg() == 5179
    seg = gpd.read_file(out / "segments.geojson")
    assert len(seg) == len(gpd.read_file(finished_run / "segments.geojson"))
    ev, utm = evaluate_run(small_scene, out), evaluate_run(small_scene, finished_run)
    assert ev["downscaling"]["rmse_ratio_bilinear_over_sharpened"] > 1.1
    assert ev["detection"]["roc_auc"] > utm["detection"]["roc_auc"] - 0.1


def test_date_gap_warning_reaches_report(small_scene, tmp_path):
    d = copy_scene(small_scene, tmp_path / "in")
    for p in (d / "sentinel2").glob("*20250116*"):
        p.rename(p.with_name(p.name.replace("20250116", "20250220")))
    xml = d / "sentinel2" / "MTD_MSIL2A.xml"
    xml.write_text(xml.read_text().replace("2025-01-16", "2025-02-20"))
    out = tmp_path / "o"
    res = runner.invoke(app, ["run", "--input", str(d), "--pipes", str(d / "pipes.geojson"), "--out", str(out),
                              "--tile-km", "3", "--n-workers", "1"])
    assert res.exit_code == 0, res.output
    assert "36 days apart" in res.output
    assert "36 days apart" in (out / "report" / "index.html").read_text()
    assert any("36 days" in w for w in json.loads((out / "run.json").read_text())["warnings"])


def test_segments_no_date_saw_are_counted_and_warned_about(small_scene, tmp_path):
    """Half the Landsat scene under cloud (QA_PIXEL high-confidence cloud): its segments are no_data, unranked, and
    the run says how much of the network it could not screen (a warning above a fifth of the pipe length)."""
    from heattrack.orchestration.reduce import PARTLY_SEEN_SHARE, partly_seen_note, unscreened_note, unscreened_warning

    d = copy_scene(small_scene, tmp_path / "in")
    qa = next((d / "landsat").glob("*QA_PIXEL.TIF"))
    with rasterio.open(qa) as src:
        profile, a = src.profile, src.read(1)
    a[:, : a.shape[1] // 2] = 22280
    with rasterio.open(qa, "w", **profile) as dst:
        dst.write(a, 1)
    out = tmp_path / "o"
    res = runner.invoke(app, ["run", "--input", str(d), "--pipes", str(d / "pipes.geojson"), "--out", str(out),
                              "--tile-km", "3", "--n-workers", "1"])
    assert res.exit_code == 0, res.output
    seg = gpd.read_file(out / "segments.gpkg")
    nd = seg["status"] == "no_data"
    share = seg.loc[nd, "length_m"].sum() / seg["length_m"].sum()
    assert 0.3 < share < 0.7 and seg.loc[nd, "rank"].isna().all()
    note, got = unscreened_note(seg)
    assert got == pytest.approx(share) and f"{int(nd.sum()):,} of {len(seg):,} segments" in note
    assert unscreened_warning(seg) == note
    assert note in json.loads((out / "run.json").read_text())["warnings"]
    assert "had no clear pixel on the run" in res.output
    assert "What this screen could see: a leak whose plume is 20 m wide" in res.output
    assert "had no clear pixel on the run" in (out / "report" / "index.html").read_text()
    assert unscreened_note(seg[~nd]) is None  # every segment scored: nothing to say
    assert unscreened_warning(seg[~nd | (seg.index == seg.index[nd][0])]) is None  # a sliver: the summary's line only
    # the segments across the cloud's edge are ranked from their clear part: their share of clear points says so
    assert (seg.loc[nd, "clear_share"] == 0).all() and seg["clear_share"].between(0, 1).all()
    part = ~nd & (seg["clear_share"] < PARTLY_SEEN_SHARE)
    assert part.any() and (seg.loc[~nd, "clear_share"] > 0).all()
    assert f"{int(part.sum()):,} ranked segments" in partly_seen_note(seg) and "seen on less than half" in res.output
    assert f"{int(part.sum())} of them seen on less than half" in (out / "report" / "index.html").read_text()
    assert partly_seen_note(seg[~part]) is None


def test_a_coastal_city_shows_the_sea_and_screens_only_the_land(small_scene, tmp_path):
    """Three fifths of the scene open sea (QA_PIXEL clear water, SCL 6): the sea is never screened, yet its measured
    temperature is in the LST rasters and the risk raster reads 0 there (no land for a pipe to warm), so the AOI's
    rasters are not mostly empty (the output contract: at least half of the pixels have values); the land is ranked
    as before."""
    d = copy_scene(small_scene, tmp_path / "in")
    for f in [*(d / "landsat").glob("*.TIF"), *(d / "sentinel2").glob("*.tif")]:
        with rasterio.open(f) as src:
            profile, a = src.profile, src.read()
        sea = slice(int(a.shape[2] * 0.4), None)
        band = next((b for b in ("QA_PIXEL", "ST_B10", "SCL") if b in f.name), "reflectance")
        a[:, :, sea] = {"QA_PIXEL": 21952, "ST_B10": 37150, "SCL": 6}.get(band, 1100)  # ST: 276.0 K
        with rasterio.open(f, "w", **profile) as dst:
            dst.write(a)
    out = tmp_path / "o"
    res = runner.invoke(app, ["run", "--input", str(d), "--pipes", str(d / "pipes.geojson"), "--out", str(out),
                              *ARGS])
    assert res.exit_code == 0, res.output
    with rasterio.open(out / "lst_10m.tif") as lst_src, rasterio.open(out / "risk_10m.tif") as risk_src:
        lst, risk = lst_src.read(1), risk_src.read(1)
        x_sea = lst_src.xy(0, np.arange(lst.shape[1]))[0] > lst_src.bounds.left + 0.45 * (lst_src.bounds.right
                                                                                           - lst_src.bounds.left)
    assert np.isfinite(lst).mean() > 0.5 and np.isfinite(risk).mean() > 0.5
    sea_lst = lst[:, x_sea & (np.arange(lst.shape[1]) < lst.shape[1] - 5)]
    assert np.nanmedian(sea_lst) == pytest.approx(37150 * 0.00341802 + 149.0, abs=0.01)
    assert (risk[:, x_sea][np.isfinite(risk[:, x_sea])] == 0).all()
    ds = xr.open_zarr(out / "mosaic.zarr")
    east = slice(int(ds["valid"].shape[1] * 0.7), None)
    assert not (ds["valid"].values[:, east] == 1).any() and np.isfinite(ds["lst_10m"].values[:, east]).any()
    seg = gpd.read_file(out / "segments.gpkg")
    assert (seg["status"] == "ok").any() and seg.loc[seg["status"] == "ok", "risk"].notna().all()


@pytest.mark.slow
def test_integer_segment_ids_come_back_as_integers(small_scene, tmp_path):
    """A utility export numbers its segments: the outputs carry the same numbers (a GIS joins on them; as strings
    every input segment read as missing from segments.geojson), and a second season compares to the first."""
    pipes = gpd.read_file(small_scene / "pipes.geojson")
    pipes["segment_id"] = np.arange(len(pipes)) + 7001
    pipes.to_file(tmp_path / "numbered.geojson", driver="GeoJSON")
    out = tmp_path / "o"
    res = runner.invoke(app, ["run", "--input", str(small_scene), "--pipes", str(tmp_path / "numbered.geojson"),
                              "--out", str(out), *ARGS])
    assert res.exit_code == 0, res.output
    feats = json.loads((out / "segments.geojson").read_text())["features"]
    assert sorted(f["properties"]["segment_id"] for f in feats) == list(range(7001, 7001 + len(pipes)))
    assert gpd.read_file(out / "segments.gpkg")["segment_id"].dtype.kind == "i"
    hot = json.loads((out / "hotspots.geojson").read_text())["features"]
    assert all(isinstance(h["properties"]["segment_id"], (int, type(None))) for h in hot)
    assert pd.read_csv(out / "top_segments.csv")["segment_id"].between(7001, 7000 + len(pipes)).all()
    res = runner.invoke(app, ["screen", "--season", "2025-26", "--previous", str(out), "--input", str(small_scene),
                              "--pipes", str(tmp_path / "numbered.geojson"), "--out", str(tmp_path / "s"), *ARGS])
    assert res.exit_code == 0 and "changes since" in res.output, res.output


@pytest.mark.slow
def test_a_network_too_small_for_its_null_flags_nothing_and_says_so(small_scene, tmp_path):
    """Three segments: the network's own 99th percentile would flag the warmest whatever it reads. None is flagged,
    detectability is not stated, and the run says why; the order still stands."""
    pipes = gpd.read_file(small_scene / "pipes.geojson").iloc[:3]
    pipes.to_file(tmp_path / "three.geojson", driver="GeoJSON")
    out = tmp_path / "o"
    res = runner.invoke(app, ["run", "--input", str(small_scene), "--pipes", str(tmp_path / "three.geojson"),
                              "--out", str(out), *ARGS])
    assert res.exit_code == 0, res.output
    seg = gpd.read_file(out / "segments.gpkg")
    ranked = seg["status"] == "ok"
    assert ranked.sum() >= 2 and not seg["flagged"].any() and seg["mdl_k"].isna().all()
    assert sorted(seg.loc[ranked, "rank"]) == list(range(1, int(ranked.sum()) + 1))
    warning = f"only {int(ranked.sum())} segments ranked"
    assert warning in res.output and any(warning in w for w in json.loads((out / "run.json").read_text())["warnings"])
    page = (out / "report" / "index.html").read_text()
    assert "No flag level on this network" in page and "nan%" not in page


def test_segments_crossing_tile_edges_are_scored_from_every_tile(small_scene):
    from heattrack.config import load_config
    from heattrack.orchestration.plan import plan_run
    from heattrack.orchestration.run import build_tasks

    cfg = load_config(None, {"input.input": small_scene, "input.pipes": small_scene / "pipes.geojson",
                             "grid.tile_km": 1.5})
    plan = plan_run(cfg)
    tasks = build_tasks(plan, Path("/nonexistent"), list(plan.grid.tiles))
    ids = np.concatenate([t.point_ids for t in tasks])
    inside = np.isin(plan.point_tiles[:, 0] * 10**6 + plan.point_tiles[:, 1],
                     [i * 10**6 + j for i, j in plan.grid.tiles])
    assert np.array_equal(np.sort(ids), np.flatnonzero(inside))  # each point in exactly one tile task
    tiles_per_segment = {}
    for t in tasks:
        for s in np.unique(plan.points.segment[t.point_ids]):
            tiles_per_segment.setdefault(int(s), set()).add(t.index)
    assert any(len(v) > 1 for v in tiles_per_segment.values())  # some segments span tiles


def test_run_on_an_existing_scheduler_address(small_scene, tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        out = tmp_path / "o"
        res = runner.invoke(app, ["run", "--input", str(small_scene), "--pipes", str(small_scene / "pipes.geojson"),
                                  "--out", str(out), "--tile-km", "3", "--scheduler", cluster.scheduler_address])
        assert res.exit_code == 0, res.output
        assert (out / "segments.geojson").exists()
        # a cluster of its own: the report's figures and the map's network layer were made on its worker
        # (orchestration.report_helper) ...
        assert {"heattrack-warm-report", "heattrack-report-draw-figures",
                "heattrack-report-network-layer"} <= set(cluster.scheduler.task_prefixes)
    # ... and are the same pictures, map data and page as ``heattrack report`` makes here
    shutil.copytree(out, tmp_path / "rebuilt")
    assert runner.invoke(app, ["report", str(tmp_path / "rebuilt")]).exit_code == 0
    drawn = sorted(p.name for p in (out / "report").glob("*.png"))
    assert drawn == sorted(p.name for p in (tmp_path / "rebuilt" / "report").glob("*.png"))
    assert "detectability_map.png" in drawn
    for img in drawn:
        assert (tmp_path / "rebuilt" / "report" / img).read_bytes() == (out / "report" / img).read_bytes(), img
    assert (tmp_path / "rebuilt" / "report" / "index.html").read_text() == (out / "report" / "index.html").read_text()
    data = {p.relative_to(out / "report"): p.read_bytes() for p in (out / "report" / "map" / "data").rglob("*.js")}
    assert any(p.parent.name == "net" for p in data)
    assert data == {p: (tmp_path / "rebuilt" / "report" / p).read_bytes() for p in data}
    bad = runner.invoke(app, ["run", "--input", str(small_scene), "--pipes", str(small_scene / "pipes.geojson"),
                              "--out", str(tmp_path / "o2"), "--scheduler", "tcp://127.0.0.1:1",
                              "--set", "compute.connect_timeout_s=2"])
    assert bad.exit_code == 1 and "cannot connect to the Dask scheduler" in bad.output and "after 2 s" in bad.output


def test_failed_tile_is_recorded_and_resume_fills_the_hole(finished_run, small_scene, tmp_path, monkeypatch):
    """Failure injection: one tile's read keeps failing -> run.json lists it, exit 1, no final outputs,
    every other tile kept; after the cause is gone --resume computes only that tile, same result."""
    from distributed import Client, LocalCluster

    from heattrack.config import load_config
    from heattrack.errors import HeattrackError
    from heattrack.io.local import LocalSceneReader
    from heattrack.orchestration.plan import plan_run
    from heattrack.orchestration.run import run

    cfg = load_config(None, {"input.input": small_scene, "input.pipes": small_scene / "pipes.geojson",
                             "grid.tile_km": 1.5, "compute.retries": 1})
    victim = plan_run(cfg).grid.tiles[1]
    orig = LocalSceneReader.read
    calls = {"victim": 0}

    def flaky(self, geobox):
        tile_gb = plan_run(cfg).grid.tile_geobox(victim).pad(cfg.halo_px)
        if geobox.affine == tile_gb.affine:
            calls["victim"] += 1
            raise OSError("injected read failure")
        return orig(self, geobox)

    out = tmp_path / "o"
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cl, \
            Client(cl) as client:
        monkeypatch.setattr(LocalSceneReader, "read", flaky)
        with pytest.raises(HeattrackError, match="1 of .* tiles failed"):
            run(cfg, out, client=client)
        assert calls["victim"] == 2  # first try + 1 retry
        info = json.loads((out / "run.json").read_text())
        assert info["status"] == "failed" and list(info["tiles_failed"]) == [f"{victim[0]}_{victim[1]}"]
        assert "injected read failure" in info["tiles_failed"][f"{victim[0]}_{victim[1]}"]
        assert not (out / "segments.geojson").exists() and not (out / "risk_10m.tif").exists()
        kept = sorted(p.name for p in (out / ".heattrack" / "tiles").glob("*.npz"))
        assert len(kept) == len(plan_run(cfg).grid.tiles) - 1
        monkeypatch.setattr(LocalSceneReader, "read", orig)
        res = run(cfg, out, resume=True, client=client)
        assert res.skipped == len(kept) and not res.failed
    a, b = xr.open_zarr(out / "mosaic.zarr"), xr.open_zarr(finished_run / "mosaic.zarr")
    for v in ("lst_10m", "risk", "anomaly_k", "valid"):
        np.testing.assert_array_equal(a[v].values, b[v].values)
    assert json.loads((out / "run.json").read_text())["status"] == "ok"


def test_concurrent_runs_into_one_folder_refuse_and_stale_locks_are_taken_over(finished_run, small_scene, tmp_path):
    import os
    import socket

    out = tmp_path / "o"
    shutil.copytree(finished_run, out)
    lock = out / ".heattrack" / "lock"
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))  # a live run
    args = ["run", "--input", str(small_scene), "--pipes", str(small_scene / "pipes.geojson"), "--out", str(out),
            "--resume", *ARGS]
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and "another heattrack run" in res.output
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    res = runner.invoke(app, [a for a in args if a != "--resume"] + ["--overwrite"])
    assert res.exit_code == 1 and "another heattrack run" in res.output
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # --overwrite deleted nothing
    lock.write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname()}))  # a dead one
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert not lock.exists()


def test_an_output_folder_that_cannot_be_written_is_one_line(small_scene, tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    for out in (tmp_path / "a_file", tmp_path / "a_file" / "sub"):
        res = runner.invoke(app, ["run", "--input", str(small_scene), "--pipes", str(small_scene / "pipes.geojson"),
                                  "--out", str(out), *ARGS])
        assert res.exit_code == 1 and f"cannot write to the output folder {out}: Not a directory" in res.output


def SMALL_TILES_ARGS(scene):  # noqa: N802  ~50 tiles of 0.5 km: long enough to interrupt
    return ["--input", str(scene), "--pipes", str(scene / "pipes.geojson"), "--tile-km", "0.5", "--n-workers", "2"]


@pytest.fixture(scope="module")
def small_tiles_run(small_scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("run05") / "out"
    res = runner.invoke(app, ["run", *SMALL_TILES_ARGS(small_scene), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_sigkill_mid_run_then_resume_gives_the_identical_result(small_scene, small_tiles_run, tmp_path):
    """The whole process (driver + LocalCluster workers) is SIGKILLed mid-run; --resume reprocesses only
    the unfinished tiles and the result equals an uninterrupted run."""
    import os
    import signal
    import time

    args = SMALL_TILES_ARGS(small_scene)
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "heattrack.cli", "run", *args, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    tiles_dir = out / ".heattrack" / "tiles"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if tiles_dir.exists() and len(list(tiles_dir.glob("*.npz"))) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.name: p.stat().st_mtime_ns for p in tiles_dir.glob("*.npz")}
    assert not (out / "segments.geojson").exists()
    res = runner.invoke(app, ["run", *args, "--out", str(out), "--resume"])
    assert res.exit_code == 0, res.output
    after = {p.name: p.stat().st_mtime_ns for p in tiles_dir.glob("*.npz")}
    assert all(after[k] == v for k, v in done_before.items())  # finished tiles were not recomputed
    info = json.loads((out / "run.json").read_text())
    assert info["tiles_skipped"] == len(done_before) < info["grid"]["n_tiles"]
    clean = small_tiles_run
    a, b = xr.open_zarr(out / "mosaic.zarr"), xr.open_zarr(clean / "mosaic.zarr")
    for v in ("lst_10m", "lst_plain", "anomaly_k", "risk", "valid"):
        np.testing.assert_array_equal(a[v].values, b[v].values)
    # determinism: the resumed run and an independent uninterrupted run give byte-identical tables
    assert (out / "segments.geojson").read_bytes() == (clean / "segments.geojson").read_bytes()
    assert (out / "hotspots.geojson").read_bytes() == (clean / "hotspots.geojson").read_bytes()


def test_worker_killed_mid_run_still_completes_identically(small_scene, small_tiles_run, tmp_path):
    """A LocalCluster worker process dies mid-run; the nanny restarts it, Dask reschedules its tiles, and the
    run completes with the same result as an undisturbed one."""
    import os
    import signal

    from distributed import Client, LocalCluster

    from heattrack.config import load_config
    from heattrack.orchestration.run import run

    cfg = load_config(None, {"input.input": small_scene, "input.pipes": small_scene / "pipes.geojson",
                             "grid.tile_km": 0.5})
    out = tmp_path / "o"
    killed = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            Client(cl) as client:
        pids = client.run(os.getpid)  # worker address -> process id
        before = set(pids)

        def progress(todo, total):
            def on_tile(outcome):
                if not killed:
                    victim = sorted(pids)[0]
                    killed["addr"] = victim
                    os.kill(pids[victim], signal.SIGKILL)
            return on_tile

        res = run(cfg, out, client=client, progress=progress)
        client.wait_for_workers(2, timeout=60)
        after = set(client.scheduler_info()["workers"])
    assert killed and killed["addr"] in before and killed["addr"] not in after  # the worker really died
    assert not res.failed and res.n_tiles == json.loads((small_tiles_run / "run.json").read_text())["grid"]["n_tiles"]
    a, b = xr.open_zarr(out / "mosaic.zarr"), xr.open_zarr(small_tiles_run / "mosaic.zarr")
    for v in ("lst_10m", "risk", "valid"):
        np.testing.assert_array_equal(a[v].values, b[v].values)


def test_report_is_built_with_the_garbage_collector_paused(finished_run, tmp_path, monkeypatch):
    """The driver's exports and report run with Python's cyclic collector off (its full passes over every object the
    driver holds cost 8-26 % of the finalisation at 48 km) and turn it back on after, also when they fail."""
    import gc

    import heattrack.report.webmap as webmap
    from heattrack.orchestration.finalize import collector_paused

    states = []
    network_layer = webmap.network_layer
    monkeypatch.setattr(webmap, "network_layer", lambda *a, **k: states.append(gc.isenabled()) or network_layer(*a, **k))
    out = tmp_path / "r"
    shutil.copytree(finished_run, out)
    assert gc.isenabled()
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert states == [False] and gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("an export failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()
