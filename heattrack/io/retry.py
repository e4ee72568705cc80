"""One retry helper for every source: a call retried with exponential backoff on the errors that may pass."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


def with_retries(fn: Callable[[], T], *, attempts: int, backoff_s: float, what: str,
                 on_give_up: Callable[[Exception], Exception], retry_if: Callable[[Exception], bool] = lambda e: True,
                 sleep: Callable[[float], None] | None = None) -> T:
    """``fn()``; an exception for which ``retry_if`` holds is retried ``attempts - 1`` times after
    ``backoff_s``, ``2 backoff_s``, ...; the last one (or one not worth retrying) is replaced by
    ``on_give_up(exc)`` (a one-line :class:`~heattrack.errors.InputError`, typically)."""
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as exc:  # GDAL, HTTP and service errors come in many types
            if attempt + 1 >= attempts or not retry_if(exc):
                raise on_give_up(exc) from None
            delay = backoff_s * 2**attempt
            log.warning("%s failed (%s); retry %d/%d in %.1f s", what, type(exc).__name__, attempt + 1, attempts - 1,
                        delay)
            (sleep or time.sleep)(delay)  # looked up per call: tests patch time.sleep
    raise AssertionError("unreachable")


def first_line(exc: Exception, limit: int = 200) -> str:
    """An exception's first line (its type when it has no message), for one-line errors."""
    return str(exc).splitlines()[0][:limit] if str(exc) else type(exc).__name__
