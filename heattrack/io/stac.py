"""The ``stac`` source: search a STAC API (pystac-client), pick the best Landsat/Sentinel-2 pairs per tile, and
load them onto each tile's GeoBox with odc-stac.

Defaults fit Microsoft Planetary Computer (``landsat-c2-l2``: ``lwir11``, ``qa_pixel``, ``red``, ``nir08``;
``sentinel-2-l2a``: ``B04``, ``B08``, ``SCL`` required, ``B02``, ``B03``, ``B05``-``B07``, ``B8A``, ``B11``, ``B12``
read when present; URL signing ``planetary-computer``). Earth Search
(``https://earth-search.aws.element84.com/v1``) names the Sentinel-2 assets ``red``, ``nir``, ``scl`` (and
``blue``, ``green``, ``rededge1``-``3``, ``nir08``, ``swir16``, ``swir22``: map them in ``stac.s2_assets``), and its
Landsat assets are in the requester-pays bucket ``usgs-landsat`` (``stac.aws_request_payer: true``).

Scene selection (planning, on the driver): for every tile, the items that touch it are grouped by solar day (all
Landsat items of one day, e.g. neighbouring WRS rows, and likewise for Sentinel-2 granules) and each day is read
as one mosaic, as odc-stac's ``groupby="solar_day"`` fuses them; Landsat days are ranked by the *clear fraction
over the tile* of that mosaic, measured from ``qa_pixel`` loaded at ~100 m (a few KB from the COG overviews), so a
tile only partly covered by the day's footprints is processed on its covered part; each is paired with the
nearest-in-time Sentinel-2 day within ``input.max_date_gap_days`` whose SCL clear fraction over the tile is at
least ``stac.min_clear_fraction``; the best ``stac.pairs`` pairs are kept (feeding multi-date detection; a second or
later one only where its Landsat day is at least ``stac.min_clear_fraction`` clear over the tile too, or half as
clear as the best day where the data cover less of the tile). A tile
without any such pair runs its clearest Landsat day alone (up to ``stac.pairs`` days by the same rule), the day's
reflective bands as the optics
(``stac.landsat_alone``; :mod:`heattrack.io.landsat_optics`). Item JSON travels with the tile task; asset URLs are
signed *inside* the task,
right before the read, so signatures never expire in a queue.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
from odc.geo.geobox import GeoBox
from odc.geo.geom import Geometry
from rasterio.enums import Resampling

from heattrack.config_sources import RUN_PAIRS
from heattrack.errors import ConfigError, InputError
from heattrack.io.local import QA_FILL_VALUE, LocalScene, LocalSceneReader
from heattrack.io.retry import first_line, with_retries
from heattrack.kernels.calibrate import s2_boa_offset_for_baseline
from heattrack.kernels.qa import landsat_clear_mask, scl_clear_mask

log = logging.getLogger(__name__)

#: canonical band -> asset key, Planetary Computer names
LANDSAT_ASSETS = {"ST_B10": "lwir11", "QA_PIXEL": "qa_pixel", "SR_B4": "red", "SR_B5": "nir08",
                  "SR_B2": "blue", "SR_B3": "green", "SR_B6": "swir16", "SR_B7": "swir22"}
#: B04, B08, SCL are required; the other reflective bands are read when the item has them (sharpening predictors)
S2_ASSETS = {"B02": "B02", "B03": "B03", "B04": "B04", "B05": "B05", "B06": "B06", "B07": "B07", "B08": "B08",
             "B8A": "B8A", "B11": "B11", "B12": "B12", "SCL": "SCL"}


@dataclass(frozen=True)
class StacSettings:
    """Plain STAC settings, built only by :meth:`from_config` (the defaults live in the ``stac:`` config section)."""

    url: str
    landsat_collection: str
    s2_collection: str
    landsat_assets: dict
    s2_assets: dict
    datetime: str | None
    max_cloud_cover: float
    pairs: int
    max_date_gap_days: float
    min_clear_fraction: float
    sign: str
    aws_request_payer: bool
    aws_no_sign_request: bool
    max_items: int
    http_retries: int
    landsat_alone: bool = False

    @classmethod
    def from_config(cls, cfg) -> "StacSettings":
        s = cfg.stac
        if not s.url:
            raise ConfigError("input.source is 'stac' but stac.url is not set (--stac-url URL)")
        return cls(url=s.url, landsat_collection=s.landsat_collection, s2_collection=s.s2_collection,
                   landsat_assets={**LANDSAT_ASSETS, **s.landsat_assets}, s2_assets={**S2_ASSETS, **s.s2_assets},
                   datetime=s.datetime, max_cloud_cover=s.max_cloud_cover, pairs=s.pairs or RUN_PAIRS,
                   max_date_gap_days=cfg.input.max_date_gap_days, min_clear_fraction=s.min_clear_fraction,
                   sign=s.sign, aws_request_payer=s.aws_request_payer, aws_no_sign_request=s.aws_no_sign_request,
                   max_items=s.max_items, http_retries=s.http_retries, landsat_alone=s.landsat_alone)


@dataclass(frozen=True)
class StacScene(LocalScene):
    """One Landsat + Sentinel-2 pair from a STAC API: a :class:`LocalScene` whose ``landsat``/``sentinel2`` map
    canonical bands to asset hrefs, plus the item dicts (picklable, sent to tile tasks) and the clear fractions
    measured over the tile when the pair was chosen."""

    landsat_item: dict = field(default_factory=dict)
    s2_item: dict = field(default_factory=dict)
    clear_fraction: float = float("nan")
    s2_clear_fraction: float = float("nan")
    #: every item of that solar day touching the tile (the first is ``landsat_item`` / ``s2_item``)
    landsat_items: tuple[dict, ...] = ()
    s2_items: tuple[dict, ...] = ()

    def day_items(self, sensor: str) -> tuple[dict, ...]:
        """The items of ``sensor``'s day (``landsat`` or ``sentinel2``): all of them, or the one item (none: a
        Landsat day alone has no Sentinel-2 items)."""
        if sensor == "landsat":
            return self.landsat_items or (self.landsat_item,)
        return self.s2_items or ((self.s2_item,) if self.s2_item else ())


def _item_date(item: dict) -> date | None:
    dt = item.get("properties", {}).get("datetime")
    return datetime.fromisoformat(dt.replace("Z", "+00:00")).date() if isinstance(dt, str) else None


def s2_offset_from_item(item: dict) -> tuple[float, str]:
    """BOA offset (DN) of a Sentinel-2 L2A item: 0 when the catalogue already removed it
    (``earthsearch:boa_offset_applied``), -1000 for processing baseline >= 04.00, else 0."""
    props = item.get("properties", {})
    if props.get("earthsearch:boa_offset_applied") is True:
        return 0.0, "earthsearch:boa_offset_applied"
    base = props.get("s2:processing_baseline") or props.get("processing:version")
    off = s2_boa_offset_for_baseline(str(base)) if base is not None else None
    if off is not None:
        return off, f"s2:processing_baseline {base}"
    d = _item_date(item)
    if d is not None and d >= date(2022, 1, 25):
        return s2_boa_offset_for_baseline("04.00"), "acquired after 2022-01-25 (baseline 04.00)"
    return 0.0, "no baseline in the item: assumed < 04.00"


def stac_hrefs(item: dict, assets: dict, required: tuple[str, ...] = ()) -> dict:
    """``{canonical band: href}`` for the item's assets named in ``assets``; a missing ``required`` one raises."""
    have = item.get("assets", {})
    missing = [assets[b] for b in required if assets[b] not in have]
    if missing:
        raise InputError(f"STAC item {item.get('id')} has no asset {', '.join(missing)} "
                         f"(it has {', '.join(sorted(have))}); set stac.landsat_assets / stac.s2_assets")
    return {b: have[a]["href"] for b, a in assets.items() if a in have}


def make_scene(ls_items: dict | tuple[dict, ...], s2_items: dict | tuple[dict, ...], st: StacSettings,
               clear: float = float("nan"), s2_clear: float = float("nan")) -> StacScene:
    """A pair of solar days (one item or several of the same day each); ids and hrefs are the first item's."""
    ls_items = (ls_items,) if isinstance(ls_items, dict) else tuple(ls_items)
    s2_items = (s2_items,) if isinstance(s2_items, dict) else tuple(s2_items)
    ls_item, s2_item = ls_items[0], s2_items[0] if s2_items else {}  # no Sentinel-2 days: the Landsat day alone
    off, src = s2_offset_from_item(s2_item) if s2_item else (0.0, "no Sentinel-2")
    need = ("ST_B10", "QA_PIXEL") if s2_item else ("ST_B10", "QA_PIXEL", "SR_B4", "SR_B5")
    return StacScene(
        landsat_item=ls_item, s2_item=s2_item, landsat_items=ls_items, s2_items=s2_items,
        landsat=stac_hrefs(ls_item, st.landsat_assets, need),
        sentinel2=stac_hrefs(s2_item, st.s2_assets, ("B04", "B08", "SCL")) if s2_item else {},
        landsat_product=ls_item["id"], landsat_date=_item_date(ls_item), s2_date=_item_date(s2_item),
        s2_boa_offset=off, s2_offset_source=src, clear_fraction=clear, s2_clear_fraction=s2_clear)


# -- search ---------------------------------------------------------------------------------------------

def search_items(st: StacSettings, bbox_lonlat: tuple[float, float, float, float]) -> tuple[list[dict], list[dict]]:
    """Landsat and Sentinel-2 item dicts over ``bbox_lonlat`` (pystac-client follows the API's paging), cloud
    cover at most ``max_cloud_cover`` (filtered here, so catalogues without the query extension work too)."""
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    try:
        client = Client.open(st.url)
        out = []
        for coll in (st.landsat_collection, st.s2_collection):
            search = client.search(collections=[coll], bbox=list(bbox_lonlat), datetime=st.datetime,
                                   max_items=st.max_items)
            items = [it.to_dict() for it in search.items()]
            out.append([it for it in items
                        if it.get("properties", {}).get("eo:cloud_cover", 0.0) <= st.max_cloud_cover])
    except APIError as exc:
        raise InputError(f"STAC search at {st.url} failed: {str(exc).splitlines()[0][:300]}") from None
    except OSError as exc:  # connection refused, DNS, timeout
        raise InputError(f"cannot reach the STAC API {st.url}: {exc}") from None
    return out[0], out[1]


def _platform(item: dict) -> str:
    """The item's ``platform`` (``landsat-7``), else its product id's mission (``LE07``)."""
    return str(item.get("properties", {}).get("platform") or item.get("id", "?")[:4])


#: Landsat 4-7 as STAC ``platform`` values and product-id missions: their surface temperature is TM/ETM+'s ST_B6
ARCHIVE_PLATFORMS = ("landsat-4", "landsat-5", "landsat-7", "LT04", "LT05", "LE07")


def pairable_landsat(items: list[dict], st: StacSettings) -> tuple[list[dict], str | None]:
    """The Landsat items that carry the thermal asset the chain reads (``stac.landsat_assets.ST_B10``: Landsat 8/9
    TIRS), and a sentence on the others, None where there are none. A Collection 2 catalogue holds Landsat 4-9 under
    one id: a Landsat 4-7 item carries ETM+/TM's ``ST_B6`` (``lwir``) instead, whose 60-120 m band and other
    reflective band numbers the paired chain does not read; reading it as ``ST_B10`` would be wrong. Other items
    without it (a Landsat 8/9 product of reflectance alone, ``L2SR``) have no surface temperature to screen."""
    asset = st.landsat_assets["ST_B10"]
    kept = [it for it in items if asset in it.get("assets", {})]
    if len(kept) == len(items):
        return kept, None
    groups: dict[bool, dict[str, int]] = {True: {}, False: {}}
    for it in items:
        if asset not in it.get("assets", {}):
            p = _platform(it)
            g = groups[p in ARCHIVE_PLATFORMS]
            g[p] = g.get(p, 0) + 1
    parts = []
    if groups[True]:
        parts.append(f"{sum(groups[True].values())} of Landsat 4-7 ({_counts(groups[True])}: ETM+/TM's ST_B6, asset "
                     "'lwir'; the stac source pairs Landsat 8/9's ST_B10, from 2013; a Landsat 4-7 ST_B6 band is "
                     "screened alone with --thermal FILE)")
    if groups[False]:
        parts.append(f"{sum(groups[False].values())} other ({_counts(groups[False])}: no surface temperature, e.g. "
                     "a reflectance-only L2SR product, or another asset name: stac.landsat_assets)")
    n = len(items) - len(kept)
    return kept, (f"{n} Landsat item{'s' if n > 1 else ''} of the search {'have' if n > 1 else 'has'} no '{asset}' "
                  f"asset and {'are' if n > 1 else 'is'} not used: " + "; ".join(parts))


def _counts(by_name: dict[str, int]) -> str:
    return ", ".join(f"{n} {name}" for name, n in sorted(by_name.items()))


# -- per-tile pair selection ---------------------------------------------------------------------------

def _touching(items: list[dict], tile_lonlat: Geometry) -> list[dict]:
    """Items whose footprint overlaps the tile (any positive area)."""
    out = []
    for it in items:
        geom = it.get("geometry")
        if geom and Geometry(geom, "EPSG:4326").intersection(tile_lonlat).area > 0:
            out.append(it)
    return out


def _by_solar_day(items: list[dict]) -> list[tuple[dict, ...]]:
    """Items grouped by collection and acquisition day, each group sorted by id (deterministic mosaics)."""
    groups: dict[tuple, list[dict]] = {}
    for it in items:
        groups.setdefault((it.get("collection"), _item_date(it)), []).append(it)
    return [tuple(sorted(g, key=lambda it: it["id"])) for _, g in sorted(groups.items(), key=lambda kv: str(kv[0]))]


def select_pairs(landsat: list[dict], s2: list[dict], geobox: GeoBox, st: StacSettings) -> list[StacScene]:
    """The best ``st.pairs`` (Landsat day, Sentinel-2 day) pairs for the tile ``geobox``, best first (module doc)."""
    tile = geobox.extent.to_crs("EPSG:4326")
    # ~100 m (Landsat's thermal footprint): a tile that the day's footprints only graze still counts its strip
    coarse = geobox.zoom_out(max(1, round(100 / abs(geobox.resolution.x))))
    s2_days = _by_solar_day(_touching(s2, tile))
    s2_clear: dict[tuple, float] = {}

    def clear_s2(group: tuple[dict, ...]) -> float:
        key = tuple(it["id"] for it in group)
        if key not in s2_clear:
            scl = load_band(group, st.s2_assets["SCL"], coarse, Resampling.nearest, 0, st)
            s2_clear[key] = float(scl_clear_mask(scl, mask_water=False).mean())
        return s2_clear[key]

    ranked = []
    for group in _by_solar_day(_touching(landsat, tile)):
        qa = load_band(group, st.landsat_assets["QA_PIXEL"], coarse, Resampling.nearest, QA_FILL_VALUE, st)
        ranked.append((float(landsat_clear_mask(qa).mean()), group))
    ranked.sort(key=lambda t: (-t[0], t[1][0]["id"]))
    pairs = []
    # days with clear pixels first; when none shows any at ~100 m, the best-covering day still runs (the tile may
    # hold a strip narrower than that, as the local source would process it). A later date must show the tile as
    # clearly as a partner must, or half as much as the best date where the data cover less of it (an edge strip): a
    # date seen through gaps in the cloud adds cloud-edge noise, not a view
    later = min(st.min_clear_fraction, 0.5 * ranked[0][0]) if ranked else 0.0
    for clear, group in [t for t in ranked if t[0] > 0] or ranked[:1]:
        if len(pairs) >= st.pairs or (pairs and clear < later):
            break
        d = _item_date(group[0])
        near = sorted((abs((_item_date(g[0]) - d).days), g[0]["id"], g) for g in s2_days
                      if d is not None and _item_date(g[0]) is not None
                      and abs((_item_date(g[0]) - d).days) <= st.max_date_gap_days)
        for _, _, g in near:
            c2 = clear_s2(g)
            # a tile the Landsat day barely covers (an edge strip) takes the nearest Sentinel-2 day touching it
            if c2 >= (st.min_clear_fraction if clear >= st.min_clear_fraction else 0.0):
                pairs.append(make_scene(group, g, st, clear, c2))
                break
    if not pairs and ranked and st.landsat_alone:  # no Sentinel-2 partner: the clearest Landsat days alone
        for k, (clear, group) in enumerate(ranked):
            if len(pairs) >= st.pairs or (k > 0 and (clear <= 0 or clear < later)):
                break
            if all(st.landsat_assets[b] in group[0].get("assets", {}) for b in ("SR_B4", "SR_B5")):
                pairs.append(make_scene(group, (), st, clear))
    return pairs


def select_pairs_for_tiles(landsat: list[dict], s2: list[dict], geoboxes: dict, st: StacSettings,
                           threads: int = 8) -> dict:
    """:func:`select_pairs` for every tile (``{index: GeoBox}``); the small reads run in a thread pool."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futs = {idx: pool.submit(select_pairs, landsat, s2, gb, st) for idx, gb in geoboxes.items()}
        return {idx: f.result() for idx, f in futs.items()}


# -- reading ---------------------------------------------------------------------------------------------

def url_signer(mode: str):
    """The ``patch_url`` for ``stac.sign`` (None = URLs as they are): Planetary Computer SAS signing."""
    if mode == "none":
        return None
    if mode == "planetary-computer":
        try:
            import planetary_computer
        except ImportError:
            raise ConfigError("stac.sign is 'planetary-computer' but the package planetary-computer is not "
                              "installed (pip install planetary-computer)") from None
        return planetary_computer.sign
    raise ConfigError(f"unknown stac.sign {mode!r}: none | planetary-computer")


def load_band(items: dict | tuple[dict, ...] | list[dict], asset: str, geobox: GeoBox, resampling: Resampling,
              nodata: float, st: StacSettings, attempts: int = 2, backoff_s: float = 1.0) -> np.ndarray:
    """One asset of one STAC item, or the mosaic of several items of one solar day (``groupby="solar_day"``: the
    first item with data wins; outside every footprint = ``nodata``), on ``geobox`` with ``odc.stac.load``
    (numpy-backed: the tile task is the unit of parallelism, so no nested Dask graph). URLs are signed here (``stac.sign``); requester-pays/unsigned S3
    via odc-stac's rasterio configuration. HTTP errors are retried by GDAL (``stac.http_retries``, backoff from
    0.5 s); a read that still fails is tried once more after ``backoff_s`` (a new signature, a new connection),
    then raises :class:`InputError`."""
    import odc.stac
    import pystac

    group = [items] if isinstance(items, dict) else list(items)
    pitems = [pystac.Item.from_dict(it, preserve_dict=True) for it in group]
    name = "+".join(it.id for it in pitems)
    aws = {}
    if st.aws_request_payer:
        aws["requester_pays"] = True
    if st.aws_no_sign_request:
        aws["aws_unsigned"] = True
    # GDAL retries HTTP 429/5xx itself with exponential backoff from GDAL_HTTP_RETRY_DELAY; odc-stac's cloud
    # defaults allow 10 retries (~8 min per request): bounded here by stac.http_retries
    odc.stac.configure_rio(cloud_defaults=True, GDAL_HTTP_MAX_RETRY=str(st.http_retries),
                           GDAL_HTTP_RETRY_DELAY="0.5", **getattr(st, "gdal_extra", {}), **({"aws": aws} if aws else {}))
    signer = url_signer(st.sign)

    def load() -> np.ndarray:
        ds = odc.stac.load(pitems, bands=[asset], geobox=geobox, resampling=resampling.name, nodata=nodata,
                           patch_url=signer, fail_on_error=True, groupby="solar_day")
        arr = ds[asset].values
        return arr[0] if arr.ndim == 3 else arr

    return with_retries(load, attempts=attempts, backoff_s=backoff_s, what=f"read of {name}/{asset}",
                        on_give_up=lambda exc: InputError(f"cannot read asset {asset} of STAC item {name} "
                                                          f"({first_line(exc)})"))


@dataclass(frozen=True)
class StacSceneReader(LocalSceneReader):
    """Reads a :class:`StacScene` onto tile GeoBoxes (the local reader's preprocessing and coregistration,
    bands loaded by :func:`load_band`)."""

    settings: StacSettings | None = None

    def _warp(self, sensor: str, band: str, geobox: GeoBox, resampling: Resampling, nodata: float) -> np.ndarray:
        st = self.settings
        asset = (st.landsat_assets if sensor == "landsat" else st.s2_assets)[band]
        return load_band(self.scene.day_items(sensor), asset, geobox, resampling, nodata, st)
