"""The thermal-raster source: any LST GeoTIFF (airborne, drone, commercial) instead of Landsat."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from affine import Affine

from heattrack.errors import InputError
from heattrack.io.thermal import ThermalReader, describe_thermal, discover_thermal


def _write(path, data, crs="EPSG:32652", res=2.0, nodata=np.nan, tags=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                       dtype="float32", crs=crs, transform=Affine(res, 0, 300000, 0, -res, 4160000),
                       nodata=nodata) as dst:
        dst.write(data.astype(np.float32), 1)
        if tags:
            dst.update_tags(**tags)
    return path


def test_units_dates_and_resolution_are_read(tmp_path):
    k = _write(tmp_path / "thermal" / "night_20250115.tif", np.full((50, 50), 271.0))
    sc = describe_thermal(k)
    assert sc.units == "K" and sc.pixel_m == 2.0 and sc.psf_m == 2.0 and str(sc.landsat_date) == "2025-01-15"
    c = _write(tmp_path / "c.tif", np.full((50, 50), -2.0))
    (tmp_path / "c.json").write_text(json.dumps({"units": "C", "acquired": "2024-12-03T21:40:00", "psf_m": 5}))
    sc = describe_thermal(c)
    assert sc.units == "C" and sc.psf_m == 5.0 and str(sc.landsat_date) == "2024-12-03"
    tagged = _write(tmp_path / "t.tif", np.full((50, 50), 3.0), tags={"units": "degC"})
    assert describe_thermal(tagged).units == "C"
    scenes, dropped = discover_thermal(tmp_path, None)
    assert dropped == []
    assert [s.landsat_product for s in scenes] == ["night_20250115"]


@pytest.mark.parametrize("data,crs,match", [
    (np.full((20, 20), 5.0), "EPSG:32652", "states no unit"),
    (np.full((20, 20), 271.0), "EPSG:4326", "geographic CRS"),
    (np.full((20, 20), np.nan), "EPSG:32652", "no valid pixel"),
    (np.full((20, 20), 900.0), "EPSG:32652", "not a land-surface temperature"),
])
def test_bad_thermal_rasters_are_refused_in_one_line(tmp_path, data, crs, match):
    p = _write(tmp_path / "x.tif", data, crs=crs, res=0.0001 if crs == "EPSG:4326" else 2.0)
    with pytest.raises(InputError, match=match) as err:
        describe_thermal(p)
    assert "--input" not in str(err.value)
    if match == "not a land-surface temperature":  # a Landsat ST_B10's counts saved as floats: not read as counts
        landsat = _write(tmp_path / "LC08_L2SP_116034_20250115_20250116_02_T1_ST_B10.TIF", np.full((20, 20), 44544.0),
                         crs=crs, res=30.0)
        with pytest.raises(InputError, match="not a land-surface temperature"):
            describe_thermal(landsat)
    with pytest.raises(InputError, match="no thermal raster"):
        discover_thermal(tmp_path / "nowhere", None)


def test_reader_averages_fine_pixels_onto_the_grid_and_converts_celsius(tmp_path):
    from odc.geo.geobox import GeoBox

    a = np.zeros((100, 100), np.float32)
    a[:, ::5] = 5.0  # 2 m pixels: one 5 °C column in every five averages to 1 °C per 10 m cell
    a[:10, :10] = np.nan  # nodata honoured
    p = _write(tmp_path / "c.tif", a, nodata=np.nan, tags={"units": "C"})
    sc = describe_thermal(p)
    gb = GeoBox((20, 20), Affine(10, 0, 300000, 0, -10, 4160000), "EPSG:32652")
    inp = ThermalReader(sc).read(gb)
    assert np.isnan(inp.lst[0, 0]) and inp.optical_clear[5, 5] and not inp.optical_clear[0, 0]
    np.testing.assert_allclose(inp.lst[5:15, 5:15], 274.15, atol=0.01)
    assert np.isnan(inp.red).all() and inp.bands is None


@pytest.mark.slow
def test_airborne_scene_runs_without_landsat_and_ranks_leaks_first(tmp_path):
    from distributed import Client, LocalCluster

    from heattrack.config import load_config
    from heattrack.evaluate import evaluate_run
    from heattrack.orchestration.run import run
    from heattrack.simulate import family_spec, simulate_scene

    scene = tmp_path / "air"
    simulate_scene(scene, family_spec(3, size_km=2.4, sensor="airborne", leaks=8, leak_k=(4.0, 12.0)))
    assert not (scene / "landsat").exists() and (scene / "thermal").is_dir()
    cfg = load_config(None, {"input.input": scene, "input.pipes": scene / "pipes.geojson", "grid.tile_km": 1.2})
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cl, \
            Client(cl) as client:
        run(cfg, tmp_path / "out", client=client)
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert info["inputs"]["sensor"] == "thermal raster" and info["inputs"]["psf_m"] == 10.0
    assert all(t["sharpen"]["method"] == "none" for t in info["tile_summaries"].values())
    ev = evaluate_run(scene, tmp_path / "out")
    assert ev["detection"]["roc_auc"] > 0.9, ev["detection"]
    bad = load_config(None, {"input.input": scene, "input.pipes": scene / "pipes.geojson", "detect.method": "fused"})
    from heattrack.errors import ConfigError
    from heattrack.orchestration.plan import plan_run

    with pytest.raises(ConfigError, match="optical bands"):
        plan_run(bad)


@pytest.mark.slow
@pytest.mark.parametrize("buffer_m,map_off_m", [(None, 0.0), (10.0, 0.0), (None, 10.0), (None, -20.0)])
def test_a_fine_raster_reads_the_pipes_own_pixel_not_the_warm_roof_beside_it(tmp_path, buffer_m, map_off_m):
    """A 10 m raster: a leak warms the pipe's own pixel, a warm roof lies beside the street. Read on the pipe's own
    pixel (the default, thermal.buffer_m 0) the leak ranks first and the roof's segment is not flagged; with a 10 m
    buffer the roof stands in for the pipe and its segment is flagged like the leak's (the airborne rasters' false
    alarms before 2026-12-05: docs/measurements.md, "Fine rasters read on the pipe's own pixel"). A pipe map 10 or 20 m
    off the raster is moved back onto the streets' heat (thermal.align_m) and ranks the same."""
    import geopandas as gpd
    import shapely
    from distributed import Client, LocalCluster

    from heattrack.config import load_config
    from heattrack.orchestration.run import run

    n, x0, y0 = 300, 300000.0, 4160000.0  # 3 km of 10 m pixels
    yy, xx = np.mgrid[0:n, 0:n]
    xc, yc = x0 + (xx + 0.5) * 10.0, y0 - (yy + 0.5) * 10.0
    lst = 271.0 + np.random.default_rng(1).normal(0.0, 0.1, (n, n))
    lines, ids = [], []
    for k in range(12):  # 12 streets, 200 m apart, each pipe cut into ten 200 m segments
        y = y0 - 205.0 - 200.0 * k  # a pixel centre
        lst[20 + 20 * k, 40:240] += 0.5  # the street over the pipe: warmer than the blocks
        for j in range(10):
            lines.append(shapely.LineString([(x0 + 400 + 200 * j, y), (x0 + 600 + 200 * j, y)]))
            ids.append(f"S{k:02d}-{j}")
    roof_seg, leak_seg = "S03-4", "S08-6"
    roof, leak = lines[ids.index(roof_seg)], lines[ids.index(leak_seg)]
    x_in = (xc > roof.bounds[0] + 40) & (xc < roof.bounds[2] - 40)
    on_roof = x_in & (yc > roof.bounds[1] + 5) & (yc < roof.bounds[1] + 25)
    lst[on_roof] += 4.0  # the two pixel rows beside the pipe's own row: a roof 5-25 m off the line
    cx, cy = leak.interpolate(0.5, normalized=True).coords[0]
    lst += 4.0 * np.exp(-((xc - cx) ** 2 + (yc - cy) ** 2) / (2 * 10.0 ** 2))
    tif = _write(tmp_path / "thermal" / "flight_20250115.tif", lst, res=10.0)
    mapped = gpd.GeoSeries(lines, crs="EPSG:32652").translate(0.0, map_off_m)  # the network map, maybe off
    gpd.GeoDataFrame({"segment_id": ids}, geometry=mapped).to_file(tmp_path / "pipes.geojson")
    over = {"input.thermal": tif, "input.pipes": tmp_path / "pipes.geojson", "grid.tile_km": 3.0}
    cfg = load_config(None, over if buffer_m is None else {**over, "thermal.buffer_m": buffer_m})
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cl, \
            Client(cl) as client:
        run(cfg, tmp_path / "out", client=client)
    seg = gpd.read_file(tmp_path / "out" / "segments.gpkg").set_index("segment_id")
    shifts = [d["pipe_shift_m"] for t in json.loads((tmp_path / "out" / "run.json").read_text())[
        "tile_summaries"].values() for d in t["dates"]]
    # every tile moved its points back onto the streets (a half pixel less where that reads the same pixels)
    assert all(dx == 0.0 and (dy == 0.0 if not map_off_m else abs(dy + map_off_m) <= 5.0) for dx, dy in shifts), shifts
    said = [w for w in json.loads((tmp_path / "out" / "run.json").read_text())["warnings"] if "pipe map was moved" in w]
    assert len(said) == (1 if map_off_m else 0)
    assert seg.loc[leak_seg, "flagged"]
    if buffer_m is None:
        assert seg.loc[leak_seg, "rank"] == 1
        assert not seg.loc[roof_seg, "flagged"] and seg.loc[roof_seg, "rank"] > 10
    else:  # the roof's flat 4 K even outranks the leak's peak
        assert seg.loc[roof_seg, "flagged"] and seg.loc[roof_seg, "rank"] == 1 and seg.loc[leak_seg, "rank"] == 2


def test_a_raster_resampled_from_coarse_data_is_ranked_at_its_footprint_not_its_pixel(tmp_path):
    """A 70 m footprint written on 10 m pixels (ECOSTRESS resampled) without a stated psf_m: the image's own
    spectrum gives its footprint; a sharp raster keeps its pixel size; a stated psf_m always wins."""
    from scipy import ndimage

    from heattrack.io.thermal import psf_warnings
    from heattrack.kernels.psf import estimate_footprint

    rng = np.random.default_rng(4)
    n = 256
    f = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.rfftfreq(n)[None, :])
    scene = np.fft.irfft2(np.where(f > 0, f, np.inf) ** -1.0 * (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)),
                          s=(n, n))
    scene = 275.0 + 2.0 * scene / scene.std()
    sigma_px = 70.0 / np.sqrt(12) / 10.0  # a 70 m square footprint's variance, on 10 m pixels
    coarse = _write(tmp_path / "eco" / "eco_20250115.tif", ndimage.gaussian_filter(scene, sigma_px), res=10.0)
    sc = describe_thermal(coarse)
    assert sc.psf_source == "estimated" and sc.psf_m == pytest.approx(70.0, rel=0.25) and sc.pixel_m == 10.0
    assert sc.psf_estimate_m == sc.psf_m
    assert sc.stated_m == 10.0  # the ranking's windows keep the pixel scale; the footprint sets mdl_k
    assert any("70 m footprint" in w or "footprint on 10 m pixels" in w for w in psf_warnings([sc]))
    sharp = describe_thermal(_write(tmp_path / "sharp_20250115.tif", scene, res=10.0))
    assert sharp.psf_source == "pixel size" and sharp.psf_m == 10.0 and sharp.psf_estimate_m < 40.0
    assert psf_warnings([sharp]) == []
    (tmp_path / "eco" / "eco_20250115.json").write_text(json.dumps({"psf_m": 100.0}))
    stated = describe_thermal(coarse)
    assert stated.psf_source == "sidecar" and stated.psf_m == 100.0 and stated.psf_estimate_m is None
    assert stated.stated_m == 100.0
    assert describe_thermal(coarse, psf_m=90.0).psf_m == 100.0  # the sidecar before the configuration
    (tmp_path / "eco" / "eco_20250115.json").unlink()
    assert describe_thermal(coarse, psf_m=90.0).psf_source == "config"
    assert estimate_footprint(np.full((100, 100), 271.0)) is None  # a flat raster: the pixel size stays
    flat = describe_thermal(_write(tmp_path / "flat.tif", np.full((100, 100), 271.0), res=10.0))
    assert flat.psf_source == "pixel size" and flat.psf_estimate_m is None


@pytest.mark.parametrize("res,window,peak,buffer,widths", [(10.0, 1000.0, 0.0, 0.0, 0.0),
                                                          (70.0, 310.0, 120.0, 20.0, 1.5)])
def test_a_thermal_rasters_ranking_windows(tmp_path, res, window, peak, buffer, widths):
    """A fine raster (<= thermal.fine_m) is ranked with the thermal section's windows, a coarser one with the
    Landsat-scale ones (footprint-scaled windows were measured and not adopted: docs/thermal.md)."""
    import geopandas as gpd
    import shapely

    from heattrack.config import load_config
    from heattrack.orchestration.plan import plan_run

    n = int(3000 / res)
    tif = _write(tmp_path / "thermal" / "pass_20250115.tif", 271.0 + np.random.default_rng(0).normal(0, 1, (n, n)),
                 res=res)
    pipes = gpd.GeoDataFrame({"segment_id": ["a"]}, geometry=[shapely.LineString(
        [(300500, 4159500), (302000, 4158500)])], crs="EPSG:32652")
    pipes.to_file(tmp_path / "pipes.geojson")
    plan = plan_run(load_config(None, {"input.thermal": tif, "input.pipes": tmp_path / "pipes.geojson"}))
    assert plan.source_info["psf_m"] == res and plan.source_info["fine"] == (res <= 20.0)
    assert (plan.ranking_m("rank_window_m"), plan.ranking_m("peak_radius_m"), plan.ranking_m("buffer_m"),
            plan.ranking_m("window_widths")) == (window, peak, buffer, widths)
    # a fine raster's segment statistic is its largest point (thermal.window_widths 0); Landsat's a window of points
    assert plan.scan_window_pts(plan.chains()[0]) == 1 if res <= 20.0 else plan.scan_window_pts(plan.chains()[0]) > 1


def test_flagged_ecostress_pixels_do_not_bleed_into_their_clear_neighbours(tmp_path):
    """ECOSTRESS ships cloud-top and water temperatures under its flags. The LST is interpolated onto the 10 m tile,
    the flags are not: a clear pixel next to a 250 K cloud top would read colder than the ground (and the ground
    beside it warmer than its local median: a false leak at every cloud edge). The flags are widened by the reach
    of the interpolation, so every LST that comes through is the ground's."""
    from odc.geo.geobox import GeoBox

    from heattrack.io.thermal import flag_spread_px

    lst = np.full((30, 30), 280.0, np.float32)
    cloud, water = np.zeros((30, 30), np.uint8), np.zeros((30, 30), np.uint8)
    lst[10:16, 12:20], cloud[10:16, 12:20] = 250.0, 1  # a cloud top
    lst[22:, :], water[22:, :] = 276.0, 1  # a river, warmer than the night's ground
    prefix = "ECOv002_L2T_LSTE_35698_014_52SCG_20250115T143248_0712_01"
    folder = tmp_path / "thermal"
    _write(folder / f"{prefix}_LST.tif", lst, res=70.0)
    for name, layer in (("cloud", cloud), ("water", water)):
        _write(folder / f"{prefix}_{name}.tif", layer.astype(np.float32), res=70.0, nodata=255)
    _write(folder / f"{prefix}_LST_err.tif", np.full((30, 30), 0.8, np.float32), res=70.0)
    sc = describe_thermal(folder / f"{prefix}_LST.tif")
    assert sc.pixel_m == 70.0 and flag_spread_px(70.0, 10.0) == 4
    gb = GeoBox((200, 200), Affine(10, 0, 300000, 0, -10, 4160000), "EPSG:32652")
    inputs = ThermalReader(sc).read(gb)
    got = inputs.lst
    ok = np.isfinite(got)
    np.testing.assert_allclose(got[ok], 280.0, atol=1e-3)  # nothing of the cloud top or the river came through
    assert ok.mean() > 0.6 and ok[:60, :60].all()  # the clear ground away from the flags is kept
    # the river's own temperature is kept apart for the LST layers (shown, never screened); the cloud top is not
    shown = np.isfinite(inputs.water_lst)
    assert shown[-20:, :].all() and not (shown & ok).any() and not shown[:100].any()
    assert np.nanmax(inputs.water_lst) <= 280.0 and np.nanmedian(inputs.water_lst) == pytest.approx(276.0, abs=0.01)


def test_a_folder_or_a_missing_file_as_thermal_is_refused_before_any_worker_starts(tmp_path):
    from heattrack.config import load_config
    from heattrack.orchestration.plan import check_local_inputs

    pipes = tmp_path / "pipes.geojson"
    pipes.write_text('{"type": "FeatureCollection", "features": []}')
    for path, match in ((tmp_path, "is a folder: give one raster"), (tmp_path / "no.tif", "does not exist")):
        cfg = load_config(None, {"input.thermal": path, "input.pipes": pipes})
        with pytest.raises(InputError, match=match):
            check_local_inputs(cfg)
        with pytest.raises(InputError, match=match):
            describe_thermal(path)
