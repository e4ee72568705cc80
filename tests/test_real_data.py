"""Checks on the real samples bundled in tests/data/real (copied from shared/, licences beside them)."""

import numpy as np
import rasterio
from conftest import REAL

from heattrack.evaluate import aggregate_sharpen_compare, read_landsat_for_asc
from heattrack.kernels.calibrate import sr_dn_to_reflectance


def _band(folder, name):
    with rasterio.open(next(folder.glob(f"*_{name}.TIF"))) as src:
        return src.read(1)


def test_momotombo_real_value_ranges_and_asc_protocol():
    d = REAL / "landsat-momotombo"
    st, bands, product = read_landsat_for_asc(d)
    assert product.startswith("LC08_L2SP_017051")
    assert sorted(bands) == ["B02", "B03", "B04", "B08", "B11", "B12"]  # SR_B2..B7, Sentinel-2 names
    red, nir = bands["B04"], bands["B08"]
    assert 280 < np.nanmedian(st) < 320 and np.nanmax(st) > 340  # tropical scene with an erupting volcano
    assert -0.05 < np.nanmedian(red) < 0.3 and np.nanmedian(nir) > np.nanmedian(red)
    np.testing.assert_array_equal(red, sr_dn_to_reflectance(_band(d, "SR_B4")))
    r = aggregate_sharpen_compare(st, bands, factor=3)
    assert r["n_px"] > 100_000
    for m in ("bilinear", "tsharp", "dms"):
        assert 0.05 < r[m]["rmse_k"] < 3.0 and abs(r[m]["bias_k"]) < 0.05
    # measured here: TsHARP 0.434 K vs bilinear 0.475 K; no claim beyond "not worse by more than 10 %"
    assert r["tsharp"]["rmse_k"] < 1.1 * r["bilinear"]["rmse_k"]
    # unguarded DMS is ~5x worse than bilinear on this scene (2.4 K, benchmarks/dms_unguarded.py): the guard must
    # catch it, and what it delivers may not lose to bilinear
    assert r["dms"]["info"]["fallback_from"] == "dms"
    assert r["dms"]["rmse_k"] <= r["bilinear"]["rmse_k"] + 1e-6
    # land and water apart (benchmarks/real_asc.py: water by MNDWI; Momotombo lies on Lake Managua's shore): the
    # regions' errors make up the whole one, and the overall figures do not move
    water = (bands["B03"] - bands["B11"]) / (bands["B03"] + bands["B11"]) > 0
    r9 = aggregate_sharpen_compare(st, bands, factor=9, eval_factor=3, regions={"land": ~water, "water": water})
    assert r9["dms"]["rmse_k"] <= r9["bilinear"]["rmse_k"] + 1e-6
    for m in ("bilinear", "tsharp"):
        parts = r9[m]["by_region"]
        assert parts["water"]["n_px"] > 1000 and parts["land"]["n_px"] > 3 * parts["water"]["n_px"]
        n = sum(p["n_px"] for p in parts.values())
        whole = np.sqrt(sum(p["n_px"] * p["rmse_k"] ** 2 for p in parts.values()) / n)
        assert 0.95 < n / (r9["n_px"] / 9) < 1.05 and abs(whole - r9[m]["rmse_k"]) < 0.02 * r9[m]["rmse_k"]
    assert r9["tsharp"]["rmse_k"] == aggregate_sharpen_compare(st, bands, factor=9, eval_factor=3)["tsharp"]["rmse_k"]
    # the local models' 500 m windows: 5.6 cells of 90 m (engaged, not used: the guard chose bilinear), 1.9 of 270 m
    assert r["dms_local_models"].startswith("DMS local models (6 cells of 90 m") and "not used" in r["dms_local_models"]
    assert "off here" in r9["dms_local_models"] and "local_models" not in r9["dms"]["info"]


def test_a_folder_with_two_scenes_validates_the_first_without_mixing_their_bands(tmp_path, caplog):
    """Two products in one folder: every band comes from the first (a band it lacks is not taken from the other),
    and the user is told which one was validated."""
    import shutil

    d = REAL / "landsat-momotombo"
    for f in d.glob("LC08_*.TIF"):
        shutil.copy(f, tmp_path / f.name)
        shutil.copy(f, tmp_path / f.name.replace("20151205_20200908", "20151221_20200908"))
    next(tmp_path.glob("*20151205*_SR_B2.TIF")).unlink()  # the first scene lacks the blue band
    with caplog.at_level("WARNING"):
        _, bands, product = read_landsat_for_asc(tmp_path)
    assert "20151205" in product and "B02" not in bands and "holds 2 Landsat scenes" in caplog.text


def test_validate_sharpening_command(tmp_path):
    import json

    from typer.testing import CliRunner

    from heattrack.cli import app

    res = CliRunner().invoke(app, ["validate-sharpening", "--landsat", str(REAL / "landsat-momotombo"),
                                   "--factor", "9", "--eval-factor", "3", "--json", str(tmp_path / "a.json")])
    assert res.exit_code == 0, res.output
    out = json.loads((tmp_path / "a.json").read_text())
    assert out["factor"] == 9 and out["eval_factor"] == 3 and out["tsharp"]["rmse_k"] < out["bilinear"]["rmse_k"]
    assert all(0 < out[m]["rmse_seen_k"] < 3.0 for m in ("bilinear", "tsharp", "dms"))
    assert "seen through the footprint" in res.output and "does not test them" in " ".join(res.output.split())
    # land and water apart (Lake Managua: MNDWI > 0 on ~16 % of the crop), each method's gain over bilinear over each
    land = out["bilinear"]["by_region"]["land"]
    said = " ".join(res.output.split())
    assert out["bilinear"]["by_region"]["water"]["n_px"] > 1000 and land["n_px"] > 10_000
    assert f"over land ({land['n_px']} compared cells; bilinear {land['rmse_k']:.3f} K) tsharp " in said
    assert f"dms {land['rmse_k'] / out['dms']['by_region']['land']['rmse_k']:.2f}x; over water" in said
    from heattrack.evaluate import land_and_water

    green, swir = np.full((10, 10), 0.05, np.float32), np.full((10, 10), 0.2, np.float32)  # land: SWIR above green
    assert land_and_water({"B04": green, "B08": swir}) is None and land_and_water({"B03": green, "B11": swir}) is None
    swir[:3] = 0.01  # 30 % water
    split = land_and_water({"B03": green, "B11": swir})
    assert split["water"].sum() == 30 and (split["land"] == ~split["water"]).all()
    # DMS saw the product through the footprint the scene shows (Collection 2: wider than TIRS's 36 m), and says so
    fp = out["dms"]["info"]["footprint"]
    assert fp["source"] == "estimated" and 50.0 < 30.0 * fp["psf_sigma_px"] < 80.0
    assert f"through a {30.0 * fp['psf_sigma_px']:.0f} m footprint" in " ".join(res.output.split())
    # the guard's decision and both checks' errors, as the JSON records them (the user's only view of why)
    held = out["dms"]["info"]["holdout_rmse_k"]
    assert out["dms_guard"].startswith("DMS guard: delivered bilinear (DMS does not beat bilinear")
    assert f"bilinear {held['bilinear']:.3f}" in out["dms_guard"] and out["dms_guard"] in " ".join(res.output.split())
    bad = CliRunner().invoke(app, ["validate-sharpening", "--landsat", str(REAL / "landsat-amazonas-cloud")])
    assert bad.exit_code == 1 and "SR_B4" in bad.output
    # the folder as the command's argument, as `heattrack report OUT` takes its folder: the same result
    pos = CliRunner().invoke(app, ["validate-sharpening", str(REAL / "landsat-momotombo"), "--factor", "9",
                                   "--eval-factor", "3", "--json", str(tmp_path / "b.json")])
    assert pos.exit_code == 0, pos.output
    assert json.loads((tmp_path / "b.json").read_text()) == out
    for args, says in (([], "no folder given"), ([str(tmp_path), "--landsat", str(REAL)], "two folders given")):
        res = CliRunner().invoke(app, ["validate-sharpening", *args])
        assert res.exit_code == 1 and says in res.output and "Traceback" not in res.output
