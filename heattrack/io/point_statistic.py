"""``point_statistic.npz``: the season's ranking statistic at every sample point of the pipe network.

Written beside ``segments.gpkg`` by runs ranked by a statistic (``detect.method`` residual or baseline), read by
next season's ``heattrack screen`` to tell where a segment warmed: the difference of the two seasons' point
values cancels the clutter that stays (roofs, roads), which the segments' own maxima do not. Arrays: ``x``, ``y``
(grid CRS, m), ``segment`` (index into ``segment_ids``), ``stat_k`` (float32, the mean over the season's dates;
NaN without clear data) and ``format_version``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from heattrack.errors import InputError

FORMAT_VERSION = 1
FILE_NAME = "point_statistic.npz"


@dataclass(frozen=True)
class PointStatistic:
    """One season's statistic at the network's sample points."""

    segment_ids: np.ndarray  # str, one per segment
    segment: np.ndarray  # int, per point: index into segment_ids
    x: np.ndarray
    y: np.ndarray
    stat_k: np.ndarray

    def same_points(self, other: "PointStatistic", tol_m: float = 0.01) -> bool:
        """True when both seasons sampled the same points of the same segments (same network, same spacing)."""
        return (len(self.x) == len(other.x) and np.array_equal(self.segment_ids, other.segment_ids)
                and np.array_equal(self.segment, other.segment) and bool(np.allclose(self.x, other.x, atol=tol_m))
                and bool(np.allclose(self.y, other.y, atol=tol_m)))


def write_point_statistic(dest: Path, stat: PointStatistic) -> None:
    """Uncompressed: the driver writes it once per run, and coordinates barely compress (600,000 points: 0.07 s
    for 16 MB against 0.86 s for 13 MB compressed, measured 2026-12-03)."""
    with open(dest, "wb") as f:
        np.savez(f, format_version=np.int64(FORMAT_VERSION), segment_ids=stat.segment_ids.astype(str),
                 segment=stat.segment.astype(np.int32), x=stat.x.astype(np.float64), y=stat.y.astype(np.float64),
                 stat_k=stat.stat_k.astype(np.float32))


def read_point_statistic(path: Path) -> PointStatistic | None:
    """The file's statistic; None when the run has none (an earlier version, or a 0-1 risk ranking); an
    :class:`InputError` naming the file when it is broken or of another format version."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            version = int(z["format_version"])
            if version != FORMAT_VERSION:
                raise InputError(f"{path}: format_version {version}, this heattrack reads {FORMAT_VERSION} (rerun that "
                                 "season with this version)")
            return PointStatistic(segment_ids=z["segment_ids"], segment=z["segment"].astype(np.int64), x=z["x"],
                                  y=z["y"], stat_k=z["stat_k"].astype(np.float64))
    except InputError:
        raise
    except Exception as exc:  # a truncated or foreign file
        raise InputError(f"{path}: not a heattrack point statistic ({str(exc).splitlines()[0]})") from None


__all__ = ["FILE_NAME", "PointStatistic", "read_point_statistic", "write_point_statistic"]
