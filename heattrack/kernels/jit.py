"""Compiled loops for the kernels: numba where it is installed, compiled on first use and cached on disk.

:func:`compiled` returns the numba version of a plain-Python loop function, or None where numba is missing (the
caller then runs its NumPy path: same results, slower). The cache goes to ``NUMBA_CACHE_DIR`` (the container
images set it) or beside the module; where neither can be written the function compiles once per process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable


@functools.cache
def compiled(fn: Callable) -> Callable | None:
    """``fn`` compiled by numba (``nogil``: Dask worker threads run it in parallel), or None without numba."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency; the fallback keeps a broken install working
        return None
    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # no writable cache location (read-only image without NUMBA_CACHE_DIR): compile per process
        return numba.njit(nogil=True)(fn)


__all__ = ["compiled"]
