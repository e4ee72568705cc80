"""ECOSTRESS passes from Earth Engine (``NASA/ECOSTRESS/L2T_LSTE/V2``, ``ecostress.api: gee``): the search and
the pixels of :mod:`heattrack.io.ecostress`, through the ``gee`` section's service account, request limits and
quota backoff (:mod:`heattrack.io.gee`).

One pass = the images of one orbit pass over the AOI (mosaicked on the server); pixels come from
``ee.data.computePixels`` onto each tile's GeoBox as a float32 structured array: LST bilinear, cloud, water
(0/1; outside the pass: 1) and LST_err nearest.
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache

import numpy as np
from odc.geo.geobox import GeoBox
from odc.geo.geom import Geometry

from heattrack.errors import ConfigError
from heattrack.io.gee import call_with_backoff, compute_pixels, ensure_initialized

LAYERS = ("LST", "LST_err", "cloud", "water")


def search_gee(st, aoi: Geometry) -> list[dict]:
    """The images over the AOI in ``st.datetime`` as item-like records (``id``, ``gee_id``, ``datetime``), for the
    pass grouping and time-of-day rule that STAC items go through too."""
    import ee

    if st.gee is None:
        raise ConfigError("ecostress.api 'gee' needs the gee section (project, service-account key)")
    ensure_initialized(st.gee)
    start, end = st.datetime.split("/")
    b = aoi.to_crs("EPSG:4326").boundingbox
    coll = (ee.ImageCollection(st.gee_collection).filterDate(start, end)
            .filterBounds(ee.Geometry.Rectangle([b.left, b.bottom, b.right, b.top])).limit(st.max_items))
    found = call_with_backoff(lambda: ee.data.computeValue(ee.Dictionary({
        "ids": coll.aggregate_array("system:id"), "times": coll.aggregate_array("system:time_start")})),
        st.gee, "ECOSTRESS search")
    return [{"id": i.rsplit("/", 1)[-1], "gee_id": i, "properties": {"datetime": datetime.fromtimestamp(
        t / 1000, timezone.utc).isoformat()}} for i, t in zip(found["ids"], found["times"])]


def _image(gee_ids: tuple[str, ...]):
    import ee

    coll = ee.ImageCollection([ee.Image(i) for i in gee_ids])
    lst = coll.select("LST").mosaic().resample("bilinear").unmask(0)
    flags = coll.select(["cloud", "water"]).mosaic().unmask(1)
    err = coll.select("LST_err").mosaic().unmask(99)
    return lst.addBands(err).addBands(flags).toFloat()


def fetch_layers(gee_ids: tuple[str, ...], pass_id: str, geobox: GeoBox, st) -> dict[str, np.ndarray]:
    """LST, LST_err, cloud, water of one pass (its images ``gee_ids``) on ``geobox`` (cached per process: a tile
    reads each once)."""
    return _cached(gee_ids, pass_id, geobox, st.gee)


@lru_cache(maxsize=8)
def _cached(gee_ids: tuple[str, ...], pass_id: str, geobox: GeoBox, gst) -> dict[str, np.ndarray]:
    ensure_initialized(gst)
    out = compute_pixels(_image(gee_ids), list(LAYERS), np.float32, geobox, gst, f"pixels of {pass_id}")
    out["LST"][out["LST"] <= 0] = np.nan
    return out


def cache_clear() -> None:
    _cached.cache_clear()
