"""The ``bench`` command: thin click commands that parse options and call library functions."""

from __future__ import annotations

from pathlib import Path

import click

from bench import __version__
from bench.paths import DEFAULT_RUNS_DIR


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bench")
def cli() -> None:
    """drnet-bench: reproduce the DRNet paper's claims against RSIDE on your own hardware."""


@cli.command("models")
@click.option(
    "--backbones",
    default="resnet18,resnet34",
    show_default=True,
    help="Comma-separated backbones to build for every registered architecture.",
)
@click.option("--archs", default=None, help="Comma-separated architectures (default: every registered one).")
@click.option("--flops", is_flag=True, help="Also count forward FLOPs (torch.utils.flop_counter) at batch 1.")
@click.option(
    "--time",
    "time_it",
    is_flag=True,
    help="Also time CPU forwards at batch 1 (median of interleaved repeats, inference mode).",
)
@click.option("--size", default=None, help="Input HxW (RSIDE's crop by default).  [default: 228x304]")
@click.option(
    "--repeats", default=20, show_default=True, type=click.IntRange(1), help="Timed forwards per model (with --time)."
)
@click.option(
    "--warmup",
    default=3,
    show_default=True,
    type=click.IntRange(0),
    help="Untimed forwards per model first (with --time).",
)
@click.option("--threads", default=None, type=click.IntRange(1), help="torch CPU threads (default: torch's).")
def models_cmd(
    backbones: str,
    archs: str | None,
    flops: bool,
    time_it: bool,
    size: str | None,
    repeats: int,
    warmup: int,
    threads: int | None,
) -> None:
    """Build every registered model on the given backbones (random weights) and print parameter counts.

    With --flops / --time, also forward FLOPs and median CPU forward time at batch 1, measured in one run with
    the models' forwards interleaved, and drnet/rside ratios per backbone (the paper's speed claim as a
    ratio; absolute times depend on the machine, which the header names).
    """
    from architectures.data.transforms import RSIDE_CROP_HW
    from bench.modelstats import ModelsRequest, UnknownNameError, models_table, select_names
    from bench.speed import parse_input_size

    try:
        height, width = RSIDE_CROP_HW if size is None else parse_input_size(size, minimum=32)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--size") from None
    try:
        arch_names, backbone_names = select_names(archs, backbones)
    except UnknownNameError as e:
        raise click.BadParameter(str(e), param_hint=e.option) from None
    request = ModelsRequest(arch_names, backbone_names, height, width, flops, time_it, repeats, warmup, threads)
    for line in models_table(request):
        click.echo(line)


# --- bench run / list / import (bench.pipeline) ---------------------------------------------------------


@cli.command("run")
@click.option(
    "--suite",
    "suite_name",
    required=True,
    metavar="NAME|FILE",
    help="Suite to run: a name from `bench list` or a path to a suite .toml file.",
)
@click.option(
    "--data",
    "data_spec",
    metavar="SOURCE[:PATH]",
    help="Data for every run: synthetic, nyu-labeled:/x.mat or rside-csv:/dir (default: the suite's).",
)
@click.option("--device", type=click.Choice(["cuda", "cpu"]), help="Device for every run (default: the suite's).")
@click.option("--epochs", type=click.IntRange(min=1), help="Override the number of epochs.")
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop each run after N optimiser steps.")
@click.option("--only", metavar="PATTERN[,PATTERN]", help="Run only the runs whose name matches (shell patterns).")
@click.option("--seeds", metavar="0,1,2", help="Repeat every run once per seed (run ids end in -s<seed>).")
@click.option("--weights", metavar="none|imagenet|PATH", help="Override the encoder initialisation.")
@click.option("--workers", type=click.IntRange(min=0), help="DataLoader worker processes.")
@click.option(
    "--runs-dir",
    type=click.Path(file_okay=False),
    default=str(DEFAULT_RUNS_DIR),
    show_default=True,
    help="Where run directories go.",
)
@click.option("--dry-run", is_flag=True, help="Print the plan and cost estimates; run nothing.")
@click.option(
    "--fetch",
    is_flag=True,
    help="First download (verified, resumable) the data and ImageNet weights the runs lack, as bench fetch does; "
    "with --dry-run, list them. Never implied: without it nothing is downloaded.",
)
@click.option("--no-speed", is_flag=True, help="Skip the suite's [[speed]] sweeps (Table 2).")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue interrupted runs from their checkpoints (refused if their settings changed).",
)
@click.option(
    "--rerun",
    is_flag=True,
    help="Move existing run directories aside (runs/.old/<run-id>.old-<UTC time>) and train again. "
    "Without it, complete runs with the same settings are reused and others are an error.",
)
@click.option(
    "--launcher",
    type=click.Choice(["inline", "local", "slurm"]),
    default=None,
    help="inline: one run after another in this process [default]; local: runs at once on this "
    "machine, one per GPU (or --max-parallel on the CPU); slurm: one SLURM job per run.",
)
@click.option(
    "--gpus-per-run",
    type=click.IntRange(min=1),
    default=None,
    help="GPUs per run (local/slurm); above 1 the run trains with DDP, one task per GPU. [default: 1]",
)
@click.option(
    "--max-parallel",
    type=click.IntRange(min=1),
    default=None,
    help="local: at most K runs at once (on the CPU: K processes on disjoint cores).",
)
@click.option("--partition", help="slurm: partition.")
@click.option("--cpus-per-gpu", type=click.IntRange(min=1), help="slurm: CPUs of each task (one task per GPU).")
@click.option("--mem", help="slurm: memory per job, e.g. 64G.")
@click.option(
    "--time",
    "time_limit",
    metavar="D-HH:MM:SS",
    help="slurm: time limit per job; a run that reaches it is requeued and resumes. [default: 1-00:00:00]",
)
@click.option("--account", help="slurm: account.")
@click.option("--qos", help="slurm: quality of service.")
@click.option(
    "--slurm-arg",
    "slurm_args",
    multiple=True,
    metavar="KEY=VALUE",
    help="slurm: any other sbatch option, e.g. constraint=a100; repeatable.",
)
@click.option("--wait", is_flag=True, help="slurm: wait for the jobs and print the summary.")
def run_cmd(
    suite_name: str,
    data_spec: str | None,
    device: str | None,
    epochs: int | None,
    max_steps: int | None,
    only: str | None,
    seeds: str | None,
    weights: str | None,
    workers: int | None,
    runs_dir: str,
    dry_run: bool,
    fetch: bool,
    no_speed: bool,
    resume: bool,
    rerun: bool,
    **launch_options,
) -> None:
    """Train and evaluate a suite's runs into runs/<run-id>/ (and run its speed sweeps).

    One process writes a run at a time: a run another `bench run` (or job) is writing is skipped, and the
    output says who holds it. SIGTERM or Ctrl-C while a run trains finishes the current step, saves
    checkpoints/last.pt and stops the suite (a second one stops at once).

    \b
    Exit codes:
      0   every run ended well (or was skipped, or its job submitted)
      1   a run or the speed sweeps failed (a full disk stops the suite)
      2   the plan cannot run: every problem is listed, nothing was run
      75  interrupted by SIGTERM/SIGINT, resumable: `bench run --resume` continues
      130 stopped at once by a second signal (the last checkpoint is kept)
    """
    from bench.pipeline import run
    from bench.plan import RunRequest

    if resume and rerun:
        raise click.UsageError("--resume continues existing runs, --rerun moves them aside: give one of them")
    launch = {k.replace("time_limit", "time"): v for k, v in launch_options.items() if v not in (None, False, ())}
    if rerun and launch:
        raise click.UsageError(
            "--rerun works without --launcher only: move the old run directories aside by hand "
            "(e.g. mv runs/<run-id> runs/.old/), then submit with --launcher"
        )
    request = RunRequest(
        suite=suite_name,
        data_spec=data_spec,
        device=device,
        epochs=epochs,
        max_steps=max_steps,
        only=only,
        seeds=seeds,
        weights=weights,
        workers=workers,
        runs_dir=Path(runs_dir),
        dry_run=dry_run,
        resume=resume,
        rerun=rerun,
        speed=not no_speed,
        fetch=fetch,
        launch=launch,
    )
    raise SystemExit(run(request))


runs_to_read_option = click.option(
    "--runs",
    "runs_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_RUNS_DIR,
    show_default=True,
    help="Run directories to read (never written).",
)  # bench status and bench report


@cli.command("status")
@runs_to_read_option
@click.option(
    "--suite",
    "suite_name",
    metavar="NAME|FILE",
    help="Only this suite's runs, listing the planned ones that have not started too.",
)
def status_cmd(runs_dir: Path, suite_name: str | None) -> None:
    """One line per run: not started / queued / running (progress; who holds it) / interrupted (resumable) /
    complete / damaged (final.pt is not what metrics.json recorded) / failed."""
    from bench.config import ConfigError
    from bench.status import collect_status, status_table

    try:
        rows = collect_status(runs_dir, suite_name)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(status_table(rows) if rows else f"no runs in {runs_dir}")


@cli.command("list")
def list_cmd() -> None:
    """Show the suites and the runs (and speed sweeps) in each."""
    from bench.catalog import list_suites

    click.echo(list_suites())


@cli.group("import")
def import_group() -> None:
    """Turn external results into run directories."""


@import_group.command("rside-checkpoint")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--backbone",
    required=True,
    type=click.Choice(["resnet50", "densenet161", "senet154"]),
    help="Backbone of the released file (model_resnet, model_densenet, model_senet).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Run directory to write (default: runs/paper-rside-<backbone>-s0, where `bench run` finds it).",
)
@click.option("--runs-dir", type=click.Path(file_okay=False), default=str(DEFAULT_RUNS_DIR), show_default=True)
def import_rside_cmd(path: str, backbone: str, out: str | None, runs_dir: str) -> None:
    """Import an official RSIDE checkpoint so `bench run --suite paper --only 'rside-*'` evaluates it."""
    from bench.importing import import_rside_checkpoint

    try:
        rd = import_rside_checkpoint(path, backbone, out=out, runs_dir=runs_dir)
    except Exception as exc:  # CheckpointError, RunCheckpointError, RunDirError: one clear line, no traceback
        raise click.ClickException(str(exc)) from exc
    click.echo(f"imported {path} -> {rd.root}")
    click.echo(f"evaluate it with: bench run --suite paper --only rside-{backbone} --runs-dir {rd.root.parent}")


# --- data: prepare and inspect data sets (architectures/data) ----------------------------------------------


@cli.group("data")
def data_group() -> None:
    """Prepare and inspect data: synthetic rooms, the NYU labeled .mat, RSIDE's CSV layout."""


def _progress_printer(label: str, lines: bool = True):
    """click progress bar on a terminal; elsewhere (CI logs) one line per 10% if ``lines``, else nothing."""
    import sys

    state: dict = {}
    if not lines and not sys.stdout.isatty():
        return None

    def update(done: int, total: int) -> None:
        if sys.stdout.isatty():
            if "bar" not in state:
                state["bar"] = click.progressbar(length=total, label=label, show_pos=True, show_eta=True)
                state["bar"].__enter__()
            state["bar"].update(done - state["bar"].pos)
            if done == total:
                state["bar"].__exit__(None, None, None)
        elif done == total or done % max(total // 10, 1) == 0:
            click.echo(f"{label}: {done}/{total}")

    return update


@data_group.command("synth")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="HDF5 file to write [default: ${DRNET_BENCH_DATA:-data}/synthetic-s{seed}-n{frames}.h5].",
)
@click.option("--frames", type=click.IntRange(min=1), default=None, help="Frames to render [default: 128].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--height", type=click.IntRange(min=8), default=480, show_default=True)
@click.option("--width", type=click.IntRange(min=8), default=640, show_default=True)
def data_synth_cmd(out: str | None, frames: int | None, seed: int, height: int, width: int) -> None:
    """Render synthetic indoor rooms in the labeled .mat layout (use it as data spec synthetic:FILE)."""
    import time

    from architectures.data import DEFAULT_FRAMES, default_synthetic_path, write_synthetic

    frames = DEFAULT_FRAMES if frames is None else frames
    path = out or default_synthetic_path(seed, frames, height, width)
    start = time.perf_counter()
    write_synthetic(path, frames, seed, height, width, progress=_progress_printer(f"rendering {path}"))
    seconds = time.perf_counter() - start
    click.echo(
        f"wrote {path}: {frames} frames of {height}x{width}, seed {seed} "
        f"({seconds:.1f} s, {frames / seconds:.1f} frames/s)"
    )


@data_group.command("info")
@click.argument("path", type=click.Path())
@click.option(
    "--max-frames",
    type=click.IntRange(min=2),
    default=200,
    show_default=True,
    help="Scan the depth of at most this many evenly spaced frames per file.",
)
def data_info_cmd(path: str, max_frames: int) -> None:
    """Say what PATH holds (.mat / .h5 file, RSIDE CSV or RSIDE root) and check it; exit 1 on any problem."""
    from architectures.data import DataError
    from architectures.data.info import describe, format_info

    try:
        infos = describe(path, max_frames, progress=_progress_printer("scanning depth", lines=False))
    except DataError as e:
        raise click.ClickException(str(e)) from None
    click.echo("\n\n".join(format_info(info) for info in infos))
    if not all(info.ok for info in infos):
        raise SystemExit(1)


@data_group.command("preview")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="PNG to write.")
@click.option("--frames", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--split", type=click.Choice(["all", "train", "test"]), default="all", show_default=True)
def data_preview_cmd(path: str, out: str, frames: int, split: str) -> None:
    """Draw a few frames of an HDF5 data file and their depths into a PNG."""
    from architectures.data import DataError
    from architectures.data.preview import plot_frames

    try:
        click.echo(f"wrote {plot_frames(path, out, frames, split)}")
    except DataError as e:
        raise click.ClickException(str(e)) from None


@data_group.command("bench")
@click.option("--data", default="synthetic", show_default=True, help="Data spec <source>:<path>.")
@click.option(
    "--frames",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Synthetic frames rendered (640x480, one thread) for the fps figure.",
)
@click.option("--workers", default="0,2", show_default=True, help="DataLoader worker counts (comma list).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option(
    "--batches",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Timed batches per worker count (after 2 warm-up batches).",
)
def data_bench_cmd(data: str, frames: int, workers: str, batch_size: int, batches: int) -> None:
    """Synthetic frames/s on one core and DataLoader images/s with RSIDE's training transforms."""
    from bench.speed.data import format_speeds, loader_speed, synth_speed

    synth = synth_speed(frames)
    loaders = [loader_speed(data, int(w), batch_size, batches) for w in workers.split(",")]
    click.echo(format_speeds(synth, loaders))


# --- end data ----------------------------------------------------------------------------------------------


# --- bench speed (Table 2: fps and memory over batch sizes) -------------------------------------------------


@cli.command("speed")
@click.option("--suite", help="Sweep the [[speed]] models of a suite (bench/suites/NAME.toml or a path).")
@click.option("--arch", help="Models instead of a suite: architecture(s), comma-separated (see `bench models`).")
@click.option("--backbone", help="Backbone(s) of --arch, comma-separated; every arch x backbone is swept.")
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Model option for --arch (value parsed as JSON, else a string); repeatable.",
)
@click.option("--device", default="auto", show_default=True, help="cuda, cuda:N, cpu, or auto.")
@click.option("--input", "input_size", default=None, help="Input HxW in pixels.  [default: 228x304]")
@click.option(
    "--batch-sizes",
    default=None,
    help="'auto' (1, 2, 4, ... until OOM, then bisect) or a list like 1,2,4,8. "
    "[default: a suite entry's batch_sizes, else auto]",
)
@click.option(
    "--max-batch", type=click.IntRange(min=1), help="Auto sweeps stop doubling here. [default: 1024 on cuda, 32 on cpu]"
)
@click.option(
    "--dtype",
    type=click.Choice(["fp32", "fp16", "bf16"]),
    default="fp32",
    show_default=True,
    help="Weights and input cast to this dtype (not autocast).",
)
@click.option("--channels-last", is_flag=True, help="NHWC memory format.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model (afresh per point).")
@click.option("--isolate", is_flag=True, help="Measure every point in a fresh subprocess.")
@click.option(
    "--in-process",
    "in_process",
    is_flag=True,
    help="CPU: sweep every model in this process (default there: one fresh process per model and mode, "
    "so that the order of the models cannot change a memory figure).",
)
@click.option(
    "--mode",
    "modes",
    default=None,
    help="inference (eval, inference_mode), autograd (eval, gradients on, as code without no_grad) "
    "or train (forward + loss + backward + Adam step); comma-separated for several. "
    "[default: a suite entry's modes, else inference]",
)
@click.option(
    "--pairs",
    type=click.IntRange(min=1),
    help="Timing sessions per model: the models of one backbone and mode alternate (R D, D R, ...), each session "
    "a fresh process on CPU, and each pair of sessions gives one DRNet / RSIDE ratio; the report's verdicts need "
    "2 or more. [default: a suite entry's pairs, else 5 cuda, 3 cpu]",
)
@click.option("--warmup", type=click.IntRange(min=1), help="Untimed iterations per point. [default: 10 cuda, 4 cpu]")
@click.option(
    "--repeats", type=click.IntRange(min=1), help="Timed iterations per point and session. [default: 30 cuda, 3 cpu]"
)
@click.option(
    "--budget-s",
    type=click.FloatRange(min=0),
    help="Per point: stop timing after this many seconds once 3 repeats ran. [default: 30 cuda, 120 cpu]",
)
@click.option(
    "--max-memory-mib",
    type=click.FloatRange(min=0, min_open=True),
    help="Memory cap that counts as OOM. CUDA: PyTorch allocator cap; CPU: the process's peak RSS. "
    "[default: none on cuda; on cpu, current RSS + 40% of MemAvailable]",
)
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads (torch.set_num_threads).")
@click.option(
    "--cudnn-benchmark/--no-cudnn-benchmark",
    default=True,
    show_default=True,
    help="torch.backends.cudnn.benchmark during the sweep.",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the random weights and inputs.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Run directory. [default: runs/speed-<what>-<device>-<dtype>-<layout>-pt<torch>-<time>, in the "
    "working directory]",
)
@click.option("--overwrite", is_flag=True, help="Replace speed CSVs already in --out.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines (the final table is still printed).")
def speed_cmd(out_dir: str | None, overwrite: bool, quiet: bool, compile_: bool, **options) -> None:
    """Fps and memory over batch sizes for every model (the paper's Table 2), in alternating timing sessions:
    speed.csv, speed_summary.csv, speed_pairs.csv."""
    from bench import speed
    from bench.speed.options import SpeedOptionError, speed_config_from_options

    try:  # input errors are usage errors (exit 2); a failure while measuring exits 1
        config = speed_config_from_options(compile=compile_, **options)
    except SpeedOptionError as e:
        if e.option is None:
            raise click.UsageError(str(e)) from None
        raise click.BadParameter(str(e), param_hint=e.option) from None
    try:
        progress = None if quiet else (lambda m: click.echo(m, err=True))
        result = speed.run_sweep(config, out_dir, progress=progress, overwrite=overwrite)
    except FileExistsError as e:  # answered by --out or --overwrite
        raise click.UsageError(str(e)) from None
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    click.echo(speed.results_table(result.summaries, result.pairs))
    click.echo(f"run directory: {result.out_dir}")


# --- bench report (bench/report) -------------------------------------------------------------------------
@cli.command("report")
@runs_to_read_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Where table1-3.csv (and report.html) go.",
)
@click.option(
    "--html/--no-html",
    default=False,
    show_default=True,
    help="Also write one self-contained report.html (inline CSS and images).",
)
@click.option(
    "--suite",
    default=None,
    help="Suite to report (default: the only one in --runs, else 'paper', else the most recent).",
)
@click.option(
    "--reduction",
    type=click.Choice(["rside", "per_image", "pooled"]),
    default="rside",
    show_default=True,
    help="Metric reduction over test frames (bench.metrics).",
)
@click.option(
    "--n-boot",
    type=click.IntRange(100),
    default=2000,
    show_default=True,
    help="Bootstrap resamples for confidence intervals and paired tests.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap random seed.")
@click.option(
    "--accept-code-drift",
    is_flag=True,
    help="Pair runs whose code fingerprints differ (you know the change was harmless); every verdict resting on "
    "such a pair then says 'code drift accepted: <files>'.",
)
@click.option(
    "--check-baselines",
    is_flag=True,
    help="Compare the suite's metrics with --baselines; exit 1 with a diff if one moved past tolerance.",
)
@click.option(
    "--write-baselines",
    is_flag=True,
    help="Write --baselines from the suite's runs (keeps per-metric tolerances already in the file).",
)
@click.option(
    "--baselines",
    "baselines_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("tests/baselines/regression.json"),
    show_default=True,
    help="Baseline file.",
)
def report_cmd(
    runs_dir: Path,
    out_dir: Path,
    html: bool,
    suite: str | None,
    reduction: str,
    n_boot: int,
    seed: int,
    accept_code_drift: bool,
    check_baselines: bool,
    write_baselines: bool,
    baselines_path: Path,
) -> None:
    """Turn runs/ into the paper's Tables 1-3 (CSV, and HTML with --html) next to the paper's numbers."""
    from bench import report as rep
    from bench.report.baselines import baseline_suite

    def log(msg: str) -> None:
        click.echo(msg, err=True)

    try:
        if check_baselines and suite is None:
            suite = baseline_suite(baselines_path)
        result = rep.make_report(
            rep.ReportConfig(
                runs_dir=runs_dir,
                out_dir=out_dir,
                suite=suite,
                html=html,
                reduction=reduction,
                n_boot=n_boot,
                seed=seed,
                accept_code_drift=accept_code_drift,
            ),
            log=log,
        )
        runs = result.runset.in_suite(result.suite)
        if write_baselines:
            command = (
                f"OMP_NUM_THREADS=1 bench run --suite {result.suite} --runs-dir RUNS && bench report --suite "
                f"{result.suite} --runs RUNS --out REPORTS --write-baselines --baselines {baselines_path}"
            )
            path = rep.write_baselines(runs, baselines_path, result.suite, command)
            log(f"report: wrote baselines for {len(runs)} run(s) to {path}")
        if check_baselines:
            outcome = rep.check_baselines(runs, baselines_path)
            click.echo(outcome.format())
            if not outcome.passed:
                raise SystemExit(1)
    except (FileNotFoundError, rep.BaselineError, rep.RunFormatError, rep.NoUsableRunsError) as err:
        raise click.ClickException(str(err)) from err


# --- doctor: the preflight of a campaign (bench/doctor.py) ------------------------------------------------------


@cli.command("doctor")
@click.option(
    "--suite", "suite_name", default="paper", show_default=True, metavar="NAME|FILE", help="The suite to check."
)
@click.option("--data", "data_spec", metavar="SOURCE[:PATH]", help="Data for every run, as for bench run.")
@click.option(
    "--runs-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_RUNS_DIR,
    show_default=True,
    help="Where the run directories go, as for bench run.",
)
@click.option("--only", metavar="PATTERN[,PATTERN]", help="Only the runs whose name matches, as for bench run.")
@click.option("--seeds", metavar="0,1,2", help="The seeds, as for bench run.")
@click.option("--no-verify", is_flag=True, help="Do not hash the ImageNet weights files (about a second per GB).")
@click.option(
    "--measure",
    is_flag=True,
    help="On a GPU: time a few training steps of each network at the runs' batch and input size, and give the "
    "hours they mean on this GPU (a minute or two).",
)
def doctor_cmd(
    suite_name: str,
    data_spec: str | None,
    runs_dir: Path,
    only: str | None,
    seeds: str | None,
    no_verify: bool,
    measure: bool,
) -> None:
    """Check a machine before a campaign: GPUs, driver, CUDA, NVML, disk, data, weights, run directories; the
    GPU time per run, per paper table and in all. Exit code 1 if anything would stop or spoil the runs."""
    from bench.doctor import DoctorRequest, doctor

    request = DoctorRequest(suite_name, data_spec, runs_dir, only, seeds, not no_verify, measure)
    raise SystemExit(doctor(request))


# --- fetch: verified, resumable downloads of the data, encoder weights and checkpoints (bench/fetch) -----------


@cli.command("fetch")
@click.argument("targets", nargs=-1, metavar="[TARGET]...")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default="data",
    show_default=True,
    help="Where the data sets and RSIDE's networks go (rside-data: read as --data rside-csv:DIR).",
)
@click.option(
    "--backbone",
    "backbones",
    metavar="NAME[,NAME]",
    help="Encoders whose ImageNet weights to fetch (weights, paper, all) [default: the paper suite's].",
)
@click.option("--dry-run", is_flag=True, help="List each URL, size, hash, destination and status; download nothing.")
@click.option("--keep-archives", is_flag=True, help="Keep the downloaded zips after unpacking them.")
def fetch_cmd(
    targets: tuple[str, ...], data_dir: Path, backbones: str | None, dry_run: bool, keep_archives: bool
) -> None:
    """Download what the paper regime reads, verified and resumable; never called by a run.

    TARGET: paper (the default: rside-data, the paper suite's encoder weights, rside-checkpoints), all (paper +
    nyu-labeled), nyu-labeled, rside-data, weights, rside-checkpoints. Weights go to the torch hub cache that
    weights = "imagenet" reads ($TORCH_HOME/hub/checkpoints). An interrupted download resumes when the same
    command runs again.
    """
    from bench.fetch import FetchConfig, FetchError, fetch

    names = tuple(b.strip() for b in backbones.split(",") if b.strip()) if backbones is not None else None
    config = FetchConfig(tuple(targets), data_dir, names, dry_run, keep_archives)
    try:
        fetch(config, echo=click.echo)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="TARGET / --backbone") from None
    except FetchError as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        raise click.ClickException(
            "interrupted: partial downloads are kept and resume on the next bench fetch"
        ) from None


def main() -> None:
    """The ``bench`` command. A write that finds the disk full (``bench.io.DiskFullError``, whichever command
    wrote: a report's tables, an import's checkpoint) ends it with that one line and exit code 1, not a
    traceback."""
    from bench.io import DiskFullError

    try:
        cli()
    except DiskFullError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
