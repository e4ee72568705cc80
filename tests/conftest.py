"""Shared fixtures: seeded rng, tiny rasters, one small simulated scene per session."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from heattrack.simulate import SimulationSpec, simulate_scene

DATA = Path(__file__).parent / "data"
REAL = DATA / "real"
SHARED_REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"

#: small, fast processing settings for end-to-end tests (1.5 km tiles -> several tiles on a 3 km scene)
SMALL_RUN = {"grid.tile_km": 1.5, "compute.n_workers": 2}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


@pytest.fixture
def smooth_tile_chain():
    """A 400 x 400 px smooth LST field with uniform optics, the bilinear chain with the baseline detector, and
    its products: the scene the injection-test checks plant their plumes in. Returns ``(lst, red, nir, clear,
    params, products)``."""
    from dataclasses import replace

    from heattrack.kernels.chain import ChainParams, thermal_products

    n = 400
    yy, xx = np.mgrid[:n, :n].astype(np.float32)
    lst = (270.0 + 0.002 * xx + 0.3 * np.sin(yy / 40.0)).astype(np.float32)
    red, nir = np.full((n, n), 0.08, np.float32), np.full((n, n), 0.3, np.float32)
    clear = np.ones((n, n), bool)
    base_params = ChainParams(downscale_method="bilinear")
    params = replace(base_params, detector=replace(base_params.detector, method="baseline"))
    return lst, red, nir, clear, params, thermal_products(lst, red, nir, clear, params)


@pytest.fixture(scope="session")
def small_scene(tmp_path_factory) -> Path:
    """A 3 km synthetic scene in the local layout (landsat/, sentinel2/, pipes.geojson, truth/)."""
    out = tmp_path_factory.mktemp("scene") / "scene"
    simulate_scene(out, SimulationSpec(size_km=3.0, leaks=6, seed=11))
    return out


def copy_scene(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    for p in dst.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    return dst


def corner_network(scene: Path, dst: Path) -> Path:
    """The pipes of ``scene`` that lie in a 0.8 km square near its south-west corner (200 m in from the network's
    edge), written to ``dst`` (GeoJSON): a network covering a small part of the data."""
    import geopandas as gpd

    pipes = gpd.read_file(scene / "pipes.geojson")
    b = pipes.to_crs(pipes.estimate_utm_crs()).bounds
    x0, y0 = b.minx.min(), b.miny.min()
    keep = ((b.minx > x0 + 200) & (b.maxx < x0 + 1000) & (b.miny > y0 + 200) & (b.maxy < y0 + 1000)).to_numpy()
    pipes[keep].to_file(dst, driver="GeoJSON")
    return dst


def split_scene(src: Path, dst: Path) -> Path:
    """The scene's Landsat product and Sentinel-2 granule each cut into a west and an east item of the same day
    (overlapping by a few pixels, as neighbouring WRS rows / MGRS tiles do), under other product ids."""
    import rasterio
    from rasterio.windows import Window

    for sensor, rename in (("landsat", ("_116034_", "_116035_")), ("sentinel2", ("T52SCG_", "T52SCH_"))):
        (dst / sensor).mkdir(parents=True)
        for f in sorted((src / sensor).iterdir()):
            if f.suffix.lower() != ".tif":
                (dst / sensor / f.name).write_bytes(f.read_bytes())
                continue
            with rasterio.open(f) as r:
                mid = r.width // 2
                for name, win in ((f.name, Window(0, 0, mid + 3, r.height)),
                                  (f.name.replace(*rename), Window(mid - 3, 0, r.width - mid + 3, r.height))):
                    prof = {**r.profile, "width": win.width, "height": win.height,
                            "transform": r.window_transform(win)}
                    with rasterio.open(dst / sensor / name, "w", **prof) as w:
                        w.write(r.read(window=win))
    (dst / "pipes.geojson").write_bytes((src / "pipes.geojson").read_bytes())
    return dst
