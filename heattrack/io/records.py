"""Records that cross a process or a file: typed, frozen, versioned, and the owners of their JSON.

- :class:`TileSummary`: what a tile task reports (written by the worker into its tile record, read by the
  reduction and copied into ``run.json``);
- :class:`RunRecord`: ``run.json``, the completion mark of a run (``status: ok``) or its failure report;
- :class:`DownloadIndex`: ``download.json`` of ``heattrack download``, read by ``run``/``screen`` on that folder.

Readers fail loudly, in one line, on a missing field, an unknown field or another format version. Free-form
blocks (a source's inputs, the sharpener's decision, detectability) stay dicts inside the typed record.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from heattrack.errors import InputError

FORMAT_VERSION = 1


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def format_versions(cls) -> tuple[int, ...]:
        """The ``format_version`` values this class reads: those its ``format_version`` field allows (a record whose
        format grew lists its earlier ones too)."""
        field = cls.model_fields.get("format_version")
        return get_args(field.annotation) if field is not None else (FORMAT_VERSION,)

    @classmethod
    def from_json(cls, text: str | bytes, where: str):
        """Parse ``text``; :class:`InputError` naming ``where`` and the first problem when it does not fit."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError(f"{where}: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise InputError(f"{where}: not a JSON object")
        version = data.get("format_version")
        if version not in cls.format_versions():
            raise InputError(f"{where}: format_version {version!r}, this heattrack reads "
                             f"{' or '.join(map(str, cls.format_versions()))} (written by another heattrack version: "
                             "rerun it with this one)")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            e = exc.errors()[0]
            loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
            raise InputError(f"{where}: {loc}: {e['msg']} ({len(exc.errors())} problem(s))") from None

    @classmethod
    def load(cls, path: Path):
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path} does not exist")
        return cls.from_json(path.read_text(), str(path))

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)


class TileSummary(Record):
    """One finished tile: clear pixels, pipe points, hotspots, timings, the sharpener's decision per date."""

    format_version: Literal[1] = FORMAT_VERSION
    tile: str
    valid_fraction: float
    n_valid: int
    n_points: int
    n_hotspots: int
    seconds: dict[str, float]
    pixels: int
    max_rss_mb: float | None
    worker: str | None
    sharpen: dict[str, Any]
    coregistration: dict[str, Any] | None
    dates: list[dict[str, Any]]
    #: how many tiles this worker process had computed before this one (0: its first, which pays the process's
    #: imports and the compiled kernels' loading, ~2 s; benchmarks/scale.py reports the steady rate without them)
    process_task_index: int | None = None


class GridInfo(Record):
    crs: str
    tile_px: int
    resolution_m: float
    n_tiles: int | None = None


class NetworkSignature(Record):
    """Identity of a pipe-network version: seasons compare segment by segment only when these agree."""

    n_segments: int
    sha256: str


class PreviousSeason(Record):
    folder: str
    season: str | None
    processing_hash: str | None


class ChangeSummary(Record):
    """``changes.json`` beside ``changes.geojson`` (``heattrack screen``): how the change classes were decided and
    how many of the ``new`` segments are expected to be false (the warming rule's seasons-swapped estimate, or the
    previous rule's Benjamini-Hochberg bound)."""

    format_version: Literal[1] = FORMAT_VERSION
    previous_season: str | None = None
    rule: Literal["warming", "fdr", "risk"]
    pipe_km: float
    segment_new: int
    new_z: float | None = None
    fdr_q: float | None = None
    estimated_false_new: int | None = None
    estimated_false_new_per_100km: float | None = None
    #: the warming rule: how much a segment's points had to warm (K of the ranking statistic, smoothed over the
    #: network) to be called ``new`` this season (the network's median + new_z x 1.4826 x MAD)
    new_warming_k: float | None = None
    #: the warming rule's threshold this season (network z): the lower of ``new_z`` and the level at which the fitted
    #: tail of the network's warming expects ``false_new_per_100km_target`` segments per 100 km of pipe
    new_z_used: float | None = None
    false_new_per_100km_target: float | None = None
    #: the fitted tail's expected number of segments per 100 km above ``new_z_used`` (before the rule's other
    #: conditions: warmer than the median now, not flagged before, one call per hot place)
    fitted_false_new_per_100km: float | None = None
    bound_false_new_per_100km: float | None = None
    note: str | None = None  # why the previous rule was used


class RunRecord(Record):
    """``run.json``. ``status: ok`` (written last: the run is complete) or ``failed`` (tiles_failed says which)."""

    format_version: Literal[1] = FORMAT_VERSION
    status: Literal["ok", "failed"]
    tiles_ok: int
    tiles_failed: dict[str, str]
    tiles_skipped: int
    heattrack_version: str | None = None
    processing_hash: str | None = None
    finished: str | None = None
    seconds_total: float | None = None
    grid: GridInfo | None = None
    inputs: dict[str, Any] = {}
    network: NetworkSignature | None = None
    warnings: list[str] = []
    valid_fraction: float | None = None
    n_valid_px: int | None = None
    n_px: int | None = None
    segments_ok: int | None = None
    segments_no_data: int | None = None
    hotspots: int | None = None
    detectability: dict[str, Any] | None = None
    season: str | None = None
    season_interval: str | None = None
    previous: PreviousSeason | None = None
    tile_summaries: dict[str, TileSummary] = {}

    def require_ok(self, where: str) -> "RunRecord":
        if self.status != "ok":
            raise InputError(f"{where}: the run did not finish (status {self.status!r}); rerun it with --resume")
        return self


class DownloadedPair(Record):
    """One date of a tile: a Landsat day and its Sentinel-2 partner, or (``sentinel2`` None, download.json format 2)
    the Landsat day alone, its own reflective bands the optics (``stac.landsat_alone``)."""

    folder: str
    landsat: str
    sentinel2: str | None
    landsat_date: str
    sentinel2_date: str | None
    clear_fraction: float
    s2_clear_fraction: float | None
    #: further items of the same day fetched into the folder (the tile straddles them)
    landsat_more: tuple[str, ...] = ()
    sentinel2_more: tuple[str, ...] = ()


class DownloadGrid(Record):
    crs: str
    tile_px: int
    resolution_m: float
    halo_m: float


class DownloadIndex(Record):
    """``download.json``: the season, catalogue and grid of a download and the pairs fetched per tile. Format 2
    (2026-12-07) may hold a Landsat day alone (:class:`DownloadedPair` without Sentinel-2); format 1 (pairs only)
    reads as it is."""

    format_version: Literal[1, 2] = 2
    season: str | None
    interval: str | None  # None: the whole catalogue (no --season, no stac.datetime)
    stac: dict[str, str]
    grid: DownloadGrid
    tiles: dict[str, list[DownloadedPair]]
    tiles_without_pair: list[str]
    files: dict[str, int]
    failed: dict[str, str]
    warnings: list[str]
