"""The ``gee`` source: Landsat 8/9 C2 L2 and Sentinel-2 L2A (harmonised) from Google Earth Engine.

Pixels come from ``ee.data.computePixels`` straight onto each tile's 10 m GeoBox (the server resamples: nearest
for ST_B10/QA_PIXEL/SCL, bilinear for reflectance), as NumPy structured arrays, in requests under the service
limits (``gee.max_request_mb``, default 48 MB, and 32,768 px per side; larger tiles are split into windows).
Cloud masking is done server-side (ST_B10 set to its fill value 0 where QA_PIXEL flags fill, dilated cloud,
cirrus, cloud or shadow); the client applies the same QA rules again, so both agree. Quota errors (HTTP 429,
"Too Many Requests", "quota") are retried with exponential backoff, at most ``gee.max_concurrent`` requests per
worker process run at once.

Credentials: a service-account key (``GOOGLE_APPLICATION_CREDENTIALS`` or ``gee.credentials_file``) and the
Cloud project (``gee.project``). Errors name the file and the account, never the key's content.
``COPERNICUS/S2_SR_HARMONIZED`` already removes the baseline-04.00 offset, so no offset is applied.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import numpy as np
from odc.geo.geobox import GeoBox
from rasterio.enums import Resampling

from heattrack.config_sources import RUN_PAIRS
from heattrack.errors import ConfigError, InputError
from heattrack.io.local import LocalSceneReader
from heattrack.io.retry import first_line, with_retries

log = logging.getLogger(__name__)

LANDSAT_BANDS = ("ST_B10", "QA_PIXEL", "SR_B4", "SR_B5")
#: fetched besides for a Landsat scene run alone (its optics, :mod:`heattrack.io.landsat_optics`)
ALONE_BANDS = ("SR_B2", "SR_B3", "SR_B6", "SR_B7")
#: canonical name -> Earth Engine band of COPERNICUS/S2_SR_HARMONIZED
#: canonical band -> Earth Engine band of COPERNICUS/S2_SR_HARMONIZED: every reflective band (the sharpener's
#: predictors; 20 m bands resampled bilinearly on the server) and SCL
S2_BANDS = {"B02": "B2", "B03": "B3", "B04": "B4", "B05": "B5", "B06": "B6", "B07": "B7", "B08": "B8",
            "B8A": "B8A", "B11": "B11", "B12": "B12", "SCL": "SCL"}
MAX_SIDE_PX = 32768
_CLOUD_BITS = sum(1 << b for b in (1, 2, 3, 4))  # dilated cloud, cirrus, cloud, shadow (server-side mask)


@dataclass(frozen=True)
class GeeSettings:
    """Plain Earth Engine settings, built only by :meth:`from_config` (the defaults live in the ``gee:`` config
    section)."""

    project: str | None
    credentials_file: str | None
    landsat_collections: tuple[str, ...]
    s2_collection: str
    datetime: str | None
    max_cloud_cover: float
    pairs: int
    max_date_gap_days: float
    max_request_mb: float
    max_concurrent: int
    retries: int
    backoff_s: float
    landsat_alone: bool = False

    @classmethod
    def from_config(cls, cfg) -> "GeeSettings":
        g = cfg.gee
        return cls(project=g.project, credentials_file=g.credentials_file,
                   landsat_collections=tuple(g.landsat_collections), s2_collection=g.s2_collection,
                   datetime=g.datetime, max_cloud_cover=g.max_cloud_cover, pairs=g.pairs or RUN_PAIRS,
                   max_date_gap_days=cfg.input.max_date_gap_days, max_request_mb=g.max_request_mb,
                   max_concurrent=g.max_concurrent, retries=g.retries, backoff_s=g.backoff_s,
                   landsat_alone=g.landsat_alone)


@dataclass(frozen=True)
class GeeScene:
    """One Landsat + Sentinel-2 pair as Earth Engine asset ids (the fields of ``LocalScene`` that the reader and
    the run summary use). ``landsat``/``sentinel2``: canonical band -> Earth Engine band."""

    landsat_id: str
    s2_id: str
    landsat_product: str
    landsat_date: date | None
    s2_date: date | None
    landsat_cloud_cover: float = float("nan")
    s2_boa_offset: float = 0.0
    s2_offset_source: str = "COPERNICUS/S2_SR_HARMONIZED (offset removed by the catalogue)"
    #: band maps for the shared reader code ("SR_B5" in scene.landsat); not part of equality/hash
    landsat: dict = field(default_factory=lambda: {b: b for b in LANDSAT_BANDS}, compare=False)
    sentinel2: dict = field(default_factory=lambda: dict(S2_BANDS), compare=False)

    @property
    def optics(self) -> str:
        """``sentinel2``, or ``landsat`` for a scene run alone (``s2_id`` empty): its own reflective bands."""
        return "sentinel2" if self.sentinel2 else "landsat"

    @property
    def date_gap_days(self) -> float | None:
        if self.landsat_date is None or self.s2_date is None:
            return None
        return float(abs((self.landsat_date - self.s2_date).days))


def landsat_alone_scene(landsat_id: str, landsat_date: date | None, cloud_cover: float) -> GeeScene:
    """A Landsat scene without a Sentinel-2 partner: its reflective bands (SR_B2-B7) are fetched as the optics."""
    return GeeScene(landsat_id=landsat_id, s2_id="", landsat_product=landsat_id.rsplit("/", 1)[-1],
                    landsat_date=landsat_date, s2_date=None, landsat_cloud_cover=cloud_cover,
                    s2_offset_source="no Sentinel-2", landsat={b: b for b in (*LANDSAT_BANDS, *ALONE_BANDS)},
                    sentinel2={})


# -- session ---------------------------------------------------------------------------------------------

_init_lock = threading.Lock()


def ensure_initialized(st: GeeSettings) -> None:
    """``ee.Initialize`` once per process with the service account; clear errors, no secrets in them."""
    import ee

    with _init_lock:
        if ee.data.is_initialized():
            return
        key = st.credentials_file or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if not key:
            raise ConfigError("Earth Engine needs a service-account key: set GOOGLE_APPLICATION_CREDENTIALS or "
                              "gee.credentials_file, and gee.project")
        if not Path(key).is_file():
            raise ConfigError(f"Earth Engine key file {key} does not exist")
        try:
            info = json.loads(Path(key).read_text())
            email = info["client_email"]
            info["private_key"]  # noqa: B018 (must be present)
            creds = ee.ServiceAccountCredentials(email, key_file=key)
        except Exception:
            raise ConfigError(f"{key} is not a valid Earth Engine service-account key (a JSON key file with "
                              "client_email and private_key)") from None
        try:
            ee.Initialize(creds, project=st.project)
        except Exception as exc:
            raise ConfigError(f"Earth Engine refused the service account {email} (project {st.project}): "
                              f"{str(exc).splitlines()[0][:200]}") from None
        ee.data.setMaxRetries(0)  # retries are ours (backoff, bounded), not the HTTP client's


@lru_cache(maxsize=4)
def _semaphore(n: int) -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(n)


def _is_quota_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "429" in text or "too many requests" in text or "quota" in text or "rate limit" in text


def call_with_backoff(fn, st: GeeSettings, what: str):
    """``fn()`` under the per-process concurrency limit; quota errors retried with exponential backoff."""
    def call():
        with _semaphore(st.max_concurrent):
            return fn()

    def give_up(exc: Exception) -> Exception:
        return exc if isinstance(exc, ConfigError) else InputError(f"Earth Engine {what} failed: {first_line(exc)}")

    return with_retries(call, attempts=st.retries + 1, backoff_s=st.backoff_s, what=f"Earth Engine {what}",
                        retry_if=lambda exc: not isinstance(exc, ConfigError) and _is_quota_error(exc),
                        on_give_up=give_up)


# -- scene selection (whole AOI) -----------------------------------------------------------------------

def select_pairs(st: GeeSettings, bbox_lonlat: tuple[float, float, float, float]) -> list[GeeScene]:
    """The ``st.pairs`` least cloudy Landsat scenes over the AOI in ``st.datetime`` (scene CLOUD_COVER, server-
    side sort), each with the Sentinel-2 image closest in time within ``max_date_gap_days``."""
    import ee

    ensure_initialized(st)
    if not st.datetime or "/" not in st.datetime:
        raise ConfigError("input.source 'gee' needs gee.datetime 'YYYY-MM-DD/YYYY-MM-DD' (or screen --season)")
    start, end = st.datetime.split("/")
    region = ee.Geometry.Rectangle(list(bbox_lonlat))
    coll = ee.ImageCollection(st.landsat_collections[0])
    for c in st.landsat_collections[1:]:
        coll = coll.merge(ee.ImageCollection(c))
    coll = (coll.filterDate(start, end).filterBounds(region).filter(ee.Filter.lte("CLOUD_COVER", st.max_cloud_cover))
            .sort("CLOUD_COVER").limit(3 * st.pairs))
    found = call_with_backoff(lambda: ee.data.computeValue(ee.Dictionary({
        "ids": coll.aggregate_array("system:id"), "times": coll.aggregate_array("system:time_start"),
        "cloud": coll.aggregate_array("CLOUD_COVER")})), st, "Landsat search")
    pairs = []
    for lid, t, cc in zip(found["ids"], found["times"], found["cloud"]):
        if len(pairs) >= st.pairs:
            break
        ld = datetime.fromtimestamp(t / 1000, timezone.utc).date()
        gap = timedelta(days=st.max_date_gap_days)
        s2 = (ee.ImageCollection(st.s2_collection).filterDate(str(ld - gap), str(ld + gap + timedelta(days=1)))
              .filterBounds(region).filter(ee.Filter.lte("CLOUDY_PIXEL_PERCENTAGE", st.max_cloud_cover)))
        cand = call_with_backoff(lambda s2=s2: ee.data.computeValue(ee.Dictionary({
            "ids": s2.aggregate_array("system:id"), "times": s2.aggregate_array("system:time_start")})),
            st, "Sentinel-2 search")
        if not cand["ids"]:
            continue
        best = min(zip(cand["ids"], cand["times"]), key=lambda p: (abs(p[1] - t), p[0]))
        pairs.append(GeeScene(landsat_id=lid, s2_id=best[0], landsat_product=lid.rsplit("/", 1)[-1],
                              landsat_date=ld, s2_date=datetime.fromtimestamp(best[1] / 1000, timezone.utc).date(),
                              landsat_cloud_cover=float(cc)))
    if not pairs and found["ids"] and st.landsat_alone:  # no partner at all: the least cloudy scene alone
        lid, t, cc = found["ids"][0], found["times"][0], found["cloud"][0]
        pairs.append(landsat_alone_scene(lid, datetime.fromtimestamp(t / 1000, timezone.utc).date(), float(cc)))
    return pairs


# -- pixels ------------------------------------------------------------------------------------------------

def _image(scene: GeeScene, sensor: str):
    import ee

    if sensor == "landsat":
        img = ee.Image(scene.landsat_id)
        qa = img.select("QA_PIXEL").unmask(1)  # outside the scene: the fill bit
        st_b10 = img.select("ST_B10").updateMask(qa.bitwiseAnd(_CLOUD_BITS).eq(0)).unmask(0)
        optics = ["SR_B4", "SR_B5"] + ([] if scene.sentinel2 else list(ALONE_BANDS))
        return st_b10.addBands(qa).addBands(img.select(optics).resample("bilinear")).toUint16()
    img = ee.Image(scene.s2_id)
    refl_bands = [b for b in S2_BANDS if b != "SCL"]
    refl = img.select([S2_BANDS[b] for b in refl_bands]).resample("bilinear").rename(refl_bands)
    return refl.addBands(img.select(["SCL"])).toUint16()


def request_windows(geobox: GeoBox, bytes_per_px: int, max_request_mb: float):
    """Row/column windows of ``geobox`` whose requests stay under ``max_request_mb`` and 32,768 px per side."""
    h, w = geobox.shape.y, geobox.shape.x
    cw = min(w, MAX_SIDE_PX)
    rows = max(1, min(MAX_SIDE_PX, int(max_request_mb * 1e6 // (cw * bytes_per_px))))
    for r0 in range(0, h, rows):
        for c0 in range(0, w, cw):
            yield r0, min(h, r0 + rows), c0, min(w, c0 + cw)


def fetch_bands(scene: GeeScene, sensor: str, geobox: GeoBox, st: GeeSettings) -> dict[str, np.ndarray]:
    """All bands of ``sensor`` on ``geobox`` (uint16 DN; Landsat ST_B10 already 0 where cloudy)."""
    ensure_initialized(st)
    bands = list(scene.landsat) if sensor == "landsat" else list(S2_BANDS)
    what = f"pixels of {scene.landsat_id if sensor == 'landsat' else scene.s2_id}"
    return compute_pixels(_image(scene, sensor), bands, np.uint16, geobox, st, what)


def compute_pixels(image, fields: list[str], dtype, geobox: GeoBox, st: GeeSettings, what: str) -> dict[str, np.ndarray]:
    """``fields`` of the Earth Engine ``image`` on ``geobox`` through ``ee.data.computePixels``, in windows under
    the request limits, each request under the quota backoff."""
    import ee

    out = {b: np.zeros(geobox.shape.yx, dtype) for b in fields}
    crs = geobox.crs.epsg and f"EPSG:{geobox.crs.epsg}" or geobox.crs.wkt
    for r0, r1, c0, c1 in request_windows(geobox, np.dtype(dtype).itemsize * len(fields), st.max_request_mb):
        a = geobox.affine
        x0, y0 = a @ (c0, r0)
        grid = {"dimensions": {"width": c1 - c0, "height": r1 - r0},
                "affineTransform": {"scaleX": a.a, "shearX": a.b, "translateX": x0, "shearY": a.d, "scaleY": a.e,
                                    "translateY": y0}, "crsCode": crs}
        arr = call_with_backoff(lambda grid=grid: ee.data.computePixels(
            {"expression": image, "fileFormat": "NUMPY_NDARRAY", "grid": grid}), st, what)
        for b in fields:
            out[b][r0:r1, c0:c1] = arr[b]
    return out


@lru_cache(maxsize=8)
def _cached_fetch(scene: GeeScene, sensor: str, geobox: GeoBox, st: GeeSettings) -> dict[str, np.ndarray]:
    return fetch_bands(scene, sensor, geobox, st)


@dataclass(frozen=True)
class GeeSceneReader(LocalSceneReader):
    """Reads a :class:`GeeScene` onto tile GeoBoxes: one request set per sensor and GeoBox (all bands at once,
    server-side resampling), then the local reader's preprocessing and coregistration."""

    settings: GeeSettings | None = None

    def _warp(self, sensor: str, band: str, geobox: GeoBox, resampling: Resampling, nodata: float) -> np.ndarray:
        return _cached_fetch(self.scene, sensor, geobox, self.settings)[band]
