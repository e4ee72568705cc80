"""A city from benchmarks/independent_city.py, the generator that shares no code with heattrack.simulate, run end to
end: what a user's own data looks like to the readers (UTM 33, Landsat's 30 m grid half a pixel off Sentinel-2's,
the baseline >= 04.00 offset from MTD_MSIL2A.xml, QA clouds), and the science carrying over to it."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))

pytestmark = pytest.mark.slow


def test_an_independent_city_runs_and_the_defaults_beat_the_baselines(tmp_path):
    from distributed import Client, LocalCluster
    from independent_city import evaluate_city, make_city, write_scene

    scene = tmp_path / "scene"
    write_scene(make_city(22, 4.0), scene, 22)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        row = evaluate_city(scene, tmp_path, client)
    # measured 2026-12-06: 10 m LST 1.58x bilinear, ROC-AUC 0.735 vs the baseline's 0.673, visible leaks in the top
    # 5 % 1.0 vs 0.5 (2 leaks), the real-crop protocol on its Landsat 1.81x; a regression in any of them fails here
    assert row["lst_gain"] > 1.2 and row["sharpen_methods"] == ["dms"]
    assert row["default_auc"] > row["baseline_auc"]
    assert row["default_visible_top5"] > row["baseline_visible_top5"]
    assert row["asc_dms_gain"] > 1.1 and row["asc_dms_used"] == "dms"
    info = json.loads((tmp_path / "default" / "run.json").read_text())["inputs"]
    assert info["s2_boa_offset"] == -1000 and "MTD" in info["s2_offset_source"]
    assert info["landsat_product"].startswith("LC08_L2SP_190026")
