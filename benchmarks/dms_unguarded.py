"""DMS without its guard on the real Momotombo scene: why the guard exists.

    .venv/bin/python benchmarks/dms_unguarded.py [FOLDER]

Aggregate-sharpen-compare as in `heattrack validate-sharpening` (90 m -> 30 m compared at 30 m, and
270 m -> 30 m compared at 90 m) with every SR band, the default DMS with ``guard=False`` (no held-out check,
no one-scale-up check) next to the guarded default and bilinear. Prints RMSE (K).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from heattrack.evaluate import lst_errors, read_landsat_for_asc
from heattrack.kernels.dms import DMSParams, dms_sharpen
from heattrack.kernels.lst import bilinear_sharpen, block_mean
from heattrack.kernels.predictors import LANDSAT_TIRS_PSF_SIGMA_M, predictor_stack

DEFAULT = Path(__file__).parents[1] / "tests" / "data" / "real" / "landsat-momotombo"


def main() -> None:
    lst, bands, product = read_landsat_for_asc(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
    print(product, "bands", " ".join(sorted(bands)))
    params = DMSParams(psf_sigma_px=LANDSAT_TIRS_PSF_SIGMA_M / 30.0)
    for factor, eval_factor in ((3, 1), (9, 3)):
        step = int(np.lcm(factor, eval_factor))
        h, w = (lst.shape[0] // step) * step, (lst.shape[1] // step) * step
        t = lst[:h, :w]
        stack, names = predictor_stack({k: v[:h, :w] for k, v in bands.items()})
        valid = np.isfinite(t) & np.isfinite(stack).all(axis=0)
        coarse = block_mean(np.where(valid, t, np.nan), factor, 0.5)
        truth = np.where(valid, t, np.nan)
        row = []
        guarded = dms_sharpen(coarse, stack, valid, factor, params, names=names)
        up = guarded.info.get("scale_up_rmse_k", {})
        print(f"x{factor}: guard chose {guarded.info['method']}; held-out RMSE {guarded.info.get('holdout_rmse_k')}; "
              f"one scale up DMS / bilinear = {up.get('dms', float('nan')) / up.get('bilinear', float('nan')):.2f}")
        for label, est in (("bilinear", bilinear_sharpen(coarse, valid, factor).lst),
                           ("DMS guarded", guarded.lst),
                           ("DMS unguarded", dms_sharpen(coarse, stack, valid, factor, replace(params, guard=False),
                                                         names=names).lst)):
            ref = truth
            if eval_factor > 1:
                est = block_mean(np.where(np.isfinite(truth), est, np.nan), eval_factor, 0.5)
                ref = block_mean(truth, eval_factor, 0.5)
            row.append(f"{label}: {lst_errors(est, ref)['rmse_k']:.3f} K")
        print(f"x{factor}, compared after x{eval_factor}: " + ", ".join(row))


if __name__ == "__main__":
    main()
