"""The report's figures drawn on a Dask worker while the driver writes the exports and the web map.

After the tiles, the driver's finalisation (reduction, exports, web map, figures) is the run's serial part: the
part that no number of workers shortens (Amdahl; ``benchmarks/scale.py``). The figures need only arrays and tables
(:class:`heattrack.report.figure_job.FigureInputs`), so :class:`ReportHelper` sends them to a worker that is
already warm: once a worker has run out of tiles (while the others finish theirs), a task imports matplotlib and
draws a throw-away figure there, and the figures go to that worker. The PNG bytes come back to the driver, which
writes them: remote workers (Slurm, Kubernetes) never need the driver's folder. Without a cluster, or if the worker
fails or does not answer, the driver draws them itself. A run uses it where a worker has a core the driver is not
using (:func:`figures_on_a_worker`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import Future
from uuid import uuid4

from heattrack.config import ComputeConfig

log = logging.getLogger(__name__)


def figures_on_a_worker(compute: ComputeConfig) -> bool:
    """Whether a run draws its report's figures on a worker: on Slurm, Kubernetes or an existing scheduler (the
    workers have cores of their own), and on a LocalCluster where the machine has a second core: after the tiles
    the workers are idle, so one draws while the driver writes the exports and the web map. Measured at 48 km on 2
    cores (docs/performance.md): with one worker the finalisation took 0.76x the time; with two workers (the
    default; the figures handed over before the exports, the map's thumbnails with them) ~0.8x, the run 0.95x."""
    if compute.scheduler != "local":
        return True
    return (os.cpu_count() or 1) > 1


def warm_worker() -> str:
    """On a worker: the report's imports and matplotlib's first-figure costs (~0.6 s once per process); returns
    the worker's address."""
    from distributed import get_worker

    from heattrack.report import figures

    figures.warm_up()
    return get_worker().address


class ReportHelper:
    """:meth:`counting` wraps the run's tile callback; ``submit`` is :func:`heattrack.report.build_report`'s
    ``submit``; ``release()`` when the report is written. A worker that does not answer within ``warm_timeout_s``
    (warm-up) or ``figures_timeout_s`` (figures; a lost worker, a cluster scaled to zero) is not waited for longer: the
    driver draws the figures itself."""

    warm_timeout_s = 30.0
    figures_timeout_s = 300.0

    def __init__(self, on_done: Callable[[], None] | None = None) -> None:
        self._client = None
        self._warm = None
        self._on_done = on_done  # called once, when the cluster is no longer needed for the report

    def counting(self, client, n_tiles: int, on_done: Callable | None = None) -> Callable:
        """A tile callback (wrapping ``on_done``) that starts the warm-up once fewer tiles are left running than the
        cluster has workers: then a worker is idle, and the scheduler gives the warm-up to the least busy one. (A
        low Dask priority does not keep it behind the tiles: a lone task is not queued at the scheduler, and a
        worker runs it in any gap between two tiles.)"""
        left = [n_tiles]

        def on_tile(outcome) -> None:
            left[0] -= 1
            if self._warm is None and left[0] < max(len(client.scheduler_info().get("workers", {})), 1):
                self.start(client)
            if on_done is not None:
                on_done(outcome)

        if n_tiles == 0:
            self._client = client
        return on_tile

    def start(self, client) -> None:
        self._client = client
        self._warm = client.submit(warm_worker, key=f"heattrack-warm-report-{uuid4().hex[:8]}", pure=False)

    def _warm_worker(self) -> str | None:
        try:
            return self._warm.result(timeout=self.warm_timeout_s) if self._warm is not None else None
        except Exception as exc:  # noqa: BLE001 - any worker does; the figures' own errors still raise
            log.debug("warming a worker for the report failed: %s", exc)
            return None

    def submit(self, fn: Callable, *args):
        """``fn(*args)`` on the warm worker (any worker if none warmed; here without a cluster); returns an object
        whose ``result()`` is the value, drawn here if the worker fails."""
        if self._client is None:
            return _here(fn, *args)
        worker = self._warm_worker()
        where = {"workers": [worker], "allow_other_workers": True} if worker else {}
        fut = self._client.submit(fn, *args, key=f"heattrack-report-figures-{uuid4().hex[:8]}", pure=False, **where)
        return _OrHere(fut, fn, args, self._finished, self.figures_timeout_s)

    def _finished(self) -> None:
        if self._warm is not None:
            self._warm.release()
            self._warm = None
        self._client = None
        on_done, self._on_done = self._on_done, None
        if on_done is not None:
            on_done()

    def release(self) -> None:
        """The report is written (or the run failed): nothing more goes to the cluster."""
        self._finished()


def _here(fn: Callable, *args) -> Future:
    done: Future = Future()
    done.set_result(fn(*args))
    return done


class _OrHere:
    """A Dask future whose ``result()`` is computed here instead when the worker could not deliver it; ``then()``
    once the worker's part is over."""

    def __init__(self, fut, fn: Callable, args: tuple, then: Callable[[], None], timeout_s: float):
        self._fut, self._fn, self._args, self._then, self._timeout_s = fut, fn, args, then, timeout_s

    def result(self):
        try:
            return self._fut.result(timeout=self._timeout_s)
        except Exception as exc:  # noqa: BLE001 - drawn here: a real error in the figures raises again here
            log.warning("the report's figures could not be drawn on a worker (%s): drawing them here",
                        str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__)
            self._release()
            return self._fn(*self._args)
        finally:
            self._release()

    def _release(self) -> None:
        if self._fut is not None:
            self._fut.release()
            self._fut = None
            self._then()
