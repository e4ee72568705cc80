"""The report's map data, risk tiles and the crews' field list, through their public functions (no browser)."""

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from heattrack.io.fieldlist import GPX_NS, field_list, write_field_list
from heattrack.kernels.segments import segment_argmax
from heattrack.report import webmap
from heattrack.report.tiles import native_zoom, render_tiles, zoom_range

UTM52 = "EPSG:32652"


def network(n: int, seed: int = 0, cities: int = 1, span_m: float = 3000.0) -> gpd.GeoDataFrame:
    """``n`` short straight segments around ``cities`` centres in Korea (UTM 52N), ranked by a random risk."""
    rng = np.random.default_rng(seed)
    centres = np.stack([rng.uniform(300e3, 500e3, cities), rng.uniform(3.9e6, 4.2e6, cities)], axis=1)
    c = centres[rng.integers(0, cities, n)] + rng.normal(0, span_m, (n, 2))
    ang = rng.uniform(0, np.pi, n)
    length = rng.uniform(30, 150, n)
    ends = c + np.stack([np.cos(ang), np.sin(ang)], axis=1) * length[:, None]
    lines = shapely.linestrings(np.stack([c, (c + ends) / 2, ends], axis=1))
    risk = rng.uniform(0, 1, n)
    status = np.where(rng.uniform(size=n) < 0.05, "no_data", "ok")
    risk[status != "ok"] = np.nan
    order = np.argsort(-np.nan_to_num(risk, nan=-1))
    rank = np.full(n, np.nan)
    rank[order[: int((status == "ok").sum())]] = np.arange(1, (status == "ok").sum() + 1)
    seg = gpd.GeoDataFrame({"segment_id": [f"s{i:06d}" for i in range(n)], "risk": risk, "status": status,
                            "rank": rank, "delta_t_k": rng.uniform(0, 3, n), "n_dates": 1,
                            "diameter_mm": 200.0, "mdl_k": rng.uniform(1, 20, n)}, geometry=lines, crs=UTM52)
    seg["rank"] = seg["rank"].astype("Int64")
    return seg


def test_segment_argmax_picks_the_hottest_point_of_each_segment():
    values = np.array([1.0, 3.0, np.nan, 2.0, 5.0, 5.0, np.nan])
    segment = np.array([0, 0, 0, 1, 2, 2, 3])
    assert segment_argmax(values, segment, 5).tolist() == [1, 3, 4, -1, -1]  # tie: first point; no data: -1


def test_field_list_csv_and_gpx_read_back_with_gdal(tmp_path):
    seg = network(40, seed=1)
    hot = seg.geometry.interpolate(0.25, normalized=True).to_crs("EPSG:4326")
    seg["hot_lon"], seg["hot_lat"] = hot.x.round(6), hot.y.round(6)
    seg["street"] = [f"Street & {i} <Ave>" for i in range(len(seg))]  # needs escaping in XML
    write_field_list(seg, tmp_path, n=10)
    want = seg[seg["status"] == "ok"].sort_values("rank").head(10)
    # CSV as QGIS opens it through GDAL: x/y columns become points, the .csvt sidecar gives the types
    csv = pyogrio.read_dataframe(tmp_path / "top_segments.csv", X_POSSIBLE_NAMES="lon", Y_POSSIBLE_NAMES="lat")
    assert csv["segment_id"].tolist() == want["segment_id"].tolist()
    assert csv["rank"].dtype.kind == "i" and csv["risk"].dtype.kind == "f"
    np.testing.assert_allclose(csv.geometry.x, want["hot_lon"], atol=1e-6)
    np.testing.assert_allclose(csv.geometry.y, want["hot_lat"], atol=1e-6)
    assert csv["geo_uri"].iloc[0] == f"geo:{want['hot_lat'].iloc[0]:.6f},{want['hot_lon'].iloc[0]:.6f}"
    assert csv["map_url"].iloc[0] == f"report/index.html#segment={want['segment_id'].iloc[0]}"
    # GPX as GPS apps and QGIS (GDAL's GPX driver) read it
    gpx = pyogrio.read_dataframe(tmp_path / "top_segments.gpx", layer="waypoints")
    assert gpx["name"].tolist() == [f"#{r} {s}" for r, s in zip(want["rank"], want["segment_id"])]
    np.testing.assert_allclose(gpx.geometry.x, want["hot_lon"], atol=1e-6)
    assert gpx["cmt"].iloc[0] == want["street"].iloc[0]


def test_gpx_validates_against_the_gpx_1_1_schema(tmp_path):
    import xmlschema

    seg = network(30, seed=5)
    seg["street"] = ["Hämeentie & <2>"] * len(seg)
    write_field_list(seg, tmp_path, n=25)
    schema = xmlschema.XMLSchema(Path(__file__).parent / "data" / "schemas" / "gpx-1.1.xsd")
    schema.validate(tmp_path / "top_segments.gpx")  # raises with the offending element
    broken = (tmp_path / "top_segments.gpx").read_text().replace("<name>#1 ", "<bogus>x</bogus><name>#1 ", 1)
    (tmp_path / "broken.gpx").write_text(broken)
    assert not schema.is_valid(tmp_path / "broken.gpx")  # the check can fail


# element order of a GPX 1.1 <wpt> and <metadata> (the xsd:sequence of wptType / metadataType in gpx.xsd)
WPT_SEQUENCE = ["ele", "time", "magvar", "geoidheight", "name", "cmt", "desc", "src", "link", "sym", "type", "fix",
                "sat", "hdop", "vdop", "pdop", "ageofdgpsdata", "dgpsid", "extensions"]
META_SEQUENCE = ["name", "desc", "author", "copyright", "link", "time", "keywords", "bounds", "extensions"]


def test_gpx_follows_the_gpx_1_1_element_order(tmp_path):
    write_field_list(network(30, seed=2), tmp_path, n=25)
    root = ET.parse(tmp_path / "top_segments.gpx").getroot()
    assert root.tag == f"{{{GPX_NS}}}gpx" and root.get("version") == "1.1"
    children = [c.tag.split("}")[1] for c in root]
    assert children[0] == "metadata" and set(children[1:]) == {"wpt"} and len(children) == 26

    def in_order(el, seq):
        tags = [c.tag.split("}")[1] for c in el]
        return all(t in seq for t in tags) and [seq.index(t) for t in tags] == sorted(seq.index(t) for t in tags)

    assert in_order(root[0], META_SEQUENCE)
    for w in root.findall(f"{{{GPX_NS}}}wpt"):
        assert in_order(w, WPT_SEQUENCE)
        assert -90 <= float(w.get("lat")) <= 90 and -180 <= float(w.get("lon")) <= 180


def test_field_list_without_hot_points_uses_the_segment_midpoint():
    seg = network(12, seed=3)
    rows = field_list(seg, 5)
    mid = seg.set_index("segment_id").loc[rows["segment_id"]].geometry.interpolate(0.5, normalized=True)
    mid = mid.to_crs("EPSG:4326")
    np.testing.assert_allclose(rows["lon"], mid.x, atol=1e-6)
    assert rows["rank"].tolist() == sorted(rows["rank"].tolist())


def _payload(path):
    m = re.fullmatch(r"HT\.(add|chunk)\((.*)\);\n", path.read_text(), re.S)
    assert m, path
    return json.loads(m.group(2))


def test_network_chunks_hold_every_segment_once(tmp_path):
    seg = network(6000, seed=4, cities=2, span_m=1500)
    index = webmap.write_network(tmp_path, seg, top_n=100, thumbs=set())
    seen = []
    for key, count in index["chunks"].items():
        feats = _payload(tmp_path / "data" / "net" / f"{key}.js")["features"]
        assert len(feats) == count <= webmap.CHUNK_MAX_SEGMENTS
        seen += [f["p"][0] for f in feats]
    assert sorted(seen) == sorted(seg["segment_id"])
    top = _payload(tmp_path / "data" / "top.js")
    assert [f["p"][1] for f in top["features"]] == list(range(1, 101))  # ranks 1..100 in order
    first = top["features"][0]
    row = seg.set_index("segment_id").loc[first["p"][0]]
    lat, lon = first["c"][0][0], first["c"][0][1]
    ll = gpd.GeoSeries([row.geometry], crs=UTM52).to_crs("EPSG:4326").iloc[0].coords[0]
    assert (lat, lon) == pytest.approx((ll[1], ll[0]), abs=1e-6)


def _cog(path, arr, res=100.0):
    prof = dict(driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1, dtype="float32", crs=UTM52,
                transform=from_origin(400000, 4150000, res, res), nodata=np.nan, tiled=True, blockxsize=256,
                blockysize=256)
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(arr.astype("float32"), 1)
        dst.build_overviews([2, 4], rasterio.enums.Resampling.average)


def test_risk_tiles_only_where_there_is_data(tmp_path):
    arr = np.full((1000, 1000), np.nan)  # 100 km at 100 m
    arr[:400, :400] = np.linspace(0, 1, 400)[None, :]  # data in the north-west only
    _cog(tmp_path / "risk.tif", arr)
    ts = render_tiles(tmp_path / "risk.tif", tmp_path / "tiles", resolution_m=100.0, workers=2)
    assert ts.max_zoom == native_zoom(100.0, 37.2) and ts.min_zoom <= 8
    written = sum(len(v) for v in ts.tiles.values())
    assert written == len(list((tmp_path / "tiles").rglob("*.png"))) > 0
    from PIL import Image

    deep = ts.tiles[ts.max_zoom]
    z, (x, y) = ts.max_zoom, map(int, deep[0].split("/"))
    img = np.asarray(Image.open(tmp_path / "tiles" / str(z) / str(x) / f"{y}.png"))
    assert img.shape == (256, 256, 4) and img[..., 3].max() > 0
    all_x = [int(k.split("/")[0]) for k in deep]
    full = list(__import__("mercantile").tiles(*ts.bounds, zooms=[ts.max_zoom]))
    assert len(deep) < 0.5 * len(full) and max(all_x) < max(t.x for t in full)  # the empty east is not written


def test_zoom_range_drops_deep_zooms_to_fit_the_tile_budget():
    korea = (126.0, 34.0, 130.0, 38.5)
    lo, hi = zoom_range(korea, 10.0, None, max_tiles=5000)
    assert hi < native_zoom(10.0, 36.0) and lo <= 7
    lo2, hi2 = zoom_range(korea, 10.0, None, max_tiles=10**9)
    assert hi2 == native_zoom(10.0, 36.25)


def test_geojson_export_is_geopandas_document(tmp_path):
    """The fast writer's document parses to what geopandas' to_json writes (lon/lat, null for missing values),
    and it also carries what to_json refuses (timestamps) and empty tables."""
    from heattrack.io.exports import write_geojson

    g = gpd.GeoDataFrame(
        {"segment_id": ["a", "b", None], "risk": [0.25, np.nan, -0.0], "n": [1, 2, 3], "ok": [True, False, True],
         "p_value": [4.1947317722898396e-18, 1e-300, 0.5]},
        geometry=[shapely.LineString([(500000, 4000000), (500100, 4000050)]), None,
                  shapely.MultiLineString([[(500000, 4000000), (500010, 4000010)], [(0 + 5e5, 4e6), (5e5, 4e6 + 9)]])],
        crs=32652)
    write_geojson(g, tmp_path / "a.geojson")
    want = json.loads(g.to_crs(4326).to_json(na="null", drop_id=True, to_wgs84=False))
    assert json.loads((tmp_path / "a.geojson").read_text()) == want
    assert gpd.read_file(tmp_path / "a.geojson").crs.to_epsg() == 4326
    t = g.assign(when=[np.datetime64("2025-01-02T03:04:05"), None, None])
    write_geojson(t, tmp_path / "t.geojson")
    assert json.loads((tmp_path / "t.geojson").read_text())["features"][0]["properties"]["when"] == "2025-01-02T03:04:05"
    write_geojson(g.iloc[:0], tmp_path / "e.geojson")
    assert json.loads((tmp_path / "e.geojson").read_text()) == {"type": "FeatureCollection", "features": []}


def test_network_figure_draws_every_vertex_once_in_its_colour_class():
    """The report's maps draw a national network as one compound path per colour step: every vertex of every
    part is in exactly one path, each part starts with a move (no line joins two segments), and a segment's path
    has the colour of its value."""
    import matplotlib.pyplot as plt

    from heattrack.report import figures as fg

    seg = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (1, 0), (2, 1)]),
                                     shapely.MultiLineString([[(0, 5), (3, 5)], [(4, 5), (6, 6)]]),
                                     shapely.LineString([(0, 9), (5, 9)])], crs=32652)
    values = np.array([0.0, 1.0, np.nan])
    fig, ax = plt.subplots()
    sm = fg._network(ax, seg, values, "viridis", (0.0, 1.0), 1.0, classes=4)
    (coll,) = ax.collections
    paths = coll.get_paths()
    assert sum(len(p.vertices) for p in paths) == 3 + 2 + 2 + 2
    assert sum(int((p.codes == p.MOVETO).sum()) for p in paths) == 4  # one move per line part
    colours = [tuple(c) for c in coll.get_edgecolor()]
    by_first = {tuple(p.vertices[0]): c for p, c in zip(paths, colours)}
    assert np.allclose(by_first[(0.0, 5.0)], sm.cmap(7 / 8))  # value 1: the last class
    assert np.allclose(by_first[(0.0, 0.0)], sm.cmap(1 / 8))  # value 0 and NaN: the first class
    plt.close(fig)
