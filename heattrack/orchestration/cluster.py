"""Cluster factory: ``compute.scheduler`` -> a Dask ``Client``.

Backends are looked up in ``CLUSTER_BACKENDS`` (name -> factory taking the whole Config and returning a
cluster object); a value that looks like an address (``tcp://``, ``tls://``, ``ucx://``, ``inproc://``)
connects to an existing scheduler, and a path ending in ``.json`` to the scheduler whose ``--scheduler-file``
it is (``slurm/heattrack-allocation.sbatch``).

* ``local``: ``distributed.LocalCluster`` (one process per core by default);
* ``slurm``: :class:`HeattrackSLURMCluster`, a dask-jobqueue ``SLURMCluster`` whose jobs are CPU workers plus
  an optional pool of GPU worker jobs (``--gres=gpu:N``, worker resource ``GPU=N``) on the same scheduler;
* ``kubernetes``: a dask-kubernetes operator ``KubeCluster`` built from :func:`kubernetes_cluster_spec`
  (default worker group for CPU, a ``gpu`` worker group with ``nvidia.com/gpu`` limits and ``GPU`` resource).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from heattrack.config import ComputeConfig, Config, KubernetesConfig, SlurmConfig
from heattrack.errors import ConfigError

log = logging.getLogger(__name__)

ADDRESS_PREFIXES = ("tcp://", "tls://", "ucx://", "inproc://")
#: environment of every worker process (LocalCluster, Slurm job scripts, Kubernetes pods; the image sets it too).
#: Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_`` to 64 KiB, which switches off glibc's adaptive mmap threshold: every
#: numpy temporary over 128 KiB (a tile layer is ~5 MB) is then mmap'ed, page-faulted in and unmapped again. Keeping
#: arrays up to 32 MiB on the heap halved the workers' system time and cut a 24 km run's wall time by 16 %; and with
#: the heap trimmed back to the OS only beyond 256 MiB free at its top (instead of Dask's 64 KiB: the next tile
#: faults those pages in again) a tile task takes 0.94x the time and the 48 km run 0.95x, peak worker RSS
#: unchanged (paired, 2026-12-06; docs/measurements.md "Speed and memory"); worker RSS stays flat (benchmarks/scale.py).
#: One malloc arena: Dask runs each task on a thread of its executor, and glibc gives such a thread an arena of its
#: own, whose 64 MiB heaps are unmapped when a tile frees them and faulted in again by the next (~1,700 page faults
#: per tile instead of ~20). In one worker the same tile took 1.19x its time on the worker's main thread (its CPU
#: time 1.03x: the rest waiting), 1.04x with one arena; whole 48 km runs on 2 workers took 0.90-0.94x the time and
#: peak worker RSS 0.93x (three pairs, 2026-12-07, docs/performance.md). Tile tasks run one thread per worker, so the
#: one arena's lock is not contended.
WORKER_ENV = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "268435456", "MALLOC_ARENA_MAX": "1"}
#: Dask settings of the workers heattrack starts unless ``compute.worker_profiling``: Dask's statistical profiler
#: takes a stack sample of every task thread each 10 ms and its event loop ticks every 20 ms, each waking a thread
#: that needs the GIL the tile task holds. Without them, alternately with Dask's defaults on 2 workers (2026-12-07,
#: docs/performance.md): 26 tiles of the 48 km city 0.88-0.98x the wall time (four pairs, 06:40-06:42 UTC); whole
#: 48 km runs 0.93-0.98x (three pairs, 06:33-06:36 UTC), 0.83-1.13x in a noisier half hour (06:37-06:40 UTC). The
#: memory and system monitors slowed as well (0.85-0.96x) were not told apart at this noise: Dask's defaults.
QUIET_WORKER_CONFIG = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s"}


def worker_dask_config(c: ComputeConfig) -> dict:
    """The Dask settings of the workers heattrack starts (:data:`QUIET_WORKER_CONFIG`, none with
    ``compute.worker_profiling``)."""
    return {} if c.worker_profiling else dict(QUIET_WORKER_CONFIG)


def dask_config_env(settings: dict) -> dict[str, str]:
    """Dask settings as the ``DASK_*`` environment variables a fresh worker process (a Slurm job, a pod) reads."""
    return {"DASK_" + key.upper().replace(".", "__").replace("-", "_"): str(value) for key, value in settings.items()}


def local_worker_count(c: ComputeConfig) -> int:
    """Worker processes of a LocalCluster: ``compute.n_workers``, by default one per ``threads_per_worker`` cores."""
    return c.n_workers or max(1, (os.cpu_count() or 1) // c.threads_per_worker)


def _local_cluster(cfg: Config):
    from distributed import LocalCluster

    c = cfg.compute
    n = local_worker_count(c)
    cores = os.cpu_count() or 1
    if n * c.threads_per_worker > cores:  # allowed (benchmarks/scale.py oversubscribes on purpose), but say so
        log.warning("compute.n_workers = %d x %d threads on %d cores: the workers share the cores (no faster) and each "
                    "holds ~0.5 GB (~%.0f GB in all); the default is one worker per core", n, c.threads_per_worker,
                    cores, 0.5 * n)
    import dask

    # pre-spawn: glibc reads MALLOC_* when the process starts (passed as the nanny's ``env=`` instead, the paired
    # 24 km run showed no drop in system time)
    env = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **WORKER_ENV}
    # the workers' Dask settings go with the nanny's configuration (forked, a worker read the DASK_* environment long
    # before: in the fork server)
    settings = {"distributed.nanny.pre-spawn-environ": env, **worker_dask_config(c)}
    forked = c.worker_start == "forkserver" and _fork_server_available()
    if forked:
        settings["distributed.worker.multiprocessing-method"] = "forkserver"
    with dask.config.set(settings):
        if forked:
            _preload_forkserver()
        # forked, a worker inherits the fork server's environment, from when it started: this process's
        # environment now (credentials set since, tokens...) goes with each worker (the nanny sets it at its start)
        return LocalCluster(n_workers=n, threads_per_worker=c.threads_per_worker, processes=True,
                            memory_limit=c.memory_limit, dashboard_address=None, plugins=_local_worker_plugins(),
                            env=dict(os.environ) if forked else None)


#: what the LocalCluster's fork server imports once, before it forks the worker processes: the driver's main
#: module (which a spawned worker would run again), Dask and the tile task's modules
FORKSERVER_PRELOAD = ["__main__", "distributed", "heattrack.orchestration.graph"]


def refuse_in_a_starting_worker() -> None:
    """Raise where a worker process (spawned, or the LocalCluster's fork server) is importing the driver's main script
    and that script starts a run at its top level: the run would plan, lock and write ``out`` a second time."""
    import multiprocessing

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise ConfigError(STARTING_WORKER_HINT)


#: the one line a script gets when it runs heattrack outside ``if __name__ == "__main__":``
STARTING_WORKER_HINT = ("a heattrack run was started while a worker process imported the main script: a Python "
                        "script that runs heattrack on a LocalCluster must do so under "
                        "`if __name__ == \"__main__\":` (its workers import the script)")


def _fork_server_available() -> bool:
    """Python's ``forkserver`` start method exists on Linux and macOS, not on Windows (spawned workers there)."""
    import multiprocessing

    return "forkserver" in multiprocessing.get_all_start_methods()


def _preload_forkserver() -> None:
    """Start the workers from a fork server that imported :data:`FORKSERVER_PRELOAD` once. Spawned (Dask's
    default), every worker imports them itself: ~1.2 s of CPU per worker while the driver plans, on the run's
    serial start. At 48 km on 2 cores (2026-12-06, three runs each way): the tiles started 0.6-0.9 s earlier and
    the run took 0.96x the time, tile times unchanged; peak worker memory ~50 MB lower. The fork server is started
    once per driver process (a later cluster of the same process reuses it); ``compute.worker_start: spawn`` keeps
    Dask's default."""
    from distributed.utils import get_mp_context

    get_mp_context().set_forkserver_preload(FORKSERVER_PRELOAD)  # after Dask's own list: it sets it once


def _local_worker_plugins() -> list:
    """The LocalCluster workers' plugins: they skip their interpreter's teardown when they stop (saves ~0.75 s per
    worker at the end of every run, :mod:`heattrack.orchestration.worker_exit`); ``HEATTRACK_WORKER_TEARDOWN=1``
    keeps it (for debugging a worker's exit)."""
    if os.environ.get("HEATTRACK_WORKER_TEARDOWN") == "1":
        return []
    from heattrack.orchestration.worker_exit import QuickExit

    return [QuickExit()]


def slurm_job_kwargs(s: SlurmConfig, env: dict | None = None) -> tuple[dict, dict]:
    """dask-jobqueue keyword arguments of the CPU jobs, and the overrides that make a GPU job; ``env``: exported in
    the job script after :data:`WORKER_ENV`, before the user's prologue."""
    worker_args = []
    if s.lifetime:
        worker_args += ["--lifetime", s.lifetime, "--lifetime-stagger", s.lifetime_stagger]
    kw = {"queue": s.queue, "account": s.account, "cores": s.cores, "memory": s.memory, "processes": s.processes,
          "walltime": s.walltime, "job_extra_directives": list(s.job_extra_directives),
          "job_script_prologue": [*(f"export {k}={v}" for k, v in {**WORKER_ENV, **(env or {})}.items()),
                                  *s.job_script_prologue],
          "worker_extra_args": worker_args,
          "interface": s.interface, "local_directory": s.local_directory, "log_directory": s.log_directory,
          "python": s.python}
    kw = {k: v for k, v in kw.items() if v is not None}
    gpu = {"processes": 1, "queue": s.gpu_queue or s.queue,
           "job_extra_directives": [*s.job_extra_directives, f"--gres=gpu:{s.gpus_per_job}"],
           "worker_extra_args": [*worker_args, "--resources", f"GPU={s.gpus_per_job}"]}
    return kw, {k: v for k, v in gpu.items() if v is not None}


def _slurm_cluster_class():
    from dask_jobqueue import SLURMCluster

    class HeattrackSLURMCluster(SLURMCluster):
        """SLURMCluster whose first ``gpu_jobs`` worker specs are GPU jobs (names ``gpu-N``), the rest CPU jobs;
        ``scale(jobs=cpu + gpu)`` starts both pools on one scheduler."""

        def __init__(self, *args, gpu_jobs: int = 0, gpu_overrides: dict | None = None, **kwargs):
            self.gpu_jobs = gpu_jobs
            self.gpu_overrides = gpu_overrides or {}
            super().__init__(*args, **kwargs)

        def gpu_job(self, name: str = "gpu-0"):
            """A GPU job object like the ones submitted (for its ``job_script()``)."""
            return self.job_cls(self.scheduler.address, name=name, **{**self._job_kwargs, **self.gpu_overrides})

        def new_worker_spec(self):
            gpu_names = [k for k in self.worker_spec if str(k).startswith("gpu-")]
            if len(gpu_names) < self.gpu_jobs:
                i = 0
                while f"gpu-{i}" in self.worker_spec:
                    i += 1
                return {f"gpu-{i}": {"cls": self.job_cls, "options": {**self._job_kwargs, **self.gpu_overrides}}}
            return super().new_worker_spec()

    return HeattrackSLURMCluster


def _slurm_cluster(cfg: Config):
    s = cfg.slurm
    kw, gpu = slurm_job_kwargs(s, dask_config_env(worker_dask_config(cfg.compute)))
    cluster = _slurm_cluster_class()(gpu_jobs=s.gpu_jobs, gpu_overrides=gpu, scheduler_options={
        "dashboard_address": ":8787", **({"interface": s.interface} if s.interface else {})}, **kw)
    if s.adaptive:
        # GPU jobs are created first and count towards the bounds
        cluster.adapt(minimum_jobs=s.min_jobs + s.gpu_jobs, maximum_jobs=s.jobs + s.gpu_jobs)
    else:
        cluster.scale(jobs=s.jobs + s.gpu_jobs)
    log.info("Slurm: %d CPU + %d GPU worker jobs requested; CPU job script:\n%s", s.jobs, s.gpu_jobs,
             cluster.job_script())
    return cluster


def kubernetes_cluster_spec(k: KubernetesConfig, env: dict | None = None) -> tuple[dict, dict | None]:
    """The ``DaskCluster`` resource (dask-kubernetes operator CRD) and the ``gpu`` worker-group spec (or None).

    Workers run ``dask worker`` in the heattrack image; the GPU group adds ``nvidia.com/gpu`` limits and
    ``--resources GPU=N`` so the autoencoder stage lands there."""
    from dask_kubernetes.operator import make_cluster_spec

    resources = {"requests": {"cpu": k.worker_cpu, "memory": k.worker_memory},
                 "limits": {"cpu": k.worker_cpu, "memory": k.worker_memory}}
    spec = make_cluster_spec(name=k.name, image=k.image, n_workers=k.workers, resources=resources,
                             env={**WORKER_ENV, **(env or {})}, worker_command="dask worker")
    containers = [spec["spec"]["worker"]["spec"]["containers"][0], spec["spec"]["scheduler"]["spec"]["containers"][0]]
    if k.env_from_secret:
        for c in containers:
            c["envFrom"] = [{"secretRef": {"name": k.env_from_secret}}]
    if k.namespace:
        spec["metadata"]["namespace"] = k.namespace
    gpu = None
    if k.gpu_workers:
        import copy

        gpu = copy.deepcopy(spec["spec"]["worker"])
        gpu["replicas"] = k.gpu_workers
        c = gpu["spec"]["containers"][0]
        c["resources"] = {"requests": dict(resources["requests"]),
                          "limits": {**resources["limits"], "nvidia.com/gpu": str(k.gpus_per_worker)}}
        c["args"] = [*c["args"], "--resources", f"GPU={k.gpus_per_worker}"]
    return spec, gpu


def _kubernetes_cluster(cfg: Config):
    from dask_kubernetes.operator import KubeCluster

    spec, gpu = kubernetes_cluster_spec(cfg.kubernetes, dask_config_env(worker_dask_config(cfg.compute)))
    cluster = KubeCluster(custom_cluster_spec=spec, namespace=cfg.kubernetes.namespace, shutdown_on_close=True)
    if gpu is not None:
        cluster.add_worker_group(name="gpu", custom_spec=gpu)
    return cluster


CLUSTER_BACKENDS: dict[str, Callable[[Config], object]] = {
    "local": _local_cluster, "slurm": _slurm_cluster, "kubernetes": _kubernetes_cluster}


@contextmanager
def make_client(cfg: Config | ComputeConfig) -> Iterator["distributed.Client"]:  # noqa: F821
    """Yield a connected ``distributed.Client`` for ``compute.scheduler``; closes what it created."""
    from distributed import Client

    if isinstance(cfg, ComputeConfig):
        cfg = Config(compute=cfg)
    # distributed configures its own loggers on import; keep them quiet unless heattrack is verbose
    quiet = logging.getLogger("heattrack").getEffectiveLevel() > logging.DEBUG
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core"):
        logging.getLogger(name).setLevel(logging.ERROR if quiet else logging.INFO)
    sched = cfg.compute.scheduler
    if sched.startswith(ADDRESS_PREFIXES) or sched.endswith(".json"):
        try:
            wait = cfg.compute.connect_timeout_s  # seconds
            client = (Client(scheduler_file=sched, timeout=wait) if sched.endswith(".json")
                      else Client(sched, timeout=wait))
        except OSError as exc:
            raise ConfigError(f"cannot connect to the Dask scheduler at {sched} ({exc})") from None
        try:
            yield client
        finally:
            client.close()
        return
    factory = CLUSTER_BACKENDS.get(sched)
    if factory is None:
        raise ConfigError(f"unknown scheduler {sched!r}: use one of {sorted(CLUSTER_BACKENDS)} or an address "
                          "like tcp://host:8786")
    try:
        cluster = factory(cfg)
    except (ImportError, FileNotFoundError) as exc:
        raise ConfigError(f"cannot start the {sched!r} cluster: {exc}") from None
    except RuntimeError as exc:  # e.g. "Nanny failed to start": most often a script without the __main__ guard
        if sched != "local":
            raise
        raise ConfigError(f"the LocalCluster's workers did not start ({exc}); if this is a script: "
                          f"{STARTING_WORKER_HINT.split(': ', 1)[1]}") from exc
    client = Client(cluster)
    log.info("Dask cluster %s with %d workers", sched, len(client.scheduler_info()["workers"]))
    try:
        yield client
    finally:
        client.close()
        cluster.close()
