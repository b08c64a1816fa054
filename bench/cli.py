"""The ``bench`` command: thin click commands that parse options and call library functions."""

from __future__ import annotations

import click

from bench import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bench")
def cli() -> None:
    """drnet-bench: reproduce the DRNet paper's claims against RSIDE on your own hardware."""


@cli.command("models")
@click.option("--backbones", default="resnet18,resnet34", show_default=True,
              help="Comma-separated backbones to build for every registered architecture.")
def models_cmd(backbones: str) -> None:
    """Build every registered model on the given backbones (random weights) and print parameter counts."""
    import torch

    from architectures import available_models, build_model

    click.echo(f"{'model':<24}{'parameters':>14}{'output (228x304 input)':>26}")
    for arch, allowed in available_models().items():
        for backbone in backbones.split(","):
            if backbone not in allowed:
                continue
            model = build_model(arch, backbone).eval()
            with torch.inference_mode():
                out = model(torch.zeros(1, 3, 228, 304))
            n = sum(p.numel() for p in model.parameters())
            click.echo(f"{arch + '-' + backbone:<24}{n:>14,}{str(tuple(out.shape)):>26}")


# --- runner: bench run / list / import ------------------------------------------------------------------

@cli.command("run")
@click.option("--suite", "suite_name", required=True, metavar="NAME|FILE",
              help="Suite to run: a name from `bench list` or a path to a suite .toml file.")
@click.option("--data", "data_spec", metavar="SOURCE[:PATH]",
              help="Data for every run: synthetic, nyu-labeled:/x.mat or rside-csv:/dir (default: the suite's).")
@click.option("--device", type=click.Choice(["cuda", "cpu"]), help="Device for every run (default: the suite's).")
@click.option("--epochs", type=click.IntRange(min=1), help="Override the number of epochs.")
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop each run after N optimiser steps.")
@click.option("--only", metavar="PATTERN[,PATTERN]", help="Run only the runs whose name matches (shell patterns).")
@click.option("--seeds", metavar="0,1,2", help="Repeat every run once per seed (run ids end in -s<seed>).")
@click.option("--weights", metavar="none|imagenet|PATH", help="Override the encoder initialisation.")
@click.option("--workers", type=click.IntRange(min=0), help="DataLoader worker processes.")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs",
              show_default=True, help="Where run directories go.")
@click.option("--dry-run", is_flag=True, help="Print the plan and cost estimates; run nothing.")
@click.option("--no-speed", is_flag=True, help="Skip the suite's [[speed]] sweeps (Table 2).")
@click.option("--resume", is_flag=True,
              help="Continue interrupted runs from their checkpoints and skip complete ones.")
def run_cmd(suite_name: str, data_spec: str | None, device: str | None, epochs: int | None,
            max_steps: int | None, only: str | None, seeds: str | None, weights: str | None,
            workers: int | None, runs_dir: str, dry_run: bool, no_speed: bool, resume: bool) -> None:
    """Train and evaluate a suite's runs into runs/<run-id>/ (and run its speed sweeps)."""
    from bench import cli_run

    code = cli_run.run_command(suite_name, data_spec=data_spec, device=device, epochs=epochs,
                               max_steps=max_steps, only=only, seeds=seeds, weights=weights, workers=workers,
                               runs_dir=runs_dir, dry_run=dry_run, resume=resume, speed=not no_speed)
    raise SystemExit(code)


@cli.command("list")
def list_cmd() -> None:
    """Show the suites and the runs (and speed sweeps) in each."""
    from bench import cli_run

    click.echo(cli_run.list_suites())


@cli.group("import")
def import_group() -> None:
    """Turn external results into run directories."""


@import_group.command("rside-checkpoint")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--backbone", required=True, type=click.Choice(["resnet50", "densenet161", "senet154"]),
              help="Backbone of the released file (model_resnet, model_densenet, model_senet).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Run directory to write (default: runs/paper-rside-<backbone>-s0, where `bench run` finds it).")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs",
              show_default=True)
def import_rside_cmd(path: str, backbone: str, out: str | None, runs_dir: str) -> None:
    """Import an official RSIDE checkpoint so `bench run --suite paper --only 'rside-*'` evaluates it."""
    from bench.importing import import_rside_checkpoint

    try:
        rd = import_rside_checkpoint(path, backbone, out=out, runs_dir=runs_dir)
    except Exception as exc:  # CheckpointError, RunDirError: one clear line, no traceback
        raise click.ClickException(str(exc)) from exc
    click.echo(f"imported {path} -> {rd.root}")
    click.echo(f"evaluate it with: bench run --suite paper --only rside-{backbone} --runs-dir {rd.root.parent}")


def main() -> None:
    cli()
