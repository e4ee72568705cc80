"""The thermal-raster source: any land-surface-temperature GeoTIFF/COG (airborne or drone thermography,
commercial thermal satellites, a product you made), in any CRS and resolution, instead of Landsat.

Layout: ``INPUT/thermal/<one or more *.tif>`` (one file = one date), or ``--thermal FILE``. Optional beside each
raster a sidecar ``<name>.json`` with ``{"units": "K" | "C", "acquired": "2025-01-15T22:10:00", "psf_m": 1.0}``.
Units: the sidecar, else the raster's ``units``/``UNITS`` tag or band description (``K``, ``kelvin``, ``C``,
``celsius``, ``degC``), else kelvin -- and a raster whose median is below 150 without a stated unit is refused
(it is certainly not kelvin). Nodata is honoured. The effective resolution (``psf_m``: the footprint of
one measurement) comes from the sidecar, else ``thermal.psf_m``, else the raster's pixel size -- unless the image's
own power spectrum (:func:`heattrack.kernels.psf.estimate_footprint`, on its central 512 x 512 pixels) shows a
footprint at least ``ESTIMATED_MIN_PX`` pixels wide: then the raster was resampled from coarser data (ECOSTRESS or
Landsat onto 10 m pixels) and the detectability (``mdl_k``) uses that footprint, with a warning, while the ranking's
windows keep following the pixel size (:attr:`ThermalScene.stated_m`); the run record says which (``psf_source``).

A Landsat Collection 2 surface-temperature band as USGS names and delivers it (uint16 counts: Landsat 8/9's ``ST_B10``,
Landsat 4-7's ``ST_B6``) is read in kelvin with its ``QA_PIXEL`` and ``ST_QA`` beside it and its mission's thermal
footprint (TIRS 100 m, ETM+ 60 m, TM 120 m; :mod:`heattrack.io.landsat_st`): the ST product screened without optics.

ECOSTRESS L2T LSTE (V2) tiles as NASA names them (``ECOv002_L2T_LSTE_<orbit>_<scene>_<MGRS>_<UTC time>_<build>_
<iteration>_LST.tif`` with ``_cloud``, ``_water``, ``_LST_err``, ... beside it) are one scene per ``_LST`` file: 70 m,
kelvin, the acquisition time from the name, cloud and water pixels masked, pixels whose ``LST_err`` exceeds
``thermal.max_lst_err_k`` dropped; the other layers are not read as temperatures. ``thermal.time_of_day`` keeps the
night (or day) passes by local solar time (UTC + longitude / 15 h).

When the effective resolution is at most ``thermal.fine_m`` (20 m) the chain skips sharpening and ranks on the
thermal data directly (:func:`heattrack.kernels.chain.thermal_products`); reads average finer pixels onto the
10 m grid (``Resampling.average``: the mean temperature of each 10 m cell).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import ClassVar

import numpy as np
import rasterio
from odc.geo.geobox import GeoBox
from odc.geo.geom import Geometry, box
from rasterio.enums import Resampling
from rasterio.warp import transform as rio_transform

from heattrack.errors import InputError
from heattrack.io.landsat_st import LANDSAT_ST_SENSORS, landsat_st_fields, landsat_st_warnings, read_landsat_st
from heattrack.io.local import RASTER_SUFFIXES, TileInputs, warp_band
from heattrack.io.mtl_georef import LANDSAT_PRODUCT_ID, is_landsat_st
from heattrack.io.rasterread import open_raster
from heattrack.kernels.calibrate import st_dn_to_kelvin
from heattrack.kernels.psf import MAX_WINDOW_PX, estimate_footprint

log = logging.getLogger(__name__)

_CELSIUS = re.compile(r"^\s*(c|°c|degc|deg_c|celsius|degree_celsius|degrees? celsius)\s*$", re.I)
_KELVIN = re.compile(r"^\s*(k|kelvin)\s*$", re.I)
_DATE = re.compile(r"(20\d{2})-?(\d{2})-?(\d{2})")
#: an ECOSTRESS L2T LSTE tile layer: (product prefix, acquisition time UTC, layer)
ECOSTRESS_NAME = re.compile(r"^(ECOv?\d*_L2T_LSTE_\w+?_(\d{8}T\d{6})_\w+?)_(LST|LST_err|QC|EmisWB|height|cloud|water|"
                            r"view_zenith)\.tif$", re.I)
ECOSTRESS_PSF_M = 70.0
#: an estimated footprint replaces the pixel size only from this width (pixels, square-footprint equivalent) up:
#: sharp held-out simulated scenes read at most 1.4 px, the same through a 70 m footprint on 10 m pixels 6.9-7.6 px
ESTIMATED_MIN_PX = 4.0


@dataclass(frozen=True)
class ThermalScene:
    """One LST raster (picklable, sent to tile tasks). The ``landsat_*``/``s2_*`` names are those of the run
    record's per-date entry, shared with the Landsat sources: ``landsat_product`` is the raster's name."""

    path: Path
    units: str  # "K" or "C"
    psf_m: float
    pixel_m: float
    landsat_product: str
    landsat_date: date | None
    acquired: str | None = None
    s2_date: date | None = None
    s2_boa_offset: float = 0.0
    s2_offset_source: str = "no optical data (thermal raster source)"
    sensor: str = "thermal raster"
    #: quality layers read with the LST (ECOSTRESS: cloud, water, LST_err) and the LST_err limit (K)
    masks: tuple[tuple[str, Path], ...] = ()
    max_err_k: float = float("inf")
    solar_hour: float | None = None  # local solar time of the acquisition, when known
    lat: float | None = None  # latitude of the raster's centre, with solar_hour (the heating-season rule)
    #: where psf_m comes from: "sidecar", "config", "sensor" (ECOSTRESS), "estimated" or "pixel size"; and the
    #: footprint the image's spectrum shows (m; None when not estimated)
    psf_source: str = "pixel size"
    psf_estimate_m: float | None = None

    @property
    def date_gap_days(self) -> float | None:
        return None

    @property
    def stated_m(self) -> float:
        """The footprint stated for the raster (sidecar, config, sensor), else its pixel size: the scale the
        ranking's windows follow. A footprint estimated from the image sets the detectability (``mdl_k``) only: on
        rasters resampled from 70 m onto 10 m pixels the fine-data windows rank better (segment ROC-AUC 0.891 vs
        0.846 over six held-out cities, ``benchmarks/psf_estimate.py --runs``)."""
        return self.pixel_m if self.psf_source == "estimated" else self.psf_m


def _sidecar(path: Path) -> dict:
    side = path.with_suffix(".json")
    if not side.exists():
        return {}
    try:
        data = json.loads(side.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{side}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise InputError(f"{side}: expected a JSON object with units / acquired / psf_m")
    return data


def _units(path: Path, side: dict, src) -> str | None:
    candidates = [side.get("units"), src.tags().get("units"), src.tags().get("UNITS"), src.tags(1).get("units"),
                  src.units[0] if src.units else None, src.descriptions[0] if src.descriptions else None]
    for c in candidates:
        if not c:
            continue
        if _CELSIUS.match(str(c)):
            return "C"
        if _KELVIN.match(str(c)):
            return "K"
    return None


def check_thermal_path(path: Path) -> None:
    """Raise :class:`InputError` unless ``path`` is a file (a folder gets its own line: rasters in a folder go in
    ``INPUT/thermal/`` with ``--input INPUT``)."""
    if Path(path).is_dir():
        raise InputError(f"thermal raster {path} is a folder: give one raster as --thermal FILE, or put the rasters in "
                         f"a thermal/ folder and give the folder above it as --input")
    if not Path(path).is_file():
        raise InputError(f"thermal raster {path} does not exist")


def describe_thermal(path: Path, psf_m: float | None = None, max_err_k: float = float("inf"),
                     max_st_qa_k: float = float("inf")) -> ThermalScene:
    """Open and check one LST raster (CRS, units, resolution, date); raises :class:`InputError` with the reason.
    ``max_err_k``: an ECOSTRESS pass's ``LST_err`` limit, ``max_st_qa_k``: a Landsat ST band's ``ST_QA`` limit."""
    path = Path(path)
    check_thermal_path(path)
    side = _sidecar(path)
    try:
        with open_raster(path) as src:  # a Landsat crop without georeferencing: placed by its MTL
            # a Landsat ST band as USGS delivers it holds scaled counts (an export in kelvin is a float raster)
            landsat_st = is_landsat_st(path) and src.dtypes[0] == "uint16"
            if src.crs is None:
                raise InputError(f"thermal raster {path} has no CRS (not georeferenced)")
            if not src.crs.is_projected:
                raise InputError(f"thermal raster {path} is in a geographic CRS ({src.crs.to_string()}); "
                                 "reproject it to a projected CRS (metres) first")
            units = "K" if landsat_st else _units(path, side, src)
            sample = src.read(1, out_shape=(min(src.height, 256), min(src.width, 256)), masked=True)
            if landsat_st:  # scaled counts, 0 = fill
                sample = np.ma.masked_invalid(st_dn_to_kelvin(np.ma.filled(sample, 0)))
            centre = None if side.get("psf_m") or psf_m or landsat_st or ECOSTRESS_NAME.match(path.name) else \
                _central_window(src)
            pixel_m = float(max(abs(src.transform.a), abs(src.transform.e)))
            tag_time = src.tags().get("TIFFTAG_DATETIME") or src.tags().get("acquired")
    except InputError:
        raise
    except Exception as exc:  # rasterio raises several error types for broken files
        raise InputError(f"cannot read thermal raster {path}: {str(exc).splitlines()[0]}") from None
    vals = np.asarray(sample.compressed(), dtype=float)
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        raise InputError(f"thermal raster {path}: no valid pixel (all nodata)")
    med = float(np.median(vals))
    if units is None:
        if med < 150.0:
            raise InputError(f"thermal raster {path}: median {med:.1f} is not a temperature in kelvin and the file "
                             "states no unit; add a sidecar {name}.json with {\"units\": \"C\"} (or \"K\")")
        units = "K"
    kelvin_med = med + 273.15 if units == "C" else med
    if not 180.0 < kelvin_med < 400.0:
        raise InputError(f"thermal raster {path}: median {kelvin_med:.1f} K is not a land-surface temperature "
                         f"(units {units})")
    acquired = side.get("acquired") or tag_time
    when = None
    if acquired:
        m = _DATE.search(str(acquired).replace(":", "-", 2))
        when = date(int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None
    if when is None and (m := _DATE.search(path.name)):
        try:
            when = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            when = None
    psf, psf_source, estimate_m = pixel_m, "pixel size", None
    if side.get("psf_m") or psf_m:
        psf, psf_source = float(side.get("psf_m") or psf_m), "sidecar" if side.get("psf_m") else "config"
    elif centre is not None and (est := estimate_footprint(centre)) is not None:
        estimate_m = round(est.box_width_px * pixel_m, 1)
        if est.box_width_px >= ESTIMATED_MIN_PX:
            psf, psf_source = estimate_m, "estimated"
    extra = {}
    if ECOSTRESS_NAME.match(path.name):
        eco = _ecostress(path, max_err_k)
        when, acquired, psf = eco.pop("when"), eco.pop("acquired"), float(side.get("psf_m") or eco.pop("psf_m"))
        psf_source, estimate_m = "sidecar" if side.get("psf_m") else "sensor", None
        extra = {k: v for k, v in eco.items() if k != "psf_m"}
    elif landsat_st:
        st = landsat_st_fields(path)
        when, acquired = st.pop("when"), st.pop("acquired")
        if not (side.get("psf_m") or psf_m):
            psf, psf_source = st["psf_m"], "sensor"
        extra = {"masks": st["masks"], "max_err_k": max_st_qa_k, "sensor": st["sensor"]}
    return ThermalScene(path=path, units=units, psf_m=psf, pixel_m=pixel_m, landsat_product=path.stem,
                        landsat_date=when, acquired=str(acquired) if acquired else None, psf_source=psf_source,
                        psf_estimate_m=estimate_m, **extra)


def thermal_warnings(scenes) -> list[str]:
    """The run's warnings for its thermal rasters: footprints estimated from the image (:func:`psf_warnings`) and
    Landsat ST bands screened alone (:func:`heattrack.io.landsat_st.landsat_st_warnings`)."""
    return psf_warnings(scenes) + landsat_st_warnings(scenes)


def psf_warnings(scenes) -> list[str]:
    """The run's warnings for thermal rasters whose footprint was estimated from the image."""
    return [f"thermal raster {sc.path.name}: its image shows a {sc.psf_m:.0f} m footprint on {sc.pixel_m:.3g} m "
            "pixels (resampled from coarser data?): its detectability (mdl_k) uses that footprint; set thermal.psf_m "
            "or a sidecar psf_m to override" for sc in scenes if sc.psf_source == "estimated"]


def _central_window(src) -> np.ndarray:
    """The raster's central ``MAX_WINDOW_PX`` pixels square at full resolution (float, NaN = nodata)."""
    from rasterio.windows import Window

    n_r, n_c = min(src.height, MAX_WINDOW_PX), min(src.width, MAX_WINDOW_PX)
    win = src.read(1, window=Window((src.width - n_c) // 2, (src.height - n_r) // 2, n_c, n_r), masked=True)
    return np.ma.filled(win.astype(np.float64), np.nan)


def thermal_files(input_dir: Path) -> list[Path]:
    """The LST rasters of ``INPUT/thermal`` (sorted by name; empty if there is no such folder); of an ECOSTRESS
    tile only its ``_LST`` layer, of a Landsat product only its ST band (``ST_B10``, ``ST_B6``; the others are their
    quality layers and, for Landsat, the ST bundle's intermediate bands)."""
    folder = Path(input_dir) / "thermal"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES
                  and (not (m := ECOSTRESS_NAME.match(p.name)) or m.group(3).upper() == "LST")
                  and (LANDSAT_PRODUCT_ID.search(p.name) is None or is_landsat_st(p)))


def solar_hour(utc: datetime, lon: float) -> float:
    """Local mean solar time (h) of an acquisition at ``utc`` and longitude ``lon``."""
    return (utc.hour + utc.minute / 60 + utc.second / 3600 + lon / 15.0) % 24.0


def keep_time_of_day(hour: float | None, when: date | None, lat: float, mode: str) -> bool:
    """``thermal.time_of_day``: night = solar hour before 6 or from 19; day = 9 to 16; any; auto = night in the
    heating season (October-April north of the equator, April-October south), any otherwise. Unknown times
    pass."""
    if hour is None or mode == "any":
        return True
    if mode == "auto":
        if when is None:
            return True
        winter = when.month in (10, 11, 12, 1, 2, 3, 4) if lat >= 0 else when.month in range(4, 11)
        if not winter:
            return True
        mode = "night"
    return (hour < 6.0 or hour >= 19.0) if mode == "night" else 9.0 <= hour <= 16.0


def _ecostress(path: Path, max_err_k: float) -> dict:
    """ThermalScene fields of an ECOSTRESS ``_LST`` tile: its quality layers, time, 70 m footprint."""
    m = ECOSTRESS_NAME.match(path.name)
    utc = datetime.strptime(m.group(2), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
    masks = tuple((layer, path.with_name(f"{m.group(1)}_{layer}{path.suffix}")) for layer in ("cloud", "water", "LST_err"))
    missing = [f.name for _, f in masks[:2] if not f.exists()]
    if missing:
        raise InputError(f"ECOSTRESS tile {path.name}: quality layer {', '.join(missing)} missing beside it "
                         "(cloud and water are required; LST_err is used when present)")
    with rasterio.open(path) as src:
        b = src.bounds
        lon, lat = rio_transform(src.crs, "EPSG:4326", [(b.left + b.right) / 2], [(b.bottom + b.top) / 2])
    return {"masks": tuple((k, f) for k, f in masks if f.exists()), "max_err_k": max_err_k,
            "acquired": utc.isoformat().replace("+00:00", "Z"), "when": utc.date(), "sensor": "ECOSTRESS",
            "psf_m": ECOSTRESS_PSF_M, "solar_hour": round(solar_hour(utc, lon[0]), 2), "lat": float(lat[0])}


def discover_thermal(input_dir: Path | None, thermal_file: Path | None, psf_m: float | None = None,
                     max_dates: int | None = None, time_of_day: str = "any",
                     max_err_k: float = float("inf"), max_st_qa_k: float = float("inf")
                     ) -> tuple[list[ThermalScene], list[str]]:
    """The thermal rasters of a run (``--thermal FILE`` or ``INPUT/thermal/``) that pass ``time_of_day``, sorted
    by date, and a warning per raster left out (``max_err_k``, ``max_st_qa_k``: :func:`describe_thermal`)."""
    files = [Path(thermal_file)] if thermal_file is not None else thermal_files(input_dir) if input_dir else []
    if not files:
        raise InputError(f"no thermal raster: {input_dir}/thermal/ holds no GeoTIFF and no --thermal FILE was given")
    scenes, dropped = [], []
    for sc in (describe_thermal(p, psf_m, max_err_k, max_st_qa_k) for p in files):
        if keep_time_of_day(sc.solar_hour, sc.landsat_date, sc.lat or 0.0, time_of_day):
            scenes.append(sc)
        else:
            dropped.append(f"{sc.landsat_product}: acquired at {sc.solar_hour:.1f} h local solar time, left out by "
                           f"thermal.time_of_day = {time_of_day}")
    if not scenes:
        raise InputError(f"no thermal raster acquired in the time of day asked for (thermal.time_of_day = "
                         f"{time_of_day}): {'; '.join(dropped)}")
    scenes.sort(key=lambda s: (s.landsat_date or date.max, s.landsat_product))
    return (scenes[:max_dates] if max_dates else scenes), dropped


def thermal_footprint(scene: ThermalScene) -> tuple[Geometry, str]:
    with open_raster(scene.path) as src:
        crs = src.crs.to_string()
        return box(*src.bounds, crs), crs


@dataclass(frozen=True)
class ThermalReader:
    """Reads a :class:`ThermalScene` onto tile GeoBoxes (:class:`heattrack.io.sources.SceneReader`): LST in K (NaN = nodata);
    no optical bands (``red``/``nir`` NaN, ``optical_clear`` true where LST is valid)."""

    thermal_only: ClassVar[bool] = True  # no optics: ranked on the LST directly (also inside a mixed run)

    scene: ThermalScene

    def _lst(self, geobox: GeoBox) -> np.ndarray:
        return self._lst_err(geobox)[0]

    def _lst_err(self, geobox: GeoBox) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """The screened LST, its LST_err, and the LST of clear water (None: no water flag on ``geobox``), K."""
        if self.scene.sensor in LANDSAT_ST_SENSORS:  # scaled counts, QA_PIXEL and ST_QA, all nearest (30 m pixels)
            lst, cloud, water, err = read_landsat_st(self.scene, geobox)
            screened, water_lst = mask_lst_and_water(lst, cloud, water, err, self.scene.max_err_k)
            return screened, err, water_lst
        res = abs(geobox.affine.a)
        resampling = Resampling.average if self.scene.pixel_m < res else Resampling.bilinear
        a = warp_band(self.scene.path, geobox, resampling, np.nan).astype(np.float32)
        a[~np.isfinite(a)] = np.nan
        if self.scene.units == "C":
            a = a + np.float32(273.15)
        if not self.scene.masks:
            return a, None, None
        # ECOSTRESS quality layers, nearest (flags stay flags)
        q = {layer: warp_band(path, geobox, Resampling.nearest, np.nan) for layer, path in self.scene.masks}
        err = q.get("LST_err")
        screened, water_lst = mask_lst_and_water(a, q["cloud"], q["water"], err, self.scene.max_err_k,
                                                 flag_spread_px(self.scene.pixel_m, res))
        return screened, err, water_lst

    def read(self, geobox: GeoBox) -> TileInputs:
        lst, err, water_lst = self._lst_err(geobox)
        return replace(lst_only_inputs(lst, err), water_lst=water_lst)

    def clear_fraction(self, geobox: GeoBox) -> float:
        return float(np.isfinite(self._lst(geobox)).mean())


def mask_lst(lst: np.ndarray, cloud: np.ndarray, water: np.ndarray, err: np.ndarray | None,
             max_err_k: float, spread_px: int = 0) -> np.ndarray:
    """LST (K, float32) with cloud, water, nodata and ``LST_err > max_err_k`` pixels set to NaN.

    ``spread_px``: the flagged pixels (cloud, water, uncertain) are widened by this many pixels first. The flags come
    nearest-resampled onto the tile while the LST is interpolated, so the LST of a clear pixel next to a flagged one
    mixes in the flagged pixel's value (a 250 K cloud top, a river): :func:`flag_spread_px` says how far."""
    out = np.asarray(lst, dtype=np.float32).copy()
    flagged = (cloud != 0) | (water != 0)
    if err is not None:
        flagged |= ~(err <= max_err_k)
    if spread_px > 0 and flagged.any():
        from scipy import ndimage

        flagged = ndimage.binary_dilation(flagged, np.ones((2 * spread_px + 1,) * 2, bool))
    out[flagged | ~np.isfinite(out) | (out <= 0)] = np.nan
    return out


def mask_lst_and_water(lst: np.ndarray, cloud: np.ndarray, water: np.ndarray, err: np.ndarray | None,
                       max_err_k: float, spread_px: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`mask_lst`, and the LST of the water pixels (cloud and uncertain pixels masked, no spread): the sea or a
    lake is shown in the LST layers, never screened (None where no pixel is flagged water)."""
    screened = mask_lst(lst, cloud, water, err, max_err_k, spread_px)
    is_water = (water != 0) & np.isfinite(water)
    if not is_water.any():
        return screened, None
    shown = mask_lst(lst, cloud, np.zeros_like(water), err, max_err_k)
    return screened, np.where(is_water & np.isnan(screened), shown, np.float32(np.nan))


def flag_spread_px(native_m: float, tile_res_m: float) -> int:
    """How many tile pixels past a flagged source pixel the interpolated LST still carries its value: bilinear
    upsampling weighs source centres up to one source pixel away, and the nearest-resampled flag already covers the
    first half of that (70 m onto 10 m: 4 pixels); an average of finer pixels mixes within one tile pixel."""
    if native_m <= tile_res_m:
        return 1 if native_m < tile_res_m else 0
    return int(np.ceil(0.5 * native_m / tile_res_m))


def lst_only_inputs(lst: np.ndarray, lst_err: np.ndarray | None = None) -> TileInputs:
    """The tile inputs of a source without optics: the LST (K, NaN = unusable), ``red``/``nir`` NaN,
    ``optical_clear`` where the LST is valid; ``lst_err`` (K) where the source has it (NaN where the LST is not)."""
    nan = np.full(lst.shape, np.nan, dtype=np.float32)
    if lst_err is not None:
        lst_err = np.where(np.isfinite(lst), lst_err, np.nan).astype(np.float32)
    return TileInputs(lst, nan, nan.copy(), np.isfinite(lst), None, None, lst_err)


def scene_info(scene: ThermalScene) -> dict:
    """The run record's entry for one thermal raster."""
    return {"sensor": scene.sensor, "landsat_product": scene.landsat_product, "landsat_date": scene.landsat_date,
            "sentinel2_date": None, "date_gap_days": None, "s2_boa_offset": None, "s2_offset_source": None,
            "thermal_file": str(scene.path), "units": scene.units, "psf_m": scene.psf_m, "pixel_m": scene.pixel_m,
            "psf_source": scene.psf_source, "psf_estimate_m": scene.psf_estimate_m,
            "acquired": scene.acquired, "solar_hour": scene.solar_hour,
            "quality_layers": [layer for layer, _ in scene.masks]}


__all__ = ["ThermalReader", "ThermalScene", "check_thermal_path", "describe_thermal", "discover_thermal",
           "flag_spread_px", "lst_only_inputs", "mask_lst", "mask_lst_and_water", "psf_warnings", "scene_info",
           "thermal_warnings", "thermal_files", "thermal_footprint"]
