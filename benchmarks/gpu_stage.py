"""Is the detection stage the bottleneck when it runs on a GPU worker? One padded 10 km tile, two stages.

    .venv/bin/python benchmarks/gpu_stage.py [--json out.json]

A run with `detect.method: ae|fused` and GPU workers splits every tile into CPU tasks (stage 1, per date:
mask, aggregate, sharpen, local anomaly = `kernels.chain.thermal_products`, and for `fused` the Isolation
Forest = `kernels.chain.cpu_evidence`; one thread) and one detection task on a GPU worker (stage 2 =
`kernels.chain.detect_products`: patches cut and scored on the device, robust z, fusion). This times both on the same synthetic 1100 x 1100 px tile, median of 3,
stage 2 with a saved model (`detect.model_path`) and with per-tile training, on CPU (one thread) and, where
torch sees one, on CUDA. ``gpu_serves_cpu_cores`` = stage-2 throughput on the GPU / stage-1 throughput per
CPU core: how many CPU cores of stage 1 one GPU worker keeps up with (one date per tile).
Needs only numpy, scipy, scikit-learn and torch (runs on a bare GPU image).
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from ae_inference import median_time  # noqa: E402  (benchmarks/ is the script's folder)

from heattrack.kernels.autoencoder import batch_for_memory  # noqa: E402
from heattrack.kernels.chain import ChainParams, cpu_evidence, detect_products, thermal_products  # noqa: E402
from heattrack.kernels.detectors import DetectorParams, ae_residual  # noqa: E402
from heattrack.kernels.patches import PatchSpec  # noqa: E402


def synthetic_tile(n: int = 1100, seed: int = 0):
    """Padded tile: Landsat-like LST (K) on the 10 m grid, S2 red/NIR reflectance 0-1, clear mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n]
    nd = np.clip(0.4 + 0.3 * np.sin(xx / 6.0) * np.cos(yy / 8.0) + rng.normal(0, 0.05, (n, n)), 0, 0.8)
    red = (0.1 - 0.05 * nd).astype(np.float32)
    nir = (red * (1 + nd) / (1 - nd)).astype(np.float32)
    lst = (275 - 4 * nd + rng.normal(0, 0.4, (n, n))).astype(np.float32)
    lst[rng.random((n, n)) < 0.03] = np.nan
    return lst, red, nir, np.ones((n, n), bool)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    ap.add_argument("--gpu-memory-mb", type=float, nargs="+", default=[2048.0, 8192.0])
    args = ap.parse_args()
    torch.set_num_threads(1)
    lst, red, nir, clear = synthetic_tile()
    px = lst.size
    patch = PatchSpec(size=5, step=3)
    out: dict = {"tile_px": px, "torch": torch.__version__,
                 "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}

    base = ChainParams(downscale_method="dms")
    th = thermal_products(lst, red, nir, clear, base)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for method in ("ae", "fused"):
        det0 = DetectorParams(method=method, patch=patch)
        p0 = ChainParams(downscale_method="dms", detector=det0)
        # stage 1 as the tile graph runs it: thermal products + the CPU detector evidence (IF for fused)
        t1 = median_time(lambda p0=p0: cpu_evidence(thermal_products(lst, red, nir, clear, p0), red, nir, p0))
        s1 = px / t1 / 1e6
        out[f"stage1_{method}_cpu_1thread_mpx_s"] = s1
        print(f"stage 1 for {method:5s} (DMS sharpen, local anomaly{', Isolation Forest' if method == 'fused' else ''})"
              f", CPU 1 thread: {s1:6.2f} Mpx/s")
        iz = cpu_evidence(th, red, nir, p0)
        for dev in devices:
            for mem in (args.gpu_memory_mb if dev == "cuda" else [2048.0]):
                det = DetectorParams(method=method, patch=patch, device=dev,
                                     max_batch=batch_for_memory(patch.n_features, 32, mem))
                params = ChainParams(downscale_method="dms", detector=det)
                valid = th.valid & np.isfinite(th.anomaly_k)
                z = np.where(valid, th.anomaly_k / th.sigma_k, np.nan).astype(np.float32)
                _, model = ae_residual(None, z, th.ndvi, red, nir, valid, det)  # trains once (also warm-up)
                t_saved = median_time(lambda p=params, m=model, iz=iz: detect_products(th, red, nir, p, model=m,
                                                                                      iforest_z=iz))
                t_train = median_time(lambda p=params, iz=iz: detect_products(th, red, nir, p, model=None,
                                                                              iforest_z=iz), repeats=1)
                row = {"method": method, "device": dev, "gpu_memory_mb": mem, "batch": det.max_batch,
                       "stage2_saved_model_mpx_s": px / t_saved / 1e6,
                       "stage2_train_per_tile_s": t_train,
                       "stage2_train_per_tile_mpx_s": px / t_train / 1e6}
                if dev == "cuda":
                    row["gpu_serves_cpu_cores_saved_model"] = row["stage2_saved_model_mpx_s"] / s1
                    row["gpu_serves_cpu_cores_train_per_tile"] = row["stage2_train_per_tile_mpx_s"] / s1
                rows.append(row)
                print(f"stage 2 {method:5s} {dev:4s} batch {det.max_batch:7d}: saved model "
                      f"{row['stage2_saved_model_mpx_s']:6.2f} Mpx/s, trained per tile {t_train:6.2f} s/tile"
                      + (f"  -> one GPU keeps up with {row['gpu_serves_cpu_cores_saved_model']:.1f} CPU cores "
                         f"(saved model), {row['gpu_serves_cpu_cores_train_per_tile']:.1f} (per-tile training)"
                         if dev == "cuda" else ""))
    out["stage2"] = rows
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
