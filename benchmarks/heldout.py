"""What the held-out benchmarks (family, sensors, changes) share: the simulator-family members they report on
(100 and up; the defaults were tuned on 0-7) and a workspace with one Dask client for all their runs."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from heattrack.config import load_config
from heattrack.orchestration.cluster import make_client

FIRST_HELD_OUT = 100


def heldout_parser(doc: str, n_members: int) -> argparse.ArgumentParser:
    """``--members`` (default: the first ``n_members`` held-out ones), ``--size-km`` and ``--json``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--members", type=int, nargs="+", default=list(range(FIRST_HELD_OUT, FIRST_HELD_OUT + n_members)))
    ap.add_argument("--size-km", type=float, default=6.0)
    ap.add_argument("--json", type=Path, default=None)
    return ap


@contextmanager
def workspace(keep: Path | None = None) -> Iterator[tuple[Path, object]]:
    """A folder for the scenes and runs (``keep``, else a temporary one) and a Dask client on the default cluster."""
    with tempfile.TemporaryDirectory() as tmp, make_client(load_config(None, {}).compute) as client:
        yield Path(keep or tmp), client
