"""The report's figures drawn on a Dask worker (orchestration.report_helper): on the worker warmed once it had no
tile left, back here when the worker fails, and with a single release of the cluster."""

import logging

import pytest
from distributed import Client, LocalCluster, get_worker

import heattrack.orchestration.report_helper as rh
from heattrack.orchestration.report_helper import ReportHelper


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


def _where() -> str:
    return get_worker().address


def _fails_on_a_worker() -> str:
    try:
        get_worker()
    except ValueError:  # not on a worker
        return "drawn here"
    raise RuntimeError("no fonts on this worker")


def test_a_worker_is_warmed_once_it_has_no_tile_left_and_the_figures_go_to_it(client):
    helper = ReportHelper()
    seen = []
    on_tile = helper.counting(client, 3, seen.append)  # one worker in this cluster
    on_tile("tile 1")
    on_tile("tile 2")
    assert not helper._warm  # a tile still running: the worker is busy
    on_tile("tile 3")
    assert seen == ["tile 1", "tile 2", "tile 3"] and len(helper._warm) == 1  # one worker: warmed once
    warmed = helper._warm[0].result()
    assert warmed == next(iter(client.scheduler_info()["workers"]))
    assert helper.submit(_where).result() == warmed
    assert helper._warm == []  # released with the figures' result


def test_a_failure_on_the_worker_draws_here_and_releases_the_cluster_once(client, caplog):
    released = []
    helper = ReportHelper(on_done=lambda: released.append(1))
    helper.start(client)
    with caplog.at_level(logging.WARNING, logger=rh.__name__):
        assert helper.submit(_fails_on_a_worker).result() == "drawn here"
    assert "no fonts on this worker" in caplog.text and released == [1]
    helper.release()
    assert released == [1]


def test_without_a_cluster_the_figures_are_drawn_here():
    released = []
    helper = ReportHelper(on_done=lambda: released.append(1))
    assert helper.submit(_fails_on_a_worker).result() == "drawn here"
    helper.release()
    assert released == [1]


def _slow() -> str:
    import time

    try:
        get_worker()
    except ValueError:
        return "drawn here"
    time.sleep(3)
    return "drawn on the worker"


def test_a_worker_that_does_not_answer_in_time_is_not_waited_for(client, caplog):
    helper = ReportHelper()
    helper.figures_timeout_s = 0.5
    helper.start(client)
    with caplog.at_level(logging.WARNING, logger=rh.__name__):
        assert helper.submit(_slow).result() == "drawn here"
    assert "could not be drawn on a worker" in caplog.text


def test_the_report_uses_the_workers_that_have_cores_of_their_own(monkeypatch):
    from heattrack.config import ComputeConfig
    from heattrack.orchestration.report_helper import report_workers

    monkeypatch.setattr(rh.os, "cpu_count", lambda: 2)
    assert report_workers(ComputeConfig(scheduler="slurm")) == ReportHelper.parallel == 4
    assert report_workers(ComputeConfig(scheduler="tcp://10.0.0.1:8786")) == 4
    assert report_workers(ComputeConfig(scheduler="kubernetes")) == 4
    assert report_workers(ComputeConfig()) == 1  # two workers on two cores: one, the driver keeps the other
    assert report_workers(ComputeConfig(n_workers=1, threads_per_worker=2)) == 1
    monkeypatch.setattr(rh.os, "cpu_count", lambda: 1)
    assert report_workers(ComputeConfig()) == 0  # one core: the driver makes it all
    monkeypatch.setattr(rh.os, "cpu_count", lambda: 16)
    assert report_workers(ComputeConfig()) == 4 and report_workers(ComputeConfig(n_workers=2)) == 2


def _slow_where(seconds: float) -> str:
    import time

    time.sleep(seconds)
    return get_worker().address


def test_the_jobs_are_dealt_out_to_the_warmed_workers_and_the_cluster_released_after_the_last():
    """Two idle workers: both warmed, four jobs two to each in turn (so they run side by side), the cluster released
    once, when the last job's result is taken."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        released = []
        helper = ReportHelper(on_done=lambda: released.append(1))
        helper.start(c)
        assert len(helper._warm) == 2
        jobs = [helper.submit(_slow_where, 0.2) for _ in range(4)]
        where = [j.result() for j in jobs[:3]]
        assert released == []  # a job still out
        where.append(jobs[3].result())
        assert released == [1] and helper._warm == []
        workers = sorted(c.scheduler_info()["workers"])
        assert where[0] != where[1] and where[:2] == where[2:] and sorted(where[:2]) == workers


def test_a_worker_still_on_its_last_tile_is_warmed_too_once_it_is_free():
    """One worker idle, the other busy: each gets its own warm-up (pinned: the idle one must not take both)."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        busy, idle = sorted(c.scheduler_info()["workers"])
        tile = c.submit(_slow_where, 1.0, workers=[busy], allow_other_workers=False, pure=False)
        import time

        deadline = time.monotonic() + 10
        while not c.processing().get(busy) and time.monotonic() < deadline:
            time.sleep(0.01)
        helper = ReportHelper()
        helper.start(c)
        assert sorted(helper._warm_workers()) == [busy, idle] and helper.workers == 2
        assert tile.result() == busy
        helper.release()


def _size(data: bytes) -> int:
    return len(data)


def test_a_job_s_inputs_go_to_its_worker_as_data_not_inside_the_graph(client):
    """The report's inputs (the ranked segments, the risk view: ~12 MB at 48 km) are scattered to the job's worker:
    inside the task's graph they would go through the scheduler in one message, and Dask warns from 10 MB."""
    import warnings

    helper = ReportHelper()
    helper.start(client)
    big = b"x" * 12_000_000
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Sending large graph")
        assert helper.submit(_size, big).result() == len(big)
    helper.release()
