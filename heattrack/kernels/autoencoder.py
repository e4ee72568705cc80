"""MLP autoencoder on thermal/optical patches (torch), with the scikit-learn estimator shape.

``PatchAutoencoder().fit(X)`` learns what normal patches look like (``X``: patch vectors from
:mod:`heattrack.kernels.patches`); ``score_samples(X)`` returns the **signed thermal residual** of the patch
centre (z units: input minus reconstruction, averaged over the central 3 x 3 thermal samples), so a patch
warmer than its optical context and surroundings explain scores high and a cold one scores low.

Robust training: after a first fit the ``trim_fraction`` patches with the largest reconstruction error
(leak-like outliers, clouds' edges) are dropped and the model is refitted on the rest, ``refits`` times.

No file IO here: ``get_state`` / ``from_state`` give a plain dict that :mod:`heattrack.io.models` saves.
Device: ``"auto"`` picks CUDA when torch sees a GPU, else CPU. Inference runs in batches of at most
``max_batch`` patches, so the GPU memory a tile needs is bounded (see
:func:`heattrack.kernels.patches.batch_for_memory`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from heattrack.kernels.patches import PatchSpec, iter_patch_bands

STATE_VERSION = 1


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("detect.device is 'cuda' but torch sees no CUDA GPU on this worker")
    return device


@dataclass(frozen=True)
class AEParams:
    """Hyper-parameters (sizes in units, learning rate per step)."""

    hidden: int = 32
    latent: int = 6
    epochs: int = 25
    batch_size: int = 512
    learning_rate: float = 3e-3
    trim_fraction: float = 0.02
    refits: int = 1
    seed: int = 0


class _MLP(nn.Module):
    def __init__(self, n_in: int, hidden: int, latent: int):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(n_in, hidden), nn.GELU(), nn.Linear(hidden, latent))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.GELU(), nn.Linear(hidden, n_in))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class PatchAutoencoder:
    """Autoencoder of patch vectors. ``centre_index``: positions of the centre thermal samples in a vector."""

    def __init__(self, params: AEParams = AEParams(), centre_index: np.ndarray | None = None,
                 device: str = "auto", max_batch: int = 65536):
        self.params = params
        self.centre_index = None if centre_index is None else np.asarray(centre_index, dtype=np.int64)
        self.device = device
        self.max_batch = int(max_batch)
        self.net_: _MLP | None = None
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.train_loss_: list[float] = []

    # -- training ------------------------------------------------------------------------------
    def _train(self, x: torch.Tensor, epochs: int, gen: torch.Generator) -> float:
        p = self.params
        opt = torch.optim.Adam(self.net_.parameters(), lr=p.learning_rate)
        loss = torch.zeros(())
        for _ in range(epochs):
            order = torch.randperm(x.shape[0], generator=gen, device="cpu").to(x.device)
            # the epoch loss is summed on the device (float64) and read once per epoch: reading it every
            # step would synchronise a GPU ~1500 times per tile
            total = torch.zeros((), dtype=torch.float64, device=x.device)
            for i in range(0, x.shape[0], p.batch_size):
                xb = x[order[i: i + p.batch_size]]
                opt.zero_grad()
                loss = ((self.net_(xb) - xb) ** 2).mean()
                loss.backward()
                opt.step()
                total += loss.detach().double() * xb.shape[0]
            self.train_loss_.append(float(total) / x.shape[0])
        return float(loss.detach())

    def fit(self, X: np.ndarray) -> "PatchAutoencoder":
        """Fit on ``X`` (n_patches, n_features); robust refits drop the worst-reconstructed patches."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[0] < 16:
            raise ValueError(f"need at least 16 patches to train the autoencoder, got shape {X.shape}")
        p = self.params
        if self.centre_index is None:
            self.centre_index = np.arange(min(1, X.shape[1]))
        torch.manual_seed(p.seed)
        gen = torch.Generator().manual_seed(p.seed)
        dev = resolve_device(self.device)
        self.mean_ = X.mean(axis=0)
        self.scale_ = np.maximum(X.std(axis=0), 1e-3).astype(np.float32)
        self.net_ = _MLP(X.shape[1], p.hidden, p.latent).to(dev)
        xs = torch.from_numpy((X - self.mean_) / self.scale_).to(dev)
        self._train(xs, p.epochs, gen)
        for _ in range(p.refits):
            err = self._errors(xs)
            keep = err <= np.quantile(err, 1.0 - p.trim_fraction)
            xs = xs[torch.from_numpy(keep).to(dev)]
            self._train(xs, max(1, p.epochs // 2), gen)
        self.net_.eval()
        return self

    # -- inference -----------------------------------------------------------------------------
    def _check(self) -> None:
        if self.net_ is None:
            raise RuntimeError("PatchAutoencoder is not fitted")

    @torch.no_grad()
    def _errors(self, xs: torch.Tensor) -> np.ndarray:
        out = []
        for i in range(0, xs.shape[0], self.max_batch):
            xb = xs[i: i + self.max_batch]
            out.append(((self.net_(xb) - xb) ** 2).mean(dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    @torch.no_grad()
    def reconstruct(self, X: np.ndarray) -> np.ndarray:
        """Reconstructed patch vectors in the units of ``X``."""
        self._check()
        dev = next(self.net_.parameters()).device
        X = np.asarray(X, dtype=np.float32)
        out = np.empty_like(X)
        for i in range(0, X.shape[0], self.max_batch):
            xb = torch.from_numpy((X[i: i + self.max_batch] - self.mean_) / self.scale_).to(dev)
            out[i: i + self.max_batch] = self.net_(xb).cpu().numpy() * self.scale_ + self.mean_
        return out

    @torch.no_grad()
    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """Signed centre thermal residual (input - reconstruction, z units) per patch; high = anomalously warm."""
        self._check()
        dev = next(self.net_.parameters()).device
        X = np.asarray(X, dtype=np.float32)
        ci = torch.from_numpy(self.centre_index).to(dev)
        mean = torch.from_numpy(self.mean_).to(dev)
        scale = torch.from_numpy(self.scale_).to(dev)
        out = np.empty(X.shape[0], np.float32)
        for i in range(0, X.shape[0], self.max_batch):
            xb = torch.from_numpy(X[i: i + self.max_batch]).to(dev)
            rec = self.net_((xb - mean) / scale) * scale + mean
            out[i: i + self.max_batch] = (xb[:, ci] - rec[:, ci]).mean(dim=1).cpu().numpy()
        return out

    @torch.no_grad()
    def score_stack(self, stack: np.ndarray, spec: PatchSpec, cut: str = "auto") -> np.ndarray:
        """:meth:`score_samples` of every pixel's patch of a ``(C, H, W)`` feature stack, as an ``(H, W)`` map.

        On a GPU the patches are cut on the device (same vectors as :func:`~heattrack.kernels.patches.patch_rows`,
        edge-padded), in row bands of at most ``max_batch`` patches: only the stack crosses to the GPU and the
        host does no per-patch work. On a CPU the host cut (numpy) is used. ``cut``: auto|host|device.
        """
        self._check()
        dev = next(self.net_.parameters()).device
        h, w = stack.shape[1:]
        # on a CPU numpy's strided cut is ~8 % faster than torch's unfold copy
        if cut == "host" or (cut == "auto" and dev.type == "cpu"):
            out_np = np.empty((h, w), np.float32)
            for r0, r1, patches in iter_patch_bands(stack, spec, self.max_batch):
                out_np[r0:r1] = self.score_samples(patches).reshape(r1 - r0, w)
            return out_np
        r, k = spec.radius_px, 2 * spec.radius_px + 1
        t = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32)).to(dev)
        padded = torch.nn.functional.pad(t[None], (r, r, r, r), mode="replicate")[0]
        ci = torch.from_numpy(self.centre_index).to(dev)
        mean = torch.from_numpy(self.mean_).to(dev)
        scale = torch.from_numpy(self.scale_).to(dev)
        out = torch.empty((h, w), dtype=torch.float32, device=dev)
        rows = max(1, self.max_batch // max(w, 1))
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            win = padded[:, r0: r1 + 2 * r, :].unfold(1, k, 1).unfold(2, k, 1)[..., :: spec.step, :: spec.step]
            xb = win.permute(1, 2, 0, 3, 4).reshape((r1 - r0) * w, -1)
            rec = self.net_((xb - mean) / scale) * scale + mean
            out[r0:r1] = (xb[:, ci] - rec[:, ci]).mean(dim=1).reshape(r1 - r0, w)
        return out.cpu().numpy()

    def to(self, device: str) -> "PatchAutoencoder":
        """Move the fitted network to ``device`` (``auto``/``cpu``/``cuda``)."""
        self._check()
        self.device = device
        self.net_.to(resolve_device(device))
        return self

    # -- state (saved by heattrack.io.models) ------------------------------------------------------
    def get_state(self) -> dict:
        self._check()
        return {
            "state_version": STATE_VERSION,
            "params": asdict(self.params),
            "n_features": int(self.mean_.size),
            "centre_index": self.centre_index.tolist(),
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "weights": {k: v.detach().cpu().clone() for k, v in self.net_.state_dict().items()},
            "train_loss": list(self.train_loss_),
        }

    @classmethod
    def from_state(cls, state: dict, device: str = "auto", max_batch: int = 65536) -> "PatchAutoencoder":
        if state.get("state_version") != STATE_VERSION:
            raise ValueError(f"autoencoder state version {state.get('state_version')} is not {STATE_VERSION}")
        params = AEParams(**state["params"])
        model = cls(params, np.asarray(state["centre_index"]), device=device, max_batch=max_batch)
        model.mean_ = np.asarray(state["mean"], np.float32)
        model.scale_ = np.asarray(state["scale"], np.float32)
        model.net_ = _MLP(state["n_features"], params.hidden, params.latent)
        model.net_.load_state_dict({k: torch.as_tensor(v) for k, v in state["weights"].items()})
        model.net_.to(resolve_device(device)).eval()
        model.train_loss_ = list(state.get("train_loss", []))
        return model
