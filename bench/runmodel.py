"""A run's network and its evaluation: what of ``bench run`` decides the numbers, apart from the training loop.

The model is built from the run's seed (every process builds the same one), its depth target size follows the
run's input size, and the test set is scored under the run's protocol with the input geometry the network was
trained on. Kept apart from ``bench.lifecycle`` (directories, messages, reuse) so that the code fingerprint
(``bench.codeprint``) covers this and not the orchestration around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from bench.config import RunConfig
from bench.datasets import DEFAULT_INPUT_SIZE
from bench.evaluate import EvalResult, evaluate
from bench.train import seed_everything

__all__ = ["build_run_model", "depth_size", "evaluate_run", "resolve_protocol", "run_geometry"]


def build_run_model(config: RunConfig, weights: str | None = None) -> nn.Module:
    """The config's network, initialised from the run's seed (so every process builds the same one)."""
    from architectures import build_model

    seed_everything(config.seed)
    return build_model(config.arch, config.backbone, weights=weights, **config.options)


def depth_size(config: RunConfig, model: nn.Module) -> tuple[int, int]:
    """(rows, cols) of the model's depth output for the run's input size: the size training targets are made."""
    h, w = config.input_size or DEFAULT_INPUT_SIZE
    stride = getattr(model, "output_stride", 1)
    return (h // stride, w // stride)


def resolve_protocol(name: str) -> Any:
    """The registered evaluation protocol ``name`` (architectures.data.get_protocol)."""
    from architectures.data import get_protocol

    return get_protocol(name)


def run_geometry(config: RunConfig, test_set: Dataset) -> Any:
    """The input geometry the run's network was trained on (RSIDE's Scale(240) + 228x304 crop, resized to
    ``input_size``), for data built by ``architectures.data.build_dataset`` (its identity names its transform);
    None for datasets that declare no preprocessing (test doubles), whose images are fed as they are."""
    from architectures.data.geometry import train_geometry

    if "transform" not in getattr(test_set, "identity", {}):
        return None
    return train_geometry(config.input_size)


def evaluate_run(
    model: nn.Module, test_set: Dataset, config: RunConfig, device: str, keep: Sequence[int]
) -> EvalResult:
    """``model`` on ``test_set`` under the run's protocol, input geometry, AMP and batch (``keep``: the frames
    whose predictions are stored for the report's grid)."""
    geometry = run_geometry(config, test_set)
    return evaluate(
        model,
        test_set,
        resolve_protocol(config.protocol),
        device=device,
        batch_size=config.eval_batch_size,
        input_size=None if geometry else config.input_size,
        amp=config.amp,
        keep_frames=keep,
        num_workers=config.num_workers,
        geometry=geometry,
    )
