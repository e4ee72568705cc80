"""Autoencoder inference throughput (10 m pixels per second) on one padded 10 km tile, CPU and GPU.

    .venv/bin/python benchmarks/ae_inference.py [--threads 1] [--gpu-memory-mb 2048]

Times the parts of the `ae` detector on 1100 x 1100 px: patch extraction (numpy), network inference on
host-cut patches (torch, batches bounded by detect.gpu_memory_mb), patches cut on the device + inference
(`PatchAutoencoder.score_stack`, what `detect` runs) and training on 20,000 patches (per tile when no saved model
is given). Prints Mpx/s; median of 3 repeats. On a machine with CUDA it also runs on the GPU.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from heattrack.kernels.autoencoder import AEParams, PatchAutoencoder, batch_for_memory
from heattrack.kernels.patches import PatchSpec, centre_thermal_index, feature_stack, iter_patch_bands, sample_patches


def median_time(fn, repeats: int = 3) -> float:
    """Median wall time (s) of ``fn()`` over ``repeats`` runs, waiting for the GPU when there is one."""
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--gpu-memory-mb", type=float, default=2048.0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n = 1100
    yy, xx = np.mgrid[0:n, 0:n]
    nd = np.clip(0.4 + 0.3 * np.sin(xx / 6.0) * np.cos(yy / 8.0) + rng.normal(0, 0.05, (n, n)), 0, 0.8)
    z = (rng.normal(0, 1, (n, n)) - 2 * nd).astype(np.float32)
    red = (0.1 - 0.05 * nd).astype(np.float32)
    nir = (red * (1 + nd) / (1 - nd)).astype(np.float32)
    spec = PatchSpec(size=5, step=3)
    stack = feature_stack(z, nd.astype(np.float32), red, nir)
    batch = batch_for_memory(spec.n_features, 32, args.gpu_memory_mb)
    X = sample_patches(stack, spec, np.ones((n, n), bool), 20000, rng)
    px = n * n
    t_patch = median_time(lambda: [None for _ in iter_patch_bands(stack, spec, batch)])
    t_train = median_time(lambda: PatchAutoencoder(AEParams(), centre_thermal_index(spec), device="cpu").fit(X),
                           repeats=1)
    print(f"tile {n} x {n} px, batch {batch} patches, torch threads {args.threads}")
    print(f"{'patch extraction (numpy)':34s} {px / t_patch / 1e6:8.2f} Mpx/s")
    print(f"{'training, 20k patches (cpu)':34s} {t_train:8.2f} s per tile")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    model = PatchAutoencoder(AEParams(epochs=2), centre_thermal_index(spec), device="cpu").fit(X)
    bands = [p for _, _, p in iter_patch_bands(stack, spec, batch)]
    for dev in devices:
        model.to(dev)
        model.max_batch = batch
        model.score_samples(bands[0][:1024])  # warm-up
        t = median_time(lambda: [model.score_samples(p) for p in bands])
        print(f"{'inference (' + dev + ')':34s} {px / t / 1e6:8.2f} Mpx/s")
        t = median_time(lambda: model.score_stack(stack, spec))
        print(f"{'patches on ' + dev + ' + inference':34s} {px / t / 1e6:8.2f} Mpx/s  (what detect runs)")


if __name__ == "__main__":
    main()
