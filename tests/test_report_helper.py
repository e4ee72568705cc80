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
    assert helper._warm is None  # a tile still running: the worker is busy
    on_tile("tile 3")
    assert seen == ["tile 1", "tile 2", "tile 3"] and helper._warm is not None
    warmed = helper._warm.result()
    assert warmed == next(iter(client.scheduler_info()["workers"]))
    assert helper.submit(_where).result() == warmed
    assert helper._warm is None  # released with the figures' result


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


def test_the_figures_go_to_a_worker_wherever_the_driver_has_a_second_core(monkeypatch):
    from heattrack.config import ComputeConfig
    from heattrack.orchestration.report_helper import figures_on_a_worker

    monkeypatch.setattr(rh.os, "cpu_count", lambda: 2)
    assert figures_on_a_worker(ComputeConfig(scheduler="slurm"))
    assert figures_on_a_worker(ComputeConfig(scheduler="tcp://10.0.0.1:8786"))
    assert figures_on_a_worker(ComputeConfig())  # a LocalCluster of one worker per core: idle after the tiles
    assert figures_on_a_worker(ComputeConfig(n_workers=1, threads_per_worker=2))
    monkeypatch.setattr(rh.os, "cpu_count", lambda: 1)
    assert not figures_on_a_worker(ComputeConfig())  # one core: the driver draws
    assert figures_on_a_worker(ComputeConfig(scheduler="kubernetes"))
