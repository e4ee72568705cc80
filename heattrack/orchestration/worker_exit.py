"""A LocalCluster worker process that has finished leaves without tearing down its interpreter.

A worker that has run tile tasks takes ~0.75 s to exit (Python's finalisation of numba, GDAL, zarr's threads and a
600 MB heap); the LocalCluster's close waits for it, and on a 2-core machine that teardown competes with the
driver's reduction and report. By then the worker has closed (every task's outputs are written and closed inside the
task; nothing is buffered), so the last step is skipped: logging flushed, then ``os._exit(0)``
(``multiprocessing`` ends its forked children the same way).
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import sys

from distributed.diagnostics.plugin import WorkerPlugin


def _exit_now() -> None:
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed or replaced streams: nothing left to flush
            pass
    os._exit(0)


class QuickExit(WorkerPlugin):
    """Registers :func:`_exit_now` at exit of the worker's process (it runs before the handlers registered when the
    process imported its modules: ``atexit`` calls the last registered first)."""

    name = "heattrack-quick-exit"

    def setup(self, worker) -> None:
        if multiprocessing.parent_process() is not None:  # a worker process of its own, never the driver's process
            atexit.register(_exit_now)


__all__ = ["QuickExit"]
