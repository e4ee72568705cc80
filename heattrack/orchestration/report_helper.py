"""The report's jobs made on Dask workers while the driver writes the exports and the web map.

After the tiles, the driver's finalisation (reduction, exports, web map, figures) is the run's serial part: the
part that no number of workers shortens (Amdahl; ``benchmarks/scale.py``). The figures and the map's network layer need
only arrays and tables (:class:`heattrack.report.figure_job.FigureInputs`, the segments), so :class:`ReportHelper`
sends them to workers that are already warm: once a worker has run out of tiles (while the others finish theirs),
a task imports matplotlib and draws a throw-away figure on each of up to :func:`report_workers` workers, and the jobs
are dealt out to them: with one, the figures as one job (the driver makes the network layer); with more, three groups of
figures and the network layer (:func:`heattrack.report.page.start_report`; at 48 km ~8 MB and ~30 ms of pickling per
job). The PNG bytes and the layer's text come back to the driver, which writes them: remote workers (Slurm,
Kubernetes) never need the driver's folder. Without a cluster, or if a worker fails or does not answer, the driver
makes that job itself. Measured part by part (``benchmarks/report_jobs.py``, 2026-12-07): after the reduction, the
report's share of the driver's critical path at 48 km is 1.58 s with one worker and 0.87 s with four (12 km: 1.11
and 0.56 s).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Future
from uuid import uuid4

from heattrack.config import ComputeConfig

log = logging.getLogger(__name__)


def report_workers(compute: ComputeConfig) -> int:
    """How many workers a run's report may keep busy side by side after the tiles (0: the driver makes it all). On
    Slurm, Kubernetes or an existing scheduler :attr:`ReportHelper.parallel` (their workers have cores of their own);
    on a LocalCluster the machine's cores but the one the driver writes the exports on, at most its workers: on 2 cores
    one worker draws the figures while the driver writes the exports and the map (measured at 48 km on 2 cores,
    docs/performance.md: the finalisation 0.76x the time with one worker; two workers and the driver on two cores were
    no faster than one, 2026-12-07)."""
    if compute.scheduler != "local":
        return ReportHelper.parallel
    from heattrack.orchestration.cluster import local_worker_count

    return max(0, min(ReportHelper.parallel, local_worker_count(compute), (os.cpu_count() or 1) - 1))


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
    (warm-up) or ``figures_timeout_s`` (a job; a lost worker, a cluster scaled to zero) is not waited for longer: the
    driver makes that job itself. The report's jobs (three groups of figures and the map's network layer) are dealt
    out in turn to up to ``parallel`` warmed workers; the cluster is released (``on_done``) once every job's result
    was taken: all of them are submitted before the first ``result()`` (:func:`heattrack.report.page.start_report`)."""

    warm_timeout_s = 30.0
    figures_timeout_s = 300.0
    #: workers warmed for the report: its four jobs, one each (what that leaves of the driver's critical path:
    #: ``benchmarks/report_jobs.py``, docs/performance.md)
    parallel = 4

    def __init__(self, on_done: Callable[[], None] | None = None, workers: int | None = None) -> None:
        if workers is not None:  # at most this many warmed (report_workers), else the class's ``parallel``
            self.parallel = max(1, int(workers))
        self._client = None
        self._warm: list = []  # the warm-up futures, one per worker asked
        self._workers: list[str] | None = None  # the warmed workers' addresses, once known
        self._next = 0  # the next job goes to self._workers[self._next % len]
        self._open = 0  # jobs submitted whose result was not taken yet
        self._on_done = on_done  # called once, when the cluster is no longer needed for the report

    def counting(self, client, n_tiles: int, on_done: Callable | None = None) -> Callable:
        """A tile callback (wrapping ``on_done``) that starts the warm-up once fewer tiles are left running than the
        cluster has workers: then a worker is idle. (A low Dask priority does not keep it behind the tiles: a lone
        task is not queued at the scheduler, and a worker runs it in any gap between two tiles.)"""
        left = [n_tiles]

        def on_tile(outcome) -> None:
            left[0] -= 1
            if not self._warm and left[0] < max(len(client.scheduler_info().get("workers", {})), 1):
                self.start(client)
            if on_done is not None:
                on_done(outcome)

        if n_tiles == 0:
            self._client = client
        return on_tile

    def start(self, client) -> None:
        """Warm up to ``parallel`` workers, the least busy first (the idle one, then those still on their last tile:
        each warms once its tile is done)."""
        self._client = client
        try:
            busy = client.processing()
        except Exception as exc:  # noqa: BLE001 - the warm-up is an optimisation: one worker, wherever it lands
            log.debug("asking the scheduler which workers are busy failed: %s", exc)
            busy = {}
        order = sorted(busy, key=lambda w: len(busy[w]))[: self.parallel] or [None]
        # pinned: a loose restriction lets the scheduler hand a busy worker's warm-up to the idle one, which would then
        # be warmed twice and the other not at all (seen in tests/test_end_to_end.py)
        self._warm = [client.submit(warm_worker, key=f"heattrack-warm-report-{uuid4().hex[:8]}", pure=False,
                                    **({"workers": [w], "allow_other_workers": False} if w else {})) for w in order]

    #: after the first warm-up has answered, how long the others are waited for (a worker gone since: not long)
    more_timeout_s = 5.0

    def _warm_workers(self) -> list[str]:
        """The addresses of the workers whose warm-up answered (the first within ``warm_timeout_s``, the others within
        ``more_timeout_s`` more), each once."""
        if self._workers is None:
            deadline = time.monotonic() + self.warm_timeout_s
            self._workers = []
            for fut in self._warm:
                if self._workers:
                    deadline = min(deadline, time.monotonic() + self.more_timeout_s)
                try:
                    address = fut.result(timeout=max(0.0, deadline - time.monotonic()))
                except Exception as exc:  # noqa: BLE001 - any worker does; the jobs' own errors still raise
                    log.debug("warming a worker for the report failed: %s", exc)
                    continue
                if address not in self._workers:
                    self._workers.append(address)
        return self._workers

    @property
    def workers(self) -> int:
        """How many of the report's jobs run side by side: the warmed workers (1 without a cluster; waits for the
        warm-up, as :meth:`submit` does)."""
        return max(1, len(self._warm_workers())) if self._client is not None else 1

    def submit(self, fn: Callable, *args):
        """``fn(*args)`` on the next warm worker (any worker if none warmed; here without a cluster); returns an object
        whose ``result()`` is the value, made here if the worker fails."""
        if self._client is None:
            return _here(fn, *args)
        workers = self._warm_workers()
        target = [workers[self._next % len(workers)]] if workers else None
        where = {"workers": target, "allow_other_workers": True} if target else {}
        self._next += 1
        name = getattr(fn, "__name__", "job").strip("_").replace("_", "-")
        data = self._scattered(args, target)
        fut = self._client.submit(fn, *data, key=f"heattrack-report-{name}-{uuid4().hex[:8]}", pure=False, **where)
        self._open += 1
        return _OrHere(fut, fn, args, self._job_done, self.figures_timeout_s, data)

    def _scattered(self, args: tuple, workers: list[str] | None) -> list:
        """The job's inputs sent to its worker as data (futures), not inside the task's graph: the ranked segments and
        the risk view are ~12 MB at 48 km, and a graph goes through the scheduler in one message (Dask warns from
        10 MB). Where scattering fails, the inputs as they are."""
        if not args:
            return []
        try:
            return self._client.scatter(list(args), workers=workers, hash=False)
        except Exception as exc:  # noqa: BLE001 - the graph carries them then, as before
            log.debug("scattering the report's inputs failed: %s", exc)
            return list(args)

    __call__ = submit  # the report's ``submit`` (heattrack.report.page.Submit): the helper itself

    def _job_done(self) -> None:
        self._open -= 1
        if self._open <= 0:
            self._finished()

    def _finished(self) -> None:
        for fut in self._warm:
            fut.release()
        self._warm = []
        self._client = None
        on_done, self._on_done = self._on_done, None
        if on_done is not None:
            on_done()

    #: how long a warm-up still running when the run ends is let finish (a failed run: a warm-up cut off by the
    #: cluster's close makes its worker log a CancelledError warning under the run's one-line error)
    settle_timeout_s = 3.0

    def release(self) -> None:
        """The report is written (or the run failed): nothing more goes to the cluster."""
        deadline = time.monotonic() + self.settle_timeout_s  # all of them together: a lost worker costs it once
        for fut in self._warm:
            if not fut.done():
                try:
                    fut.result(timeout=max(0.0, deadline - time.monotonic()))
                except Exception as exc:  # noqa: BLE001 - only waited for, its outcome is not needed
                    log.debug("a report warm-up did not settle: %s", exc)
        self._finished()


def _here(fn: Callable, *args) -> Future:
    done: Future = Future()
    done.set_result(fn(*args))
    return done


class _OrHere:
    """A Dask future whose ``result()`` is computed here instead when the worker could not deliver it; ``then()``
    once the worker's part is over."""

    def __init__(self, fut, fn: Callable, args: tuple, then: Callable[[], None], timeout_s: float,
                 data: list | None = None):
        self._fut, self._fn, self._args, self._then, self._timeout_s = fut, fn, args, then, timeout_s
        self._data = data or []  # the inputs' futures (scattered), released with the job

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
            for d in self._data:
                if hasattr(d, "release"):
                    d.release()
            self._fut = None
            self._then()
