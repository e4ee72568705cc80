"""`--out s3://bucket/prefix` against a loopback S3 (moto's server on 127.0.0.1): a run, a resume, the run lock,
and the chunk layout that lets concurrent tile tasks write without coordination."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from heattrack.cli import app
from heattrack.io.store import check_disjoint_chunk_writes, chunks_of_region

runner = CliRunner()
ARGS = ["--tile-km", "1.5", "--n-workers", "2"]
BUCKET = "heattrack-test"
SECRET = "not-a-real-secret-7f3a"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on loopback; AWS_* variables point s3fs (here and in the Dask workers) at it."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    fs.mkdir(BUCKET)
    try:
        yield fs
    finally:
        server.stop()
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        s3fs.S3FileSystem.clear_instance_cache()


def _run(scene, out: str, *extra: str, args: list[str] = ARGS):
    return runner.invoke(app, ["run", "--input", str(scene), "--pipes", str(scene / "pipes.geojson"), "--out", out,
                               *args, *extra])


@pytest.fixture(scope="module")
def local_run(small_scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("s3-ref") / "out"
    res = _run(small_scene, str(out))
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def s3_run(s3, small_scene):
    url = f"s3://{BUCKET}/runs/2024-25"
    # one worker on this machine's cores: the report's figures are drawn on it, reading the mosaic from the bucket
    res = _run(small_scene, url, args=["--tile-km", "1.5", "--n-workers", "1"])
    assert res.exit_code == 0, res.output
    assert "could not be drawn on a worker" not in res.output
    return url


@pytest.mark.slow
def test_run_writes_mosaic_exports_and_report_to_s3(s3, s3_run, local_run):
    root = s3_run.removeprefix("s3://")
    for name in ("run.json", "config.yaml", "segments.geojson", "segments.gpkg", "hotspots.geojson",
                 "lst_10m.tif", "risk_10m.tif", "lst_10m.vrt", "risk_10m.vrt", "risk_overview.tif",
                 "report/index.html", "report/risk_map.png", ".heattrack/state.json", "mosaic.zarr/.zmetadata"):
        assert s3.exists(f"{root}/{name}"), name
    # the tile tasks wrote their COG parts straight to the bucket; the VRT names them relative to itself
    parts = sorted(k.rsplit("/", 1)[1] for k in s3.find(f"{root}/cog_tiles/risk_10m"))
    assert parts == sorted(p.name for p in (local_run / "cog_tiles" / "risk_10m").glob("*.tif")) and parts
    assert s3.cat_file(f"{root}/cog_tiles/risk_10m/{parts[0]}") == \
        (local_run / "cog_tiles" / "risk_10m" / parts[0]).read_bytes()
    assert f'relativeToVRT="1">cog_tiles/risk_10m/{parts[0]}<' in s3.cat_file(f"{root}/risk_10m.vrt").decode()
    assert not s3.exists(f"{root}/.heattrack/lock")  # released
    info = json.loads(s3.cat_file(f"{root}/run.json"))
    assert info["status"] == "ok" and not info["tiles_failed"]
    remote = xr.open_zarr(s3_run + "/mosaic.zarr").load()
    local = xr.open_zarr(local_run / "mosaic.zarr").load()
    for v in ("lst_10m", "lst_plain", "anomaly_k", "risk", "valid", "n_dates"):
        np.testing.assert_array_equal(remote[v].values, local[v].values)
    assert s3.cat_file(f"{root}/segments.geojson") == (local_run / "segments.geojson").read_bytes()
    for png in ("risk_map.png", "lst_before_after.png", "detectability_map.png"):  # worker-drawn = driver-drawn
        assert s3.cat_file(f"{root}/report/{png}") == (local_run / "report" / png).read_bytes(), png
    # credentials come from the environment and are never written into the outputs
    for key in s3.find(root):
        if key.endswith((".json", ".yaml", ".html", ".geojson")):
            assert SECRET not in s3.cat_file(key).decode(errors="replace"), key


@pytest.mark.slow
def test_every_tile_wrote_its_own_chunk_objects(s3, s3_run):
    """Tile regions are whole chunks: each tile task PUTs its own chunk objects and no other tile's."""
    root = s3_run.removeprefix("s3://")
    run = json.loads(s3.cat_file(f"{root}/run.json"))
    tiles = {tuple(map(int, t.split("_"))) for t in run["tile_summaries"]}
    zattrs = json.loads(s3.cat_file(f"{root}/mosaic.zarr/risk/.zarray"))
    assert zattrs["chunks"] == [run["grid"]["tile_px"]] * 2
    chunks = {k.rsplit("/", 1)[1] for k in s3.ls(f"{root}/mosaic.zarr/risk") if not k.rsplit("/", 1)[1].startswith(".")}
    # one chunk object per tile that had data, named by the tile's chunk row/col
    assert 0 < len(chunks) <= len(tiles)
    assert all(len(c.split(".")) == 2 for c in chunks)


@pytest.mark.slow
def test_resume_on_s3_reprocesses_only_the_missing_tile(s3, s3_run, small_scene):
    root = s3_run.removeprefix("s3://")
    records = sorted(s3.ls(f"{root}/.heattrack/tiles"))
    victim = records[len(records) // 2]
    before = {k: s3.info(k)["LastModified"] for k in records if k != victim}
    mosaic_before = xr.open_zarr(s3_run + "/mosaic.zarr").load()
    s3.rm(victim)
    res = _run(small_scene, s3_run, "--resume")
    assert res.exit_code == 0, res.output
    assert f"{len(records) - 1} of {len(records)} tiles already complete" in res.output
    s3.invalidate_cache()
    assert s3.exists(victim)
    assert {k: s3.info(k)["LastModified"] for k in records if k != victim} == before  # others untouched
    after = xr.open_zarr(s3_run + "/mosaic.zarr").load()
    for v in ("lst_10m", "risk", "valid"):
        np.testing.assert_array_equal(after[v].values, mosaic_before[v].values)


@pytest.mark.slow
def test_a_live_lock_on_s3_makes_a_second_run_refuse(s3, small_scene):
    url = f"s3://{BUCKET}/runs/locked"
    s3.pipe_file(f"{BUCKET}/runs/locked/.heattrack/lock", json.dumps({"pid": 4242, "host": "node-17"}).encode())
    s3.pipe_file(f"{BUCKET}/runs/locked/.heattrack/state.json", b"{}")
    res = _run(small_scene, url, "--overwrite")
    assert res.exit_code == 1 and "another heattrack run (pid 4242 on node-17)" in res.output
    assert "Traceback" not in res.output


@pytest.mark.slow
def test_report_rebuild_from_s3_says_to_copy_first(s3, s3_run):
    res = runner.invoke(app, ["report", s3_run])
    assert res.exit_code == 1 and "aws s3 sync" in res.output and "Traceback" not in res.output


def test_chunk_alignment_is_checked():
    shape = (450, 400)
    assert chunks_of_region(slice(150, 300), slice(300, 400), 150, shape) == {(1, 2)}  # last column: partial edge
    with pytest.raises(ValueError, match="not aligned"):
        chunks_of_region(slice(100, 250), slice(0, 150), 150, shape)
    check_disjoint_chunk_writes([(slice(0, 150), slice(0, 150)), (slice(0, 150), slice(150, 300))], 150, shape)
    with pytest.raises(ValueError, match="both write chunk"):
        check_disjoint_chunk_writes([(slice(0, 300), slice(0, 150)), (slice(150, 300), slice(0, 150))], 150, shape)
