"""The networks (RSIDE, DRNet), their backbones, losses and data: everything both share.

``from architectures import build_model`` is the one way to construct a model.
"""

from .registry import available_models, build_model, model_options

__all__ = ["available_models", "build_model", "model_options"]
