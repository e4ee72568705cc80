"""The ``grid`` section of the configuration: the processing grid, its CRS checked when the configuration loads."""

from __future__ import annotations

from pydantic import Field, field_validator

from heattrack.config_compute import Section as _Section


class GridConfig(_Section):
    """The processing grid: a regular tiling of a projected CRS anchored at its origin."""

    crs: str | None = Field(None, description="Projected CRS, e.g. EPSG:5179. None: the AOI's national CRS "
                            "(EPSG:5179 for South Korea) or the input data's UTM zone.")
    resolution_m: float = Field(10.0, gt=0, description="Output pixel size (m).")
    tile_km: float = Field(10.0, gt=0, description="Tile side (km); one tile = one task = one zarr chunk.")
    halo_m: float = Field(500.0, ge=0, description="Extra border read around each tile for neighbourhood "
                          "operations (m); rounded up to whole thermal pixels.")
    aoi_buffer_m: float = Field(2000.0, ge=0, description="Buffer added to polygon AOIs (coarse outlines).")
    network_buffer_m: float = Field(2000.0, ge=0, description="Without an AOI (`input.aoi`), the run covers the "
                                    "input data within this distance of the pipe network, not a whole Landsat "
                                    "scene or Sentinel-2 granule around a city; 0: the whole input data.")
    network_only: bool = Field(False, description="With an AOI too (a country): only the AOI's tiles within "
                               "grid.network_buffer_m of the pipe network, for run, screen and download (its "
                               "cities, not the whole country; needs the network). false: the whole AOI, the "
                               "national risk mosaic.")

    @field_validator("crs")
    @classmethod
    def _projected_in_metres(cls, value: str | None) -> str | None:
        """A CRS pyproj knows, projected, with metre axes (the grid's sizes are in metres): checked when the
        configuration loads, before a cluster starts or a file is read."""
        if value is None:
            return value
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        try:
            crs = CRS.from_user_input(value)
        except CRSError:
            raise ValueError(f"{value!r} is not a CRS pyproj knows (e.g. EPSG:5179, EPSG:32652)") from None
        if not crs.is_projected:
            raise ValueError(f"{value!r} is not a projected CRS (the grid is laid out in metres: a national grid "
                             "or a UTM zone, e.g. EPSG:32652)")
        units = {a.unit_name for a in crs.axis_info}
        if not units <= {"metre", "meter"}:
            raise ValueError(f"{value!r} has axes in {', '.join(sorted(units))}, not metres")
        return value
