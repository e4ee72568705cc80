"""One typed configuration for every heattrack command.

Precedence: defaults < YAML file (``--config``) < ``HEATTRACK_*`` environment < CLI flags (including
``--set section.key=value``). The resolved configuration is written as ``config.yaml`` next to every output
and hashed (``processing_hash``) to refuse mixing two different runs in one output folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from heattrack.config_changes import ChangesConfig
from heattrack.config_compute import ComputeConfig, KubernetesConfig, SlurmConfig
from heattrack.config_compute import Section as _Section
from heattrack.config_grid import GridConfig
from heattrack.config_sources import EcostressConfig, GeeConfig, SimulateConfig, StacConfig
from heattrack.errors import ConfigError

#: the network a local input folder may carry itself (``input.pipes`` unset), in this order
INPUT_FOLDER_PIPES = ("pipes.geojson", "pipes.gpkg")


class InputConfig(_Section):
    """Where the imagery and the pipe network come from."""

    source: Literal["local", "stac", "gee", "ecostress", "synthetic"] = Field(
        "local", description="Input backend: 'local' product files (no account), 'stac' (a STAC API; see the stac "
        "section), 'gee' (Google Earth Engine; see the gee section), 'ecostress' (ECOSTRESS L2T LSTE passes from "
        "NASA's CMR-STAC or Earth Engine; see the ecostress section) or 'synthetic' (the simulator, settings in "
        "the simulate section; the scene is written to input.input or OUT/scene, with its truth).")
    input: Path | None = Field(None, description="Folder with landsat/ and sentinel2/ (one date pair), or with "
                               "one such sub-folder per date pair (multi-date run; local source); without those "
                               "sub-folders the files below it are told apart by name, and a Landsat scene without "
                               "Sentinel-2 bands is read with its own reflective bands (30 m) as the optics.")
    pipes: Path | None = Field(None, description="District-heating network (GeoJSON, GeoPackage, Shapefile). None "
                               "with the local source: the input folder's own pipes.geojson or pipes.gpkg where it has "
                               "one (the layout `heattrack simulate` writes), resolved when the configuration loads.")
    aoi: str | None = Field(None, description="Country name, polygon file or 'minx,miny,maxx,maxy' lon/lat; "
                            "None = the input data's area (both sensors, their fill left out) within "
                            "grid.network_buffer_m of the pipes.")
    max_date_gap_days: float = Field(10.0, ge=0, description="Warn when Landsat and Sentinel-2 dates differ more.")
    max_dates: int | None = Field(None, ge=1, description="Use at most this many date pairs of a multi-date input "
                                  "folder (the earliest); None = all.")
    thermal: Path | None = Field(None, description="An LST raster (GeoTIFF/COG, any CRS and resolution; K, or °C "
                                 "when the file or a sidecar says so) to screen instead of Landsat. Without it, "
                                 "an input folder with a thermal/ subfolder is read the same way (docs/thermal.md).")
    mask_water: bool = Field(True, description="Mask water (QA_PIXEL bit 7, SCL 6): open water is not land and "
                             "is never screened; its measured surface temperature is still shown in the LST layers "
                             "and the risk layer reads 0 there (`valid` 0). false: water is screened as land.")
    coregister: bool = Field(True, description="Estimate the Landsat-Sentinel-2 offset per tile (phase correlation "
                             "of SR_B5 vs B08 at 30 m; needs SR_B5) and correct the Landsat reads.")
    coreg_min_shift_m: float = Field(6.0, ge=0, description="Smaller estimated offsets are recorded, not applied.")
    coreg_max_shift_m: float = Field(150.0, gt=0, description="Larger estimated offsets are distrusted (recorded).")

    @model_validator(mode="before")
    @classmethod
    def _pipes_in_the_input_folder(cls, data):
        """``pipes`` unset, local source: the input folder's ``pipes.geojson`` / ``pipes.gpkg`` (first found), so that
        the resolved configuration written beside the outputs names the network the run used."""
        if not isinstance(data, dict) or data.get("pipes") is not None or data.get("source", "local") != "local":
            return data
        folder = Path(data["input"]) if data.get("input") is not None else None
        found = next((folder / n for n in INPUT_FOLDER_PIPES if (folder / n).is_file()), None) if folder else None
        return {**data, "pipes": found} if found is not None else data


class DownscaleConfig(_Section):
    """LST 100 m -> 10 m."""

    method: Literal["dms", "tsharp", "bilinear"] = Field(
        "dms", description="dms: Data Mining Sharpener (bagged trees with linear leaves on every reflectance band "
        "the source offers plus NDVI/NDBI/MNDWI, footprint-aware, guarded per tile); tsharp: NDVI regression; "
        "both with residual correction; bilinear: no sharpening.")
    thermal_resolution_m: float = Field(100.0, gt=0, description="Effective resolution of ST_B10 (TIRS ~100 m, "
                                        "delivered on a 30 m grid). Must be a multiple of grid.resolution_m.")
    min_valid_fraction: float = Field(0.3, ge=0, le=1, description="Share of clear 10 m pixels a thermal "
                                      "pixel needs to count as observed.")
    degree: int = Field(1, ge=1, le=3, description="Polynomial degree of the TsHARP LST-NDVI fit.")
    dms_bands: tuple[Literal["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"], ...] = Field(
        ("B02", "B03", "B04", "B08", "B11", "B12"), description="DMS: the Sentinel-2 reflectance bands used as "
        "predictors when the source has them (red B04 and NIR B08 always); only these are read. The default is the "
        "six bands Landsat OLI also has; the red-edge bands B05-B07, B8A measured worse on the simulator family.")
    dms_sharpen_20m: bool = Field(True, description="DMS: give the 20 m bands (B11, B12, red edge) the 10 m bands' "
                                  "detail before they become predictors (regressed on the blurred 10 m bands, their "
                                  "fitted detail added).")
    dms_n_estimators: int = Field(10, ge=1, description="DMS: trees per ensemble (bagged).")
    dms_max_depth: int = Field(4, ge=0, description="DMS: tree depth (each leaf holds a ridge model); 0 = one "
                               "linear model on every predictor.")
    dms_min_samples_leaf: int = Field(40, ge=5, description="DMS: smallest leaf (coarse pixels).")
    dms_psf_sigma_m: float = Field(36.0, ge=0, description="DMS: Gaussian sigma (m) of the thermal sensor's "
                                   "footprint, used to aggregate the fine predictors the way the sensor "
                                   "aggregated LST (Landsat TIRS as delivered in ST_B10: ~36 m; 0 = block mean).")
    dms_psf_from_data: bool = Field(True, description="DMS: per tile and date, estimate the thermal product's "
                                    "effective footprint from the scene (the Gaussian through which the optics "
                                    "match the thermal pixels best, at least dms_psf_sigma_m: Collection 2's "
                                    "resampling of TIRS widens it) and use it to aggregate the predictors and in "
                                    "the ranking's land-cover expectation; false: dms_psf_sigma_m as given.")
    dms_guard: bool = Field(True, description="DMS: per tile, use the model only if it beats bilinear on "
                            "held-out coarse cells and is not worse one scale up (else TsHARP if that passes, "
                            "else bilinear).")
    dms_guard_ratio: float = Field(0.99, gt=0, le=1.0, description="DMS guard: on the held-out coarse cells the "
                                   "model's RMSE must be below this fraction of bilinear's.")
    dms_scale_up_tolerance: float = Field(1.1, gt=0, description="DMS guard: one scale up the model's RMSE may be "
                                          "at most this multiple of bilinear's (catches models that blow up from "
                                          "mixed to purer pixels).")
    dms_tsharp_scale_up_tolerance: float = Field(1.0, gt=0, description="DMS guard, its TsHARP fallback (where the "
                                                 "model fails): one scale up its RMSE must stay below this multiple of "
                                                 "bilinear's (1.1 before 2026-12-07).")
    dms_holdout_every: int = Field(3, ge=2, description="DMS guard: one coarse cell in every N x N block is held "
                                   "out of training and predicted from its neighbours.")
    dms_sample_cap: int = Field(20000, ge=100, description="DMS: most training cells per tile, drawn at random "
                                "(bounds cost; 4000 is ~1.3x faster and ~2 % less sharp on held-out 12 km cities).")
    dms_min_samples: int = Field(60, ge=10, description="DMS: fewer usable samples -> bilinear (recorded).")
    dms_residual_iterations: int = Field(2, ge=0, description="DMS: after adding the coarse residual back, add "
                                         "the residual the corrected field still leaves (seen through the footprint) "
                                         "this many times more (iterative back-projection; 0: one correction).")
    dms_local_window_m: float = Field(500.0, ge=0, description="DMS local models: the global model's coarse "
                                      "residual is regressed on the predictors in windows of this side (m, whole "
                                      "thermal pixels; each window's fit reaches half a window further) and applied "
                                      "on the fine grid where that beats the global model on the held-out cells; "
                                      "windows of fewer than 3 thermal pixels (coarser data): none. 0: off.")
    dms_local_alpha: float = Field(0.3, ge=0, description="DMS local models: ridge penalty per cell on standardised "
                                   "predictors.")
    dms_local_gain: float = Field(0.97, gt=0, le=1.0, description="DMS local models: used on a tile only where "
                                  "their held-out RMSE is below this fraction of the global model's.")
    smooth_residual: bool = Field(True, description="TsHARP: add the coarse residual as a bilinear field (then "
                                  "the exact per-block remainder) instead of as blocks.")


class ThermalConfig(_Section):
    """The thermal-raster source (input.thermal or INPUT/thermal/): airborne, drone or commercial LST."""

    psf_m: float | None = Field(None, gt=0, description="Effective resolution of the thermal data (m): the footprint "
                                "of one measurement. None: a sidecar's psf_m, else the raster's pixel size (or, when the image's own "
                                "spectrum shows a footprint of 4 pixels or more, that footprint for mdl_k).")
    fine_m: float = Field(20.0, gt=0, description="Thermal data at or finer than this effective resolution is not "
                          "sharpened: the chain ranks on it directly.")
    rank_window_m: float = Field(1000.0, gt=0, description="Fine thermal data: window of the local median removed "
                                 "before ranking (m). Wide, because the default ranking is relative to the network "
                                 "around each segment: a narrow one lets water or cold open ground beside a street "
                                 "pull the median down and the street up.")
    buffer_m: float = Field(0.0, ge=0, description="Fine thermal data: evidence within this distance of a pipe "
                            "counts for it (m; segments.buffer_m for Landsat). 0: the pipe's own pixel, where a leak "
                            "peaks; a wider buffer reads the warm roofs beside the street as the pipe's. Raise it "
                            "to the network map's positional error where that differs from pipe to pipe (a shift "
                            "shared by a tile's pipes is corrected: thermal.align_m).")
    align_m: float = Field(20.0, ge=0, description="Fine thermal data: per tile and date, the pipe points may move "
                           "in half-pixel steps up to this far (m) onto the network's heat, where that raises its median "
                           "excess by 0.1 K or more (a pipe map a pixel off the raster); 0 switches it off. "
                           "run.json -> tile_summaries -> dates -> pipe_shift_m records the shifts.")
    window_widths: float = Field(0.0, ge=0, description="Fine thermal data, residual: the segment statistic's window "
                                 "along the pipe in seen plume widths (segments.window_widths for Landsat); 0: the "
                                 "segment's largest point, as a sharp image shows a leak's peak there.")
    peak_radius_m: float = Field(0.0, ge=0, description="Fine thermal data: the off-pipe radius of the ranking "
                                 "(segments.peak_radius_m for Landsat); at most buffer_m (the default, 0) switches "
                                 "the off-pipe discount off: a sharp image locates the heat within buffer_m itself.")
    time_of_day: Literal["auto", "night", "day", "any"] = Field(
        "auto", description="ECOSTRESS passes kept by local solar time (UTC from their names + longitude / 15): "
        "night (before 6 h or from 19 h), day (9-16 h), any; auto: night in the heating season (October-April north "
        "of the equator), any otherwise. Other thermal rasters (flights, whose sidecar times may be local) are "
        "always kept.")
    max_lst_err_k: float = Field(2.0, gt=0, description="ECOSTRESS: pixels whose LST_err exceeds this (K) are "
                                 "dropped.")
    max_st_qa_k: float = Field(5.0, gt=0, description="A Landsat ST band screened alone: pixels whose ST_QA exceeds "
                               "this (K) are dropped (real products' clear land: a 2.3-3.6 K median; docs/thermal.md).")


class DetectConfig(_Section):
    """Per-pixel anomaly evidence (docs/detection.md)."""

    method: Literal["residual", "baseline", "local", "ae", "iforest", "fused"] = Field(
        "residual", description="How segments are ranked. residual (default): heat the optics do not explain "
        "(LST minus the sharpener's land-cover expectation seen through the sensor footprint, minus its local "
        "median), peaking on the pipe (segments.peak_radius_m); baseline: the simple reference, max along the "
        "segment of plain LST minus its rank_window_m median; the others rank by a 0-1 pixel risk: "
        "local: excess over a robust local background; ae: autoencoder residual on "
        "thermal/optical patches; iforest: Isolation Forest on block features; fused: calibrated mean of the "
        "three. Default: the best measured (docs/detection.md).")
    input: Literal["plain", "sharpened"] = Field(
        "plain", description="LST the detector looks at: plain (bilinear from the thermal resolution) or the "
        "sharpened 10 m LST. Sharpening adds land-cover texture, not leak information; plain measured best.")
    background_window_m: float = Field(500.0, gt=0, description="Window of the robust local background of the "
                                       "0-1 pixel risk and hotspots (m).")
    rank_window_m: float = Field(310.0, gt=0, description="Window of the local median removed before ranking "
                                 "(residual, baseline) (m).")
    rank_grid: Literal["native", "thermal"] = Field(
        "native", description="LST the residual ranking statistic reads from a sharpened sensor (Landsat): native = "
        "the product's own pixels (ST_B10's 30 m grid) minus the land-cover expectation seen through the sensor "
        "footprint; thermal = bilinear from the downscale.thermal_resolution_m blocks (the statistic before "
        "2026-12-04; a third of a small leak's peak is lost in the blocks). The baseline always reads the thermal "
        "grid; thermal rasters (ECOSTRESS, airborne) are ranked on their own pixels either way.")
    rank_refit: bool = Field(
        True, description="On the product's own pixels (rank_grid: native, downscale.method: dms), also remove what "
        "one linear regression on the footprint-blurred predictors explains of what the sharpener's expectation "
        "leaves (land-cover heat at the product's 30 m scale, fitted on a 20 m grid). false: the sharpener's "
        "expectation only (before 2026-12-05).")
    background_block_m: float = Field(50.0, gt=0, description="Grid on which the background median runs (m).")
    noise_floor_k: float = Field(0.3, gt=0, description="Lowest spread used to normalise anomalies (K).")
    landcover_adjust: bool = Field(False, description="Subtract the land-cover (NDVI regression) expectation "
                                   "before the local background. Off by default: it measured no better on the "
                                   "simulator (docs/measurements.md).")
    score_z0: float = Field(1.0, description="z-score below which the score is 0.")
    score_scale: float = Field(2.0, gt=0, description="z-score e-folding scale of the 0-1 score.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where autoencoder training/inference "
                                                   "runs: auto = CUDA when the worker sees a GPU, else CPU.")
    model_path: Path | None = Field(None, description="Saved autoencoder (`heattrack train`); None = train one "
                                    "per tile on the tile's own clear patches.")
    ae_patch_px: int = Field(5, ge=1, description="Autoencoder patch side (samples).")
    ae_patch_step_m: float = Field(30.0, gt=0, description="Spacing of the patch samples (m): 5 x 30 m "
                                   "spans 130 m, about the thermal footprint plus context.")
    ae_hidden: int = Field(32, ge=2, description="Autoencoder hidden units.")
    ae_latent: int = Field(6, ge=1, description="Autoencoder bottleneck units.")
    ae_epochs: int = Field(25, ge=1, description="Training epochs (refit: half as many).")
    ae_train_patches: int = Field(20000, ge=100, description="Patches sampled per tile for training.")
    ae_trim_fraction: float = Field(0.02, ge=0, lt=0.5, description="Share of worst-reconstructed patches "
                                    "dropped before the robust refit (leak-like outliers).")
    gpu_memory_mb: float = Field(2048.0, gt=0, description="Activation memory one inference batch may use "
                                 "(MB); bounds the batch size on GPU and CPU.")
    iforest_block_m: float = Field(50.0, gt=0, description="Block size of the Isolation Forest features (m).")
    iforest_estimators: int = Field(100, ge=10, description="Isolation Forest trees.")
    fusion_weights: tuple[float, float, float] = Field(
        (1.0, 1.0, 1.0), description="Weights of local, ae, iforest z-scores in the fused score.")


class SegmentsConfig(_Section):
    """Pipe segments and hotspot blobs."""

    buffer_m: float = Field(20.0, ge=0, description="Evidence within this distance of a pipe counts for it (m).")
    offpipe_radius_m: float = Field(0.0, ge=0, description="Off-pipe penalty: a pipe point's evidence is scaled "
                                    "by (max risk within buffer_m) / (max risk within this radius), so a hot spot "
                                    "peaking away from the pipe counts less; <= buffer_m disables it.")
    spacing_m: float = Field(10.0, gt=0, description="Sample-point spacing along pipes (m).")
    max_length_m: float = Field(0.0, ge=0, description="Cut pipe features longer than this into equal parts of at "
                                "most this length before ranking (m; ids <id>#1, <id>#2, ...); 0: the network's own "
                                "segments. A segment ranks by its best stretch along the pipe, so a long one ranks "
                                "high by chance more often and gives a crew kilometres to search; a run warns about "
                                "features over 1 km while this is 0.")
    top_k: int = Field(3, ge=1, description="local/ae/iforest/fused: segment risk = mean of its top_k sample "
                       "points.")
    mdl_alpha: float = Field(0.01, gt=0, lt=0.5, description="Detectability (mdl_k) and flags: the false-alarm "
                             "share. A segment is flagged when its statistic reaches the (1 - mdl_alpha) quantile "
                             "of the leak-free null, an upper tail fitted to the network's bulk below its top tenth "
                             "(kernels/null_tail.py).")
    mdl_plume_fwhm_m: float = Field(20.0, gt=0, description="Detectability: width (FWHM, m) of the leak plume "
                                    "whose smallest flagged peak is mdl_k.")
    mdl_clutter_cell_m: float = Field(250.0, gt=0, description="Detectability: the clutter a leak would sit on is "
                                      "the median of the network's sample points in the 3 x 3 cells of this size "
                                      "around each point (not the segment's own median, which its leak raises).")
    mdl_injection_tiles: int = Field(3, ge=0, description="Detectability: at most this many tiles (one per 10 tiles "
                                     "of the run; those with the most pipe) on which plumes are injected into the "
                                     "Landsat LST and the chain run again, to measure the share of a plume's peak it "
                                     "keeps (costs one more sharpening of each; 0: the footprint model only).")
    window_widths: float = Field(1.5, ge=0, description="residual: a segment's statistic is the largest "
                                 "mean of its points over a window along the pipe of this many widths of a "
                                 "mdl_plume_fwhm_m plume as the sensor sees it (FWHM / sqrt(attenuation): Landsat "
                                 "~140 m on its 30 m pixels, ~230 m on the 100 m blocks, a 70 m ECOSTRESS pass "
                                 "~120 m, a 10 m raster ~30 m), the whole segment when "
                                 "shorter; 0: its largest single point (before 2026-12-03; baseline always ranks by "
                                 "its largest point).")
    peak_radius_m: float = Field(120.0, ge=0, description="residual: a pipe point's excess is scaled by "
                                 "(max within buffer_m) / (max within this radius), so heat peaking off the pipe "
                                 "counts less; <= buffer_m disables it.")
    hotspot_threshold: float = Field(0.6, gt=0, le=1, description="Pixel score that makes a hotspot pixel.")
    hotspot_min_area_m2: float = Field(300.0, ge=0, description="Smaller hot blobs are not reported (m^2).")


class ReportConfig(_Section):
    """The report's interactive map, the field list and the raster exports (not part of the processing hash)."""

    basemap_url: str = Field("https://tile.openstreetmap.org/{z}/{x}/{y}.png", description="XYZ basemap tile URL "
                             "of the report's map ('' for none; the map works offline without it).")
    basemap_attribution: str = Field("&copy; OpenStreetMap contributors", description="Attribution shown for the "
                                     "basemap (its licence usually requires one).")
    top_segments: int = Field(2000, ge=1, description="Segments drawn at every zoom, with full popups (the rest of "
                              "the network loads per map tile when zoomed in).")
    field_list: int = Field(500, ge=1, description="Rows of top_segments.csv / .gpx (the crews' list).")
    thumbnails: int = Field(50, ge=0, description="Top segments whose popup shows an LST / anomaly thumbnail.")
    max_zoom: int | None = Field(None, ge=1, le=20, description="Deepest web-map zoom of the pre-rendered risk "
                                 "tiles (None: the zoom of the grid resolution).")
    max_tiles: int = Field(20000, ge=1, description="Most risk-map tiles to render; the deepest zooms are dropped "
                           "until the count fits (national runs).")
    single_cog_max_mpx: float = Field(100.0, ge=0, description="Write lst_10m.tif / risk_10m.tif as single COGs "
                                      "when the AOI has at most this many million 10 m pixels (one process streams "
                                      "them); every run writes the per-tile COGs and their VRT mosaics "
                                      "lst_10m.vrt / risk_10m.vrt, which GDAL and QGIS open as one layer.")
    cog_compression: Literal["deflate", "zstd"] = Field("deflate", description="Codec of every COG the run writes "
                                                        "(per-tile, single and overview COGs): deflate (read "
                                                        "everywhere), or zstd, read by GDAL >= 2.3, QGIS and rasterio "
                                                        "but not by every older GIS, and 30-45 % faster to write "
                                                        "(a national run's tile tasks: ~3 % of their time).")


class Config(_Section):
    """Everything a run needs; see docs/configuration.md for each field."""

    grid: GridConfig = GridConfig()
    input: InputConfig = InputConfig()
    stac: StacConfig = StacConfig()
    gee: GeeConfig = GeeConfig()
    ecostress: EcostressConfig = EcostressConfig()
    downscale: DownscaleConfig = DownscaleConfig()
    thermal: ThermalConfig = ThermalConfig()
    detect: DetectConfig = DetectConfig()
    segments: SegmentsConfig = SegmentsConfig()
    changes: ChangesConfig = ChangesConfig()
    compute: ComputeConfig = ComputeConfig()
    slurm: SlurmConfig = SlurmConfig()
    kubernetes: KubernetesConfig = KubernetesConfig()
    simulate: SimulateConfig = SimulateConfig()
    report: ReportConfig = ReportConfig()
    seed: int = Field(0, description="Seed for every random choice (sampling, model fitting).")

    @model_validator(mode="after")
    def _check_multiples(self) -> "Config":
        res = self.grid.resolution_m
        for name, value in (("downscale.thermal_resolution_m", self.downscale.thermal_resolution_m),
                            ("grid.tile_km * 1000", self.grid.tile_km * 1000.0),
                            ("detect.background_block_m", self.detect.background_block_m),
                            ("detect.iforest_block_m", self.detect.iforest_block_m),
                            ("detect.ae_patch_step_m", self.detect.ae_patch_step_m)):
            if abs(value / res - round(value / res)) > 1e-6:
                raise ValueError(f"{name} = {value} is not a multiple of grid.resolution_m = {res}")
        if self.tile_px % self.thermal_factor:
            raise ValueError(f"grid.tile_km ({self.grid.tile_km}) must be a multiple of "
                             f"downscale.thermal_resolution_m ({self.downscale.thermal_resolution_m} m)")
        if self.thermal_factor % self.background_block_px:
            raise ValueError("detect.background_block_m must divide downscale.thermal_resolution_m")
        return self

    # -- derived sizes in pixels of the 10 m grid -------------------------------------------------
    @property
    def thermal_factor(self) -> int:
        return int(round(self.downscale.thermal_resolution_m / self.grid.resolution_m))

    @property
    def tile_px(self) -> int:
        return int(round(self.grid.tile_km * 1000.0 / self.grid.resolution_m))

    @property
    def halo_px(self) -> int:
        f = self.thermal_factor
        need = max(self.grid.halo_m, self.detect.background_window_m / 2
                   + max(self.segments.buffer_m, self.segments.offpipe_radius_m))
        return int(-(-round(need / self.grid.resolution_m) // f) * f)

    @property
    def background_block_px(self) -> int:
        return int(round(self.detect.background_block_m / self.grid.resolution_m))

    def processing_hash(self) -> str:
        """Hash of everything that changes the numbers (compute and simulate settings excluded)."""
        skip = {"compute", "simulate", "slurm", "kubernetes", "changes", "report"}
        skip |= {name for name in ("stac", "gee", "ecostress") if self.input.source != name}
        if self.input.source == "ecostress" and self.ecostress.api == "gee":
            skip.discard("gee")  # its account and limits read the passes
        d = self.model_dump(mode="json", exclude=skip)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _set_dotted(d: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    cur = d
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
        if not isinstance(cur, dict):
            raise ConfigError(f"config key {key!r}: {p!r} is not a section")
    cur[parts[-1]] = value


def parse_set_option(item: str) -> tuple[str, Any]:
    """``'detect.noise_floor_k=0.4'`` -> ``('detect.noise_floor_k', 0.4)`` (value parsed as YAML)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    key, raw = item.split("=", 1)
    return key.strip(), yaml.safe_load(raw)


def _env_overrides() -> dict[str, Any]:
    """``HEATTRACK_COMPUTE__SCHEDULER=tcp://...`` -> ``{'compute.scheduler': 'tcp://...'}``."""
    out = {}
    for k, v in os.environ.items():
        if k.startswith("HEATTRACK_") and "__" in k:
            out[k[len("HEATTRACK_"):].lower().replace("__", ".")] = yaml.safe_load(v)
    return out


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Build the configuration from a YAML file and dotted overrides (``None`` values are ignored)."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections")
        data = loaded
    merged = {**_env_overrides(), **{k: v for k, v in (overrides or {}).items() if v is not None}}
    for key, value in merged.items():
        _set_dotted(data, key, value)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        src = f" (from {path})" if path else ""
        msg = first["msg"].removeprefix("Value error, ")  # pydantic's prefix of a validator's own message
        raise ConfigError(f"invalid configuration{src}: {where}: {msg}") from None
