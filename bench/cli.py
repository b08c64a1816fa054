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


def main() -> None:
    cli()
