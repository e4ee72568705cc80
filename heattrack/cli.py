"""``heattrack`` command line (typer). Commands are thin: parse options, build the Config, call one function.

Every domain error becomes one line on stderr and exit code 1; ``-v`` adds tracebacks for unexpected errors.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from heattrack import __version__
from heattrack.cli_support import (
    ConfigOpt,
    SchedulerOpt,
    SetOpt,
    VerboseOpt,
    build_config,
    cli_errors,
    console,
    one_folder,
    print_plan,
    print_season_plan,
    print_summary,
    progress_bar,
    setup_logging,
    simulate_from_config,
    synthetic_input,
)
from heattrack.config import parse_set_option
from heattrack.errors import HeattrackError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Screen district-heating networks for leaks from Landsat + Sentinel-2 imagery.")
@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the synthetic scene.")],
    size_km: Annotated[Optional[float], typer.Option(help="Side of the square region (km) [12].")] = None,
    leaks: Annotated[Optional[int], typer.Option(help="Number of leaking segments [18].")] = None,
    distractors: Annotated[Optional[int], typer.Option(help="Hot spots away from pipes [= leaks].")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (same seed, same scene) [3].")] = None,
    cloud_fraction: Annotated[Optional[float], typer.Option(help="Landsat cloud cover 0-1 [0.06].")] = None,
    dates: Annotated[Optional[int], typer.Option(help="Date pairs, 16 days apart (> 1: one sub-folder per "
                                                 "date) [1].")] = None,
    season: Annotated[Optional[int], typer.Option(help="Later winter of the same city (some leaks repaired, "
                                                  "some new) [0].")] = None,
    sensor: Annotated[Optional[str], typer.Option(help="landsat (Landsat + Sentinel-2 products) | airborne (only "
                                                  "thermal/: the true 10 m LST + 0.1 K noise) | ecostress (only "
                                                  "thermal/: a 70 m ECOSTRESS night pass) [landsat].")] = None,
    family_member: Annotated[Optional[int], typer.Option("--family-member", help="A member of the randomised "
                                                         "simulator family (random physics, leaks 1-15 K, clutter); "
                                                         "--size-km, --sensor and --season still apply.")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Write a synthetic region in the `local` layout (landsat/, sentinel2/, pipes.geojson; or thermal/) plus
    truth/."""
    setup_logging(verbose)
    with cli_errors(verbose):
        cfg = build_config(config, {"simulate.size_km": size_km, "simulate.leaks": leaks, "simulate.seed": seed,
                               "simulate.distractors": distractors, "simulate.cloud_fraction": cloud_fraction,
                               "simulate.dates": dates, "simulate.season": season, "simulate.sensor": sensor,
                               "simulate.family_member": family_member}, set_)
        if out.exists() and any(out.iterdir()):
            raise HeattrackError(f"output folder {out} is not empty")
        summary = simulate_from_config(out, cfg)
        console.print(f"scene written to {out}/: {summary['n_segments']} pipe segments "
                      f"({summary['pipe_km']:.0f} km), {len(summary['leak_segment_ids'])} leaks, "
                      f"{summary['n_distractors']} distractors, CRS {summary['crs']}")


@app.command()
def run(
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="Input folder (local layout).")] = None,
    pipes: Annotated[Optional[Path], typer.Option("--pipes", "-p", help="Pipe network file.")] = None,
    out: Annotated[str, typer.Option("--out", "-o", help="Output folder, or s3://bucket/prefix (credentials "
                                     "and endpoint from the AWS_* environment).")] = "out",
    thermal: Annotated[Optional[Path], typer.Option("--thermal", help="An LST raster (airborne, drone, commercial; "
                                                    "GeoTIFF in K, or °C when tagged) to screen instead of "
                                                    "Landsat + Sentinel-2, or a Landsat ST band alone (ST_B10; "
                                                    "Landsat 4-7: ST_B6; no optics); an input folder's thermal/ "
                                                    "works too.")] = None,
    source: Annotated[Optional[str], typer.Option(help="Input source: local | stac | gee | ecostress | synthetic.")] = None,
    stac_url: Annotated[Optional[str], typer.Option("--stac-url", help="STAC API root (source stac).")] = None,
    datetime_: Annotated[Optional[str], typer.Option("--datetime", help="Search interval of a catalogue source "
                                                     "(stac, gee, ecostress), e.g. 2024-12-01/2025-02-28.")] = None,
    aoi: Annotated[Optional[str], typer.Option(help="Country (south-korea), polygon file, or lon/lat bbox "
                                               "'minx,miny,maxx,maxy'; default: the input data's area, fill "
                                               "left out, within grid.network_buffer_m (2 km) of the pipes.")] = None,
    tile_km: Annotated[Optional[float], typer.Option(help="Tile side (km).")] = None,
    crs: Annotated[Optional[str], typer.Option(help="Grid CRS (default: national CRS or the data's UTM).")] = None,
    method: Annotated[Optional[str], typer.Option(help="Downscaling method: dms | tsharp | bilinear.")] = None,
    scheduler: SchedulerOpt = None,
    n_workers: Annotated[Optional[int], typer.Option(help="LocalCluster workers.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue a run in --out, skipping completed tiles.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace a previous run in --out.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (tiles, dates per tile, bytes to "
                                          "read, estimated time on the configured cluster) and stop: nothing "
                                          "is read or written.")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run the whole chain: tile -> read -> sharpen -> detect -> mosaic, segments, hotspots, report."""
    from heattrack.orchestration.run import run as run_chain

    setup_logging(verbose)
    with cli_errors(verbose):
        cfg = build_config(config, {"input.input": input, "input.pipes": pipes, "input.source": source, "input.aoi": aoi,
                               "input.thermal": thermal, "stac.url": stac_url, "stac.datetime": datetime_,
                               "grid.tile_km": tile_km, "grid.crs": crs, "downscale.method": method,
                               "compute.scheduler": scheduler, "compute.n_workers": n_workers}, set_)
        if datetime_ and cfg.input.source in ("gee", "ecostress"):  # --datetime is the chosen catalogue's interval
            sec = getattr(cfg, cfg.input.source)
            cfg = cfg.model_copy(update={cfg.input.source: sec.model_copy(update={"datetime": datetime_})})
        allow: tuple[str, ...] = ()
        if dry_run:
            from heattrack.orchestration.dryrun import estimate
            from heattrack.orchestration.plan import plan_run

            if cfg.input.source == "synthetic":
                raise HeattrackError("--dry-run plans existing inputs: simulate the scene first (heattrack simulate)")
            print_plan(estimate(plan_run(cfg)))
            return
        if cfg.input.source == "synthetic":
            cfg, allow = synthetic_input(cfg, out)
        result = run_chain(cfg, out, resume=resume, overwrite=overwrite, progress=progress_bar("tiles"),
                           allow_existing=allow)
        print_summary(result, cfg.segments.mdl_plume_fwhm_m)


@app.command()
def screen(
    season: Annotated[str, typer.Option("--season", help="Winter season YYYY-YY (December to February), e.g. "
                                        "2025-26, or 'current' (scheduled runs).")],
    out: Annotated[str, typer.Option("--out", "-o", help="Output folder of this season, e.g. runs/2025-26 or "
                                     "runs/{season}.")],
    previous: Annotated[Optional[str], typer.Option("--previous", help="Last season's run folder (e.g. "
                                                    "runs/2024-25), or 'auto': the previous season's folder "
                                                    "beside --out, if it holds a finished run.")] = None,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="Input folder (local source).")] = None,
    pipes: Annotated[Optional[Path], typer.Option("--pipes", "-p", help="Pipe network file.")] = None,
    source: Annotated[Optional[str], typer.Option(help="Input source: local | stac.")] = None,
    stac_url: Annotated[Optional[str], typer.Option("--stac-url", help="STAC API root (source stac).")] = None,
    aoi: Annotated[Optional[str], typer.Option(help="Country, polygon file or lon/lat bbox.")] = None,
    tile_km: Annotated[Optional[float], typer.Option(help="Tile side (km).")] = None,
    scheduler: SchedulerOpt = None,
    n_workers: Annotated[Optional[int], typer.Option(help="LocalCluster workers.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue this season's run in --out.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace this season's run in --out.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the season's plan (tiles, dates per tile, bytes "
                                          "to read, estimated time) and stop.")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Screen one winter season (multi-date) and compare it with the previous season: changes.geojson
    (new / persistent / resolved segments and hotspots) and a report section. Source stac: the season sets the
    search interval."""
    from heattrack.orchestration.screen import resolve_season_args
    from heattrack.orchestration.screen import screen as screen_season

    setup_logging(verbose)
    with cli_errors(verbose):
        cfg = build_config(config, {"input.input": input, "input.pipes": pipes, "input.source": source, "input.aoi": aoi,
                               "stac.url": stac_url, "grid.tile_km": tile_km, "compute.scheduler": scheduler,
                               "compute.n_workers": n_workers}, set_)
        season, out, previous = resolve_season_args(season, out, previous)
        if dry_run:  # the season's search as screen makes it (interval, dates per tile), nothing read or written
            return print_season_plan(cfg, season)
        if previous is None:
            console.print(f"season {season}: no previous season to compare with")
        result, counts = screen_season(cfg, out, season, previous, resume=resume, overwrite=overwrite,
                                       progress=progress_bar("tiles"))
        print_summary(result, cfg.segments.mdl_plume_fwhm_m)
        if previous is not None:
            seg = {k.split("_", 1)[1]: v for k, v in counts.items() if k.startswith("segment_") and v}
            hot = {k.split("_", 1)[1]: v for k, v in counts.items() if k.startswith("hotspot_") and v}
            console.print(f"changes since {previous}: segments {seg or 'none'}, hotspots {hot or 'none'} -> "
                          f"{out}/changes.geojson")
            if "estimated_false_new_per_100km" in counts:
                console.print(f"about {counts['estimated_false_new']} of the 'new' segments may be false "
                              f"({counts['estimated_false_new_per_100km']:.2f} per 100 km of pipe): the segments that "
                              "cooled as much without a flag in either season (the same rule with the seasons "
                              "swapped; an estimate, see docs/measurements.md 'Change classes')")
                if "new_warming_k" in counts:
                    console.print(f"new where a segment's points warmed by more than {counts['new_warming_k']:.2f} K "
                                  f"(network z {counts.get('new_z_used', cfg.changes.new_z):.2f}, smoothed over "
                                  f"{cfg.changes.warming_sigma_m:g} m; docs/measurements.md 'Change classes')")
            elif "bound_false_new_per_100km" in counts:
                console.print(f"compared by the previous rule ({counts.get('note')}): Benjamini-Hochberg at "
                              f"q={cfg.changes.fdr_q:g} on the segments' z, {counts['bound_false_new_per_100km']:.2f} "
                              "false 'new' per 100 km if the statistic's Gaussian network null held; clutter makes the "
                              "real rate higher (docs/measurements.md 'Change classes')")


@app.command()
def download(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the local layout (one sub-folder per tile "
                                      "and date pair).")],
    aoi: Annotated[Optional[str], typer.Option(help="Country, polygon file or lon/lat bbox.")] = None,
    season: Annotated[Optional[str], typer.Option("--season", help="Winter season YYYY-YY (sets the search "
                                                  "interval Dec-Feb).")] = None,
    source: Annotated[Optional[str], typer.Option(help="Where from: stac.")] = "stac",
    stac_url: Annotated[Optional[str], typer.Option("--stac-url", help="STAC API root.")] = None,
    datetime_: Annotated[Optional[str], typer.Option("--datetime", help="Search interval (instead of "
                                                     "--season).")] = None,
    tile_km: Annotated[Optional[float], typer.Option(help="Tile side (km); the run must use the same.")] = None,
    pipes: Annotated[Optional[Path], typer.Option(help="Pipe network: fetch only the AOI's tiles within "
                                                 "grid.network_buffer_m of it (grid.network_only).")] = None,
    threads: Annotated[int, typer.Option(help="Concurrent downloads.")] = 4,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Fetch the best clear Landsat/Sentinel-2 pairs of every tile into the `local` layout (tile clips,
    resumable: complete files are verified by size and SHA-256 and skipped). `run --input OUT` then works
    offline."""
    from heattrack.orchestration.download import download_season

    setup_logging(verbose)
    with cli_errors(verbose):
        cfg = build_config(config, {"input.source": source, "input.aoi": aoi, "stac.url": stac_url,
                               "stac.datetime": datetime_, "grid.tile_km": tile_km, "input.pipes": pipes,
                               "grid.network_only": True if pipes is not None else None}, set_)
        summary = download_season(cfg, out, season, threads=threads, progress=progress_bar("download", unit="pairs"))
        n_pairs = sum(len(v) for v in summary.tiles.values())
        console.print(f"{len(summary.tiles)} tiles, {n_pairs} date pairs -> {out}/ ({summary.files['fetched']} "
                      f"files fetched, {summary.files['skipped']} already complete)")
        if summary.tiles_without_pair:
            console.print(f"[yellow]{len(summary.tiles_without_pair)} tiles without a usable pair:[/] "
                          + ", ".join(summary.tiles_without_pair[:20]), highlight=False)
        if summary.failed:
            for k, v in list(summary.failed.items())[:10]:
                console.print(f"[red]failed[/] {k}: {v}", highlight=False)
            raise HeattrackError(f"{len(summary.failed)} date pairs could not be fetched; run the same command "
                                 "again to retry them (complete files are kept)")


@app.command()
def train(
    run_dirs: Annotated[list[Path], typer.Option("--run", help="Finished (or resumable) run folder to learn "
                                                 "from; repeatable.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file to write (e.g. models/ae.pt).")],
    tiles_per_run: Annotated[int, typer.Option(help="Tiles sampled per run (spread over its grid).", min=1)] = 4,
    set_: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Train the patch autoencoder on clear patches of one or more runs; use it with
    `heattrack run --set detect.model_path=MODEL --set detect.method=fused`."""
    from heattrack.orchestration.train import train_model

    setup_logging(verbose)
    with cli_errors(verbose):
        overrides = dict(parse_set_option(s) for s in (set_ or []))
        with console.status("reading sampled tiles and training"):
            summary = train_model(run_dirs, out, tiles_per_run=tiles_per_run, overrides=overrides)
        console.print(f"model written to {out}: {summary['n_patches']} patches from {len(summary['tiles'])} tiles "
                      f"of {len(summary['runs'])} run(s), final loss {summary['final_loss']:.4f}")


@app.command()
def report(
    out: Annotated[str, typer.Argument(help="Output folder of a finished run.")],
    truth: Annotated[Optional[Path], typer.Option("--truth", help="Simulated scene folder: add the truth section "
                                                  "(leak vs other score distributions, detection power).")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """(Re)build out/report/index.html from a finished run."""
    from heattrack.orchestration.finalize import rebuild_report

    setup_logging(verbose)
    with cli_errors(verbose):
        page = rebuild_report(out, truth)
        console.print(f"report written: {page}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (the scene goes to OUT/scene).")] = Path("demo"),
    size_km: Annotated[Optional[float], typer.Option(help="Side of the synthetic region (km) [12].")] = None,
    leaks: Annotated[Optional[int], typer.Option(help="Number of leaks [18].")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed of the scene [3].")] = None,
    scheduler: SchedulerOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Simulate the embedded default region, run the chain on a LocalCluster, evaluate against truth, report."""
    from heattrack.evaluate import evaluate_run
    from heattrack.orchestration.finalize import rebuild_report
    from heattrack.orchestration.output_folder import STATE_DIR
    from heattrack.orchestration.run import run as run_chain

    setup_logging(verbose)
    with cli_errors(verbose):
        scene = out / "scene"
        cfg = build_config(config, {"simulate.size_km": size_km, "simulate.leaks": leaks, "simulate.seed": seed,
                               "input.input": scene, "input.pipes": scene / "pipes.geojson",
                               "compute.scheduler": scheduler}, set_)
        if out.exists() and any(out.iterdir()):
            if not (out / STATE_DIR).exists() and not (scene / "truth").exists():
                raise HeattrackError(f"output folder {out} is not empty and holds no heattrack demo")
            shutil.rmtree(out)
        simulate_from_config(scene, cfg)
        result = run_chain(cfg, out, progress=progress_bar("tiles"), allow_existing=("scene",))
        print_summary(result, cfg.segments.mdl_plume_fwhm_m)
        ev = evaluate_run(scene, out)
        (out / "evaluation.json").write_text(json.dumps(ev, indent=2))
        rebuild_report(out, truth_scene=scene)
        d, m = ev["downscaling"], ev["detection"]
        lo, hi = m["roc_auc_ci95"]
        console.print(f"against the simulator's truth: 10 m LST RMSE {d['rmse_sharpened_k']:.3f} K sharpened vs "
                      f"{d['rmse_bilinear_k']:.3f} K bilinear; segment ROC-AUC {m['roc_auc']:.3f} (95 % "
                      f"{lo:.2f}-{hi:.2f}), PR-AUC {m['pr_auc']:.3f} ({m['n_leaks_scored']} leaks among "
                      f"{m['n_scored']} scored segments)")


@app.command()
def evaluate(
    scene: Annotated[Path, typer.Option("--scene", help="Simulated scene folder (with truth/).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder of a finished run on that scene.")],
    against: Annotated[Optional[Path], typer.Option("--against", help="A second finished run on the same scene: "
                       "also its ranking's ROC-AUC subtracted, paired over the segments both scored (DeLong 95 % "
                       "interval, p-value): does --out rank the leaks better?")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Score a run against the simulator's truth: LST RMSE (sharpened, bilinear) and segment ROC/PR."""
    from heattrack.evaluate import compare_rankings, evaluate_run

    setup_logging(verbose)
    with cli_errors(verbose):
        ev = evaluate_run(scene, out)
        if against is not None:
            ev["detection"]["against"] = {"run": str(against), **compare_rankings(scene, out, against)}
        print(json.dumps(ev, indent=2))


@app.command("validate-sharpening")
def validate_sharpening(
    folder: Annotated[Optional[Path], typer.Argument(help="The scene folder (or as --landsat).")] = None,
    landsat: Annotated[Optional[Path], typer.Option(
        "--landsat", help="Folder with one Landsat C2L2 scene (ST_B10, SR_B4, SR_B5, optional SR_B2/B3/B6/B7 and "
        "QA_PIXEL: each of those SR bands present is a predictor, as the 10 m chain uses Sentinel-2's B02-B04, B08, "
        "B11, B12; SR_B1, coastal aerosol like Sentinel-2's 60 m B01, is not), or a local-layout folder.")] = None,
    factor: Annotated[int, typer.Option(help="Aggregation factor (3: 30 m -> 90 m).", min=2)] = 3,
    eval_factor: Annotated[int, typer.Option(help="Compare after averaging by this factor (ST_B10 has ~100 m "
                                             "information: --factor 9 --eval-factor 3 compares at 90 m).",
                                             min=1)] = 1,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON.")] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Aggregate-sharpen-compare on a real scene: aggregate ST_B10, sharpen back, RMSE per method."""
    from heattrack.evaluate import aggregate_sharpen_compare, land_and_water, read_landsat_for_asc, region_line

    setup_logging(verbose)
    with cli_errors(verbose):
        lst, bands, product = read_landsat_for_asc(one_folder(folder, landsat, "--landsat"))
        regions = land_and_water(bands)
        with console.status("sharpening"):
            res = aggregate_sharpen_compare(lst, bands, factor=factor, eval_factor=eval_factor, regions=regions)
        table = Table(title=f"{product}: {res['n_px']} px, bands {' '.join(res['bands'])}, aggregated x{factor}, "
                            "sharpened back, compared "
                            f"{'at full resolution' if eval_factor == 1 else f'after averaging x{eval_factor}'}")
        for col in ("method (-> fallback used)", "RMSE (K)", "bias (K)", "RMSE seen through the footprint (K)"):
            table.add_column(col, justify="right")
        for m in ("bilinear", "tsharp", "dms"):
            used = res[m]["info"].get("method", m)
            table.add_row(m if used == m else f"{m} (-> {used})", f"{res[m]['rmse_k']:.3f}", f"{res[m]['bias_k']:+.4f}",
                          f"{res[m]['rmse_seen_k']:.3f}")
        Console().print(table)
        Console().print("RMSE: each field as it is against ST_B10's pixels, which carry TIRS's ~100 m footprint (real 30 m "
                        "detail counts as error); seen through the footprint: each field blurred by that footprint "
                        "first, as the sensor would have recorded it (docs/downscaling.md). " + res["dms_notes"])
        if (split := region_line(res)):
            Console().print(split)
        if json_out is not None:
            json_out.write_text(json.dumps({"product": product, **res}, indent=2, default=str))


@app.command()
def tile(
    aoi: Annotated[str, typer.Option(help="Country (south-korea), polygon file, or lon/lat bbox.")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the tiles as GeoJSON (lon/lat).")] = None,
    tile_km: Annotated[Optional[float], typer.Option(help="Tile side (km).")] = None,
    crs: Annotated[Optional[str], typer.Option(help="Grid CRS (default: national CRS or UTM).")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Show the tile grid of an AOI (no data needed)."""
    from heattrack.orchestration.tiling import aoi_in_crs, choose_crs, make_tile_grid, resolve_aoi, tiles_geojson

    setup_logging(verbose)
    with cli_errors(verbose):
        cfg = build_config(config, {"input.aoi": aoi, "grid.tile_km": tile_km, "grid.crs": crs}, set_)
        a = resolve_aoi(cfg.input.aoi)
        grid_crs = choose_crs(cfg.grid.crs, a)
        geom = aoi_in_crs(a, grid_crs, cfg.grid.aoi_buffer_m)
        grid = make_tile_grid(geom, grid_crs, cfg.tile_px, cfg.grid.resolution_m)
        px = len(grid.tiles) * cfg.tile_px ** 2
        console.print(f"AOI {a.label}: {len(grid.tiles)} tiles of {cfg.grid.tile_km:g} km in {grid_crs} "
                      f"({px / 1e9:.2f} x 10^9 pixels at {cfg.grid.resolution_m:g} m; AOI "
                      f"{grid.aoi.area / 1e6:,.0f} km^2 incl. {cfg.grid.aoi_buffer_m:g} m buffer)")
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(tiles_geojson(grid)))
            console.print(f"tiles written to {out}")


@app.command("config")
def show_config(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    reference: Annotated[bool, typer.Option(help="Print the Markdown reference of every key instead.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Print the resolved configuration (defaults < file < env < --set) as YAML."""
    setup_logging(verbose)
    with cli_errors(verbose):
        if reference:
            from heattrack.config_docs import config_reference

            print(config_reference())
        else:
            print(build_config(config, {}, set_).to_yaml(), end="")


@app.command()
def version() -> None:
    """Print the heattrack version."""
    print(__version__)


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    sys.exit(main())
