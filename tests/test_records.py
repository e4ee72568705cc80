"""Typed records that cross a process or a file: they round-trip, and a reader fails loudly in one line on a
missing field, an unknown field or another format version."""

import json

import numpy as np
import pytest
from pydantic import ValidationError

from heattrack.errors import InputError
from heattrack.io.records import DownloadIndex, GridInfo, RunRecord, TileSummary
from heattrack.io.store import TileRecords


def _summary(**kw) -> TileSummary:
    base = dict(tile="3_4", valid_fraction=0.5, n_valid=10, n_points=4, n_hotspots=1, seconds={"total": 1.5},
                pixels=20, max_rss_mb=300.0, worker="tcp://127.0.0.1:1", sharpen={"method": "dms"},
                coregistration=None, dates=[{"valid_fraction": 0.5}])
    return TileSummary(**{**base, **kw})


def test_run_record_round_trips_and_is_frozen():
    rec = RunRecord(status="ok", tiles_ok=2, tiles_failed={}, tiles_skipped=0,
                    grid=GridInfo(crs="EPSG:32652", tile_px=150, resolution_m=10.0, n_tiles=2),
                    tile_summaries={"3_4": _summary()}, inputs={"dates": [{"landsat_date": "2025-01-15"}]})
    back = RunRecord.from_json(rec.to_json(), "run.json")
    assert back == rec and back.tile_summaries["3_4"].sharpen == {"method": "dms"}
    assert json.loads(rec.to_json())["format_version"] == 1
    with pytest.raises(ValidationError, match="frozen"):
        rec.status = "failed"


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("tiles_ok"), "tiles_ok: Field required"),
    (lambda d: d.update(tile_sumaries={}), "tile_sumaries: Extra inputs are not permitted"),
    (lambda d: d.update(format_version=0), "format_version 0, this heattrack reads 1"),
    (lambda d: d.pop("format_version"), "format_version None"),
    (lambda d: d["tile_summaries"]["3_4"].pop("n_valid"), "tile_summaries.3_4.n_valid: Field required"),
])
def test_run_record_reader_fails_loudly(change, message):
    d = json.loads(RunRecord(status="ok", tiles_ok=1, tiles_failed={}, tiles_skipped=0,
                             tile_summaries={"3_4": _summary()}).to_json())
    change(d)
    with pytest.raises(InputError) as err:
        RunRecord.from_json(json.dumps(d), "out/run.json")
    assert str(err.value).startswith("out/run.json: ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_tile_record_carries_a_typed_summary(tmp_path):
    records = TileRecords(tmp_path)
    records.write((3, 4), {"point_ids": np.arange(3)}, _summary())
    arrays, summary = records.read((3, 4))
    assert isinstance(summary, TileSummary) and summary.n_valid == 10 and arrays["point_ids"].tolist() == [0, 1, 2]


def test_tile_records_read_in_batches_come_back_in_the_order_asked(tmp_path):
    records = TileRecords(tmp_path)
    tiles = [(i, j) for i in range(3) for j in range(2)]
    for k, idx in enumerate(tiles):
        records.write(idx, {"point_ids": np.array([k])}, _summary())
    order = tiles[::-1]
    got = [int(a["point_ids"][0]) for a, _ in records.read_many(order, batch=4)]  # batches of 4 and 2
    assert got == [tiles.index(idx) for idx in order]
    with pytest.raises(FileNotFoundError):
        list(records.read_many([(9, 9)]))


def test_download_index_refuses_an_incomplete_file(tmp_path):
    f = tmp_path / "download.json"
    f.write_text(json.dumps({"format_version": 1, "season": "2025-26", "interval": "x", "stac": {}}))
    with pytest.raises(InputError, match="download.json: grid: Field required"):
        DownloadIndex.load(f)
    f.write_text("not json")
    with pytest.raises(InputError, match="not JSON"):
        DownloadIndex.load(f)


def test_point_statistic_round_trips_and_refuses_another_version(tmp_path):
    from heattrack.io.point_statistic import PointStatistic, read_point_statistic, write_point_statistic

    ps = PointStatistic(segment_ids=np.array(["a", "b"]), segment=np.array([0, 0, 1]), x=np.array([1.0, 2.0, 3.0]),
                        y=np.array([4.0, 5.0, 6.0]), stat_k=np.array([0.5, np.nan, 1.5]))
    write_point_statistic(tmp_path / "p.npz", ps)
    back = read_point_statistic(tmp_path / "p.npz")
    assert back.same_points(ps) and np.isnan(back.stat_k[1]) and back.stat_k[2] == 1.5
    moved = PointStatistic(ps.segment_ids, ps.segment, ps.x + 1.0, ps.y, ps.stat_k)
    assert not back.same_points(moved)
    assert read_point_statistic(tmp_path / "missing.npz") is None
    np.savez(tmp_path / "v2.npz", format_version=np.int64(2))
    with pytest.raises(InputError, match="format_version 2"):
        read_point_statistic(tmp_path / "v2.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a heattrack point statistic"):
        read_point_statistic(tmp_path / "junk.npz")
