"""``heattrack download``: a season's best Landsat/Sentinel-2 pairs per tile (or, for a tile without a Sentinel-2
partner, its clearest Landsat day alone: ``stac.landsat_alone``), from a STAC API into the ``local`` layout, so that
``heattrack run --input DIR`` (or ``screen``) then works offline.

Layout::

    OUT/download.json                       what was fetched: season, catalogue, grid, pairs per tile, failures
    OUT/<ix>_<iy>/<landsat date>/landsat/<Landsat product id>_<BAND>.TIF      clipped to the padded tile
    OUT/<ix>_<iy>/<landsat date>/sentinel2/<asset file names>, <item id>.json
                                            (a tile that straddles several items of its day gets every one of
                                            them: Landsat files carry their product id, Sentinel-2 files their
                                            item id where the asset names do not name the granule)
    OUT/<ix>_<iy>/<landsat date>/{landsat,sentinel2}/MANIFEST.json          size + SHA-256 of every file
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from heattrack.config import Config
from heattrack.errors import ConfigError
from heattrack.io.download import fetch_pair_files, provider_file_name, s2_file_name
from heattrack.io.records import DownloadedPair, DownloadGrid, DownloadIndex
from heattrack.io.stac import stac_hrefs, url_signer
from heattrack.orchestration.plan_catalogues import select_stac_tiles
from heattrack.orchestration.screen import season_interval, with_season_search
from heattrack.orchestration.tiling import grid_crs_label

DOWNLOAD_INDEX = "download.json"


def download_season(cfg: Config, out: Path, season: str | None = None, threads: int = 4,
                    progress: Callable[[int, int], Callable[[object], None]] | None = None) -> DownloadIndex:
    """Fetch every tile's chosen pairs into ``out`` (resumable); returns the index written to download.json."""
    if cfg.input.source != "stac":
        raise ConfigError("heattrack download fetches from a STAC API (--source stac); Earth Engine pixels are "
                          "read per tile by run/screen --source gee, with no download step")
    if season:  # the season's interval and dates per tile, as screen --season searches them
        cfg = with_season_search(cfg, season_interval(season))
    sel = select_stac_tiles(cfg)  # a tile without a Sentinel-2 partner: its Landsat day alone (stac.landsat_alone)
    st = sel.settings
    gdal_env = {"GDAL_HTTP_MAX_RETRY": str(st.http_retries), "GDAL_HTTP_RETRY_DELAY": "0.5",
                "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
    if st.aws_request_payer:
        gdal_env["AWS_REQUEST_PAYER"] = "requester"
    if st.aws_no_sign_request:
        gdal_env["AWS_NO_SIGN_REQUEST"] = "YES"
    sign = url_signer(st.sign)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    halo = cfg.grid.halo_m
    units = [(idx, sc) for idx in sel.grid.tiles for sc in sel.chosen[idx]]
    on_unit = progress(len(units), len(units)) if progress else None

    def fetch(idx, sc) -> dict:
        gb = sel.grid.tile_geobox(idx)
        x0, y0, x1, y1 = gb.extent.boundingbox
        bounds = (x0 - halo, y0 - halo, x1 + halo, y1 + halo)
        folder = out / f"{idx[0]}_{idx[1]}" / str(sc.landsat_date or sc.landsat_product)
        crs = gb.crs.to_wkt()
        n = Counter(fetched=0, skipped=0)
        # every item of the day touching the tile: the local reader mosaics them as run --source stac does
        for item in sc.day_items("landsat"):
            hrefs = stac_hrefs(item, st.landsat_assets)
            n.update(fetch_pair_files({provider_file_name(h, item["id"], b): h for b, h in hrefs.items()},
                                      folder / "landsat", bounds, crs, gdal_env, sign))
        s2_items = sc.day_items("sentinel2")
        for item in s2_items:
            names = {s2_file_name(h, item["id"], len(s2_items) > 1): h for h in stac_hrefs(item, st.s2_assets).values()}
            n.update(fetch_pair_files(names, folder / "sentinel2", bounds, crs, gdal_env, sign,
                                      extra_json={f"{item['id']}.json": item}))
        return {**n, "folder": str(folder.relative_to(out))}

    counts = {"fetched": 0, "skipped": 0}
    failed: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futs = {pool.submit(fetch, idx, sc): (idx, sc) for idx, sc in units}
        for f in as_completed(futs):
            idx, sc = futs[f]
            try:
                r = f.result()
                counts["fetched"] += r["fetched"]
                counts["skipped"] += r["skipped"]
            except Exception as exc:  # one failed pair must not lose the others
                failed[f"{idx[0]}_{idx[1]}/{sc.landsat_date}"] = str(exc)
            if on_unit:
                on_unit(None)
    grid = sel.grid
    index = DownloadIndex(
        season=season, interval=st.datetime,
        stac={"url": st.url, "landsat": st.landsat_collection, "sentinel2": st.s2_collection},
        grid=DownloadGrid(crs=grid_crs_label(grid.crs), tile_px=grid.tile_px, resolution_m=grid.resolution_m,
                          halo_m=halo),
        tiles={f"{i}_{j}": [_downloaded(f"{i}_{j}/{sc.landsat_date or sc.landsat_product}", sc)
                            for sc in sel.chosen[(i, j)]] for i, j in grid.tiles},
        tiles_without_pair=[f"{i}_{j}" for i, j in sel.empty],
        files=counts, failed=failed, warnings=sel.warnings)
    (out / DOWNLOAD_INDEX).write_text(index.to_json(indent=1))
    return index


def _downloaded(folder: str, sc) -> DownloadedPair:
    """The index entry of one fetched date (a :class:`heattrack.io.stac.StacScene`): a pair, or a Landsat day alone."""
    alone = not sc.s2_item
    return DownloadedPair(folder=folder, landsat=sc.landsat_product, sentinel2=None if alone else sc.s2_item["id"],
                          landsat_more=tuple(it["id"] for it in sc.landsat_items[1:]),
                          sentinel2_more=tuple(it["id"] for it in sc.s2_items[1:]),
                          landsat_date=str(sc.landsat_date), sentinel2_date=None if alone else str(sc.s2_date),
                          clear_fraction=round(sc.clear_fraction, 4),
                          s2_clear_fraction=None if alone else round(sc.s2_clear_fraction, 4))
