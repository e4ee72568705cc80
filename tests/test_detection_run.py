"""Learned detectors inside real runs: multi-date inputs, GPU-resource placement on Dask, `heattrack train`."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from heattrack.cli import app
from heattrack.config import load_config
from heattrack.orchestration.run import run
from heattrack.simulate import SimulationSpec, simulate_scene

runner = CliRunner()
pytestmark = pytest.mark.slow
FAST_AE = {"detect.ae_train_patches": 1500, "detect.ae_epochs": 3, "grid.tile_km": 1.5,
           "downscale.method": "bilinear"}


@pytest.fixture(scope="module")
def two_date_scene(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scene2") / "scene"
    simulate_scene(out, SimulationSpec(size_km=3.0, leaks=6, seed=12, dates=2))
    return out


def _cfg(scene: Path, **over):
    return load_config(None, {"input.input": scene, "input.pipes": scene / "pipes.geojson", **FAST_AE, **over})


def test_multi_date_run_combines_dates_and_keeps_per_date_evidence(two_date_scene, tmp_path):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cl, \
            Client(cl) as client:
        run(_cfg(two_date_scene), tmp_path / "both", client=client)
        run(_cfg(two_date_scene, **{"input.max_dates": 1}), tmp_path / "first", client=client)
    info = json.loads((tmp_path / "both" / "run.json").read_text())
    assert [d["landsat_date"] for d in info["inputs"]["dates"]] == ["2025-01-15", "2025-01-31"]
    seg = gpd.read_file(tmp_path / "both" / "segments.geojson")
    assert {"risk_2025-01-15", "risk_2025-01-31", "n_dates"} <= set(seg.columns)
    assert seg["n_dates"].max() == 2
    ds = xr.open_zarr(tmp_path / "both" / "mosaic.zarr")
    assert int(ds["n_dates"].max()) == 2
    # the per-date column of the first date equals the single-date run's risk
    one = gpd.read_file(tmp_path / "first" / "segments.geojson").set_index("segment_id")
    both = seg.set_index("segment_id")
    np.testing.assert_allclose(both.loc[one.index, "risk_2025-01-15"].to_numpy(dtype=float),
                               one["risk"].to_numpy(dtype=float), atol=1e-4)
    assert "risk_2025-01-15" not in one.columns


def test_autoencoder_stage_runs_on_gpu_workers_only(small_scene, tmp_path):
    """A cluster with one worker declaring GPU=1 and one without: every tile's detection stage lands on the
    GPU worker, reads run anywhere, and the result equals a CPU-only cluster's."""
    from distributed import Client, LocalCluster, Scheduler, SpecCluster, Worker

    from heattrack.orchestration.graph import cluster_has_gpu_workers

    spec = {"gpu": {"cls": Worker, "options": {"nthreads": 1, "resources": {"GPU": 1}}},
            "cpu": {"cls": Worker, "options": {"nthreads": 1}}}
    cfg = _cfg(small_scene, **{"detect.method": "fused", "detect.device": "cpu"})
    with SpecCluster(workers=spec, scheduler={"cls": Scheduler, "options": {"dashboard_address": None}},
                     asynchronous=False) as cl, Client(cl) as client:
        client.wait_for_workers(2)
        assert cluster_has_gpu_workers(client)
        gpu_addr = [a for a, w in client.scheduler_info()["workers"].items() if w["resources"].get("GPU")][0]
        run(cfg, tmp_path / "gpu", client=client)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cl, \
            Client(cl) as client:
        assert not cluster_has_gpu_workers(client)
        run(cfg, tmp_path / "cpu", client=client)
    tiles = json.loads((tmp_path / "gpu" / "run.json").read_text())["tile_summaries"]
    assert len(tiles) > 1 and {t["worker"] for t in tiles.values()} == {gpu_addr}
    a = xr.open_zarr(tmp_path / "gpu" / "mosaic.zarr")["risk"].values
    b = xr.open_zarr(tmp_path / "cpu" / "mosaic.zarr")["risk"].values
    np.testing.assert_array_equal(a, b)


def test_train_then_run_with_the_saved_model(small_scene, tmp_path):
    base = ["--input", str(small_scene), "--pipes", str(small_scene / "pipes.geojson"), "--tile-km", "1.5",
            "--n-workers", "1", "--set", "downscale.method=bilinear"]
    res = runner.invoke(app, ["run", *base, "--out", str(tmp_path / "r1")])
    assert res.exit_code == 0, res.output
    model = tmp_path / "models" / "ae.pt"
    res = runner.invoke(app, ["train", "--run", str(tmp_path / "r1"), "--out", str(model), "--tiles-per-run", "2",
                              "--set", "detect.ae_epochs=3"])
    assert res.exit_code == 0, res.output
    assert model.exists() and "model written" in res.output
    res = runner.invoke(app, ["run", *base, "--out", str(tmp_path / "r2"), "--set", "detect.method=ae",
                              "--set", f"detect.model_path={model}"])
    assert res.exit_code == 0, res.output
    seg = gpd.read_file(tmp_path / "r2" / "segments.geojson")
    assert np.isfinite(seg["risk"].astype(float)).any()
    cfg_written = (tmp_path / "r2" / "config.yaml").read_text()
    assert "model_path" in cfg_written and str(model) in cfg_written
    # a model made for other patch settings is refused before any tile runs
    res = runner.invoke(app, ["run", *base, "--out", str(tmp_path / "r3"), "--set", "detect.method=ae",
                              "--set", f"detect.model_path={model}", "--set", "detect.ae_patch_px=3"])
    assert res.exit_code == 1 and "patch settings" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "r3" / "mosaic.zarr").exists()
    # a missing model file is one clear line too
    res = runner.invoke(app, ["run", *base, "--out", str(tmp_path / "r4"), "--set", "detect.method=ae",
                              "--set", f"detect.model_path={tmp_path / 'nope.pt'}"])
    assert res.exit_code == 1 and "does not exist" in res.output


def test_configured_gpu_pool_splits_before_gpu_workers_join(small_scene, tmp_path):
    """Slurm/Kubernetes GPU workers may still be queued when tiles are submitted: with gpu_pool the detection
    stage is still submitted with GPU=1 and waits for such a worker (here one joins after submission)."""
    from distributed import Client, LocalCluster, Worker

    from heattrack.io.store import create_mosaic_template
    from heattrack.orchestration.graph import run_tiles
    from heattrack.orchestration.output_folder import prepare_output
    from heattrack.orchestration.plan import plan_run
    from heattrack.orchestration.run import build_tasks

    cfg = _cfg(small_scene, **{"detect.method": "ae", "detect.device": "cpu"})
    plan = plan_run(cfg)
    out = tmp_path / "out"
    prepare_output(out, cfg, resume=False, overwrite=False)
    create_mosaic_template(out / "mosaic.zarr", plan.grid.mosaic_geobox, cfg.tile_px, {})
    tasks = build_tasks(plan, out, plan.grid.tiles[:1])
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cl, \
            Client(cl) as client:
        outcomes = []

        async def add_gpu_worker():
            return await Worker(cl.scheduler_address, nthreads=1, resources={"GPU": 1})

        import threading

        t = threading.Thread(target=lambda: outcomes.extend(run_tiles(client, tasks, retries=0, gpu_pool=True)))
        t.start()
        gpu = client.sync(add_gpu_worker)
        t.join(120)
        assert outcomes and outcomes[0].error is None
        assert outcomes[0].summary.worker == gpu.address
        client.sync(gpu.close)
