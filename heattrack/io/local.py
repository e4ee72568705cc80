"""The ``local`` source: one Landsat C2L2 scene and one Sentinel-2 L2A granule in a folder.

Layout (the contract other tools write to)::

    INPUT/landsat/LC08_L2SP_PPPRRR_YYYYMMDD_yyyymmdd_02_T1_ST_B10.TIF   (required)
                  ..._QA_PIXEL.TIF                                       (expected; without it: a warning)
                  ..._SR_B4.TIF, ..._SR_B5.TIF                           (optional; coregistration)
    INPUT/sentinel2/*B04*.tif|jp2, *B08*.tif|jp2 (10 m), *SCL*.tif|jp2 (20 m)               (required for a pair)
                    *B02*, *B03* (10 m), *B05*, *B06*, *B07*, *B8A*, *B11*, *B12* (20 m)     (optional)
                    optional metadata: MTD_MSIL2A.xml or a STAC item *.json

The two subfolders may have other names, or none: where ``INPUT`` has no ``landsat/`` (nor date-pair subfolders
holding one), the files below it are told apart by their names (Landsat C2L2 product ids, Sentinel-2 band names), so
a folder as USGS and Copernicus deliver them (``landsat-c2l2/`` + ``sentinel2-l2a/``, or everything in one folder)
is one scene, and several such folders side by side are its dates. A Landsat scene without a Sentinel-2 granule is read with its own reflective bands as the optics
(``SR_B4`` and ``SR_B5`` required, ``SR_B2``, ``SR_B3``, ``SR_B6``, ``SR_B7`` used where present:
:mod:`heattrack.io.landsat_optics`): 30 m detail on the 10 m grid, said in a warning and in ``run.json``.

Several products of the same day may share a folder (neighbouring WRS rows: one product id each; neighbouring
MGRS granules: the tile id, e.g. ``T33UUP``, in every name): they are read as one mosaic, the first product (by
name) wins where several have data, as odc-stac's ``groupby="solar_day"`` does. ``heattrack download`` writes
such folders when a tile straddles two items of its day.

Every read is windowed (:func:`heattrack.io.rasterread.warp_band`): a plain windowed read where the source grid
lines up with the tile's, else a ``WarpedVRT`` onto the tile's GeoBox, so GDAL fetches only the source blocks the
tile needs; each source is read exactly once (nearest for ST/QA/SCL so QA bits and the 30 m thermal values stay
intact, bilinear for reflectance).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from affine import Affine
from odc.geo.geobox import GeoBox
from odc.geo.geom import Geometry
from rasterio.enums import Resampling

from heattrack.errors import InputError
from heattrack.io.data_footprint import valid_data_polygon
from heattrack.io.landsat_optics import LANDSAT_OPTICS_BANDS, QA_FILL_VALUE, landsat_optics, qa_stand_in
from heattrack.io.mtl_georef import LANDSAT_PRODUCT_ID, landsat_st_band
from heattrack.io.rasterread import raster_footprint, warp_band
from heattrack.io.s2_metadata import parse_date as _parse_date
from heattrack.io.s2_metadata import s2_offset_and_date
from heattrack.kernels.calibrate import (
    s2_dn_to_reflectance,
    sr_dn_to_reflectance,
    st_dn_to_kelvin,
)
from heattrack.kernels.coreg import phase_correlation_shift
from heattrack.kernels.lst import block_mean
from heattrack.kernels.qa import landsat_clear_mask, landsat_screen_masks, scl_clear_mask

log = logging.getLogger(__name__)

RASTER_SUFFIXES = (".tif", ".tiff", ".jp2")
#: how USGS (a .tar per Landsat product) and Copernicus (a zipped .SAFE) deliver scenes: unpacked before a run
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".zip")
LANDSAT_BANDS = {"ST_B10": True, "QA_PIXEL": False, "SR_B4": False, "SR_B5": False}  # band -> required
S2_BANDS = ("B04", "B08", "SCL")  # required
#: read when present (20 m bands resampled bilinearly onto the 10 m grid) and the sharpener uses them
#: (``downscale.dms_bands`` chooses which; a reader reads only those: ``LocalSceneReader.optional_bands``)
S2_OPTIONAL_BANDS = ("B02", "B03", "B05", "B06", "B07", "B8A", "B11", "B12")


@dataclass(frozen=True)
class LocalScene:
    """Paths and metadata of one Landsat + Sentinel-2 pair (picklable, sent to tile tasks)."""

    landsat: dict
    sentinel2: dict
    landsat_product: str
    landsat_date: date | None
    s2_date: date | None
    s2_boa_offset: float
    s2_offset_source: str
    #: band maps of further products of the same day (read where the ones before have no data)
    landsat_more: tuple[dict, ...] = ()
    sentinel2_more: tuple[dict, ...] = ()

    @property
    def optics(self) -> str:
        """``sentinel2`` (a Landsat + Sentinel-2 pair), or ``landsat``: the scene's own reflective bands (30 m)."""
        return "sentinel2" if self.sentinel2 else "landsat"

    @property
    def date_gap_days(self) -> float | None:
        if self.landsat_date is None or self.s2_date is None:
            return None
        return float(abs((self.landsat_date - self.s2_date).days))


def _rasters(folder: Path) -> list[Path]:
    """The folder's rasters, its sub-folders' included (an unpacked Landsat product folder, a Sentinel-2 ``.SAFE``
    with ``GRANULE/*/IMG_DATA/R10m|R20m|R60m``), in name order."""
    return sorted((p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES),
                  key=lambda p: (p.name, str(p)))


#: the resolution tag of a Sentinel-2 L2A band file (``T33UUP_20250116T101301_B04_10m.jp2``)
_S2_RESOLUTION = re.compile(r"_(\d{2})m(?=[_\-.]|$)", re.I)


def _finest(paths: list[Path]) -> list[Path]:
    """Where one granule has a band at several resolutions (a ``.SAFE``'s R10m, R20m and R60m folders: names equal
    but for the ``_10m`` / ``_20m`` / ``_60m`` tag), the finest file; all others (other granules) are kept."""
    best: dict[tuple, Path] = {}
    for p in sorted(paths, key=lambda p: int(m.group(1)) if (m := _S2_RESOLUTION.search(p.name)) else 0):
        best.setdefault((_s2_granule(p) or str(p.parent), _S2_RESOLUTION.sub("", p.name.rsplit(".", 1)[0])), p)
    return [p for p in paths if p in best.values()]


def _find_all(files: list[Path], pattern: re.Pattern, what: str, folder: Path, required: bool) -> list[Path]:
    hits = [p for p in files if pattern.search(p.name)]
    if not hits and required:
        raise InputError(f"{folder}: no {what} file found (expected a name matching {pattern.pattern!r})"
                         + _archive_st_hint(files))
    return hits


def _archive_st_hint(files: list[Path]) -> str:
    """Where ``files`` hold a Landsat 4-7 ``ST_B6`` band (the paired chain reads Landsat 8/9): how to screen it."""
    old = next((p for p in files if landsat_st_band(p) == "ST_B6"), None)
    return "" if old is None else (
        f"; {old.name} is a Landsat 4-7 surface-temperature band: the Landsat + Sentinel-2 chain reads Landsat 8/9 "
        "products, an ST_B6 band is screened alone (no optics, not sharpened) as --thermal FILE or in INPUT/thermal/")


#: the MGRS tile id in a Sentinel-2 file name (T33UUP_..., S2B_33UUP_..., <item id>_B04.tif)
MGRS_IN_NAME = re.compile(r"(?:^|[_\-.])T?(\d{2}[C-HJ-NP-X][A-HJ-NP-Z]{2})(?=[_\-.])")


def _products(folder: Path, found: dict[str, list[Path]], key, what: str) -> list[dict]:
    """Split ``{band: [files]}`` into one band map per product (``key(path)`` names a file's product), in name
    order; with one file per band there is one product. Every product must have the bands of the first."""
    if all(len(v) <= 1 for v in found.values()):
        return [{b: v[0] for b, v in found.items() if v}]
    groups: dict[str, dict] = {}
    for band, paths in found.items():
        for p in paths:
            k = key(p)
            if k is None or band in groups.setdefault(k, {}):
                names = ", ".join(q.name for q in paths)
                raise InputError(f"{folder}: several {what} {band} files ({names}) that do not name distinct "
                                 "products; keep one scene")
            groups[k][band] = p
    maps = [groups[k] for k in sorted(groups)]
    common = set.intersection(*(set(m) for m in maps))
    return [{b: p for b, p in m.items() if b in common} for m in maps]


def _landsat_product(path: Path) -> str | None:
    return re.split(r"_(?:ST_B10|QA_PIXEL|SR_B\d)\.", path.name, flags=re.I)[0]


def _s2_granule(path: Path) -> str | None:
    """The MGRS tile of a Sentinel-2 file: from its name, else from its folder's (a STAC item's assets, ``B04.tif``,
    in a folder named by the item id)."""
    m = MGRS_IN_NAME.search(path.name) or MGRS_IN_NAME.search(path.parent.name + "_")
    return m.group(1).upper() if m else None


#: a Landsat C2L2 band file (told apart from Sentinel-2's where both lie in one folder)
_LANDSAT_BAND_FILE = re.compile(r"_(ST_B10|QA_PIXEL|SR_B\d)\.(tif|tiff|jp2)$", re.I)


def _is_landsat_file(path: Path) -> bool:
    return bool(_LANDSAT_BAND_FILE.search(path.name))


def discover_local_scene(input_dir: Path, s2_dir: Path | None = None, by_name: bool = False) -> LocalScene:
    """Find the bands of the ``local`` layout in ``input_dir`` (raises :class:`InputError` with the reason);
    ``s2_dir``: the Sentinel-2 folder of another date (a date without a granule of its own); ``by_name``: the files
    anywhere below ``input_dir``, told apart by their names (no ``landsat/`` and ``sentinel2/`` subfolders). Without
    Sentinel-2 bands the scene's own reflective bands are its optics (:attr:`LocalScene.optics`)."""
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise InputError(f"input folder {input_dir} does not exist")
    ls_dir = input_dir if by_name else input_dir / "landsat"
    s2_dir = Path(s2_dir) if s2_dir is not None else input_dir if by_name else input_dir / "sentinel2"
    if not ls_dir.is_dir():
        raise InputError(f"input folder {input_dir} has no landsat/ subfolder")
    ls_all = _rasters(ls_dir)
    s2_all = ls_all if s2_dir == ls_dir else _rasters(s2_dir) if s2_dir.is_dir() else []  # by name: one walk
    ls_files = [p for p in ls_all if not by_name or _is_landsat_file(p)]
    s2_files = [p for p in s2_all if not _is_landsat_file(p)]
    found = {b: _find_all(ls_files, re.compile(rf"_{b}\.(tif|tiff|jp2)$", re.I), f"Landsat {b}", ls_dir, req)
             for b, req in {**LANDSAT_BANDS, **dict.fromkeys(LANDSAT_OPTICS_BANDS, False)}.items()}
    ls_maps = _products(ls_dir, found, _landsat_product, "Landsat")
    named = {b: re.compile(rf"(^|[_\-.]){b}([_\-.]|$)", re.I) for b in (*S2_BANDS, *S2_OPTIONAL_BANDS)}
    # a pair where a sentinel2/ folder is given (its bands then required), or where files below carry its band names
    pair = s2_dir.is_dir() and (not by_name or any(named[b].search(p.name) for b in S2_BANDS for p in s2_files))
    found = {b: _finest(_find_all(s2_files, pat, f"Sentinel-2 {b}", s2_dir, pair and b in S2_BANDS))
             for b, pat in named.items()}
    s2_maps = _products(s2_dir, found, _s2_granule, "Sentinel-2") if pair else [{}]
    ls_required = [b for b, r in LANDSAT_BANDS.items() if r] + ([] if pair else ["SR_B4", "SR_B5"])
    for maps, req, what in ((ls_maps, ls_required, "Landsat"), (s2_maps, S2_BANDS if pair else (), "Sentinel-2")):
        if any(b not in maps[0] for b in req):
            raise InputError(f"{input_dir}: the {what} products do not all have the bands {', '.join(req)}"
                             + ("" if pair else " (no Sentinel-2 granule: the scene's own red and NIR are its optics)")
                             + ("; to screen ST_B10 bands alone (no optics, not sharpened) give one as --thermal "
                                "FILE, or move them from landsat/ to INPUT/thermal/"
                                if what == "Landsat" and not pair and "ST_B10" in maps[0] else ""))
    if pair:  # the reflective bands beyond red and NIR are Sentinel-2's (the blue one screens clouds without QA)
        ls_maps = [{b: p for b, p in m.items() if b in LANDSAT_BANDS or (b == "SR_B2" and "QA_PIXEL" not in m)}
                   for m in ls_maps]
    landsat, sentinel2 = ls_maps[0], s2_maps[0]
    dates = {(m.group(2) if (m := LANDSAT_PRODUCT_ID.search(lm["ST_B10"].name)) else None) for lm in ls_maps}
    if len(dates) > 1:
        raise InputError(f"{ls_dir}: Landsat products of several dates ({', '.join(sorted(map(str, dates)))}); "
                         "keep one date per folder (a sub-folder per date)")
    m = LANDSAT_PRODUCT_ID.search(landsat["ST_B10"].name)
    product = landsat["ST_B10"].name.rsplit("_ST_B10", 1)[0]
    ls_date = _parse_date(m.group(2)) if m else None
    if ls_date is None:
        log.warning("%s: acquisition date not found in the product name", landsat["ST_B10"].name)
    offset, source, s2_date = s2_offset_and_date(s2_dir, list(sentinel2.values()), ls_date) if pair \
        else (0.0, "no Sentinel-2", None)
    return LocalScene(landsat, sentinel2, product, ls_date, s2_date, float(offset), str(source),
                      tuple(ls_maps[1:]), tuple(s2_maps[1:]))


def discover_local_scenes(input_dir: Path, max_dates: int | None = None) -> list[LocalScene]:
    """One scene (``INPUT/landsat`` + ``INPUT/sentinel2``) or several date pairs, one per sub-folder
    (``INPUT/<any name>/landsat`` + ``.../sentinel2``), sorted by Landsat date. ``max_dates``: keep the first N."""
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise InputError(f"input folder {input_dir} does not exist")
    if (input_dir / "landsat").is_dir() or (input_dir / "sentinel2").is_dir():
        return [discover_local_scene(input_dir)]
    subs = sorted(p for p in input_dir.iterdir() if p.is_dir() and (p / "landsat").is_dir())
    if not subs:
        if _has_st(input_dir):  # the scenes' files, in any folders below: one scene, or one per sub-folder of a date
            dated = [p for p in sorted(input_dir.iterdir()) if p.is_dir() and _has_st(p)]
            days = {_landsat_date_in(p) for p in dated}  # one day in several folders (neighbouring rows): one scene
            scenes = [discover_local_scene(p, by_name=True) for p in dated] if len(days) > 1 else \
                [discover_local_scene(input_dir, by_name=True)]
            return sorted(scenes, key=lambda sc: (sc.landsat_date or date.max, sc.landsat_product))[:max_dates]
        packed = sorted(p.name for p in input_dir.rglob("*") if p.name.lower().endswith(ARCHIVE_SUFFIXES))
        raise InputError(f"input folder {input_dir} holds no Landsat C2L2 scene (no *_ST_B10.TIF below it, no "
                         "landsat/ and sentinel2/ subfolders, nor date-pair subfolders that hold them)"
                         + (f"; it holds archives ({', '.join(packed[:3])}{', ...' if len(packed) > 3 else ''}): "
                            "unpack them into it first" if packed else _archive_st_hint(_rasters(input_dir))))
    own = {p: discover_local_scene(p) for p in subs if (p / "sentinel2").is_dir()}
    paired = dict(own)
    for p in (p for p in subs if p not in own and own):  # a Landsat date without a granule of its own
        when = _landsat_date_in(p / "landsat")
        near = min(own, key=lambda o: abs((own[o].s2_date - when).days) if when and own[o].s2_date else 0)
        log.warning("%s has no sentinel2/: its Landsat date %s is paired with the granule of %s (%s; winter land "
                    "cover holds)", p, when, own[near].s2_date, near / "sentinel2")
        paired[p] = discover_local_scene(p, s2_dir=near / "sentinel2")
    scenes = sorted(paired.values() if paired else (discover_local_scene(p) for p in subs),
                    key=lambda sc: (sc.landsat_date or date.max, sc.landsat_product))
    products = [sc.landsat_product for sc in scenes]
    if len(set(products)) != len(products):
        raise InputError(f"input folder {input_dir}: the same Landsat product appears in two date folders")
    return scenes[:max_dates] if max_dates else scenes


def _has_st(folder: Path) -> bool:
    """Whether a Landsat ``*_ST_B10`` raster lies anywhere below ``folder``."""
    return any(p.name.upper().rsplit(".", 1)[0].endswith("_ST_B10") for p in _rasters(folder))


def _landsat_date_in(folder: Path) -> date | None:
    """The acquisition date in the name of the folder's first ``*_ST_B10`` product (None: none found)."""
    for f in _rasters(folder) if folder.is_dir() else []:
        if landsat_st_band(f) == "ST_B10" and (m := LANDSAT_PRODUCT_ID.search(f.name)):
            return _parse_date(m.group(2))
    return None


def scene_footprint(scene: LocalScene) -> tuple[Geometry, str]:
    """Area covered by both sensors where they hold data (the Landsat scene's alone where it has no granule; in the
    Landsat CRS; :func:`valid_data_polygon`: not the fill of a scene's corners or of a granule at its orbit's edge)
    and the Landsat CRS; validates every raster."""
    _, crs = raster_footprint(scene.landsat["ST_B10"])
    fp = None
    for maps in ((scene.landsat, *scene.landsat_more), (scene.sentinel2, *scene.sentinel2_more)):
        if not maps[0]:  # no Sentinel-2 granule: the Landsat scene's own optics
            continue
        covered = None  # where one product of the sensor has every band
        for m in maps:
            part = None
            for p in m.values():
                g = raster_footprint(p)[0].to_crs(crs)
                part = g if part is None else part.intersection(g)
            data = valid_data_polygon(m["ST_B10"] if "ST_B10" in m else m.get("SCL", m.get("B04")))
            if data is not None:
                part = part.intersection(data.to_crs(crs))
            covered = part if covered is None else covered.union(part)
        fp = covered if fp is None else fp.intersection(covered)
    if fp.is_empty or fp.area <= 0:
        raise InputError("the Landsat scene and the Sentinel-2 granule do not overlap")
    return fp, crs


@dataclass(frozen=True)
class TileInputs:
    """Preprocessed inputs on one (padded) 10 m tile grid.

    ``lst``: K, NaN where the thermal pixel is fill or rejected by QA_PIXEL (nearest-resampled 30 m values);
    ``red``, ``nir``: Sentinel-2 surface reflectance 0-1; ``optical_clear``: SCL usable-land mask;
    ``bands``: every Sentinel-2 reflective band the source offers (0-1, B04 and B08 among them), the predictors.
    """

    lst: np.ndarray
    red: np.ndarray
    nir: np.ndarray
    optical_clear: np.ndarray
    #: Landsat-to-Sentinel-2 coregistration of this tile: estimated shift (m), peak, whether it was applied
    coregistration: dict | None = None
    bands: dict | None = None
    #: the LST's own per-pixel uncertainty (K; ECOSTRESS ``LST_err``) where the source has one: the dates of a
    #: segment are weighted by it (:func:`heattrack.kernels.ranking.segment_statistic`)
    lst_err: np.ndarray | None = None
    #: LST (K) of clear open water (QA_PIXEL), NaN elsewhere (None: none): in the LST layers, never screened
    water_lst: np.ndarray | None = None


@dataclass(frozen=True)
class CoregParams:
    """Landsat-to-Sentinel-2 coregistration: phase correlation of Landsat SR_B5 against Sentinel-2 B08
    averaged to 30 m over the tile. A shift is applied to the Landsat reads when it is at least ``min_shift_m``,
    at most ``max_shift_m`` and the correlation peak is at least ``min_peak`` (else it is only recorded)."""

    enabled: bool = True
    min_shift_m: float = 6.0
    max_shift_m: float = 150.0
    min_peak: float = 0.1


@dataclass(frozen=True)
class LocalSceneReader:
    """Reads a :class:`LocalScene` onto tile GeoBoxes (implements :class:`heattrack.io.sources.SceneReader`)."""

    scene: LocalScene
    mask_water: bool = True
    coreg: CoregParams = CoregParams()
    #: the optional Sentinel-2 bands to read when the scene has them (the sharpener's predictors beyond red and
    #: NIR): ``run_plan.optional_bands`` gives the ones the configured sharpener uses, so none is read in vain
    optional_bands: tuple[str, ...] = S2_OPTIONAL_BANDS

    def _warp(self, sensor: str, band: str, geobox: GeoBox, resampling: Resampling, nodata: float) -> np.ndarray:
        """One band (canonical name: ST_B10, QA_PIXEL, SR_B4, SR_B5, B04, B08, SCL) of ``sensor`` on ``geobox``
        (sources override this: the STAC reader loads with odc-stac)."""
        sc = self.scene
        out = None
        for m in (getattr(sc, sensor), *getattr(sc, f"{sensor}_more", ())):
            a = warp_band(m[band], geobox, resampling, nodata)
            if out is None:
                out = a
            else:  # the day's mosaic: later products fill where the earlier ones have no data
                hole = out == nodata
                out[hole] = a[hole]
            if not (out == nodata).any():
                break
        return out

    def landsat_shift(self, geobox: GeoBox, nir_fine: np.ndarray | None = None) -> dict | None:
        """Estimate how far the Landsat scene sits from the Sentinel-2 granule over ``geobox`` (None when the
        scene has no SR_B5 or coregistration is off). ``dx_m``/``dy_m``: east/north offset of Landsat features.
        ``nir_fine``: Sentinel-2 NIR reflectance already read on ``geobox`` (saves a second read)."""
        ls = self.scene.landsat
        if not self.coreg.enabled or "SR_B5" not in ls or not self.scene.sentinel2:  # (no granule: one sensor)
            return None
        h, w = (geobox.shape.y // 3) * 3, (geobox.shape.x // 3) * 3
        gb30 = geobox[:h, :w].zoom_out(3)
        if nir_fine is None:
            nir_fine = s2_dn_to_reflectance(self._warp("sentinel2", "B08", geobox, Resampling.bilinear, 0),
                                            self.scene.s2_boa_offset)
        ref = block_mean(nir_fine[:h, :w], 3)
        mov = sr_dn_to_reflectance(self._warp("landsat", "SR_B5", gb30, Resampling.bilinear, 0))
        if np.isfinite(ref).mean() < 0.25 or np.isfinite(mov).mean() < 0.25:
            return {"dx_m": 0.0, "dy_m": 0.0, "peak": 0.0, "applied": False, "reason": "too little overlap"}
        sh = phase_correlation_shift(ref, mov)
        res = abs(gb30.affine.a)
        dx_m, dy_m = sh.dx * res, -sh.dy * res
        size = float(np.hypot(dx_m, dy_m))
        ok = sh.peak >= self.coreg.min_peak and self.coreg.min_shift_m <= size <= self.coreg.max_shift_m
        return {"dx_m": round(dx_m, 2), "dy_m": round(dy_m, 2), "peak": round(sh.peak, 3), "applied": bool(ok)}

    def _qa(self, geobox: GeoBox, st: np.ndarray) -> np.ndarray:
        """QA_PIXEL on ``geobox`` (``st``: ST_B10 there); for a scene without it, its stand-in: clear wherever ST_B10
        has data but for bright, cold clouds in the blue band and open water by Fmask's test on red and NIR (SR_B2,
        SR_B4, SR_B5 where the scene has them; :func:`qa_stand_in`)."""
        ls = self.scene.landsat
        if "QA_PIXEL" in ls:
            return self._warp("landsat", "QA_PIXEL", geobox, Resampling.nearest, QA_FILL_VALUE)
        sr = {b: sr_dn_to_reflectance(self._warp("landsat", b, geobox, Resampling.nearest, 0)) if b in ls else None
              for b in ("SR_B2", "SR_B4", "SR_B5")}
        return qa_stand_in(st, sr["SR_B2"], sr["SR_B4"], sr["SR_B5"])

    def read(self, geobox: GeoBox) -> TileInputs:
        if not self.scene.sentinel2:
            return self._read_landsat_alone(geobox)
        off = self.scene.s2_boa_offset
        red = s2_dn_to_reflectance(self._warp("sentinel2", "B04", geobox, Resampling.bilinear, 0), off)
        nir = s2_dn_to_reflectance(self._warp("sentinel2", "B08", geobox, Resampling.bilinear, 0), off)
        coreg = self.landsat_shift(geobox, nir)
        ls_box = geobox
        if coreg and coreg["applied"]:
            # Landsat features sit (dx, dy) m from where Sentinel-2 has them: read Landsat there
            ls_box = GeoBox(geobox.shape, Affine.translation(coreg["dx_m"], coreg["dy_m"]) @ geobox.affine,
                            geobox.crs)
        lst, screened, water_lst = self._landsat_lst(ls_box)
        scl = self._warp("sentinel2", "SCL", geobox, Resampling.nearest, 0)
        bands = {"B04": red, "B08": nir}
        for b in self.optional_bands:
            if b in self.scene.sentinel2:
                bands[b] = s2_dn_to_reflectance(self._warp("sentinel2", b, geobox, Resampling.bilinear, 0), off)
        return TileInputs(lst, red, nir, scl_clear_mask(scl, mask_water=self.mask_water), coreg, bands,
                          water_lst=water_lst)

    def _landsat_lst(self, geobox: GeoBox) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """LST (K, NaN where not screened), the screened mask and the clear water's LST (None: no water)."""
        st = self._warp("landsat", "ST_B10", geobox, Resampling.nearest, 0)
        lst = st_dn_to_kelvin(st)
        screened, water = landsat_screen_masks(self._qa(geobox, st), self.mask_water)
        water_lst = np.where(water, lst, np.nan) if water.any() else None
        lst[~screened] = np.nan
        return lst, screened, water_lst

    def _read_landsat_alone(self, geobox: GeoBox) -> TileInputs:
        """A scene without a Sentinel-2 granule: its own reflective bands are the optics (30 m, no coregistration),
        usable where the thermal pixel is screened and red and NIR hold data."""
        lst, screened, water_lst = self._landsat_lst(geobox)
        bands = landsat_optics(self._warp, geobox, self.scene.landsat, self.optional_bands)
        red, nir = bands["B04"], bands["B08"]
        return TileInputs(lst, red, nir, screened & np.isfinite(red) & np.isfinite(nir), None, bands,
                          water_lst=water_lst)

    def clear_fraction(self, geobox: GeoBox) -> float:
        """Share of clear, non-fill Landsat thermal pixels on ``geobox`` (use a coarse one for a quick check)."""
        st = self._warp("landsat", "ST_B10", geobox, Resampling.nearest, 0)
        return float(((st != 0) & landsat_clear_mask(self._qa(geobox, st))).mean())
