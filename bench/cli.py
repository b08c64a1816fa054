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


# --- bench speed (Table 2: fps and memory over batch sizes) -------------------------------------------------

@cli.command("speed")
@click.option("--suite", help="Sweep the [[speed]] models of a suite (bench/suites/NAME.toml or a path).")
@click.option("--arch", help="Models instead of a suite: architecture(s), comma-separated (see `bench models`).")
@click.option("--backbone", help="Backbone(s) of --arch, comma-separated; every arch x backbone is swept.")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE",
              help="Model option for --arch (value parsed as JSON, else a string); repeatable.")
@click.option("--device", default="auto", show_default=True, help="cuda, cuda:N, cpu, or auto.")
@click.option("--input", "input_size", default="228x304", show_default=True, help="Input HxW in pixels.")
@click.option("--batch-sizes", default="auto", show_default=True,
              help="'auto' (1, 2, 4, ... until OOM, then bisect) or a list like 1,2,4,8.")
@click.option("--max-batch", type=click.IntRange(min=1),
              help="Auto sweeps stop doubling here. [default: 1024 on cuda, 32 on cpu]")
@click.option("--dtype", type=click.Choice(["fp32", "fp16", "bf16"]), default="fp32", show_default=True,
              help="Weights and input cast to this dtype (not autocast).")
@click.option("--channels-last", is_flag=True, help="NHWC memory format.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model (afresh per point).")
@click.option("--isolate", is_flag=True, help="Measure every point in a fresh subprocess.")
@click.option("--warmup", type=click.IntRange(min=1),
              help="Untimed iterations per point. [default: 10 cuda, 2 cpu]")
@click.option("--repeats", type=click.IntRange(min=1),
              help="Timed iterations per point. [default: 30 cuda, 5 cpu]")
@click.option("--budget-s", type=click.FloatRange(min=0),
              help="Per point: stop timing after this many seconds once 3 repeats ran. "
                   "[default: 30 cuda, 120 cpu]")
@click.option("--max-memory-mib", type=click.FloatRange(min=0, min_open=True),
              help="Memory cap that counts as OOM. CUDA: PyTorch allocator cap; CPU: the process's peak RSS. "
                   "[default: none on cuda; on cpu, current RSS + 40% of MemAvailable]")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads (torch.set_num_threads).")
@click.option("--cudnn-benchmark/--no-cudnn-benchmark", default=True, show_default=True,
              help="torch.backends.cudnn.benchmark during the sweep.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random weights and inputs.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Run directory. [default: runs/speed-<what>-<device>-<dtype>-<layout>-pt<torch>-<time>]")
@click.option("--overwrite", is_flag=True, help="Replace speed CSVs already in --out.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines (the final table is still printed).")
def speed_cmd(suite, arch, backbone, options, device, input_size, batch_sizes, max_batch, dtype,
              channels_last, compile_, isolate, warmup, repeats, budget_s, max_memory_mib, threads,
              cudnn_benchmark, seed, out_dir, overwrite, quiet) -> None:
    """Fps and memory over batch sizes for every model (the paper's Table 2): speed.csv, speed_summary.csv."""
    import json
    from pathlib import Path

    from bench import speed

    if bool(suite) == bool(arch):
        raise click.UsageError("give either --suite or --arch with --backbone")
    if arch and not backbone:
        raise click.UsageError("--arch needs --backbone")
    if suite and (backbone or options):
        raise click.UsageError("--backbone and --option go with --arch, not --suite")
    try:
        if suite:
            targets = speed.speed_targets(suite)
        else:
            parsed = {}
            for item in options:
                key, sep, value = item.partition("=")
                if not sep or not key:
                    raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--option")
                try:
                    parsed[key] = json.loads(value)
                except json.JSONDecodeError:
                    parsed[key] = value
            targets = tuple(speed.SpeedTarget(a.strip(), b.strip(), parsed)
                            for a in arch.split(",") for b in backbone.split(","))
        config = speed.SpeedConfig(
            targets=targets, device=device, input_hw=speed.parse_input_size(input_size),
            batch_sizes=speed.parse_batch_sizes(batch_sizes), max_batch=max_batch, dtype=dtype,
            channels_last=channels_last, compile=compile_, isolate=isolate, warmup=warmup, repeats=repeats,
            budget_s=budget_s, max_memory_mib=max_memory_mib, threads=threads,
            cudnn_benchmark=cudnn_benchmark, seed=seed, suite=Path(suite).stem if suite else None)
        progress = None if quiet else (lambda m: click.echo(m, err=True))
        result = speed.run_sweep(config, out_dir, progress=progress, overwrite=overwrite)
    except (ValueError, FileExistsError) as e:  # SpeedSuiteError is a ValueError
        raise click.ClickException(str(e)) from None

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    click.echo(f"{'model':<24}{'device':>8}{'fps (b 1)':>11}{'fps (max b)':>16}{'max b':>7}{'net RAM':>12}"
               f"{'RAM / img':>12}  source (R^2)")
    for s in result.summaries:
        fps_max = f"{num(s.fps_max, '.2f')} (b {s.fps_max_batch})" if s.fps_max is not None else "-"
        r2 = num(s.ram_per_img_r2, ".3f")
        click.echo(f"{s.name:<24}{s.device_kind:>8}{num(s.fps_b1, '.2f'):>11}{fps_max:>16}"
                   f"{num(s.max_batch_fit, 'd'):>7}{num(s.net_ram_mib, '.1f') + ' MiB':>12}"
                   f"{num(s.ram_per_img_mib, '.1f') + ' MiB':>12}  {s.ram_per_img_source} ({r2})")
    click.echo(f"run directory: {result.out_dir}")


def main() -> None:
    cli()
