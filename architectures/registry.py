"""One registry of model factories: ``build_model(arch, backbone, weights=None, **options)``.

Like timm's ``create_model``: each architecture registers a factory by name; unknown architectures,
backbones or options raise an error that lists what is available.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ._registry import Registry

if TYPE_CHECKING:  # the model modules import torch when a model is first looked up, not on import
    from torch import nn

__all__ = ["MODELS", "available_models", "build_model", "model_options", "register_model", "unregister_model"]

MODELS: Registry[Callable[..., nn.Module]] = Registry("architecture")  # name -> factory
_BACKBONES: dict[str, tuple[str, ...]] = {}
_CONFIGS: dict[str, type] = {}  # name -> the dataclass of the options the factory passes on as **options


def register_model(name: str, backbones: tuple[str, ...], config: type | None = None) -> Callable:
    """Decorator: register ``factory(backbone, weights=None, **options)`` under ``name``.

    ``config``: the model's config dataclass when the factory takes its options as ``**options`` and hands
    them to it; ``model_options`` then lists the dataclass's fields and defaults.
    """

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS.register(name, factory)
        _BACKBONES[name] = tuple(backbones)
        if config is not None:
            _CONFIGS[name] = config
        return factory

    return decorator


def available_models() -> dict[str, tuple[str, ...]]:
    """Registered architectures and the backbones each accepts."""
    _import_builtin_models()
    return {name: _BACKBONES[name] for name in MODELS}


def unregister_model(name: str) -> None:
    """Remove ``name`` and its backbones and options (tests that register temporary models clean up with it)."""
    MODELS.pop(name)
    _BACKBONES.pop(name, None)
    _CONFIGS.pop(name, None)


def model_options(arch: str) -> dict[str, object]:
    """The options ``arch`` accepts (besides backbone and weights) with their defaults: the fields of its
    config dataclass (if it has one), then the factory's own keyword parameters."""
    factory = _factory(arch)
    params = inspect.signature(factory).parameters
    own = {
        n: p.default
        for n, p in params.items()
        if n not in ("backbone", "weights") and p.kind is not inspect.Parameter.VAR_KEYWORD
    }
    config = _CONFIGS.get(arch)
    return {**(_config_defaults(config) if config is not None else {}), **own}


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


def _config_defaults(config: type) -> dict[str, object]:
    """Field name -> default of a config dataclass (every field needs a default to be an option)."""
    out = {}
    for f in dataclasses.fields(config):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
        else:
            raise TypeError(f"{config.__name__}.{f.name} has no default, so it cannot be a model option")
    return out


def _factory(arch: str) -> Callable[..., nn.Module]:
    _import_builtin_models()
    return MODELS[arch]


def _import_builtin_models() -> None:
    """Registration happens on import of the model modules; do it lazily to keep imports one-way."""
    from . import models  # noqa: F401
