"""What every ``heattrack`` command shares: the console, logging, one-line errors, option types, the Config
built from a file + flags, the progress bar, the run summary table, and the simulated scene the ``simulate``,
``demo`` and ``run`` (``input.source: synthetic``) commands write."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from heattrack.config import Config, load_config, parse_set_option
from heattrack.errors import HeattrackError, InputError

console = Console(stderr=True, soft_wrap=True)
log = logging.getLogger("heattrack")

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML configuration file.",
                                                   envvar="HEATTRACK_CONFIG")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging and tracebacks.")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override any config value: section.key=value "
                                                     "(repeatable).")]
SchedulerOpt = Annotated[Optional[str], typer.Option("--scheduler", help="'local' (LocalCluster), 'slurm' "
                                                     "(dask-jobqueue; slurm section), 'kubernetes' (dask-kubernetes; "
                                                     "kubernetes section), a running scheduler tcp://host:8786 or "
                                                     "its scheduler file (*.json).")]


def setup_logging(verbose: bool) -> None:
    handler = RichHandler(console=console, show_path=verbose, rich_tracebacks=verbose, markup=False)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s", force=True)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("distributed", "tornado", "fiona", "pyogrio", "rasterio"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose else logging.ERROR)


@contextmanager
def cli_errors(verbose: bool):
    """Turn errors into one line and exit 1 (a traceback only with -v for unexpected ones)."""
    try:
        yield
    except HeattrackError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("[bold red]interrupted[/]: completed tiles are kept; rerun with --resume")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:  # last resort: still one line unless -v
        if verbose:
            console.print_exception()
        else:
            console.print(f"[bold red]error:[/] unexpected {exc.__class__.__name__}: {exc} (run with -v for details)",
                          highlight=False)
        raise typer.Exit(2) from None


def build_config(config: Path | None, overrides: dict[str, Any], sets: list[str] | None) -> Config:
    merged = dict(overrides)
    for item in sets or []:
        k, v = parse_set_option(item)
        merged[k] = v
    return load_config(config, merged)


def progress_bar(label: str, unit: str = "tiles") -> Callable[[int, int], Callable]:
    """A factory handing ``run`` a per-tile callback (``download``: per date pair) that drives a rich progress
    bar."""

    def start(todo: int, total: int):
        prog = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console,
                        transient=False, disable=not console.is_terminal and todo == 0)
        prog.start()
        task = prog.add_task(label, total=todo)
        if todo == 0:
            prog.stop()
        if todo < total:
            console.print(f"resuming: {total - todo} of {total} {unit} already complete")

        def on_tile(outcome):
            prog.advance(task)
            if outcome is not None and outcome.error:
                console.print(f"[red]tile {outcome.index} failed:[/] {outcome.error}", highlight=False)
            if prog.finished:
                prog.stop()
        return on_tile

    return start


def print_summary(result, plume_fwhm_m: float | None = None) -> None:
    """The run's top segments and its notes; ``plume_fwhm_m`` (``segments.mdl_plume_fwhm_m``): also what the screen
    could see (:func:`heattrack.orchestration.reduce.detectability_note`)."""
    from heattrack.orchestration.reduce import detectability_note, partly_seen_note, unscreened_note

    seg = result.segments
    table = Table(title=f"Top segments ({result.out})")
    stat = seg is not None and "z" in seg.columns  # ranked by a statistic: show it, not the saturated 1 - p
    cols = ("rank", "segment_id", "z", "excess (K)", "p", "flagged", "n_clear_px") if stat else \
        ("rank", "segment_id", "risk", "delta_t_k", "n_clear_px")
    for col in cols:
        table.add_column(col, justify="right")
    if seg is not None:
        for _, r in seg[seg["status"] == "ok"].head(10).iterrows():
            if stat:
                table.add_row(str(r["rank"]), str(r["segment_id"]), f"{r['z']:.2f}", f"{r['stat_k']:.2f}",
                              f"{r['p_value']:.1e}", "yes" if r.get("flagged", False) else "",
                              str(r["n_clear_px"]))
            else:
                table.add_row(str(r["rank"]), str(r["segment_id"]), f"{r['risk']:.3f}", f"{r['delta_t_k']:.2f}",
                              str(r["n_clear_px"]))
    console.print(table)
    if stat and "flagged" in seg.columns:
        console.print(f"{int(seg['flagged'].sum())} segments at or above the flag level (p <= segments.mdl_alpha; "
                      "run.json -> detectability.flags says how many a leak-free network would put there)",
                      highlight=False)
    scored = seg is not None and {"status", "length_m"} <= set(seg.columns)
    unseen = unscreened_note(seg) if scored else None
    if unseen is not None and unseen[0] not in result.warnings:  # above UNSCREENED_WARN_SHARE it is a warning
        console.print(unseen[0], highlight=False)
    partly = partly_seen_note(seg) if scored else None
    if partly is not None:
        console.print(partly, highlight=False)
    seen = detectability_note(seg, plume_fwhm_m) if stat and plume_fwhm_m is not None else None
    if seen is not None:
        console.print(seen[0].upper() + seen[1:], highlight=False)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    console.print(f"done in {result.seconds:.1f} s: {result.n_tiles} tiles ({result.skipped} resumed) -> "
                  f"{result.out}/ (report: {result.out}/report/index.html)")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:,.1f} min"


def print_season_plan(cfg, season: str) -> None:
    """``screen --dry-run``: the plan of the season's search (its interval, its dates per tile) as ``run --dry-run``
    prints a run's."""
    from heattrack.orchestration.dryrun import estimate
    from heattrack.orchestration.plan import plan_run
    from heattrack.orchestration.screen import season_interval, with_season_search

    print_plan(estimate(plan_run(with_season_search(cfg, season_interval(season)))))


def print_plan(est) -> None:
    """``run --dry-run``: the plan's numbers (:class:`heattrack.orchestration.dryrun.PlanEstimate`)."""
    table = Table(title=f"Plan: {est.n_tiles} tiles of {est.tile_px} x {est.tile_px} px (source {est.source})")
    for col in ("tile", "dates (Landsat date, product)"):
        table.add_column(col)
    items = list(est.dates_per_tile.items())
    for tile, dates in items[:25]:
        table.add_row(tile, "; ".join(dates) or "none")
    if len(items) > 25:
        table.add_row("...", f"{len(items) - 25} more tiles")
    console.print(table)
    console.print(f"pixels to process: {est.pixels / 1e6:,.1f} M (tiles x dates); to read: "
                  f"{est.bytes_read / 1e9:,.2f} GB of uncompressed pixels (files are usually 2-4x smaller)")
    console.print(f"workers: {est.workers} ({est.workers_from}); estimated time: tiles {_duration(est.seconds_tiles)} "
                  f"+ exports/report {_duration(est.seconds_driver)} = [bold]{_duration(est.seconds)}[/] "
                  "(compute.plan_tile_mpx_s; plan_driver_s + plan_driver_s_per_tile x tiles + plan_driver_s_per_km x "
                  "pipe km)", highlight=False)
    console.print("dry run: nothing was read or written")


def spec_from_settings(s):
    """The spec of ``heattrack simulate`` from its settings (the configuration's ``simulate`` section): a family
    member when ``s.family_member`` is set, else the embedded city with the settings' overrides."""
    from heattrack.simulate import SimulationSpec, family_spec

    if s.family_member is not None:
        return family_spec(s.family_member, size_km=s.size_km, sensor=s.sensor, season=s.season, dates=s.dates)
    return SimulationSpec(size_km=s.size_km, leaks=s.leaks, distractors=s.distractors, seed=s.seed,
                          cloud_fraction=s.cloud_fraction, dates=s.dates, season=s.season, leak_k=tuple(s.leak_k),
                          sensor=s.sensor)


def simulate_from_config(out: Path, cfg: Config) -> dict:
    """Simulate the configuration's ``simulate`` section into ``out`` (with a status line); the scene's summary."""
    from heattrack.simulate import simulate_scene

    s = cfg.simulate
    spec = spec_from_settings(s)
    with console.status(f"simulating a {s.size_km:g} km region (seed {spec.seed})"):
        return simulate_scene(out, spec)


def synthetic_input(cfg: Config, out: str) -> tuple[Config, tuple[str, ...]]:
    """``input.source: synthetic``: simulate the scene (``simulate`` section) into ``input.input`` or
    ``OUT/scene`` unless it is there already, then run it as a ``local`` input."""
    if "://" in str(out):
        raise HeattrackError("input.source 'synthetic' writes its scene next to a local --out folder")
    scene = Path(cfg.input.input) if cfg.input.input else Path(out) / "scene"
    if not (scene / "truth" / "truth.json").exists():
        if scene.exists() and any(scene.iterdir()):
            raise HeattrackError(f"{scene} is not empty and holds no simulated scene")
        simulate_from_config(scene, cfg)
    inp = cfg.input.model_copy(update={"source": "local", "input": scene,
                                       "pipes": cfg.input.pipes or scene / "pipes.geojson"})
    inside = scene.resolve().parent == Path(out).resolve()
    return cfg.model_copy(update={"input": inp}), (scene.name,) if inside else ()


def one_folder(positional: Path | None, option: Path | None, option_name: str) -> Path:
    """The folder given either as the command's argument or as ``option_name`` (the same one twice is fine)."""
    if positional is not None and option is not None and positional != option:
        raise InputError(f"two folders given ({positional} and {option_name} {option}): give one")
    folder = positional if positional is not None else option
    if folder is None:
        raise InputError(f"no folder given: pass it as the argument or as {option_name} FOLDER")
    return folder
