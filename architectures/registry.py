"""One registry of model factories: ``build_model(arch, backbone, weights=None, **options)``.

Like timm's ``create_model``: each architecture registers a factory by name; unknown architectures,
backbones or options raise an error that lists what is available.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model modules import torch when a model is first looked up, not on import
    from torch import nn

__all__ = ["available_models", "build_model", "model_options", "register_model"]

_FACTORIES: dict[str, Callable[..., nn.Module]] = {}
_BACKBONES: dict[str, tuple[str, ...]] = {}


def register_model(name: str, backbones: tuple[str, ...]) -> Callable:
    """Decorator: register ``factory(backbone, weights=None, **options)`` under ``name``."""

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _FACTORIES:
            raise ValueError(f"model {name!r} is already registered")
        _FACTORIES[name] = factory
        _BACKBONES[name] = tuple(backbones)
        return factory

    return decorator


def available_models() -> dict[str, tuple[str, ...]]:
    """Registered architectures and the backbones each accepts."""
    _import_builtin_models()
    return dict(_BACKBONES)


def model_options(arch: str) -> dict[str, object]:
    """The options ``arch`` accepts (besides backbone and weights) with their defaults."""
    factory = _factory(arch)
    params = inspect.signature(factory).parameters
    return {n: p.default for n, p in params.items() if n not in ("backbone", "weights")}


def build_model(arch: str, backbone: str, weights: str | Path | None = None, **options) -> nn.Module:
    """Build ``arch`` on ``backbone``.

    weights: None (random init, what tests use), "imagenet" (encoder from the local torch hub cache; never
    downloaded) or a path to an encoder state_dict file. options: architecture switches, see
    ``model_options(arch)``.
    """
    factory = _factory(arch)
    if backbone not in _BACKBONES[arch]:
        raise KeyError(f"{arch} has no backbone {backbone!r}; available: {', '.join(_BACKBONES[arch])}")
    valid = model_options(arch)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        listed = ", ".join(f"{k}={v!r}" for k, v in valid.items()) or "none"
        raise TypeError(f"{arch} got unknown option(s) {', '.join(unknown)}; valid options: {listed}")
    return factory(backbone, weights=weights, **options)


def _factory(arch: str) -> Callable[..., nn.Module]:
    _import_builtin_models()
    try:
        return _FACTORIES[arch]
    except KeyError:
        raise KeyError(f"unknown architecture {arch!r}; available: {', '.join(sorted(_FACTORIES))}") from None


def _import_builtin_models() -> None:
    """Registration happens on import of the model modules; do it lazily to keep imports one-way."""
    from . import models  # noqa: F401
