"""The sbatch scripts in slurm/ on a real single-node Slurm (Debian slurm-wlm + munge).

`scripts/test.sh` starts one with `scripts/slurm-single-node.sh` when it runs as root with apt; elsewhere
start it by hand (`sudo bash scripts/slurm-single-node.sh`) or these tests skip. Each test submits the real
script with `sbatch` on a small simulated scene, waits for the job (its state polled every 0.5 s) and compares the
mosaic with a LocalCluster run's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from heattrack.cli import app

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _slurm_up() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    r = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20)
    return r.returncode == 0 and any(s.startswith(("idle", "mix", "alloc")) for s in r.stdout.split())


@pytest.fixture(scope="module")
def slurm() -> None:
    if not _slurm_up():
        pytest.skip("no running Slurm: start one with `sudo bash scripts/slurm-single-node.sh`")


@pytest.fixture(scope="module")
def local_reference(small_scene, tmp_path_factory) -> xr.Dataset:
    out = tmp_path_factory.mktemp("slurm-ref") / "out"
    res = CliRunner().invoke(app, ["run", "--input", str(small_scene), "--pipes", str(small_scene / "pipes.geojson"),
                                   "--out", str(out), "--config", str(ROOT / "configs" / "ci-small.yaml")])
    assert res.exit_code == 0, res.output
    return xr.open_zarr(out / "mosaic.zarr").load()


#: the states in which a job is over (``scontrol show job``; the record stays for the controller's MinJobAge)
_OVER = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
         "DEADLINE", "PURGED")


def _job_state(job_id: str) -> tuple[str, str]:
    """(JobState, ExitCode) of a job from ``scontrol show job -o``."""
    r = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=20)
    if r.returncode != 0 and "Invalid job id" in r.stderr:  # already purged (MinJobAge): over, outcome unknown
        return "PURGED", "?"
    fields = dict(f.split("=", 1) for f in r.stdout.split() if "=" in f)
    return fields.get("JobState", "UNKNOWN"), fields.get("ExitCode", "?")


def _sbatch(script: str, args: list[str], sbatch_opts: list[str], log: Path, timeout: int = 300) -> None:
    """Submit ``slurm/<script>`` and wait for the job, polling its state every half second: ``sbatch --wait`` polls
    2, 10, 42 s after the submission (its sleeps grow), so a 15 s job took 42 s."""
    env = {**os.environ, "HEATTRACK_VENV": str(Path(sys.executable).parent.parent)}
    cmd = ["sbatch", "--parsable", f"--output={log}", f"--chdir={ROOT}", *sbatch_opts,
           str(ROOT / "slurm" / script), *args]
    name = next(o.split("=", 1)[1] for o in sbatch_opts if o.startswith("--job-name="))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, f"sbatch exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    job_id = r.stdout.strip().split(";")[0]
    deadline = time.monotonic() + timeout
    state, code = _job_state(job_id)
    while not state.startswith(_OVER):
        if time.monotonic() > deadline:
            subprocess.run(["scancel", f"--name={name}"], check=False)
            text = log.read_text() if log.exists() else ""
            pytest.fail(f"job {name} did not finish in {timeout} s (cancelled)\n--- job log ---\n{text[-4000:]}")
        time.sleep(0.5)
        state, code = _job_state(job_id)
    text = log.read_text() if log.exists() else ""
    assert state == "COMPLETED" and code == "0:0", f"job {name}: {state}, exit {code}\n--- job log ---\n{text[-4000:]}"


def _assert_same_mosaic(out: Path, ref: xr.Dataset) -> None:
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "ok" and not run["tiles_failed"] and run["tiles_ok"] > 1
    got = xr.open_zarr(out / "mosaic.zarr").load()
    assert float(got["valid"].mean()) > 0.2  # the small scene is partly cloudy
    for v in ("lst_10m", "anomaly_k", "risk", "valid"):
        np.testing.assert_array_equal(got[v].values, ref[v].values)
    assert (out / "segments.geojson").exists() and (out / "report" / "index.html").exists()


def _assert_figures_drawn_on_a_worker(out: Path, job_log: Path) -> None:
    """A cluster of its own: the report's figures came back from a worker (the driver logs it when it has to draw
    them itself, orchestration.report_helper)."""
    assert (out / "report" / "risk_map.png").stat().st_size > 10_000
    assert "could not be drawn on a worker" not in job_log.read_text(errors="replace")


def test_single_node_sbatch_script(slurm, small_scene, local_reference, tmp_path):
    """slurm/heattrack-node.sbatch: one allocation, LocalCluster on the granted cores."""
    out = tmp_path / "out"
    _sbatch("heattrack-node.sbatch",
            [str(ROOT / "configs" / "ci-small.yaml"), str(small_scene), str(small_scene / "pipes.geojson"), str(out)],
            ["--cpus-per-task=2", "--mem=6G", "--time=00:15:00", "--job-name=ht-node-test"], tmp_path / "node.log")
    _assert_same_mosaic(out, local_reference)


def test_national_sbatch_script_submits_dask_jobqueue_workers(slurm, small_scene, local_reference, tmp_path):
    """slurm/heattrack-national.sbatch: the driver job starts the scheduler and submits a worker job."""
    cfg = tmp_path / "slurm.yaml"
    cfg.write_text(
        "grid:\n  tile_km: 1.5\ncompute:\n  scheduler: slurm\n"
        "slurm:\n  cores: 1\n  memory: 3GB\n  jobs: 1\n  walltime: '00:15:00'\n"
        f"  log_directory: {tmp_path / 'worker-logs'}\n")
    out = tmp_path / "out"
    _sbatch("heattrack-national.sbatch", [str(cfg), str(small_scene), str(small_scene / "pipes.geojson"), str(out)],
            ["--cpus-per-task=1", "--mem=3G", "--time=00:15:00", "--job-name=ht-driver-test"],
            tmp_path / "driver.log")
    worker_logs = list((tmp_path / "worker-logs").glob("*"))
    assert worker_logs, "no worker job log: dask-jobqueue submitted no job"
    assert any("Start worker" in p.read_text(errors="replace") for p in worker_logs)
    _assert_same_mosaic(out, local_reference)
    _assert_figures_drawn_on_a_worker(out, tmp_path / "driver.log")


def test_one_allocation_sbatch_script_with_srun_steps(slurm, small_scene, local_reference, tmp_path):
    """slurm/heattrack-allocation.sbatch: srun starts the scheduler and the workers inside one allocation,
    heattrack connects through the scheduler file (sites that forbid jobs submitting jobs)."""
    out = tmp_path / "out"
    _sbatch("heattrack-allocation.sbatch",
            [str(ROOT / "configs" / "ci-small.yaml"), str(small_scene), str(small_scene / "pipes.geojson"), str(out)],
            ["--nodes=1", "--cpus-per-task=2", "--mem=8G", "--time=00:15:00", "--job-name=ht-alloc-test"],
            tmp_path / "alloc.log")
    _assert_same_mosaic(out, local_reference)
    _assert_figures_drawn_on_a_worker(out, tmp_path / "alloc.log")
    assert not list(tmp_path.glob("out.scheduler-*.json"))  # the scheduler file is cleaned up
