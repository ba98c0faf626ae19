"""Models for the book. Importing this package registers every model.

The classes live in their family's module, for example
``from resnotes.models.pyramidnet import PyramidNet``; they are not
re-exported here, so that ``resnotes.models.pyramidnet`` stays the module.
"""

from . import (
    attention,
    densenet,
    preact_resnet,
    pyramidnet,
    se_cbam,
    stochastic_depth,
    wide_resnet,
)  # noqa: F401  (registers their models)
from .registry import (
    RENAMED,
    ModelSpec,
    PaperFigures,
    canonical_name,
    count_flops,
    count_parameters,
    create_model,
    get_spec,
    list_models,
    register,
)

__all__ = [
    "RENAMED",
    "ModelSpec",
    "PaperFigures",
    "canonical_name",
    "count_flops",
    "count_parameters",
    "create_model",
    "get_spec",
    "list_models",
    "register",
]
