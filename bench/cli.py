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
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="HDF5 file to write [default: ${DRNET_BENCH_DATA:-data}/synthetic-s{seed}-n{frames}.h5].")
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
    click.echo(f"wrote {path}: {frames} frames of {height}x{width}, seed {seed} "
               f"({seconds:.1f} s, {frames / seconds:.1f} frames/s)")


@data_group.command("info")
@click.argument("path", type=click.Path())
@click.option("--max-frames", type=click.IntRange(min=2), default=200, show_default=True,
              help="Scan the depth of at most this many evenly spaced frames per file.")
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
@click.option("--frames", type=click.IntRange(min=1), default=20, show_default=True,
              help="Synthetic frames rendered (640x480, one thread) for the fps figure.")
@click.option("--workers", default="0,2", show_default=True, help="DataLoader worker counts (comma list).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--batches", type=click.IntRange(min=1), default=30, show_default=True,
              help="Timed batches per worker count (after 2 warm-up batches).")
def data_bench_cmd(data: str, frames: int, workers: str, batch_size: int, batches: int) -> None:
    """Synthetic frames/s on one core and DataLoader images/s with RSIDE's training transforms."""
    from architectures.data.bench_loader import format_speeds, loader_speed, synth_speed

    synth = synth_speed(frames)
    loaders = [loader_speed(data, int(w), batch_size, batches) for w in workers.split(",")]
    click.echo(format_speeds(synth, loaders))


# --- end data ----------------------------------------------------------------------------------------------


def main() -> None:
    cli()
