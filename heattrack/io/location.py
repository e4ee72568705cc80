"""Where a run writes: a local folder or an object-store prefix (``s3://bucket/prefix``) through fsspec.

Object stores are reached with fsspec's own filesystems (s3fs for ``s3://``); credentials and endpoints come
from the environment the way the AWS tools read them (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL`` for MinIO/Ceph/a test
server) and are never written into a run's outputs.

Local writes are atomic (temporary file + rename). On an object store a PUT is atomic per object, and
:meth:`OutputLocation.create_exclusive` uses a conditional PUT (``If-None-Match: *``) for the run lock.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
from pathlib import Path

import fsspec

from heattrack.errors import ConfigError


def is_remote(where: str | Path) -> bool:
    """True for fsspec URLs other than local files (``s3://…``, ``gs://…``)."""
    s = str(where)
    return "://" in s and not s.startswith("file://")


class OutputLocation:
    """A run's output root. ``uri(*parts)`` names a file or folder below it (a path or a URL)."""

    def __init__(self, where: str | Path):
        s = str(where)
        self.remote = is_remote(s)
        if self.remote:
            try:
                self.fs, self.root = fsspec.core.url_to_fs(s.rstrip("/"))
            except (ImportError, ValueError) as exc:
                raise ConfigError(f"cannot write to {s}: {exc}") from None
            self.url = s.rstrip("/")
        else:
            self.fs = fsspec.filesystem("file")
            self.root = str(Path(s.removeprefix("file://")).absolute())
            self.url = self.root

    def __repr__(self) -> str:
        return f"OutputLocation({self.url!r})"

    def __str__(self) -> str:
        return self.url

    @property
    def local_path(self) -> Path:
        """The folder on disk (local outputs only)."""
        if self.remote:
            raise ValueError(f"{self.url} is not on a local disk")
        return Path(self.root)

    def uri(self, *parts: str) -> str:
        return posixpath.join(self.url, *parts) if self.remote else os.path.join(self.root, *parts)

    def _p(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts) if parts else self.root

    def exists(self, *parts: str) -> bool:
        return self.fs.exists(self._p(*parts))

    def names(self, *parts: str) -> list[str]:
        """Entries of the root (or of a folder below it); empty when it does not exist."""
        try:
            return sorted(posixpath.basename(p.rstrip("/")) for p in self.fs.ls(self._p(*parts), detail=False))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def makedirs(self) -> None:
        if not self.remote:
            Path(self.root).mkdir(parents=True, exist_ok=True)

    def read_bytes(self, *parts: str) -> bytes:
        return self.fs.cat_file(self._p(*parts))

    def read_many(self, names: list[tuple[str, ...]]) -> list[bytes]:
        """Several files whole, in the order asked: one concurrent batch on an object store (s3fs gathers the GETs,
        so the latency is paid once per batch, not once per file), a plain loop on disk."""
        if not self.remote:
            return [self.read_bytes(*n) for n in names]
        paths = [self._p(*n) for n in names]
        got = self.fs.cat(paths)  # keyed by the paths as given (protocol-free, like self.root)
        return [got[p] for p in paths]

    def read_text(self, *parts: str) -> str:
        return self.read_bytes(*parts).decode()

    def write_bytes(self, data: bytes, *parts: str) -> None:
        """Write one object/file whole: atomic on disk (temporary file + rename), a single PUT remotely."""
        if self.remote:
            self.fs.pipe_file(self._p(*parts), data)
            return
        path = Path(self._p(*parts))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def write_text(self, text: str, *parts: str) -> None:
        self.write_bytes(text.encode(), *parts)

    def create_exclusive(self, data: bytes, *parts: str) -> None:
        """Create a file that must not exist yet; FileExistsError otherwise (O_EXCL on disk, a conditional
        PUT on an object store)."""
        if self.remote:
            self.fs.pipe_file(self._p(*parts), data, mode="create")
            return
        path = Path(self._p(*parts))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)

    def remove(self, *parts: str) -> None:
        """Remove a file or a folder tree (no error when absent)."""
        p = self._p(*parts)
        if self.fs.exists(p):
            self.fs.rm(p, recursive=True)

    def glob(self, *parts: str) -> list[str]:
        return self.fs.glob(self._p(*parts))

    def upload(self, local: Path, *parts: str) -> None:
        """Copy a local file or folder tree to ``parts`` (replacing what was there)."""
        self.remove(*parts)
        if local.is_dir():
            self.fs.put(str(local), self._p(*parts), recursive=True)
        else:
            self.fs.put_file(str(local), self._p(*parts))
