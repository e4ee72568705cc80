"""Pipe features kilometres long (a trunk line drawn as one feature): the run warns, and ``segments.max_length_m`` cuts
them into parts a crew can search, with ids that still name the feature."""

from urllib.parse import unquote

import geopandas as gpd
import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString

from heattrack.config import load_config
from heattrack.io.fieldlist import field_list
from heattrack.io.pipes import ID_TYPE_ATTR, split_long_segments
from heattrack.orchestration.plan import plan_run


def _net(crs="EPSG:32652"):
    g = gpd.GeoDataFrame({"segment_id": ["a", "b", "c"], "diameter_mm": [200.0, 80.0, np.nan],
                          "street": ["Main", None, "Side"]},
                         geometry=[LineString([(0, 0), (1000, 0), (1000, 250)]), LineString([(0, 10), (300, 10)]),
                                   MultiLineString([[(0, 50), (900, 50)], [(950, 50), (1900, 50)]])], crs=crs)
    g.attrs[ID_TYPE_ATTR] = "int64"
    return g


def test_split_long_segments_cuts_equal_parts_that_cover_the_line():
    net = _net()
    assert split_long_segments(net, 0) is net and split_long_segments(net, 5000) is net
    out = split_long_segments(net, 500.0)
    # 1250 m -> 3 parts of 416.7 m; 300 m stays; a MultiLineString (parts that do not join) stays whole
    assert out["segment_id"].tolist() == ["a#1", "a#2", "a#3", "b", "c"]
    np.testing.assert_allclose(out.length.values[:3], 1250 / 3)
    assert shapely.equals_exact(out.geometry.values[3], net.geometry.values[1], 0)
    assert shapely.equals_exact(out.geometry.values[4], net.geometry.values[2], 0)
    assert shapely.line_merge(shapely.union_all(out.geometry.values[:3])).equals(net.geometry.values[0])
    assert out["street"].tolist()[:3] == ["Main"] * 3 and out["diameter_mm"].tolist()[:3] == [200.0] * 3
    assert out.crs == net.crs and ID_TYPE_ATTR not in out.attrs  # "a#2" is no number: ids stay strings


def test_a_run_warns_about_long_features_and_cuts_them_when_asked(small_scene, tmp_path):
    pipes = gpd.read_file(small_scene / "pipes.geojson")
    utm = pipes.estimate_utm_crs()
    b = pipes.to_crs(utm).total_bounds
    trunk = LineString([(b[0] + 100, b[1] + 1000), (b[2] - 100, b[1] + 1000)])  # ~2.8 km across the city
    net = gpd.GeoDataFrame({"segment_id": [*pipes["segment_id"], "trunk"]},
                           geometry=[*pipes.to_crs(utm).geometry, trunk], crs=utm).to_crs("EPSG:4326")
    net.to_file(tmp_path / "net.geojson")
    base = {"input.input": small_scene, "input.pipes": tmp_path / "net.geojson"}
    plan = plan_run(load_config(None, base))
    (said,) = [w for w in plan.warnings if "longer than 1 km" in w]
    assert said.startswith(f"1 of {len(net)} pipe segments are longer than 1 km (the longest 2.") and \
        "segments.max_length_m=500" in said
    assert "trunk" in set(plan.pipes["segment_id"])
    cut = plan_run(load_config(None, {**base, "segments.max_length_m": 500}))
    assert not any("longer than 1 km" in w for w in cut.warnings)
    parts = cut.pipes[cut.pipes["segment_id"].str.startswith("trunk#")]
    assert len(parts) == 6 and parts.length.max() <= 500 + 1e-6
    assert set(cut.pipes["segment_id"]) - set(parts["segment_id"]) == set(plan.pipes["segment_id"]) - {"trunk"}
    assert cut.points.x.size > plan.points.x.size - 5  # the same pipe sampled (a point per part's end at most)


def test_the_field_list_links_a_part_to_the_map_by_its_encoded_id():
    seg = split_long_segments(_net(), 500.0).to_crs("EPSG:4326")
    seg = seg.assign(status="ok", rank=np.arange(1, len(seg) + 1), risk=0.5, stat_k=1.0, flagged=False,
                     delta_t_k=0.5, n_dates=1)
    rows = field_list(seg, 10)
    assert rows["segment_id"].tolist()[:2] == ["a#1", "a#2"]
    assert rows["map_url"].tolist()[1] == "report/index.html#segment=a%232"
    assert [unquote(u.split("#segment=", 1)[1]) for u in rows["map_url"]] == rows["segment_id"].tolist()
