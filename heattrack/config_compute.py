"""Where the work runs: the compute, Slurm and Kubernetes sections of the one :class:`heattrack.config.Config`
(none of them is part of the processing hash), and the base every section shares."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Section(BaseModel):
    """A config section: frozen, and unknown keys are refused (a typo must not pass silently)."""

    model_config = ConfigDict(frozen=True, extra="forbid")



class ComputeConfig(Section):
    """Where the Dask work runs (not part of the processing hash)."""

    scheduler: str = Field("local", description="'local' (a LocalCluster), 'slurm' (dask-jobqueue, see the slurm "
                           "section), 'kubernetes' (dask-kubernetes, see the kubernetes section) or the address of "
                           "a running scheduler tcp://host:port, or its scheduler file (*.json).")
    n_workers: int | None = Field(None, ge=1, description="LocalCluster workers (default: one per core).")
    threads_per_worker: int = Field(1, ge=1, description="Threads per LocalCluster worker process.")
    memory_limit: str = Field("auto", description="Per-worker memory limit of the LocalCluster.")
    worker_start: Literal["forkserver", "spawn"] = Field(
        "forkserver", description="How a LocalCluster starts its worker processes: forked from a server that imported "
        "the tile task's modules once (each worker gets this process's environment and working directory), or "
        "spawned (Dask's default: each worker imports them itself). Where Python has no fork server (Windows): "
        "spawned.")
    worker_profiling: bool = Field(False, description="Dask's own instrumentation of the workers at Dask's defaults: "
                                   "its statistical profiler (a stack sample of every task thread each 10 ms, the "
                                   "dashboard's Profile page) and a 20 ms event-loop tick. Off (the default): no "
                                   "profiler and a 1 s tick, the tile tasks ~5-10 % faster (docs/performance.md); "
                                   "on: to profile a run on the dashboard. Workers heattrack starts (LocalCluster, "
                                   "Slurm jobs, Kubernetes pods); an existing scheduler's workers keep theirs.")
    retries: int = Field(2, ge=0, description="Retries of a failed tile task.")
    worker_timeout_s: float | None = Field(None, gt=0, description="Fail the run when no Dask worker has joined "
                                           "after this long (s); None = wait (queued Slurm jobs can take hours; "
                                           "the wait is logged).")
    connect_timeout_s: float = Field(20.0, gt=0, description="How long to try to reach an existing scheduler "
                                     "(compute.scheduler: an address or a scheduler file) before the run fails with "
                                     "one line (s).")
    torch_threads: int = Field(1, ge=1, description="torch CPU threads per tile task (Dask parallelises "
                               "over tiles; more threads per task oversubscribe the cores).")
    max_nan_fraction: float = Field(0.999, ge=0, le=1, description="Fail the run when a larger share of the "
                                    "processed pixels has no valid LST.")
    plan_tile_mpx_s: float = Field(1.0, gt=0, description="`run --dry-run` time estimate: tile pixels per "
                                   "second per worker, in millions (all tile tasks, first tiles and injection tests "
                                   "included: benchmarks/scale.py at 48 km on 2 cores, 2026-12-05 16:13 UTC: 1.04; "
                                   "steady tiles 1.1; re-measure on your nodes).")
    plan_driver_s: float = Field(1.2, ge=0, description="`run --dry-run` time estimate: the driver's fixed time "
                                 "after the tiles (reduction, exports, report; benchmarks/scale.py fit, 2026-12-05 "
                                 "16:13 UTC: 1.20 s).")
    plan_driver_s_per_tile: float = Field(0.0, ge=0, description="`run --dry-run` time estimate: the driver's "
                                          "time per tile (records, overviews, VRT entries; none measurable: "
                                          "benchmarks/results/scale_tiles.json, 2026-12-03).")
    plan_driver_s_per_km: float = Field(0.0005, ge=0, description="`run --dry-run` time estimate: the driver's time "
                                        "per km of pipe (segment table, vectors, report figures and map data grow "
                                        "with the network, not with the AOI; benchmarks/scale.py fit, 2026-12-05 "
                                        "16:13 UTC: 0.50 ms).")
    plan_cog_mpx_s: float = Field(6.0, gt=0, description="`run --dry-run` time estimate: AOI pixels per second of "
                                  "the single-process COGs, in millions (only runs up to "
                                  "report.single_cog_max_mpx write them).")


class SlurmConfig(Section):
    """`compute.scheduler: slurm`: dask-jobqueue SLURMCluster (each Slurm job = one Dask worker process).
    Not part of the processing hash."""

    queue: str | None = Field(None, description="Partition of the CPU worker jobs (sbatch -p).")
    account: str | None = Field(None, description="Account charged (sbatch -A).")
    cores: int = Field(8, ge=1, description="Cores per worker job.")
    memory: str = Field("32GB", description="Memory per worker job.")
    processes: int = Field(1, ge=1, description="Dask worker processes per job (cores are split among them).")
    walltime: str = Field("02:00:00", description="Walltime of each worker job.")
    jobs: int = Field(4, ge=0, description="CPU worker jobs (fixed scaling) or the maximum (adaptive).")
    adaptive: bool = Field(False, description="Scale between min_jobs and jobs with the queue of tiles.")
    min_jobs: int = Field(1, ge=0, description="Fewest CPU worker jobs when adaptive.")
    lifetime: str | None = Field("110m", description="Workers retire after this (before walltime) so Dask "
                                 "moves their tasks elsewhere; None = until walltime.")
    lifetime_stagger: str = Field("5m", description="Random spread of the lifetimes, so workers do not all "
                                  "retire at once.")
    job_extra_directives: list[str] = Field(default_factory=list, description="Extra #SBATCH lines, e.g. "
                                            "['--qos=normal', '--constraint=intel'].")
    job_script_prologue: list[str] = Field(default_factory=list, description="Shell lines run before the worker "
                                           "starts (module load, source .venv/bin/activate).")
    python: str | None = Field(None, description="Python of the worker jobs (e.g. 'apptainer exec heattrack.sif "
                               "python'); None = the driver's.")
    interface: str | None = Field(None, description="Network interface of workers/scheduler (e.g. ib0).")
    local_directory: str | None = Field(None, description="Worker scratch space on the compute nodes.")
    log_directory: str | None = Field(None, description="Folder for the worker jobs' Slurm logs.")
    gpu_jobs: int = Field(0, ge=0, description="Extra worker jobs with GPUs (autoencoder stage; worker "
                          "resource GPU=gpus_per_job).")
    gpus_per_job: int = Field(1, ge=1, description="GPUs per GPU worker job (--gres=gpu:N).")
    gpu_queue: str | None = Field(None, description="Partition of the GPU jobs (None = queue).")

    @field_validator("lifetime", "lifetime_stagger")
    @classmethod
    def _dask_duration(cls, v: str | None) -> str | None:
        """``dask worker --lifetime`` takes one number and unit ('110m', '2h', '300s'); '1h50m' makes every
        worker job fail at start, so it is refused here."""
        if v is None:
            return v
        from dask.utils import parse_timedelta

        try:
            parse_timedelta(v)
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{v!r} is not a Dask duration: use one number and unit, e.g. '110m', '2h', "
                             "'300s'") from None
        return v


class KubernetesConfig(Section):
    """`compute.scheduler: kubernetes`: a dask-kubernetes operator KubeCluster created from the run's pod.
    Not part of the processing hash."""

    name: str = Field("heattrack", description="DaskCluster resource name.")
    namespace: str | None = Field(None, description="Namespace (None: the pod's own).")
    image: str = Field("ghcr.io/heattrack/heattrack:0.1.0", description="Worker/scheduler image (the same "
                       "image as the CronJob's).")
    workers: int = Field(4, ge=0, description="CPU workers (default worker group).")
    worker_cpu: str = Field("2", description="CPU request/limit per worker.")
    worker_memory: str = Field("8Gi", description="Memory request/limit per worker.")
    gpu_workers: int = Field(0, ge=0, description="Workers of the 'gpu' worker group (nvidia.com/gpu limit, "
                             "Dask resource GPU).")
    gpus_per_worker: int = Field(1, ge=1, description="GPUs per GPU worker.")
    env_from_secret: str | None = Field(None, description="Secret whose keys become worker environment "
                                        "variables (S3 / Earth Engine credentials).")
