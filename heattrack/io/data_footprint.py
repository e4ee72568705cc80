"""Where a raster holds data, not just its bounding box: a Landsat scene's tilted swath leaves fill in the corners of
its box, and a Sentinel-2 granule at the edge of its orbit is half empty. A run's default area (the data's extent)
is laid out on these polygons, so tiles and exports do not cover fill."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import shapely
import shapely.geometry
from affine import Affine
from odc.geo.geom import Geometry, box

from heattrack.io.rasterread import open_raster

#: the decimated view a footprint is traced on (pixels along the longer side): a 185 km Landsat scene at ~720 m
MAX_SIDE_PX = 256


def valid_data_polygon(path: Path, no_data: tuple[float, ...] = (0,)) -> Geometry | None:
    """The part of ``path``'s bounding box where band 1 holds data (values not in ``no_data``, nor the file's own
    nodata, nor NaN), traced on a decimated view and grown by one of its pixels (a coarse pixel half on the data
    keeps it); None where every pixel of that view holds data (use the bounding box itself) or where it holds none.
    Cost: one decimated read (the overviews where the file has them) and a polygon trace of at most 256 x 256 px."""
    from rasterio.features import shapes

    with open_raster(path) as src:
        f = max(1, math.ceil(max(src.height, src.width) / MAX_SIDE_PX))
        shape = (math.ceil(src.height / f), math.ceil(src.width / f))
        a = src.read(1, out_shape=shape)
        bad = np.isin(a, [v for v in (*no_data, src.nodata) if v is not None and not np.isnan(v)])
        if np.issubdtype(a.dtype, np.floating):
            bad |= np.isnan(a)
        if not bad.any() or bad.all():
            return None
        t = src.transform @ Affine.scale(src.width / shape[1], src.height / shape[0])
        crs = src.crs.to_string()
        bounds = box(*src.bounds, crs)
    parts = [shapely.geometry.shape(g) for g, v in shapes((~bad).astype(np.uint8), mask=~bad, transform=t) if v == 1]
    return Geometry(shapely.union_all(parts), crs).buffer(abs(t.a)).intersection(bounds)
