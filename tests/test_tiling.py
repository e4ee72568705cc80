import json

import numpy as np
import pytest
import shapely
from conftest import corner_network
from hypothesis import given, settings
from hypothesis import strategies as st
from odc.geo import CRS
from odc.geo.geom import Geometry, box

from heattrack.errors import ConfigError
from heattrack.orchestration.tiling import (
    choose_crs,
    country_names,
    make_tile_grid,
    network_area,
    resolve_aoi,
    tiles_geojson,
    utm_crs_for,
)


def _check_partition(aoi: Geometry, grid) -> None:
    polys = np.array([p.geom for p in grid.tile_polygons()], dtype=object)
    union = shapely.union_all(polys)
    # covers: nothing of the AOI is outside the tiles
    assert shapely.difference(aoi.geom, union).area < 1e-6 * max(aoi.area, 1)
    # exactly once: tile areas add up to the union (no overlap), every tile meets the AOI's interior
    assert sum(p.area for p in polys) == pytest.approx(union.area, rel=1e-9)
    assert all(shapely.intersection(aoi.geom, p).area > 0 for p in polys)


@settings(max_examples=60, deadline=None)
@given(x0=st.floats(-50_000, 50_000), y0=st.floats(3_000_000, 4_000_000), w=st.floats(10, 40_000),
       h=st.floats(10, 40_000), tile_px=st.sampled_from([100, 250, 1000]), holes=st.booleans())
def test_tile_grid_covers_aoi_exactly_once(x0, y0, w, h, tile_px, holes):
    geom = shapely.box(x0, y0, x0 + w, y0 + h)
    if holes and min(w, h) > 100:
        geom = geom.difference(shapely.Point(x0 + w / 2, y0 + h / 2).buffer(min(w, h) / 4))
    aoi = Geometry(geom, crs="EPSG:32652")
    grid = make_tile_grid(aoi, CRS("EPSG:32652"), tile_px, 10.0)
    _check_partition(aoi, grid)
    # the mosaic chunks coincide with tiles
    mg = grid.mosaic_geobox
    assert mg.shape[0] % tile_px == 0 and mg.shape[1] % tile_px == 0
    for idx in grid.tiles:
        rows, cols = grid.tile_slices(idx)
        assert rows.start % tile_px == 0 and cols.start % tile_px == 0
        assert mg[rows, cols].affine == grid.tile_geobox(idx).affine


def test_south_korea_grid_in_epsg5179():
    aoi = resolve_aoi("south-korea")
    assert aoi.national_crs == "EPSG:5179"
    crs = choose_crs(None, aoi)
    assert crs.epsg == 5179
    geom = aoi.geometry.to_crs(crs).buffer(2000)
    grid = make_tile_grid(geom, crs, 4800, 10.0)
    _check_partition(geom, grid)
    assert 40 < len(grid.tiles) < 120
    fc = tiles_geojson(grid)
    lon, lat = fc["features"][0]["geometry"]["coordinates"][0][0]
    assert 120 < lon < 135 and 30 < lat < 42
    json.dumps(fc)


def test_aoi_forms():
    assert resolve_aoi("KOR").label == "kor"
    b = resolve_aoi("126.7,37.5,127.0,37.7")
    assert b.geometry.crs.epsg == 4326 and b.national_crs is None
    assert utm_crs_for(b.geometry) == "EPSG:32652"
    assert "south-korea" in country_names()
    with pytest.raises(ConfigError, match="unknown AOI"):
        resolve_aoi("atlantis")
    with pytest.raises(ConfigError, match="lon/lat"):
        resolve_aoi("500000,4000000,510000,4010000")
    with pytest.raises(ConfigError):
        resolve_aoi(None)


def test_aoi_polygon_file(tmp_path):
    p = tmp_path / "aoi.geojson"
    p.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
                 "geometry": box(126.7, 37.5, 126.9, 37.7, "EPSG:4326").json}]}))
    aoi = resolve_aoi(str(p))
    assert aoi.geometry.area == pytest.approx(0.04)


def test_the_network_area_reaches_the_buffer_past_every_pipe_and_no_further_than_a_cell_more():
    import geopandas as gpd

    lines = gpd.GeoSeries(shapely.linestrings([[[0, 0], [7_300, 0]], [[20_000, 5_000], [20_000, 5_400]]]))
    area = network_area(lines, CRS("EPSG:32652"), 2_000.0).geom
    near = shapely.points([[3_650, 1_999], [-1_999, 0], [7_300 + 1_999, -1_999], [20_000, 7_399], [18_001, 5_200]])
    far = shapely.points([[3_650, 3_001], [-3_001, 0], [14_000, 2_500], [20_000, 8_401], [23_001, 5_000]])
    assert shapely.contains(area, near).all() and not shapely.intersects(area, far).any()
    assert network_area(gpd.GeoSeries([], dtype="geometry"), CRS("EPSG:32652"), 2_000.0) is None


def test_choose_crs_rejects_geographic_config():
    with pytest.raises(ConfigError, match="not a projected"):
        choose_crs("EPSG:4326", resolve_aoi("126.7,37.5,127.0,37.7"))
    assert choose_crs(None, resolve_aoi("126.7,37.5,127.0,37.7"), "EPSG:32652").epsg == 32652


def test_halo_points_are_the_other_tiles_points_in_each_padded_tile(rng):
    """Every tile task gets the sample points of its neighbours that lie in its halo (for the network-neighbourhood
    clutter of its own points near the edge): the same set as a brute-force box test."""
    from heattrack.orchestration.run_plan import halo_points

    x, y = rng.uniform(0, 30_000, 5000), rng.uniform(0, 20_000, 5000)
    size, reach = 10_000.0, 500.0
    tiles = np.stack([np.floor(x / size), np.floor(y / size)], axis=1).astype(np.int64)
    halo = halo_points(tiles, x, y, size, reach)
    for tx in range(-1, 4):
        for ty in range(-1, 3):
            inside = ((x >= tx * size - reach) & (x < (tx + 1) * size + reach) & (y >= ty * size - reach)
                      & (y < (ty + 1) * size + reach))
            own = (tiles[:, 0] == tx) & (tiles[:, 1] == ty)
            np.testing.assert_array_equal(np.sort(halo.get((tx, ty), np.zeros(0, np.int64))),
                                          np.flatnonzero(inside & ~own))
    # a network inside one tile, away from its edges: no tile has halo points
    mid = np.full(5, 5_000.0)
    assert halo_points(np.zeros((5, 2), np.int64), mid, mid, size, reach) == {}


def test_points_by_tile_is_the_selection_of_each_tile(rng):
    """The tile tasks' own points: grouped once by a sort, the same ascending indices as a selection per tile
    (negative tile indices too: a network west or south of the grid origin)."""
    from heattrack.orchestration.run_plan import points_by_tile

    tiles = rng.integers(-3, 4, (4000, 2))
    got = points_by_tile(tiles)
    assert set(got) == {(int(a), int(b)) for a, b in tiles}
    for (tx, ty), idx in got.items():
        np.testing.assert_array_equal(idx, np.flatnonzero((tiles[:, 0] == tx) & (tiles[:, 1] == ty)))
    assert points_by_tile(np.zeros((0, 2), np.int64)) == {}


def test_without_an_aoi_the_run_covers_the_data_near_the_pipes(small_scene, tmp_path):
    """A network in one corner of the scene: only the tiles within grid.network_buffer_m of it are run (a city and a
    whole downloaded scene: not the scene); 0, or an AOI given, covers all the data as before."""
    import geopandas as gpd

    from heattrack.config import load_config
    from heattrack.orchestration.plan import plan_run

    pipes = gpd.read_file(small_scene / "pipes.geojson")
    corner = gpd.read_file(corner_network(small_scene, tmp_path / "corner.geojson"))
    assert 0 < len(corner) < len(pipes) / 4

    def tiles(**grid):
        cfg = load_config(overrides={"input": {"input": str(small_scene), "pipes": str(tmp_path / "corner.geojson")},
                                     "grid": {"tile_km": 0.5, **grid}})
        plan = plan_run(cfg)
        assert len(plan.pipes) == len(corner)  # every pipe is inside the run area
        return len(plan.grid.tiles)

    near, whole = tiles(network_buffer_m=300), tiles(network_buffer_m=0)
    assert whole >= 36 and near <= 16
    cfg = load_config(overrides={"input": {"input": str(small_scene), "pipes": str(tmp_path / "corner.geojson"),
                                           "aoi": ",".join(f"{v:.6f}" for v in pipes.total_bounds)},
                                 "grid": {"tile_km": 0.5, "network_buffer_m": 300}})
    assert len(plan_run(cfg).grid.tiles) >= whole  # an AOI given: all of it, as before
    national = cfg.model_copy(update={"grid": cfg.grid.model_copy(update={"network_only": True})})
    assert len(plan_run(national).grid.tiles) == near  # grid.network_only: the AOI near the network only
