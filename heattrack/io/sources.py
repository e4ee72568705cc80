"""The one protocol every imagery source implements (``local``, ``stac``, ``gee``, thermal rasters, downloads).

A source module offers a scene type (picklable: it travels to the workers inside the tile tasks) and a reader
on it. Planning (which scenes, which tiles) lives in :mod:`heattrack.orchestration.plan`, one planner per source
on a shared skeleton; reading goes through this protocol only, so the tile task does not know where its pixels
come from. Transient read errors are retried with :func:`heattrack.io.retry.with_retries`.

A new source: a module in ``heattrack/io/`` with a scene dataclass and a reader implementing
:class:`SceneReader`, a planner in ``orchestration/plan.py`` and its settings in ``config.py`` (see
docs/architecture.md).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from odc.geo.geobox import GeoBox

from heattrack.io.local import TileInputs


@runtime_checkable
class SceneReader(Protocol):
    """One date's imagery, read onto any GeoBox of the grid."""

    def read(self, geobox: GeoBox) -> TileInputs:
        """Preprocessed inputs on ``geobox`` (LST in K, reflectances, masks); raises ``InputError`` in one line
        when the data cannot be read after the retries."""
        ...

    def clear_fraction(self, geobox: GeoBox) -> float:
        """Share of ``geobox`` with clear thermal data (cheap: planning calls it on a coarse GeoBox)."""
        ...
