"""A tile's stages through the SceneReader protocol, in-process (no cluster): read -> compute (no side effect)
-> write (zarr region, then the record). The reader is a fake at protocol level that counts its reads."""

from dataclasses import dataclass, replace

import numpy as np
from odc.geo.geobox import GeoBox

from heattrack.config import load_config
from heattrack.io.records import TileSummary
from heattrack.io.sources import SceneReader
from heattrack.io.store import TileRecords, create_mosaic_template
from heattrack.orchestration.graph import compute_tile, prepare_tile, write_tile
from heattrack.orchestration.output_folder import prepare_output
from heattrack.orchestration.plan import plan_run
from heattrack.orchestration.run import build_tasks


@dataclass(frozen=True)
class CountingReader:
    """Delegates to a real reader and counts the reads per GeoBox (a picklable protocol-level fake)."""

    inner: SceneReader
    log: list

    def read(self, geobox: GeoBox):
        self.log.append(tuple(geobox.shape))
        return self.inner.read(geobox)

    def clear_fraction(self, geobox: GeoBox) -> float:
        return self.inner.clear_fraction(geobox)


def _task(small_scene, tmp_path, log):
    cfg = load_config(overrides={"input": {"input": str(small_scene), "pipes": str(small_scene / "pipes.geojson")},
                                 "grid": {"tile_km": 1.5}, "downscale": {"method": "tsharp"}})
    plan = plan_run(cfg)
    out = tmp_path / "out"
    prepare_output(out, cfg, resume=False, overwrite=False)
    create_mosaic_template(out / "mosaic.zarr", plan.grid.mosaic_geobox, cfg.tile_px, {})
    idx = max(plan.grid.tiles, key=lambda t: int((plan.point_tiles == t).all(axis=1).sum()))  # most pipe points
    task = build_tasks(plan, out, [idx])[0]
    assert isinstance(task.readers[0], SceneReader)
    return replace(task, readers=tuple(CountingReader(r, log) for r in task.readers)), out


def test_compute_has_no_side_effects_and_write_publishes_the_record_last(small_scene, tmp_path):
    log: list = []
    task, out = _task(small_scene, tmp_path, log)
    prepared = [prepare_tile(task, i) for i in range(len(task.readers))]
    assert log == [tuple(task.geobox.pad(task.halo_px).shape)]  # one read per date, on the padded GeoBox
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    result = compute_tile(task, prepared)
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # nothing written
    assert set(result.layers) == {"lst_10m", "lst_plain", "anomaly_k", "risk", "valid", "n_dates"}
    assert result.layers["risk"].shape == tuple(task.geobox.shape)
    assert result.points["point_ids"].size > 0 and np.isfinite(result.points["point_stat_by_date"]).any()
    records = TileRecords(out)
    assert not records.done(task.index)
    summary = write_tile(task, result)
    assert isinstance(summary, TileSummary) and summary.seconds["write"] >= 0
    assert records.done(task.index)
    arrays, back = records.read(task.index)
    assert back == summary and np.array_equal(arrays["point_ids"], result.points["point_ids"])
    assert len(log) == 1  # compute and write read nothing
