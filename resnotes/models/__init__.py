"""Models for the book. Importing this package registers every model.

The classes live in their family's module, for example
``from resnotes.models.pyramidnet import PyramidNet``; they are not
re-exported here, so that ``resnotes.models.pyramidnet`` stays the module.
"""

# Importing each family's module registers its models.
from . import (  # noqa: F401  # noqa: F401
    attention,
    densenet,
    preact_resnet,
    pyramidnet,
    se_cbam,
    stochastic_depth,
    wide_resnet,
)
from .registry import (
    ModelSpec,
    PaperFigures,
    count_flops,
    count_parameters,
    create_model,
    get_spec,
    list_models,
    register,
)

__all__ = [
    "ModelSpec",
    "PaperFigures",
    "count_flops",
    "count_parameters",
    "create_model",
    "get_spec",
    "list_models",
    "register",
]
