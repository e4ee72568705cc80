"""A Landsat crop whose GeoTIFFs carry no georeferencing, placed by its product's MTL.

Crops cut with tools that drop the GeoTIFF tags (the xlandsat project's sample scenes, arrays saved back to TIFF)
still ship the product's ``*_MTL.txt`` (or ``.xml``), and where the crop was cut properly its MTL describes the crop: its
``REFLECTIVE_LINES`` x ``REFLECTIVE_SAMPLES`` and the projected centre of its upper-left pixel
(``CORNER_UL_PROJECTION_X/Y_PRODUCT``, UTM zone ``UTM_ZONE`` of WGS 84; Collection 2 keeps the northern zone south of
the equator, with negative northings). :func:`mtl_placed` gives such a band a CRS and transform from it, as a VRT
around the file: the file is never written. Only where the MTL's grid has the band's own shape and the projection
is UTM; anything else stays "not georeferenced" (an error where the band is read).
"""

from __future__ import annotations

import functools
import re
import warnings
from pathlib import Path
from xml.sax.saxutils import escape

import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

#: a Landsat Collection 2 Level-2 product id (groups: WRS path/row, acquisition date, processing date, tier): the
#: prefix of every band file's name and of its MTL
LANDSAT_PRODUCT_ID = re.compile(r"L[COTEM]0\d_L2S[PR]_(\d{6})_(\d{8})_(\d{8})_\d{2}_(T1|T2|RT)", re.I)
_FIELD = re.compile(r"^\s*([A-Z0-9_]+)\s*=\s*\"?([^\"\r\n]*?)\"?\s*$", re.M)  # the MTL's text form
_FIELD_XML = re.compile(r"<([A-Z0-9_]+)>\s*([^<]*?)\s*</\1>")  # its XML form (USGS ships both)
_GDAL_TYPES = {"uint8": "Byte", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32", "int32": "Int32",
               "float32": "Float32", "float64": "Float64"}


#: the surface-temperature band of a Collection 2 Level-2 product, by its mission (the product id's first four
#: letters): TIRS band 10 on Landsat 8/9, the TM and ETM+ thermal band 6 on Landsat 4, 5 and 7
LANDSAT_ST_BANDS = {"LC08": "ST_B10", "LC09": "ST_B10", "LE07": "ST_B6", "LT05": "ST_B6", "LT04": "ST_B6"}


def landsat_st_band(path: Path) -> str | None:
    """``ST_B10`` or ``ST_B6`` where ``path`` is the surface-temperature band of a Landsat Collection 2 Level-2 product
    by its USGS name (the band its mission has: :data:`LANDSAT_ST_BANDS`), else None."""
    name = Path(path).name
    m = LANDSAT_PRODUCT_ID.search(name)
    band = LANDSAT_ST_BANDS.get(m.group(0)[:4].upper()) if m else None
    return band if band is not None and f"_{band}." in name.upper() else None


def is_landsat_st(path: Path) -> bool:
    """Whether ``path`` is a Landsat Collection 2 Level-2 surface-temperature band (:func:`landsat_st_band`)."""
    return landsat_st_band(path) is not None


@functools.lru_cache(maxsize=64)
def _mtl_grid(mtl: Path, mtime: float) -> tuple[str, Affine, int, int] | None:
    """CRS, transform and (lines, samples) of the product grid an MTL describes; None where it does not describe a
    UTM grid (``mtime`` keys the cache: an MTL replaced on disk is read again)."""
    fields: dict[str, str] = {}
    pattern = _FIELD_XML if mtl.suffix.lower() == ".xml" else _FIELD
    for key, value in pattern.findall(mtl.read_text(errors="replace")):
        fields.setdefault(key, value.strip())  # the first group (the Level-2 product's), not the Level-1 copy
    try:
        if fields.get("MAP_PROJECTION", "").upper() != "UTM" or fields.get("DATUM", "WGS84").upper() != "WGS84":
            return None
        zone, cell = int(fields["UTM_ZONE"]), float(fields["GRID_CELL_SIZE_REFLECTIVE"])
        x, y = float(fields["CORNER_UL_PROJECTION_X_PRODUCT"]), float(fields["CORNER_UL_PROJECTION_Y_PRODUCT"])
        lines, samples = int(fields["REFLECTIVE_LINES"]), int(fields["REFLECTIVE_SAMPLES"])
    except (KeyError, ValueError):
        return None
    if not 1 <= zone <= 60 or cell <= 0:
        return None
    # the MTL's corners are pixel centres: the grid's corner lies half a pixel up and to the left
    return f"EPSG:{32600 + zone}", Affine(cell, 0.0, x - cell / 2, 0.0, -cell, y + cell / 2), lines, samples


def mtl_of(path: Path) -> Path | None:
    """The ``*_MTL.txt`` (else ``*_MTL.xml``) of the Landsat product ``path`` belongs to, beside it (None: no product
    id, or no MTL)."""
    m = LANDSAT_PRODUCT_ID.match(Path(path).name)
    if m is None:
        return None
    found = [p for p in (Path(path).with_name(f"{m.group(0)}_MTL{ext}") for ext in (".txt", ".xml")) if p.is_file()]
    return found[0] if found else None


def open_quietly(path: Path):
    """``rasterio.open(path)`` without rasterio's warning for a file that carries no georeferencing (a crop this
    module places, or one the caller refuses in one line)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(path)


def mtl_grid_of(path: Path, src) -> tuple[str, Affine] | None:
    """CRS and transform that the product's MTL gives band 1 of ``src`` (the open, not georeferenced ``path``); None
    where there is no MTL beside it, its grid is not the band's shape or not UTM, or GDAL has no type for the band."""
    mtl = mtl_of(path)
    grid = _mtl_grid(mtl, mtl.stat().st_mtime) if mtl is not None else None
    if grid is None or (grid[2], grid[3]) != (src.height, src.width) or str(src.dtypes[0]) not in _GDAL_TYPES:
        return None
    return grid[0], grid[1]


def mtl_placed(path: Path, src) -> str | None:
    """A VRT (XML text) of band 1 of ``src`` (the open, not georeferenced ``path``) with the CRS and transform of its
    product's MTL (:func:`mtl_grid_of`); None where the MTL does not place it."""
    placed = mtl_grid_of(path, src)
    if placed is None:
        return None
    crs, t = placed
    dtype = _GDAL_TYPES[str(src.dtypes[0])]
    nodata = f"    <NoDataValue>{src.nodata!r}</NoDataValue>\n" if src.nodata is not None else ""
    return (f'<VRTDataset rasterXSize="{src.width}" rasterYSize="{src.height}">\n'
            f"  <SRS>{crs}</SRS>\n  <GeoTransform>{t.c!r}, {t.a!r}, 0.0, {t.f!r}, 0.0, {t.e!r}</GeoTransform>\n"
            f'  <VRTRasterBand dataType="{dtype}" band="1">\n{nodata}    <SimpleSource>\n'
            f'      <SourceFilename relativeToVRT="0">{escape(str(Path(path).resolve()))}</SourceFilename>\n'
            "      <SourceBand>1</SourceBand>\n    </SimpleSource>\n  </VRTRasterBand>\n</VRTDataset>\n")


def placed_by_mtl_warning(path: Path) -> str | None:
    """The run's warning where the Landsat band ``path`` carries no georeferencing and its MTL places it (None
    where the file is georeferenced itself, or nothing places it: reading it then says so)."""
    with open_quietly(path) as src:
        if src.crs is not None or (placed := mtl_grid_of(path, src)) is None:
            return None
    crs, mtl = placed[0], mtl_of(path)
    return (f"Landsat scene {mtl.name.removesuffix('_MTL.txt')}: its GeoTIFFs carry no georeferencing; placed on "
            f"{crs} by its {mtl.name} (the upper-left pixel's centre and the grid size it gives)")


__all__ = ["LANDSAT_PRODUCT_ID", "LANDSAT_ST_BANDS", "is_landsat_st", "landsat_st_band", "mtl_grid_of", "mtl_of",
           "mtl_placed", "open_quietly", "placed_by_mtl_warning"]
