"""One winter from two sensors: held-out family cities screened from a Landsat day scene alone, an ECOSTRESS night
pass alone, and both in one mixed run (the dates combined per segment by their detectability,
``kernels.ranking.combine_dates``). Segment ROC-AUC over the whole network (a segment a run could not score
ranks last: clouds and water differ between the sensors) and over the segments both sensors scored; and the simple
baseline ranking (``detect.method: baseline``) on the same mixed input. And each run's flags: the share of
leak-free segments at or above its flag level (``flagged``), pooled over the cities, against the stated 1 %.

    .venv/bin/python benchmarks/mixed.py --json benchmarks/results/mixed.json
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
from heldout import heldout_parser, workspace  # benchmarks/ is the script's folder

from heattrack.config import load_config
from heattrack.orchestration.run import run
from heattrack.simulate import family_spec, simulate_scene

#: the last is the simple reference ranking (``detect.method: baseline``) on the same mixed input
RUNS = ("landsat", "ecostress", "mixed", "mixed_baseline")


def _auc(score: np.ndarray, leak: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(leak, score))


def main() -> None:
    import geopandas as gpd

    args = heldout_parser(__doc__, 6).parse_args()
    rows = []
    false_flags: dict[str, np.ndarray] = {}  # per run: leak-free segments flagged, leak-free segments scored
    t0 = time.perf_counter()
    with workspace() as (tmp, client):
        for m in args.members:
            scene = Path(tmp) / f"m{m}"
            simulate_scene(scene, family_spec(m, size_km=args.size_km, sensor="landsat+ecostress"))
            leaks = set(gpd.read_file(scene / "truth" / "leaks.geojson")["segment_id"])
            stats = {}
            for name in RUNS:
                folder = scene
                if name in ("landsat", "ecostress"):  # the same files, one sensor only
                    folder = Path(tmp) / f"m{m}-{name}"
                    shutil.copytree(scene, folder)
                    drop = ("thermal",) if name == "landsat" else ("landsat", "sentinel2")
                    for sub in drop:
                        shutil.rmtree(folder / sub)
                out = Path(tmp) / f"out{m}-{name}"
                over = {"input.input": folder, "input.pipes": folder / "pipes.geojson"}
                if name == "mixed_baseline":
                    over["detect.method"] = "baseline"
                run(load_config(None, over), out, client=client)
                seg = gpd.read_file(out / "segments.geojson")
                stats[name] = seg.set_index("segment_id")["stat_k"].astype(float)
                free = ~seg["segment_id"].isin(leaks) & (seg["status"] == "ok")
                false_flags[name] = false_flags.get(name, np.zeros(2, int)) + [int(seg.loc[free, "flagged"].sum()),
                                                                              int(free.sum())]
            ids = stats["mixed"].index
            leak = np.array([s in leaks for s in ids])
            scored = {k: np.isfinite(v.reindex(ids).to_numpy()) for k, v in stats.items()}
            both = scored["landsat"] & scored["ecostress"]
            row = {"member": m, "n_segments": int(len(ids)), "n_leaks": int(leak.sum()),
                   "scored_share": {k: float(v.mean()) for k, v in scored.items()}}
            for k, v in stats.items():
                x = v.reindex(ids).to_numpy()
                row[f"{k}_network"] = _auc(np.where(np.isfinite(x), x, -1e9), leak)
                row[f"{k}_both"] = _auc(x[both], leak[both])
            rows.append(row)
            print(f"member {m}: ROC-AUC over the network " + ", ".join(f"{k} {row[k + '_network']:.3f}" for k in RUNS)
                  + "; on the segments both sensors scored " + ", ".join(f"{k} {row[k + '_both']:.3f}" for k in RUNS),
                  flush=True)
    print(f"\n{len(rows)} held-out members ({time.perf_counter() - t0:.0f} s), mean (worst):")
    for part in ("network", "both"):
        print(f"  {part}: " + ", ".join(f"{k} {np.mean([r[k + '_' + part] for r in rows]):.3f} "
                                          f"({np.min([r[k + '_' + part] for r in rows]):.3f})" for k in RUNS))
    shares = {k: float(v[0] / max(v[1], 1)) for k, v in false_flags.items()}
    print("  leak-free segments flagged (pooled; stated 1 %): " + ", ".join(f"{k} {v:.2%}" for k, v in shares.items()))
    if args.json:
        args.json.write_text(json.dumps({"members": rows, "leak_free_flagged_pooled": shares}, indent=1))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
