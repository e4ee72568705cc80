"""Cluster factory: ``compute.scheduler`` -> a Dask ``Client``.

Backends are looked up in ``CLUSTER_BACKENDS`` (name -> factory returning a cluster object); a value that
looks like an address (``tcp://``, ``tls://``, ``ucx://``, ``inproc://``) connects to an existing scheduler.
Slurm (dask-jobqueue) and Kubernetes (dask-kubernetes) register here as further backends.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from heattrack.config import ComputeConfig
from heattrack.errors import ConfigError

log = logging.getLogger(__name__)

ADDRESS_PREFIXES = ("tcp://", "tls://", "ucx://", "inproc://")


def _local_cluster(cfg: ComputeConfig):
    from distributed import LocalCluster

    n = cfg.n_workers or max(1, (os.cpu_count() or 1) // cfg.threads_per_worker)
    return LocalCluster(n_workers=n, threads_per_worker=cfg.threads_per_worker, processes=True,
                        memory_limit=cfg.memory_limit, dashboard_address=None)


CLUSTER_BACKENDS: dict[str, Callable[[ComputeConfig], object]] = {"local": _local_cluster}


@contextmanager
def make_client(cfg: ComputeConfig) -> Iterator["distributed.Client"]:  # noqa: F821
    """Yield a connected ``distributed.Client`` for ``cfg.scheduler``; closes what it created."""
    from distributed import Client

    # distributed configures its own loggers on import; keep them quiet unless heattrack is verbose
    quiet = logging.getLogger("heattrack").getEffectiveLevel() > logging.DEBUG
    for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core"):
        logging.getLogger(name).setLevel(logging.ERROR if quiet else logging.INFO)
    sched = cfg.scheduler
    if sched.startswith(ADDRESS_PREFIXES):
        try:
            client = Client(sched, timeout="20s")
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
    cluster = factory(cfg)
    client = Client(cluster)
    log.info("Dask cluster %s with %d workers", sched, len(client.scheduler_info()["workers"]))
    try:
        yield client
    finally:
        client.close()
        cluster.close()
