"""Saved detector models: ``heattrack train`` writes them, tile tasks load them once per worker process.

File format: a ``torch.save`` dict (loadable with ``weights_only=True``: tensors, numbers, strings, lists)::

    {"format": "heattrack-autoencoder", "format_version": 1, "heattrack_version": ..., "created": ISO time,
     "config": {...the detect section and seed that made it...}, "training": {...runs, patches...},
     "state": PatchAutoencoder.get_state()}
"""

from __future__ import annotations

import functools
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from heattrack.config import Config
from heattrack.errors import ConfigError, InputError

MODEL_FORMAT = "heattrack-autoencoder"
MODEL_FORMAT_VERSION = 1


def save_model(path: Path, model, config: dict, training: dict | None = None) -> Path:
    """Write ``model`` (a fitted PatchAutoencoder) with its provenance, atomically."""
    import torch

    from heattrack import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION, "heattrack_version": __version__,
               "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "config": config,
               "training": training or {}, "state": model.get_state()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read_model_file(path: Path) -> dict:
    """The saved dict; :class:`InputError` for a missing, unreadable or foreign file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {path} does not exist (make one with `heattrack train`)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or foreign file
        raise InputError(f"model file {path} is not a heattrack model ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise InputError(f"model file {path} is not a heattrack autoencoder")
    if payload.get("format_version") != MODEL_FORMAT_VERSION:
        raise InputError(f"model file {path} has format version {payload.get('format_version')}; this heattrack "
                         f"reads version {MODEL_FORMAT_VERSION} (retrain with `heattrack train`)")
    return payload


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int, size: int, device: str, max_batch: int):
    from heattrack.kernels.autoencoder import PatchAutoencoder

    payload = read_model_file(Path(path))
    return PatchAutoencoder.from_state(payload["state"], device=device, max_batch=max_batch)


def load_model(path: Path, device: str = "auto", max_batch: int = 65536):
    """The model at ``path`` on ``device``, loaded once per process (per worker) and cached by path, file
    modification time, size and device: every tile task on a worker shares one copy."""
    path = Path(path).resolve()
    try:
        st = path.stat()
    except OSError:
        raise InputError(f"model file {path} does not exist (make one with `heattrack train`)") from None
    return _load_cached(str(path), st.st_mtime_ns, st.st_size, device, int(max_batch))


def load_count() -> int:
    """How many distinct models this process has loaded (cache misses); for tests and diagnostics."""
    return _load_cached.cache_info().misses


def model_signature(cfg: Config) -> dict:
    """The settings a saved model must share with a run that uses it (patch geometry and channels)."""
    return {"ae_patch_px": cfg.detect.ae_patch_px, "ae_patch_step_m": cfg.detect.ae_patch_step_m,
            "resolution_m": cfg.grid.resolution_m, "channels": ["anomaly_z", "ndvi", "brightness"]}


def check_model_matches(payload: dict, cfg: Config, path: Path) -> None:
    """Refuse a model whose patch geometry differs from the run's configuration."""
    want, have = model_signature(cfg), payload.get("config", {}).get("signature")
    if have != want:
        raise ConfigError(f"model {path} was trained with patch settings {have}, this run uses {want}; retrain it "
                          "with `heattrack train` or change detect.ae_patch_px / ae_patch_step_m")
