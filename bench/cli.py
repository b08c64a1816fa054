"""The ``bench`` command: thin click commands that parse options and call library functions."""

from __future__ import annotations

from pathlib import Path

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


# --- bench report (bench/report) -------------------------------------------------------------------------
@cli.command("report")
@click.option("--runs", "runs_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"),
              show_default=True, help="Run directories to read (never written).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"),
              show_default=True, help="Where table1-3.csv (and report.html) go.")
@click.option("--html/--no-html", default=False, show_default=True,
              help="Also write one self-contained report.html (inline CSS and images).")
@click.option("--suite", default=None,
              help="Suite to report (default: the only one in --runs, else 'paper', else the most recent).")
@click.option("--reduction", type=click.Choice(["rside", "per_image", "pooled"]), default="rside",
              show_default=True, help="Metric reduction over test frames (bench.metrics).")
@click.option("--n-boot", type=click.IntRange(100), default=2000, show_default=True,
              help="Bootstrap resamples for confidence intervals and paired tests.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap random seed.")
@click.option("--check-baselines", is_flag=True,
              help="Compare the suite's metrics with --baselines; exit 1 with a diff if one moved past tolerance.")
@click.option("--write-baselines", is_flag=True,
              help="Write --baselines from the suite's runs (keeps per-metric tolerances already in the file).")
@click.option("--baselines", "baselines_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("tests/baselines/regression.json"), show_default=True, help="Baseline file.")
def report_cmd(runs_dir: Path, out_dir: Path, html: bool, suite: str | None, reduction: str, n_boot: int,
               seed: int, check_baselines: bool, write_baselines: bool, baselines_path: Path) -> None:
    """Turn runs/ into the paper's Tables 1-3 (CSV, and HTML with --html) next to the paper's numbers."""
    from bench import report as rep
    from bench.report.baselines import baseline_suite

    def log(msg: str) -> None:
        click.echo(msg, err=True)

    try:
        if check_baselines and suite is None:
            suite = baseline_suite(baselines_path)
        result = rep.make_report(rep.ReportConfig(runs_dir=runs_dir, out_dir=out_dir, suite=suite, html=html,
                                                  reduction=reduction, n_boot=n_boot, seed=seed), log=log)
        runs = result.runset.in_suite(result.suite)
        if write_baselines:
            command = (f"bench run --suite {result.suite} && bench report --suite {result.suite} "
                       f"--write-baselines --baselines {baselines_path}")
            path = rep.write_baselines(runs, baselines_path, result.suite, command)
            log(f"report: wrote baselines for {len(runs)} run(s) to {path}")
        if check_baselines:
            outcome = rep.check_baselines(runs, baselines_path)
            click.echo(outcome.format())
            if not outcome.passed:
                raise SystemExit(1)
    except (FileNotFoundError, rep.BaselineError, rep.RunFormatError) as err:
        raise click.ClickException(str(err)) from err


def main() -> None:
    cli()
