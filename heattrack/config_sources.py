"""The sections of the one :class:`heattrack.config.Config` that configure remote imagery sources: STAC,
Earth Engine and ECOSTRESS (from CMR-STAC or Earth Engine)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from heattrack.config_compute import Section


class StacConfig(Section):
    """`input.source: stac`: search a STAC API, pick the best Landsat/Sentinel-2 pairs per tile, load with
    odc-stac. Defaults fit Microsoft Planetary Computer."""

    url: str | None = Field(None, description="STAC API root, e.g. https://planetarycomputer.microsoft.com/api/"
                            "stac/v1 or https://earth-search.aws.element84.com/v1.")
    datetime: str | None = Field(None, description="Search interval, e.g. '2024-12-01/2025-02-28' (the season).")
    landsat_collection: str = Field("landsat-c2-l2", description="Landsat Collection 2 Level-2 collection id.")
    s2_collection: str = Field("sentinel-2-l2a", description="Sentinel-2 L2A collection id.")
    landsat_assets: dict[str, str] = Field(default_factory=dict, description="Asset keys for ST_B10, QA_PIXEL, "
                                           "SR_B4, SR_B5 (defaults lwir11, qa_pixel, red, nir08).")
    s2_assets: dict[str, str] = Field(default_factory=dict, description="Asset keys for B04, B08, SCL (required) "
                                      "and B02, B03, B05, B06, B07, B8A, B11, B12 (read when the item has them); "
                                      "defaults are the band names (Planetary Computer); Earth Search: red, nir, "
                                      "scl, blue, green, rededge1-3, nir08, swir16, swir22.")
    max_cloud_cover: float = Field(80.0, ge=0, le=100, description="Skip items with a larger eo:cloud_cover (%).")
    pairs: int = Field(1, ge=1, description="Best date pairs kept per tile (ranked by Landsat clear fraction over "
                       "the tile; > 1 = multi-date detection).")
    min_clear_fraction: float = Field(0.05, ge=0, le=1, description="Sentinel-2 partner must be at least this "
                                      "clear over the tile (SCL).")
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
    pairs: int = Field(1, ge=1, description="Least cloudy Landsat scenes kept (each with its nearest Sentinel-2).")
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
