"""How many leak-free segments the change classes' flag marks: Benjamini-Hochberg at q = 0.05 on the segments'
Gaussian p-values (``changes.fdr_q``), with the segment statistic's window along the pipe (the default) and with its
largest point (``segments.window_widths: 0``), on held-out family members.

    .venv/bin/python benchmarks/flag_calibration.py /tmp/flagcal 100 101 102 103 104 105

Prints per member (flagged, flagged leak-free, leak-free scored, leak-free with p < 0.01) and the totals. The
folder keeps the scenes and runs (a second call reuses them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
from heldout import workspace  # benchmarks/ is the script's folder

from heattrack.config import load_config
from heattrack.kernels.changes import benjamini_hochberg
from heattrack.orchestration.run import run
from heattrack.simulate import family_spec, simulate_scene

VARIANTS = (("largest point", {"segments.window_widths": 0}), ("window (default)", {}))


def flag_counts(segments: Path, leaks: set[str], q: float = 0.05) -> tuple[int, int, int, int]:
    """Flagged segments, flagged leak-free ones, leak-free scored ones, leak-free ones with p < 0.01."""
    s = gpd.read_file(segments)
    p = s["p_value"].to_numpy(float)
    flagged = benjamini_hochberg(p, q)
    free = ~s["segment_id"].isin(leaks).to_numpy() & np.isfinite(p)
    return int(flagged.sum()), int((flagged & free).sum()), int(free.sum()), int((p[free] < 0.01).sum())


def main(root: Path, members: list[int]) -> None:
    totals = {name: np.zeros(4, dtype=int) for name, _ in VARIANTS}
    with workspace(root) as (tmp, client):
        for m in members:
            scene = Path(tmp) / f"m{m}"
            if not scene.exists():
                simulate_scene(scene, family_spec(m, size_km=6.0))
            leaks = set(json.loads((scene / "truth" / "truth.json").read_text())["leak_segment_ids"])
            for name, over in VARIANTS:
                out = Path(tmp) / f"out{m}-{name.split()[0]}"
                if not (out / "segments.geojson").exists():
                    cfg = load_config(None, {"input.input": scene, "input.pipes": scene / "pipes.geojson", **over})
                    run(cfg, out, client=client)
                counts = flag_counts(out / "segments.geojson", leaks)
                totals[name] += counts
                print(f"member {m}, {name}: flagged {counts[0]}, leak-free flagged {counts[1]}, leak-free scored "
                      f"{counts[2]}, leak-free with p < 0.01 {counts[3]}", flush=True)
    for name, (flagged, false, free, p01) in totals.items():
        print(f"{name}: Benjamini-Hochberg flagged {flagged}, of them leak-free {false} ({false / max(flagged, 1):.0%}); "
              f"leak-free with p < 0.01: {p01 / max(free, 1):.1%}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), [int(a) for a in sys.argv[2:]])
