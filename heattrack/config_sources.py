"""The sections of the one :class:`heattrack.config.Config` that configure imagery sources: STAC, Earth Engine,
ECOSTRESS (from CMR-STAC or Earth Engine) and the simulator (``simulate``: the synthetic source, ``heattrack
simulate`` and ``demo``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from heattrack.config_compute import Section

#: date pairs per tile of a season's search where ``stac.pairs`` / ``gee.pairs`` are unset: a winter screened on three
#: clear dates instead of one ranks and classifies changes better (docs/measurements.md, "Three dates per winter":
#: visible leaks in the top 5 % 0.93 against 0.80 on 21 independent cities, 0.796 against 0.66 on the held-out
#: family; new leaks called ``new`` 0.79 against 0.40 and 0.72 against 0.61), for three times the tile tasks
SEASON_PAIRS = 3
#: ... and of a run (``heattrack run``): one date pair per tile
RUN_PAIRS = 1


class StacConfig(Section):
    """`input.source: stac`: search a STAC API, pick the best Landsat/Sentinel-2 pairs per tile, load with
    odc-stac. Defaults fit Microsoft Planetary Computer."""

    url: str | None = Field(None, description="STAC API root, e.g. https://planetarycomputer.microsoft.com/api/"
                            "stac/v1 or https://earth-search.aws.element84.com/v1.")
    datetime: str | None = Field(None, description="Search interval, e.g. '2024-12-01/2025-02-28' (the season).")
    landsat_collection: str = Field("landsat-c2-l2", description="Landsat Collection 2 Level-2 collection id.")
    s2_collection: str = Field("sentinel-2-l2a", description="Sentinel-2 L2A collection id.")
    landsat_assets: dict[str, str] = Field(default_factory=dict, description="Asset keys for ST_B10, QA_PIXEL, "
                                           "SR_B4, SR_B5 and SR_B2, SR_B3, SR_B6, SR_B7 (defaults lwir11, qa_pixel, "
                                           "red, nir08, blue, green, swir16, swir22).")
    s2_assets: dict[str, str] = Field(default_factory=dict, description="Asset keys for B04, B08, SCL (required) "
                                      "and B02, B03, B05, B06, B07, B8A, B11, B12 (read when the item has them); "
                                      "defaults are the band names (Planetary Computer); Earth Search: red, nir, "
                                      "scl, blue, green, rededge1-3, nir08, swir16, swir22.")
    max_cloud_cover: float = Field(80.0, ge=0, le=100, description="Skip items with a larger eo:cloud_cover (%).")
    pairs: int | None = Field(None, ge=1, description="Best date pairs kept per tile (ranked by Landsat clear "
                              f"fraction over the tile; > 1 = multi-date detection). Unset: {RUN_PAIRS} for a run, "
                              f"{SEASON_PAIRS} for a season (screen --season, download --season).")
    min_clear_fraction: float = Field(0.05, ge=0, le=1, description="Sentinel-2 partner must be at least this "
                                      "clear over the tile (SCL), and so must a second or later Landsat day "
                                      "(QA_PIXEL; or half as clear as the best day where the data cover less of the "
                                      "tile).")
    landsat_alone: bool = Field(True, description="A tile with no Sentinel-2 partner within "
                                "input.max_date_gap_days runs its clearest Landsat day alone, its own reflective "
                                "bands as the optics (30 m detail; ranks as the pair does on held-out cities, "
                                "docs/measurements.md); false leaves such tiles out. run --source stac only: "
                                "download fetches pairs.")
    sign: Literal["none", "planetary-computer"] = Field("none", description="Sign asset URLs inside each tile "
                                                        "task (Planetary Computer SAS tokens).")
    aws_request_payer: bool = Field(False, description="Requester-pays S3 assets (e.g. s3://usgs-landsat).")
    aws_no_sign_request: bool = Field(False, description="Anonymous S3 reads (public buckets).")
    max_items: int = Field(500, ge=1, description="At most this many items per collection and search.")
    http_retries: int = Field(3, ge=0, description="GDAL retries of an asset request answered 429/5xx "
                              "(exponential backoff from 0.5 s).")


class GeeConfig(Section):
    """`input.source: gee`: Google Earth Engine with a service account (key: GOOGLE_APPLICATION_CREDENTIALS or
    credentials_file; never written to outputs)."""

    project: str | None = Field(None, description="Google Cloud project registered for Earth Engine.")
    credentials_file: str | None = Field(None, description="Service-account JSON key (default: "
                                         "$GOOGLE_APPLICATION_CREDENTIALS).")
    datetime: str | None = Field(None, description="Search interval 'YYYY-MM-DD/YYYY-MM-DD' (screen --season "
                                 "sets it).")
    landsat_collections: list[str] = Field(default_factory=lambda: ["LANDSAT/LC08/C02/T1_L2",
                                                                    "LANDSAT/LC09/C02/T1_L2"],
                                           description="Landsat C2 L2 collections searched.")
    s2_collection: str = Field("COPERNICUS/S2_SR_HARMONIZED", description="Sentinel-2 L2A collection (harmonised: "
                               "no offset to apply).")
    max_cloud_cover: float = Field(80.0, ge=0, le=100, description="Scene cloud cover limit (%).")
    pairs: int | None = Field(None, ge=1, description="Least cloudy Landsat scenes kept (each with its nearest "
                              f"Sentinel-2). Unset: {RUN_PAIRS} for a run, {SEASON_PAIRS} for a season "
                              "(screen --season).")
    landsat_alone: bool = Field(True, description="No Landsat scene with a Sentinel-2 image within "
                                "input.max_date_gap_days: run the least cloudy one alone, its own reflective bands "
                                "the optics (30 m detail); false refuses the run.")
    max_request_mb: float = Field(48.0, gt=0, le=48, description="Largest computePixels response (MB); tiles are "
                                  "split into windows below it (and 32,768 px per side).")
    max_concurrent: int = Field(4, ge=1, description="Concurrent Earth Engine requests per worker process.")
    retries: int = Field(5, ge=0, description="Retries of a request refused for quota (HTTP 429).")
    backoff_s: float = Field(1.0, ge=0, description="First retry delay (s); doubles each retry.")


class EcostressConfig(Section):
    """`input.source: ecostress`: ECOSTRESS L2T LSTE V2 passes (70 m LST, cloud/water/LST_err layers) over the
    AOI from NASA's CMR-STAC (LP DAAC; Earthdata login from $EARTHDATA_TOKEN or ~/.netrc, never written to
    outputs) or Earth Engine (the gee section's account). Passes are kept by thermal.time_of_day and ranked by
    their clear share of the AOI."""

    api: Literal["stac", "gee"] = Field("stac", description="Where the passes come from: stac (CMR-STAC) or gee.")
    stac_url: str = Field("https://cmr.earthdata.nasa.gov/stac/LPCLOUD", description="STAC API root holding the "
                          "ECOSTRESS collection.")
    collection: str = Field("ECO_L2T_LSTE_002", description="STAC collection id of ECOSTRESS L2T LSTE V2.")
    assets: dict[str, str] = Field(default_factory=dict, description="Asset keys for LST, LST_err, cloud, water "
                                   "(defaults: those names).")
    gee_collection: str = Field("NASA/ECOSTRESS/L2T_LSTE/V2", description="Earth Engine image collection.")
    datetime: str | None = Field(None, description="Search interval 'YYYY-MM-DD/YYYY-MM-DD' (screen --season "
                                 "sets it).")
    passes: int = Field(4, ge=1, description="Clearest passes over the AOI kept (one date each; evidence is "
                        "combined over them).")
    min_clear_fraction: float = Field(0.05, ge=0, le=1, description="Passes with a smaller clear share of the "
                                      "AOI (cloud and water masked) are skipped.")
    max_items: int = Field(500, ge=1, description="At most this many items per search.")


class SimulateConfig(Section):
    """The synthetic region of `heattrack simulate` / `heattrack demo` (not part of the processing hash)."""

    size_km: float = Field(12.0, ge=1.0, description="Side of the square region (km).")
    leaks: int = Field(18, ge=0, description="Number of leaking segments.")
    distractors: int | None = Field(None, ge=0, description="Hot spots away from pipes (None: as many as leaks).")
    seed: int = Field(3, ge=0, description="Random seed of the scene (same seed, same scene).")
    cloud_fraction: float = Field(0.06, ge=0.0, le=0.95, description="Landsat cloud cover 0-1.")
    dates: int = Field(1, ge=1, le=12, description="Date pairs 16 days apart (> 1: one sub-folder per date; "
                       "leaks persist, half the distractors move, new noise and clouds per date).")
    season: int = Field(0, ge=0, description="> 0: a later winter of the same city (same pipes; a share of the "
                        "leaks repaired, as many new ones; dates + 365 days per season).")
    leak_k: tuple[float, float] = Field((2.0, 10.0), description="Range of leak peak excess temperature (K).")
    sensor: Literal["landsat", "airborne", "ecostress", "landsat+ecostress"] = Field(
        "landsat", description="landsat: Landsat C2L2 + Sentinel-2 L2A products; airborne: only thermal/ (the true "
        "10 m LST + 0.1 K noise), as a utility's winter-night thermography flight; ecostress: only thermal/, an "
        "ECOSTRESS L2T LSTE night pass (70 m, 0.3 K noise, cloud/water/LST_err layers); landsat+ecostress: "
        "both, for a mixed run.")
    family_member: int | None = Field(None, description="Simulate member N of the randomised simulator family "
                                      "(heattrack.simulate.family_spec) instead of the settings above (size_km, "
                                      "sensor, season and dates still apply).")
