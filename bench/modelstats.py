"""``bench models``: every registered model built on the given backbones (random weights), with parameter
counts, output shapes and, when asked, forward FLOPs and CPU forward times at batch 1.

Times come from ``bench.speed``'s timing core with the models' forwards interleaved, so that load drift hits
all alike; drnet/rside ratios per backbone state the paper's speed claim as a ratio (absolute times depend on
the machine, which the header names).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "ModelStats",
    "ModelsRequest",
    "UnknownNameError",
    "model_stats",
    "models_table",
    "select_names",
    "time_forwards",
]


class UnknownNameError(ValueError):
    """An unknown architecture or backbone name; ``option`` is the command-line option that gave it."""

    def __init__(self, message: str, option: str):
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class ModelsRequest:
    """What ``bench models`` was asked: which models, on which input, and what to measure."""

    archs: tuple[str, ...]
    backbones: tuple[str, ...]
    height: int
    width: int
    flops: bool = False  # count forward FLOPs (torch.utils.flop_counter) at batch 1
    time: bool = False  # time CPU forwards at batch 1 (inference mode)
    repeats: int = 20  # timed forwards per model
    warmup: int = 3  # untimed forwards per model first
    threads: int | None = None  # torch CPU threads (None: torch's)


class ModelStats(NamedTuple):
    """One model on one input: parameter count, output shape, forward GFLOPs (nan when not counted)."""

    parameters: int
    output_shape: tuple[int, ...]
    gflops: float


def select_names(archs: str | None, backbones: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(architectures, backbones) from comma-separated names (``archs`` None: every registered architecture);
    UnknownNameError lists the available ones."""
    from architectures import available_models

    registered = available_models()
    wanted = list(registered) if archs is None else _split_names(archs, registered, "architecture", "--archs")
    names = _split_names(backbones, {b for a in wanted for b in registered[a]}, "backbone", "--backbones")
    return tuple(wanted), tuple(names)


def _split_names(text: str, allowed: Iterable[str], what: str, option: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise UnknownNameError(
            f"unknown {what}(s) {', '.join(unknown) or '(none given)'}; available: {', '.join(sorted(allowed))}",
            option,
        )
    return names


def models_table(request: ModelsRequest) -> Iterator[str]:
    """The lines ``bench models`` prints, one model at a time (each backbone's models are built, measured and
    dropped before the next backbone's)."""
    import torch

    from architectures import available_models, build_model

    registered = available_models()
    if request.threads is not None:
        torch.set_num_threads(request.threads)
    x = torch.randn(1, 3, request.height, request.width, generator=torch.Generator().manual_seed(0))
    extra = request.time or request.flops
    if extra:
        yield _machine_line(request)
    yield _header(request)
    for backbone in request.backbones:
        models = {arch: build_model(arch, backbone).eval() for arch in request.archs if backbone in registered[arch]}
        stats = {arch: model_stats(model, x, request.flops) for arch, model in models.items()}
        times = time_forwards(models, x, request.warmup, request.repeats) if request.time else {}
        for arch, st in stats.items():
            yield _row(request, f"{arch}-{backbone}", st, times.get(arch))
        if extra and {"drnet", "rside"} <= set(stats):
            yield _ratio_line(request, backbone, stats, times)
        del models


def model_stats(model, x, flops: bool) -> ModelStats:
    """Parameters, output shape and (with ``flops``) forward GFLOPs of ``model`` on ``x``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    n = sum(p.numel() for p in model.parameters())
    with torch.inference_mode():
        if not flops:
            return ModelStats(n, tuple(model(x).shape), float("nan"))
        with FlopCounterMode(display=False) as counter:
            out = model(x)
    return ModelStats(n, tuple(out.shape), counter.get_total_flops() / 1e9)


def time_forwards(models: Mapping[str, Any], x, warmup: int, repeats: int) -> dict:
    """Each model's forward on ``x`` timed by bench.speed's timing core (a ``Timing`` per name, seconds), the
    models taking turns so that load drift hits all alike; ``warmup`` untimed forwards each first."""
    import torch

    from bench.speed import time_steps

    with torch.inference_mode():
        for model in models.values():
            for _ in range(warmup):
                model(x)
        return time_steps({name: functools.partial(model, x) for name, model in models.items()}, None, repeats)


def _machine_line(request: ModelsRequest) -> str:
    import torch

    from bench.provenance import cpu_model

    parts = [
        f"input 1x3x{request.height}x{request.width}, random weights, CPU {cpu_model()}, "
        f"{torch.get_num_threads()} torch thread(s), torch {torch.__version__}"
    ]
    if request.flops:
        parts.append("FLOPs: torch.utils.flop_counter (conv/matmul, 2 per multiply-add)")
    if request.time:
        parts.append(
            f"time: median and IQR of {request.repeats} interleaved forwards per model after {request.warmup} "
            "warm-up, inference mode"
        )
    return "# " + "\n# ".join(parts)


def _header(request: ModelsRequest) -> str:
    header = f"{'model':<24}{'parameters':>14}{f'output ({request.height}x{request.width} input)':>26}"
    header += f"{'GFLOPs':>10}" if request.flops else ""
    return header + (f"{'ms median':>11}{'IQR':>8}" if request.time else "")


def _row(request: ModelsRequest, name: str, st: ModelStats, timing) -> str:
    line = f"{name:<24}{st.parameters:>14,}{str(st.output_shape):>26}"
    line += f"{st.gflops:>10.2f}" if request.flops else ""
    return line + (f"{timing.median_s * 1e3:>11.1f}{timing.iqr_s * 1e3:>8.1f}" if request.time else "")


def _ratio_line(request: ModelsRequest, backbone: str, stats: dict[str, ModelStats], times: dict) -> str:
    d, r = stats["drnet"], stats["rside"]
    line = f"{'drnet/rside ' + backbone:<24}{d.parameters / r.parameters:>13.3f}x{'':>26}"
    line += f"{d.gflops / r.gflops:>9.3f}x" if request.flops else ""
    if request.time:
        line += f"{times['drnet'].median_s / times['rside'].median_s:>10.3f}x"
    return line
