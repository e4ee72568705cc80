"""DMS without its guards on the real Momotombo scene: why the guards exist.

    .venv/bin/python benchmarks/dms_unguarded.py [FOLDER]

Aggregate-sharpen-compare as in `heattrack validate-sharpening` (90 m -> 30 m compared at 30 m, and
270 m -> 30 m compared at 90 m), with the tree depth fixed at 0 (one linear model) and 3 and both guards off
(no depth cross-validation, no NDVI-only fallback, no one-scale-up self-check). Prints RMSE (K).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from heattrack.evaluate import lst_errors, read_landsat_for_asc
from heattrack.kernels.dms import DMSParams, dms_predictors, dms_sharpen
from heattrack.kernels.features import ndvi
from heattrack.kernels.lst import block_mean

DEFAULT = Path(__file__).parents[1] / "tests" / "data" / "real" / "landsat-momotombo"


def main() -> None:
    lst, red, nir, product = read_landsat_for_asc(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
    print(product)
    for factor, eval_factor in ((3, 1), (9, 3)):
        step = int(np.lcm(factor, eval_factor))
        h, w = (lst.shape[0] // step) * step, (lst.shape[1] // step) * step
        t, r, n = lst[:h, :w], red[:h, :w], nir[:h, :w]
        nd = ndvi(r, n)
        valid = np.isfinite(t) & np.isfinite(nd)
        coarse = block_mean(np.where(valid, t, np.nan), factor, 0.5)
        truth = np.where(valid, t, np.nan)
        preds = dms_predictors(np.where(valid, r, np.nan), np.where(valid, n, np.nan), seed=0)
        row = []
        for depth in (0, 3):
            p = DMSParams(seed=0, local_window_px=max(10, min(coarse.shape) // 2), max_depth=depth,
                          depth_candidates=(depth,), self_check=False)
            est, ref = dms_sharpen(coarse, preds, valid, factor, nd, p).lst, truth
            if eval_factor > 1:
                est = block_mean(np.where(np.isfinite(truth), est, np.nan), eval_factor, 0.5)
                ref = block_mean(truth, eval_factor, 0.5)
            row.append(f"depth {depth}: {lst_errors(est, ref)['rmse_k']:.3f} K")
        print(f"x{factor}, compared after x{eval_factor}: " + ", ".join(row))


if __name__ == "__main__":
    main()
