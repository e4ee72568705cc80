"""``heattrack train``: fit one autoencoder on clear patches of one or more runs, save it with provenance.

Each run folder contributes its resolved ``config.yaml`` (inputs, grid, detector settings): up to
``tiles_per_run`` tiles, spread evenly over its grid, are read and taken through the thermal stage
(:func:`heattrack.orchestration.graph.prepare_tile`); every date pair of those tiles gives
``detect.ae_train_patches`` random clear patches. The pooled patches train one
:class:`~heattrack.kernels.autoencoder.PatchAutoencoder` (robust refit included) through the same
:func:`~heattrack.kernels.detectors.train_autoencoder` the per-tile path uses. Runs in-process: a few tiles
are enough, and the model then serves every tile of later runs (``--set detect.model_path=MODEL``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from heattrack.config import load_config
from heattrack.errors import ConfigError, InputError
from heattrack.io.models import model_signature, save_model
from heattrack.kernels.chain import detector_params
from heattrack.kernels.detectors import train_autoencoder
from heattrack.kernels.patches import feature_stack, sample_patches
from heattrack.orchestration.graph import prepare_tile
from heattrack.orchestration.plan import plan_run
from heattrack.orchestration.run import build_tasks

log = logging.getLogger(__name__)


def _even_pick(items: list, n: int) -> list:
    if len(items) <= n:
        return list(items)
    idx = np.unique(np.linspace(0, len(items) - 1, n).round().astype(int))
    return [items[i] for i in idx]


def train_model(run_dirs: list[Path], dest: Path, tiles_per_run: int = 4, overrides: dict | None = None,
                progress=None) -> dict:
    """Train on ``run_dirs`` and save to ``dest``; returns the training summary."""
    if not run_dirs:
        raise ConfigError("give at least one run folder (--run OUT)")
    pooled, used, cfg0 = [], [], None
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        cfg_file = run_dir / "config.yaml"
        if not cfg_file.exists():
            cfg_file = run_dir / ".heattrack" / "config.yaml"
        if not cfg_file.exists():
            raise InputError(f"{run_dir} holds no heattrack run (config.yaml missing)")
        cfg = load_config(cfg_file, {**(overrides or {}), "detect.model_path": None})
        if cfg0 is None:
            cfg0 = cfg
        elif model_signature(cfg) != model_signature(cfg0):
            raise ConfigError(f"run {run_dir} uses other patch settings than {run_dirs[0]}; train them separately")
        plan = plan_run(cfg)
        tiles = _even_pick(list(plan.grid.tiles), tiles_per_run)
        tasks = build_tasks(plan, run_dir, tiles)
        rng = np.random.default_rng(cfg.seed)
        for task in tasks:
            for d in range(len(task.readers)):
                prep = prepare_tile(task, d)
                th = prep.thermal
                valid = th.valid & np.isfinite(th.anomaly_k)
                stack = feature_stack(th.anomaly_k / th.sigma_k, th.ndvi, prep.red, prep.nir)
                pooled.append(sample_patches(stack, task.params.detector.patch, valid,
                                             cfg.detect.ae_train_patches, rng))
                if progress:
                    progress()
            used.append({"run": str(run_dir), "tile": list(task.index)})
    X = np.concatenate(pooled) if pooled else np.zeros((0, 1), np.float32)
    if X.shape[0] < 100:
        raise InputError(f"only {X.shape[0]} clear patches in the sampled tiles: too few to train (cloudy scenes?)")
    model = train_autoencoder(X, detector_params(cfg0))
    summary = {"runs": [str(r) for r in run_dirs], "tiles": used, "n_patches": int(X.shape[0]),
               "final_loss": float(model.train_loss_[-1]), "epochs": len(model.train_loss_)}
    save_model(dest, model, {"signature": model_signature(cfg0), "detect": cfg0.detect.model_dump(mode="json"),
                             "seed": cfg0.seed}, summary)
    log.info("model saved to %s (%d patches)", dest, X.shape[0])
    return summary
