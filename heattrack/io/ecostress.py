"""The ``ecostress`` source: ECOSTRESS L2T LSTE V2 passes (70 m land-surface temperature, MGRS tiles like
Sentinel-2) from NASA's CMR-STAC or from Earth Engine, screened like any coarse thermal raster (no optics, no
sharpening; the ranking sees the 70 m footprint).

Per pass (all tiles of one orbit pass over the AOI, mosaicked as odc-stac's ``groupby="solar_day"`` does) the
reader loads ``LST`` (K), ``cloud`` and ``water`` (1 = flagged: masked) and ``LST_err`` (K; pixels above
``thermal.max_lst_err_k`` dropped). Passes are kept by local solar time (``thermal.time_of_day``; winter nights
carry no solar heating of roofs and roads) and ranked by their clear share of the AOI; the best
``ecostress.passes`` become the run's dates.

Earthdata credentials (LP DAAC assets): ``$EARTHDATA_TOKEN`` (sent as a bearer header by GDAL), else
``~/.netrc`` (GDAL's netrc support with a cookie jar under ``~/.cache/heattrack``). They are never logged or
written to outputs. Earth Engine uses the ``gee`` section's service account (:mod:`heattrack.io.gee`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import ClassVar

import numpy as np
from odc.geo.geobox import GeoBox
from odc.geo.geom import Geometry
from rasterio.enums import Resampling

from heattrack.errors import ConfigError, InputError, NoDataError
from heattrack.io.ecostress_gee import fetch_layers, search_gee
from heattrack.io.gee import GeeSettings
from heattrack.io.local import TileInputs
from heattrack.io.stac import load_band
from heattrack.io.thermal import (
    ECOSTRESS_PSF_M,
    flag_spread_px,
    keep_time_of_day,
    lst_only_inputs,
    mask_lst_and_water,
    solar_hour,
)

#: canonical layer -> default asset key (CMR-STAC names the assets after the file's layer)
ASSETS = {"LST": "LST", "LST_err": "LST_err", "cloud": "cloud", "water": "water"}
_ORBIT = re.compile(r"L2T_LSTE_(\d+)_(\d+)_")


@dataclass(frozen=True)
class EcostressSettings:
    """Plain ECOSTRESS settings, built only by :meth:`from_config` (defaults: the ``ecostress`` and ``thermal``
    config sections). The ``sign``/``aws_*``/``http_retries`` fields are what :func:`heattrack.io.stac.load_band`
    reads."""

    api: str
    url: str
    collection: str
    assets: dict
    gee_collection: str
    datetime: str | None
    passes: int
    min_clear_fraction: float
    max_items: int
    time_of_day: str
    max_err_k: float
    http_retries: int
    sign: str = "none"
    aws_request_payer: bool = False
    aws_no_sign_request: bool = False
    gee: object = None  # GeeSettings (account, request limits) when api is gee

    @classmethod
    def from_config(cls, cfg) -> "EcostressSettings":
        e = cfg.ecostress
        if not e.datetime:
            raise ConfigError("input.source 'ecostress' needs ecostress.datetime 'YYYY-MM-DD/YYYY-MM-DD' "
                              "(or screen --season)")
        return cls(api=e.api, url=e.stac_url, collection=e.collection, assets={**ASSETS, **e.assets},
                   gee_collection=e.gee_collection, datetime=e.datetime, passes=e.passes,
                   min_clear_fraction=e.min_clear_fraction, max_items=e.max_items,
                   time_of_day=cfg.thermal.time_of_day, max_err_k=cfg.thermal.max_lst_err_k,
                   http_retries=cfg.stac.http_retries, gee=GeeSettings.from_config(cfg) if e.api == "gee" else None)

    @property
    def gdal_extra(self) -> dict:
        """GDAL options for Earthdata-protected assets (token header or netrc + cookies); no secret is returned
        to a caller that logs it: the header lives only in the GDAL configuration."""
        token = os.environ.get("EARTHDATA_TOKEN")
        if token:
            return {"GDAL_HTTP_HEADERS": f"Authorization: Bearer {token}"}
        jar = Path.home() / ".cache" / "heattrack" / "earthdata-cookies.txt"
        jar.parent.mkdir(parents=True, exist_ok=True)
        return {"GDAL_HTTP_NETRC": "YES", "GDAL_HTTP_COOKIEFILE": str(jar), "GDAL_HTTP_COOKIEJAR": str(jar)}


@dataclass(frozen=True)
class EcostressScene:
    """One pass: its items (STAC item dicts, or Earth Engine image ids), time and clear share of the AOI. The
    ``landsat_*``/``s2_*`` names are those of the run record's per-date entry, shared with the other sources."""

    pass_id: str
    acquired: str
    solar_hour: float
    items: tuple = ()
    gee_ids: tuple[str, ...] = ()
    clear_fraction: float = float("nan")
    psf_m: float = ECOSTRESS_PSF_M
    pixel_m: float = ECOSTRESS_PSF_M  # the L2T grid
    sensor: str = "ECOSTRESS"
    s2_date: date | None = None
    s2_boa_offset: float = 0.0
    s2_offset_source: str = "no optical data (ECOSTRESS source)"

    @property
    def landsat_product(self) -> str:
        return self.pass_id

    @property
    def landsat_date(self) -> date:
        return datetime.fromisoformat(self.acquired.replace("Z", "+00:00")).date()

    @property
    def date_gap_days(self) -> None:
        return None

    def info(self) -> dict:
        """The run record's entry for this pass."""
        return {"sensor": self.sensor, "landsat_product": self.pass_id, "landsat_date": self.landsat_date,
                "sentinel2_date": None, "date_gap_days": None, "s2_boa_offset": None, "s2_offset_source": None,
                "acquired": self.acquired, "solar_hour": self.solar_hour, "psf_m": self.psf_m,
                "clear_fraction": round(self.clear_fraction, 4),
                "items": [it["id"] for it in self.items] or list(self.gee_ids)}


def pass_key(item_id: str, when: datetime) -> str:
    """Items of one orbit pass share the orbit number of their id; without one, the acquisition minute."""
    m = _ORBIT.search(item_id)
    return f"ECOSTRESS orbit {m.group(1)}" if m else f"ECOSTRESS {when:%Y-%m-%dT%H:%M}"


def _item_time(item: dict) -> datetime:
    props = item.get("properties", {})
    text = props.get("datetime") or props.get("start_datetime")
    if not isinstance(text, str):
        raise InputError(f"ECOSTRESS item {item.get('id')} has no datetime")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def group_passes(items: list[dict], aoi: Geometry, time_of_day: str) -> tuple[list[EcostressScene], list[str]]:
    """Items grouped into passes (sorted by id inside a pass), kept by ``time_of_day`` at the AOI's centre;
    returns the passes and one note per pass left out."""
    lon, lat = aoi.to_crs("EPSG:4326").centroid.coords[0]
    groups: dict[str, list[dict]] = {}
    for it in items:
        groups.setdefault(pass_key(it["id"], _item_time(it)), []).append(it)
    kept, dropped = [], []
    for key, group in sorted(groups.items()):
        group.sort(key=lambda it: it["id"])
        when = _item_time(group[0])
        hour = round(solar_hour(when, lon), 2)
        if keep_time_of_day(hour, when.date(), lat, time_of_day):
            kept.append(EcostressScene(key, when.isoformat().replace("+00:00", "Z"), hour, tuple(group)))
        else:
            dropped.append(f"{key} at {hour:.1f} h local solar time (thermal.time_of_day = {time_of_day})")
    return kept, dropped


def search_stac(st: EcostressSettings, bbox_lonlat: tuple[float, float, float, float]) -> list[dict]:
    """ECOSTRESS item dicts over ``bbox_lonlat`` in ``st.datetime`` (pystac-client follows the paging)."""
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    try:
        search = Client.open(st.url).search(collections=[st.collection], bbox=list(bbox_lonlat),
                                            datetime=st.datetime, max_items=st.max_items)
        return [it.to_dict() for it in search.items()]
    except APIError as exc:
        raise InputError(f"ECOSTRESS search at {st.url} failed: {str(exc).splitlines()[0][:300]}") from None
    except OSError as exc:
        raise InputError(f"cannot reach the STAC API {st.url}: {exc}") from None


@dataclass(frozen=True)
class EcostressReader:
    """Reads one :class:`EcostressScene` onto tile GeoBoxes (:class:`heattrack.io.sources.SceneReader`): LST in K
    (NaN = cloud, water, uncertain or outside the pass), no optical bands."""

    thermal_only: ClassVar[bool] = True  # no optics: ranked on the LST directly (also inside a mixed run)

    scene: EcostressScene
    settings: EcostressSettings

    def _layer(self, layer: str, geobox: GeoBox) -> np.ndarray | None:
        st = self.settings
        if st.api == "gee":
            return fetch_layers(self.scene.gee_ids, self.scene.pass_id, geobox, st)[layer]
        key = st.assets[layer]
        if layer == "LST_err" and not any(key in it.get("assets", {}) for it in self.scene.items):
            return None
        if layer == "LST":
            return load_band(self.scene.items, key, geobox, Resampling.bilinear, np.nan, st).astype(np.float32)
        return load_band(self.scene.items, key, geobox, Resampling.nearest, 255 if layer != "LST_err" else np.nan,
                         st).astype(np.float32)

    def _lst(self, geobox: GeoBox) -> np.ndarray:
        return self._lst_err(geobox)[0]

    def _lst_err(self, geobox: GeoBox) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """The screened LST, its LST_err, and the LST of clear water (None: no water on ``geobox``), K."""
        cloud, water, err = (self._layer(k, geobox) for k in ("cloud", "water", "LST_err"))
        spread = flag_spread_px(self.scene.pixel_m, abs(geobox.affine.a))  # the LST is interpolated, the flags not
        screened, water_lst = mask_lst_and_water(self._layer("LST", geobox), cloud, water, err,
                                                 self.settings.max_err_k, spread)
        return screened, err, water_lst

    def read(self, geobox: GeoBox) -> TileInputs:
        lst, err, water_lst = self._lst_err(geobox)
        return replace(lst_only_inputs(lst, err), water_lst=water_lst)

    def clear_fraction(self, geobox: GeoBox) -> float:
        return float(np.isfinite(self._lst(geobox)).mean())


def select_passes(st: EcostressSettings, aoi: Geometry,
                  coarse: GeoBox) -> tuple[list[EcostressScene], list[np.ndarray], list[str]]:
    """Every pass over the AOI in ``st.datetime`` that ``thermal.time_of_day`` keeps, with its clear map on
    ``coarse`` (a low-resolution GeoBox of the grid: True where the pass has a usable LST) and its clear share of
    the AOI, sorted by time; and notes on what was left out. Choosing per tile is the planner's."""
    gee = st.api == "gee"
    items = search_gee(st, aoi) if gee else search_stac(st, tuple(aoi.to_crs("EPSG:4326").boundingbox))
    if not items:
        raise NoDataError(f"ECOSTRESS search at {st.gee_collection if gee else f'{st.url} ({st.collection})'} in "
                          f"{st.datetime} found no image over the AOI")
    scenes, notes = group_passes(items, aoi, st.time_of_day)
    if gee:  # Earth Engine images are read by id, not by STAC asset
        scenes = [replace(sc, gee_ids=tuple(it["gee_id"] for it in sc.items), items=()) for sc in scenes]
    if not scenes:
        raise NoDataError(f"no ECOSTRESS pass in {st.datetime} at the time of day asked for: {'; '.join(notes)}")
    maps = [np.isfinite(EcostressReader(sc, st)._lst(coarse)) for sc in scenes]
    scenes = [replace(sc, clear_fraction=float(m.mean())) for sc, m in zip(scenes, maps)]
    order = sorted(range(len(scenes)), key=lambda i: scenes[i].acquired)
    return [scenes[i] for i in order], [maps[i] for i in order], [f"ECOSTRESS pass left out: {n}" for n in notes]


def passes_per_tile(maps: list[np.ndarray], windows: dict, acquired: list[str], n: int,
                    min_clear: float) -> dict:
    """Per tile (``windows``: its slices of the coarse clear ``maps``, one map per pass), the ``n`` passes with the
    largest clear share of at least ``min_clear`` as ``[(pass index, share)]`` in time order; tiles without one
    are left out."""
    out = {}
    for idx, win in windows.items():
        shares = np.array([float(m[win].mean()) if m[win].size else 0.0 for m in maps])
        ok = [int(i) for i in np.argsort(-shares, kind="stable") if shares[i] >= min_clear and shares[i] > 0][:n]
        if ok:
            out[idx] = [(i, float(shares[i])) for i in sorted(ok, key=lambda i: acquired[i])]
    return out
