import re
from pathlib import Path

import pytest

import heattrack
from heattrack.config import Config, load_config, parse_set_option
from heattrack.errors import ConfigError


def test_defaults_and_derived_sizes():
    cfg = Config()
    assert cfg.thermal_factor == 10 and cfg.tile_px == 1000 and cfg.background_block_px == 5
    assert cfg.halo_px % cfg.thermal_factor == 0 and cfg.halo_px * 10 >= cfg.detect.background_window_m / 2


def test_kernel_defaults_are_the_config_defaults():
    """The kernels' own defaults (for standalone use) equal what the default Config builds, so there is one set
    of defaults in practice; only values the config derives differ (ranking method, GPU batch from memory)."""
    from dataclasses import asdict

    from heattrack.io.local import CoregParams
    from heattrack.kernels.chain import ChainParams
    from heattrack.orchestration.run_plan import coreg_params

    built, own = asdict(ChainParams.from_config(Config())), asdict(ChainParams())
    for derived in ("method", "max_batch"):
        built["detector"].pop(derived), own["detector"].pop(derived)
    assert built == own
    assert coreg_params(Config()) == CoregParams()


def test_precedence_file_env_cli(tmp_path, monkeypatch):
    f = tmp_path / "c.yaml"
    f.write_text("grid:\n  tile_km: 20\ndetect:\n  noise_floor_k: 0.5\ncompute:\n  scheduler: local\n")
    monkeypatch.setenv("HEATTRACK_DETECT__NOISE_FLOOR_K", "0.7")
    cfg = load_config(f, {"grid.tile_km": 5.0, "compute.n_workers": None})
    assert cfg.grid.tile_km == 5.0          # CLI beats file
    assert cfg.detect.noise_floor_k == 0.7  # env beats file
    assert cfg.compute.n_workers is None    # None means "not given"
    assert Config.model_validate(__import__("yaml").safe_load(cfg.to_yaml())) == cfg  # round trip


def test_hash_ignores_compute_settings():
    a = load_config(None, {"compute.scheduler": "tcp://x:8786"})
    b = load_config(None, {"compute.n_workers": 7})
    c = load_config(None, {"detect.noise_floor_k": 0.4})
    assert a.processing_hash() == b.processing_hash() != c.processing_hash()


@pytest.mark.parametrize("overrides,match", [
    ({"grid.tile_km": 10.05}, "multiple"),
    ({"downscale.thermal_resolution_m": 95}, "multiple"),
    ({"downscale.method": "magic"}, "downscale.method"),
    ({"grid.unknown": 1}, "grid.unknown"),
    ({"detect.background_block_m": 30}, "divide"),
    # the grid's CRS, checked when the configuration loads (before a cluster starts), with the validator's own words
    ({"grid.crs": "EPSG:99999"}, r"grid\.crs: 'EPSG:99999' is not a CRS pyproj knows"),
    ({"grid.crs": "EPSG:4326"}, r"grid\.crs: 'EPSG:4326' is not a projected CRS"),
    ({"grid.crs": "EPSG:2263"}, "US survey foot, not metres"),
    ({"simulate.seed": -1}, r"simulate\.seed"),  # NumPy's generator refuses it later, as an unexpected error
])
def test_invalid_values_are_one_line_errors(overrides, match):
    with pytest.raises(ConfigError, match=match) as e:
        load_config(None, overrides)
    assert "\n" not in str(e.value)


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("grid: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    assert parse_set_option("detect.noise_floor_k=0.4") == ("detect.noise_floor_k", 0.4)
    with pytest.raises(ConfigError):
        parse_set_option("nonsense")


def test_shipped_configs_validate():
    from pathlib import Path

    for f in sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")):
        load_config(f)


def test_configuration_docs_match_the_model():
    from pathlib import Path

    from heattrack.config_docs import config_reference

    doc = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
    assert doc.strip() == config_reference().strip(), "run: heattrack config --reference > docs/configuration.md"


def test_a_local_input_folder_brings_its_own_network(tmp_path):
    """``input.pipes`` unset: the local input folder's pipes.geojson (then .gpkg) is the network, and the resolved
    configuration names it; an explicit file, another source or a folder without one leave it as given."""
    (tmp_path / "pipes.gpkg").write_bytes(b"")
    assert load_config(None, {"input.input": tmp_path}).input.pipes == tmp_path / "pipes.gpkg"
    (tmp_path / "pipes.geojson").write_text("{}")
    cfg = load_config(None, {"input.input": tmp_path})
    assert cfg.input.pipes == tmp_path / "pipes.geojson" and "pipes.geojson" in cfg.to_yaml()
    assert load_config(None, {"input.input": tmp_path, "input.pipes": "/x/net.shp"}).input.pipes.name == "net.shp"
    assert load_config(None, {"input.input": tmp_path, "input.source": "stac"}).input.pipes is None
    assert load_config(None, {"input.input": tmp_path / "sub"}).input.pipes is None
    empty = tmp_path / "empty"
    empty.mkdir()
    assert load_config(None, {"input.input": empty}).input.pipes is None


#: what a string may name as ``section.name`` that is not a configuration key: files, and run.json's grid record
_NOT_KEYS = re.compile(r"\.(geojson|gpkg|json|js|md|py|tmp|old|csv|gpx|tif|vrt|yaml|zarr|npz|html)$|^grid\.(tiles|aoi|"
                       r"n_tiles)")


def test_messages_and_docstrings_name_configuration_keys_that_exist():
    """Every ``section.key`` in heattrack's strings (errors, notes, help, docstrings) is a key of the configuration:
    a user told to set ``input.dates`` must find it (one that does not exist was found in a run's note)."""
    import io
    import tokenize

    import yaml

    keys: set[str] = set()

    def walk(node, prefix=""):
        if isinstance(node, dict):
            for k, v in node.items():
                keys.add(prefix + k)
                walk(v, prefix + k + ".")

    walk(yaml.safe_load(load_config(None, {}).to_yaml()))
    sections = sorted(k for k in keys if "." not in k)
    pattern = re.compile(r"(?<![\w.])(?:" + "|".join(sections) + r")(?:\.[a-z_][a-z0-9_]*){1,2}")
    unknown = []
    for path in sorted(Path(heattrack.__file__).parent.rglob("*.py")):
        for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
            if tok.type != tokenize.STRING:
                continue
            for m in pattern.finditer(tok.string):
                name = m.group(0)
                two = ".".join(name.split(".")[:2])
                if name not in keys and two not in keys and not _NOT_KEYS.search(name):
                    unknown.append(f"{path.name}:{tok.start[0]} {name}")
    assert unknown == []
