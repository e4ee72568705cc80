"""Cluster backends without a real cluster: dask-jobqueue against a recording `sbatch`, the dask-kubernetes
DaskCluster spec against the operator's CRD schema, GPU worker pools."""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path

import pytest
import yaml

from heattrack.config import load_config
from heattrack.orchestration.cluster import kubernetes_cluster_spec, slurm_job_kwargs


def _fake_slurm(tmp_path: Path, monkeypatch) -> Path:
    """`sbatch` that records each submitted script and answers like Slurm; `scancel` that accepts anything."""
    bindir, jobs = tmp_path / "bin", tmp_path / "jobs"
    bindir.mkdir()
    jobs.mkdir()
    (bindir / "sbatch").write_text(f'#!/bin/sh\nf=$(mktemp "{jobs}/job-XXXXXX")\ncp "$1" "$f"\n'
                                   'echo "Submitted batch job $$"\n')
    (bindir / "scancel").write_text("#!/bin/sh\nexit 0\n")
    (bindir / "squeue").write_text("#!/bin/sh\nexit 0\n")
    for f in bindir.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return jobs


def test_slurm_backend_submits_cpu_and_gpu_worker_jobs(tmp_path, monkeypatch):
    from heattrack.orchestration.cluster import _slurm_cluster

    jobs = _fake_slurm(tmp_path, monkeypatch)
    cfg = load_config(None, {"compute.scheduler": "slurm", "slurm.jobs": 2, "slurm.gpu_jobs": 1,
                             "slurm.queue": "cpu", "slurm.gpu_queue": "gpu", "slurm.account": "proj42",
                             "slurm.cores": 4, "slurm.memory": "16GB", "slurm.walltime": "01:00:00",
                             "slurm.lifetime": "50m", "slurm.job_extra_directives": ["--qos=normal"],
                             "slurm.job_script_prologue": ["source /opt/venv/bin/activate"]})
    cluster = _slurm_cluster(cfg)
    try:
        deadline = time.time() + 30
        while len(list(jobs.iterdir())) < 3 and time.time() < deadline:
            time.sleep(0.2)
        scripts = [p.read_text() for p in sorted(jobs.iterdir())]
    finally:
        cluster.close()
    assert len(scripts) == 3
    gpu = [s for s in scripts if "--gres=gpu:1" in s]
    cpu = [s for s in scripts if "--gres" not in s]
    assert len(gpu) == 1 and len(cpu) == 2
    for s in scripts:
        assert "#SBATCH -A proj42" in s and "#SBATCH --qos=normal" in s and "#SBATCH -t 01:00:00" in s
        assert "--lifetime 50m --lifetime-stagger 5m" in s and "source /opt/venv/bin/activate" in s
        assert "export MALLOC_MMAP_THRESHOLD_=33554432" in s  # WORKER_ENV, before the user's prologue
        assert "export MALLOC_TRIM_THRESHOLD_=268435456" in s
        assert "export MALLOC_ARENA_MAX=1" in s
        # Dask's profiler and fast tick off on the workers (compute.worker_profiling false), as env a fresh job reads
        assert "export DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False" in s
        assert "export DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL=1s" in s
        assert s.index("DASK_DISTRIBUTED__ADMIN") < s.index("source /opt/venv/bin/activate")
    assert "#SBATCH -p gpu" in gpu[0] and "--resources GPU=1" in gpu[0]
    assert all("#SBATCH -p cpu" in s and "--resources" not in s for s in cpu)


def test_slurm_job_kwargs_leave_out_unset_options():
    from heattrack.config import SlurmConfig

    kw, gpu = slurm_job_kwargs(SlurmConfig(lifetime=None))
    assert "queue" not in kw and kw["worker_extra_args"] == []
    assert gpu["worker_extra_args"] == ["--resources", "GPU=1"]


def test_kubernetes_spec_validates_against_the_operator_crd_and_pod_model():
    from k8s_schema import ManifestError, validate_manifest

    cfg = load_config(None, {"kubernetes.gpu_workers": 2, "kubernetes.namespace": "screening",
                             "kubernetes.env_from_secret": "heattrack-credentials"})
    spec, gpu = kubernetes_cluster_spec(cfg.kubernetes)
    validate_manifest(spec)  # CRD schema + strict pod specs
    group = {"apiVersion": "kubernetes.dask.org/v1", "kind": "DaskWorkerGroup",
             "metadata": {"name": "heattrack-gpu"}, "spec": {"cluster": "heattrack", "worker": gpu}}
    validate_manifest(group)
    bad = {**spec, "spec": {**spec["spec"], "worker": {**spec["spec"]["worker"], "replicas": "four"}}}
    with pytest.raises(ManifestError, match="replicas|four"):
        validate_manifest(bad)
    c = gpu["spec"]["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1" and c["args"][-2:] == ["--resources", "GPU=1"]
    assert spec["spec"]["worker"]["spec"]["containers"][0]["envFrom"][0]["secretRef"]["name"] == \
        "heattrack-credentials"
    assert spec["metadata"]["namespace"] == "screening"
    env = {e["name"]: e["value"] for e in spec["spec"]["worker"]["spec"]["containers"][0]["env"]}
    assert env["MALLOC_MMAP_THRESHOLD_"] == "33554432" and env["MALLOC_TRIM_THRESHOLD_"] == "268435456"
    assert env["MALLOC_ARENA_MAX"] == "1"
    # kubernetes_cluster_spec's env (the run passes the workers' Dask settings there, test below)
    spec, _ = kubernetes_cluster_spec(cfg.kubernetes, {"DASK_X": "1"})
    assert {e["name"]: e["value"] for e in spec["spec"]["worker"]["spec"]["containers"][0]["env"]}["DASK_X"] == "1"


def test_worker_dask_settings_follow_compute_worker_profiling():
    """Dask's statistical profiler and 20 ms tick are off on the workers heattrack starts, unless
    ``compute.worker_profiling``; as DASK_* variables they read back as the same settings in a fresh process."""
    import dask

    from heattrack.orchestration.cluster import dask_config_env, worker_dask_config

    quiet = worker_dask_config(load_config(None, {}).compute)
    assert quiet == {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s"}
    assert worker_dask_config(load_config(None, {"compute.worker_profiling": True}).compute) == {}
    env = dask_config_env(quiet)
    assert env == {"DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False", "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s"}
    read = dask.config.collect_env(env)  # how dask parses its environment variables
    assert read["distributed"]["worker"]["profile"]["enabled"] is False
    assert read["distributed"]["admin"]["tick"]["interval"] == "1s"


def _worker_dask_settings() -> tuple:
    import dask

    return dask.config.get("distributed.worker.profile.enabled"), dask.config.get("distributed.admin.tick.interval")


@pytest.mark.parametrize("profiling,expected", [(False, (False, "1s")), (True, (True, "20ms"))])
def test_local_workers_get_the_worker_dask_settings(profiling, expected):
    """A LocalCluster's forked workers read their Dask configuration before the run: the settings go with the nanny."""
    from heattrack.orchestration.cluster import make_client

    cfg = load_config(None, {"compute.n_workers": 1, "compute.worker_profiling": profiling})
    with make_client(cfg) as client:
        assert list(client.run(_worker_dask_settings).values()) == [expected]


def _environment_at_start() -> dict:
    """The environment this process was started with (``/proc/self/environ``; later ``os.environ`` changes do not
    show there), which is what glibc read its MALLOC_* settings from."""
    with open("/proc/self/environ", "rb") as f:
        pairs = [kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv]
    return {k.decode(): v.decode() for k, v in pairs}


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_local_workers_start_with_the_worker_environment():
    """glibc reads MALLOC_* once, when the process starts: WORKER_ENV must be in a worker's environment when it is
    spawned (the nanny's pre-spawn environment), not put into os.environ afterwards (the nanny's ``env=`` does
    that: the variable shows in os.environ but not at start, and the paired 24 km run kept its system time)."""
    from heattrack.orchestration.cluster import WORKER_ENV, make_client

    cfg = load_config(None, {"compute.n_workers": 1})
    with make_client(cfg) as client:
        at_start = list(client.run(_environment_at_start).values())[0]
    assert {k: at_start.get(k) for k in WORKER_ENV} == WORKER_ENV


def _tile_modules_loaded() -> bool:
    import sys

    return "heattrack.orchestration.graph" in sys.modules


def test_local_workers_come_from_a_fork_server_that_imported_the_tile_modules(monkeypatch, tmp_path):
    """The workers are forked from a server that imported the tile task's modules once: they hold them before any
    task ran (spawned, each would import them at its first tile), and this process's environment as it is when the
    cluster starts. ``compute.worker_start: spawn``: Dask's way."""
    from heattrack.orchestration.cluster import make_client

    cfg = load_config(None, {"compute.n_workers": 2})
    with make_client(cfg) as client:
        assert list(client.run(_tile_modules_loaded).values()) == [True, True]
    # the fork server runs on; a variable set since (credentials, a token) still reaches the next cluster's workers
    monkeypatch.setenv("HEATTRACK_TEST_SET_LATER", "yes")
    monkeypatch.chdir(tmp_path)  # and the working directory (relative paths)
    with make_client(load_config(None, {"compute.n_workers": 1})) as client:
        seen = client.run(lambda: (__import__("os").environ.get("HEATTRACK_TEST_SET_LATER"), __import__("os").getcwd()))
    assert list(seen.values()) == [("yes", str(tmp_path))]
    with make_client(load_config(None, {"compute.n_workers": 1, "compute.worker_start": "spawn"})) as client:
        assert list(client.run(_tile_modules_loaded).values()) == [False]


def test_a_script_without_the_main_guard_gets_one_clear_line(small_scene, tmp_path):
    """A script that runs heattrack at its top level: its workers import it again. The run in the importing worker
    stops before it plans or locks anything, and the script ends on a line that says what to change."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "from heattrack.config import load_config\nfrom heattrack.orchestration.run import run\n"
        f"cfg = load_config(None, {{'input.input': {str(small_scene)!r}, "
        f"'input.pipes': {str(small_scene / 'pipes.geojson')!r}, 'compute.n_workers': 1}})\n"
        f"run(cfg, {str(tmp_path / 'out')!r})\n")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    last = res.stderr.strip().splitlines()[-1]
    assert res.returncode != 0 and 'if __name__ == "__main__":' in last and "did not start" in last, res.stderr[-2000:]
    assert "another heattrack run" not in res.stderr  # the importing worker did not reach the output's lock


def test_local_workers_are_spawned_where_python_has_no_fork_server(monkeypatch):
    """Windows has no ``forkserver`` start method: the LocalCluster starts as Dask's default does there."""
    import multiprocessing

    from heattrack.orchestration.cluster import make_client

    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    with make_client(load_config(None, {"compute.n_workers": 1})) as client:
        assert list(client.run(_tile_modules_loaded).values()) == [False]


def test_a_run_whose_plan_fails_closes_the_cluster_it_started(tmp_path, monkeypatch):
    """The workers start while the driver plans: when planning fails (bad input), that cluster is closed again."""
    from contextlib import contextmanager

    import heattrack.orchestration.cluster as cluster
    from heattrack.errors import InputError
    from heattrack.orchestration import run as run_mod

    events = []

    @contextmanager
    def fake_client(cfg):
        events.append("started")
        time.sleep(0.2)  # still starting when the plan fails
        yield object()
        events.append("closed")

    monkeypatch.setattr(cluster, "make_client", fake_client)
    empty = tmp_path / "empty"  # exists, holds no scene: the plan fails after the cluster started
    empty.mkdir()
    cfg = load_config(None, {"input.input": empty, "input.pipes": tmp_path / "missing.geojson"})
    with pytest.raises(InputError):
        run_mod.run(cfg, tmp_path / "out")
    assert events == ["started", "closed"]
    events.clear()  # a folder that does not exist is refused before any cluster starts
    cfg = load_config(None, {"input.input": tmp_path / "missing", "input.pipes": tmp_path / "missing.geojson"})
    with pytest.raises(InputError, match="does not exist"):
        run_mod.run(cfg, tmp_path / "out")
    assert events == []


def test_pod_validation_rejects_unknown_fields_and_bad_enums():
    from k8s_schema import ManifestError, validate_pod_spec

    with pytest.raises(ManifestError, match="containerz"):
        validate_pod_spec({"containerz": []})
    with pytest.raises(ManifestError, match="imagePullPolicy"):
        validate_pod_spec({"containers": [{"name": "a", "image": "x", "imagePullPolicy": "Sometimes"}]})


K8S = Path(__file__).resolve().parents[1] / "k8s"


def test_every_shipped_manifest_is_valid():
    from k8s_schema import validate_files

    files = sorted(K8S.rglob("*.yaml"))
    assert validate_files(files) >= 8


def test_kustomize_overlays_reference_existing_files_and_base_objects():
    base_objs = set()
    for f in (K8S / "base").glob("*.yaml"):
        for d in yaml.safe_load_all(f.read_text()):
            if d and d.get("kind") != "Kustomization":
                base_objs.add((d["kind"], d["metadata"]["name"]))
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    assert all((K8S / "base" / r).exists() for r in base["resources"])
    for overlay in (K8S / "overlays").iterdir():
        k = yaml.safe_load((overlay / "kustomization.yaml").read_text())
        assert k["resources"] == ["../../base"]
        for patch in k.get("patches", []):
            doc = yaml.safe_load((overlay / patch["path"]).read_text())
            assert (doc["kind"], doc["metadata"]["name"]) in base_objs


@pytest.mark.parametrize("cm", ["base/configmap.yaml", "overlays/gpu/configmap-gpu.yaml"])
def test_configmaps_hold_valid_heattrack_configs(cm, tmp_path):
    doc = yaml.safe_load((K8S / cm).read_text())
    f = tmp_path / "config.yaml"
    f.write_text(doc["data"]["config.yaml"])
    cfg = load_config(f)
    assert cfg.compute.scheduler == "kubernetes"
    spec, gpu = kubernetes_cluster_spec(cfg.kubernetes)
    assert (gpu is not None) == ("gpu" in cm)


def test_cronjob_schedules_one_screening_at_a_time_with_bounded_resources():
    docs = [d for f in K8S.rglob("*.yaml") for d in yaml.safe_load_all(f.read_text()) if d]
    crons = [d for d in docs if d["kind"] == "CronJob"]
    assert crons
    for c in crons:
        assert c["spec"]["concurrencyPolicy"] == "Forbid"
        job = c["spec"]["jobTemplate"]["spec"]
        assert job["backoffLimit"] >= 1
        ctr = job["template"]["spec"]["containers"][0]
        assert ctr["resources"]["requests"] and ctr["resources"]["limits"]
        assert "--resume" in ctr["args"]
    rules = [r for d in docs if d["kind"] == "Role" for r in d["rules"]]
    assert any("kubernetes.dask.org" in r["apiGroups"] and "daskclusters" in r["resources"] for r in rules)


def test_client_connects_through_a_scheduler_file(tmp_path):
    """What slurm/heattrack-allocation.sbatch does: the scheduler writes a file, heattrack connects through it."""
    from distributed import LocalCluster

    from heattrack.orchestration.cluster import make_client

    f = tmp_path / "scheduler.json"
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None,
                      scheduler_kwargs={"scheduler_file": str(f)}) as cl:
        cfg = load_config(None, {"compute.scheduler": str(f)})
        with make_client(cfg) as client:
            assert client.scheduler.address == cl.scheduler_address
            assert client.submit(lambda x: x + 1, 1).result() == 2


def test_sbatch_scripts_are_valid_bash_and_resume():
    import subprocess

    for script in (Path(__file__).resolve().parents[1] / "slurm").glob("*.sbatch"):
        subprocess.run(["bash", "-n", str(script)], check=True)
        text = script.read_text()
        assert "#SBATCH --requeue" in text and "--resume" in text


def test_worker_lifetime_must_be_a_dask_duration():
    """`dask worker --lifetime 1h50m` fails at start (found on the real Slurm): refused in the config."""
    from heattrack.errors import ConfigError

    with pytest.raises(ConfigError, match="not a Dask duration"):
        load_config(None, {"slurm.lifetime": "1h50m"})
    assert load_config(None, {"slurm.lifetime": "110m"}).slurm.lifetime == "110m"
    assert load_config(None, {}).slurm.lifetime  # the default parses (a worker job starts with it)


def test_sbatch_scripts_pass_dask_durations():
    from dask.utils import parse_timedelta

    for script in (Path(__file__).resolve().parents[1] / "slurm").glob("*.sbatch"):
        for flag in ("--lifetime", "--lifetime-stagger"):
            for m in re.finditer(rf"{flag} (\S+)", script.read_text()):
                parse_timedelta(m.group(1))


def test_a_scheduler_without_workers_fails_clearly_after_the_timeout(tmp_path, small_scene):
    """A scheduler whose workers never come (queued jobs, a wrong scheduler file) must not hang silently."""
    from distributed import LocalCluster
    from typer.testing import CliRunner

    from heattrack.cli import app

    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cl:
        res = CliRunner().invoke(app, [
            "run", "--input", str(small_scene), "--pipes", str(small_scene / "pipes.geojson"), "--out",
            str(tmp_path / "o"), "--tile-km", "1.5", "--scheduler", cl.scheduler_address,
            "--set", "compute.worker_timeout_s=2"])
    assert res.exit_code == 1 and "no Dask worker joined" in res.output and "Traceback" not in res.output


def test_local_workers_skip_their_teardown_and_the_driver_keeps_it(monkeypatch):
    """A LocalCluster worker that stops leaves with os._exit after flushing its logs (its interpreter's teardown took
    ~0.75 s per worker at the end of every run); the plugin never installs that in the driver's own process, and the
    cluster still closes cleanly with it."""
    import atexit
    import multiprocessing

    from heattrack.orchestration.cluster import _local_worker_plugins, make_client
    from heattrack.orchestration.worker_exit import QuickExit, _exit_now

    registered = []
    monkeypatch.setattr(atexit, "register", registered.append)
    QuickExit().setup(worker=None)  # in this (the driver's) process: nothing registered
    assert registered == [] and multiprocessing.parent_process() is None
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())  # as in a spawned worker
    QuickExit().setup(worker=None)
    assert registered == [_exit_now]
    monkeypatch.undo()

    assert [type(p) for p in _local_worker_plugins()] == [QuickExit]
    monkeypatch.setenv("HEATTRACK_WORKER_TEARDOWN", "1")
    assert _local_worker_plugins() == []
    monkeypatch.delenv("HEATTRACK_WORKER_TEARDOWN")
    cfg = load_config(None, {"compute.n_workers": 1})
    t0 = time.perf_counter()
    with make_client(cfg) as client:
        pid = list(client.run(os.getpid).values())[0]
        assert client.submit(sum, [1, 2]).result() == 3
    assert time.perf_counter() - t0 < 30
    with pytest.raises(ProcessLookupError):  # the worker process is gone
        os.kill(pid, 0)


def test_more_local_workers_than_cores_are_started_with_a_warning(monkeypatch, caplog):
    """Allowed (scale.py oversubscribes on purpose) but said: on 1 core, 2 workers share it and hold twice the
    memory; as many workers as cores says nothing."""
    from heattrack.orchestration.cluster import make_client

    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    with caplog.at_level("WARNING", logger="heattrack.orchestration.cluster"):
        with make_client(load_config(None, {"compute.n_workers": 1})):
            pass
        assert "share the cores" not in caplog.text
        with make_client(load_config(None, {"compute.n_workers": 2})) as client:
            assert len(client.scheduler_info()["workers"]) == 2
    assert "compute.n_workers = 2 x 1 threads on 1 cores: the workers share the cores" in caplog.text
