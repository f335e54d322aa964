"""Model builders: ``build_model(name, num_labels, …)`` and the registry."""

import inspect

from multilabel_keras.models import mlp, smallervggnet, transfer, twin  # noqa: F401  (registers)
from multilabel_keras.models.outputs import num_model_labels
from multilabel_keras.models.registry import get_builder, list_models, register_model


def build_model(name, num_labels=None, input_shape=None, weights=None, **kwargs):
    """Builds a registered model by name.

    Args:
        name: a name from ``list_models()``, e.g. ``"smallervggnet"``.
        num_labels: number of output labels (``num_classes=`` is the same,
            for the twin model's classes).
        input_shape: input shape; ``None`` uses the model's default.
        weights: ``None`` or a path to a ``.weights.h5`` file.
        **kwargs: builder-specific options (``dropout`` …).

    Returns:
        An uncompiled ``keras.Model``.

    Example:
        >>> model = build_model("smallervggnet", num_labels=6, input_shape=(32, 32, 3))
        >>> model.name
        'smallervggnet'
    """
    if num_labels is None:
        num_labels = kwargs.pop("num_classes", None)
    elif "num_classes" in kwargs:
        raise ValueError("pass num_labels or num_classes, not both")
    if not isinstance(num_labels, int) or num_labels < 1:
        raise ValueError(f"num_labels must be a positive integer, got {num_labels!r}")
    builder = get_builder(name)
    accepted = inspect.signature(builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            takes = sorted(k for k in accepted if k not in ("num_labels", "input_shape", "weights"))
            raise ValueError(f"model {name!r} has no option {', '.join(map(repr, unknown))} "
                             f"(it takes {', '.join(takes) or 'no options'})")
    return builder(num_labels=num_labels, input_shape=input_shape, weights=weights, **kwargs)


__all__ = ["build_model", "list_models", "num_model_labels", "register_model"]
