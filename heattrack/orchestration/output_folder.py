"""The output folder of a run (a local folder or an S3 prefix): checks before a run, the run lock, the staging
folder and the publishing of the final outputs (``run.json``, the completion mark, last)."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from heattrack.config import Config
from heattrack.errors import ConfigError
from heattrack.io.location import OutputLocation

log = logging.getLogger(__name__)

STATE_DIR = ".heattrack"
FINAL_OUTPUTS = ("lst_10m.vrt", "risk_10m.vrt", "lst_10m.tif", "risk_10m.tif", "risk_overview.tif",
                 "mdl_k_overview.tif", "segments.geojson", "segments.gpkg", "point_statistic.npz", "hotspots.geojson",
                 "top_segments.csv", "top_segments.csvt", "top_segments.gpx", "config.yaml", "run.json", "report")


def as_location(out: OutputLocation | str | Path) -> OutputLocation:
    """``out`` as an :class:`OutputLocation` (a folder path or an ``s3://`` URL)."""
    return out if isinstance(out, OutputLocation) else OutputLocation(out)


def prepare_output(out: OutputLocation | str | Path, cfg: Config, resume: bool, overwrite: bool,
                   allow_existing: tuple[str, ...] = ()) -> bool:
    """Make ``out`` ready; returns True when an existing run is resumed. Refuses to mix configurations.

    ``allow_existing``: names in ``out`` that belong to the caller (the demo's ``scene/``) and are left alone.
    """
    out = as_location(out)
    state = (STATE_DIR, "state.json")
    names = [n for n in out.names() if n not in allow_existing]
    state_names = [n for n in out.names(STATE_DIR) if n != "lock"]  # the lock is this run's own (held)
    if STATE_DIR in names and not state_names:
        names.remove(STATE_DIR)
    if names:
        if overwrite:
            if not out.exists(*state) and not out.exists("mosaic.zarr"):
                raise ConfigError(f"output folder {out} is not empty and holds no heattrack run; "
                                  "refusing to delete it (choose an empty folder)")
            for name in names:
                if name != STATE_DIR:
                    out.remove(name)
            for name in state_names:
                out.remove(STATE_DIR, name)
        elif not out.exists(*state):
            raise ConfigError(f"output folder {out} is not empty and holds no heattrack run (choose an empty folder)")
        else:
            prev = json.loads(out.read_text(*state))
            if prev.get("processing_hash") != cfg.processing_hash():
                raise ConfigError(f"output folder {out} holds a run with a different configuration "
                                  f"(hash {prev.get('processing_hash')} vs {cfg.processing_hash()}); use another "
                                  "folder or --overwrite")
            if not resume:
                raise ConfigError(f"output folder {out} already holds this run; pass --resume to continue it or "
                                  "--overwrite to start again")
            return True
    out.makedirs()
    return False


class RunLock:
    """``OUT/.heattrack/lock``: one run at a time per output. Created exclusively (O_EXCL on disk, a conditional
    PUT on S3). A lock left by a dead process on this host is taken over (a crashed run must stay resumable);
    a live one, or one from another host, makes the second run refuse."""

    def __init__(self, out: OutputLocation):
        self.out = out
        self.parts = (STATE_DIR, "lock")

    def __enter__(self) -> "RunLock":
        import os
        import socket

        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):
            try:
                self.out.create_exclusive(json.dumps(me).encode(), *self.parts)
                return self
            except FileExistsError:
                try:
                    other = json.loads(self.out.read_text(*self.parts) or "{}")
                except (OSError, json.JSONDecodeError):
                    other = {}
                if other.get("host") == me["host"] and not _pid_alive(int(other.get("pid", -1))):
                    log.warning("removing a stale lock of run pid %s", other.get("pid"))
                    self.out.remove(*self.parts)
                    continue
                raise ConfigError(f"another heattrack run (pid {other.get('pid')} on {other.get('host')}) is writing "
                                  f"to {self.out}; wait for it or remove {self.out.uri(*self.parts)} if it is gone"
                                  ) from None
            except OSError as exc:  # not writable: a read-only mount, a file in the way, no such bucket
                raise ConfigError(f"cannot write to the output folder {self.out}: {exc.strerror or exc}") from None
        raise ConfigError(f"cannot take the lock {self.out.uri(*self.parts)}")

    def __exit__(self, *exc) -> None:
        self.out.remove(*self.parts)


def _pid_alive(pid: int) -> bool:
    import os

    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def staging_folder(out: OutputLocation) -> Iterator[Path]:
    """A local folder to write the final outputs into: ``OUT/.heattrack/staging`` on disk (same filesystem, so
    publishing is a rename), a temporary folder for an object store. Removed afterwards."""
    if out.remote:
        with tempfile.TemporaryDirectory(prefix="heattrack-staging-") as tmp:
            yield Path(tmp)
        return
    staging = out.local_path / STATE_DIR / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(out: OutputLocation, staging: Path) -> None:
    """Move (disk) or upload (S3) the final outputs from ``staging`` into ``out``, ``run.json`` last."""
    for name in [n for n in FINAL_OUTPUTS if n != "run.json"] + ["run.json"]:
        src = staging / name
        if not src.exists():
            continue
        if out.remote:
            out.upload(src, name)
            continue
        dst = out.local_path / name
        if dst.exists():
            shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
        src.replace(dst)
