"""Loading weights into built models: ``None``, a local file, or ``"imagenet"``."""

import contextlib
import os
import warnings


def load_model_weights(model, weights, name):
    """Loads ``weights`` into ``model`` for a builder that has no pretrained set.

    Args:
        model: the freshly built ``keras.Model``.
        weights: ``None`` (random init) or a path to a ``.weights.h5`` file
            saved from the same architecture.
        name: the model name, for error messages.

    Returns:
        The model.

    Example:
        >>> model = load_model_weights(model, "smallervggnet.weights.h5",
        ...                            "smallervggnet")  # doctest: +SKIP
    """
    if weights is None:
        return model
    if weights == "imagenet":
        raise ValueError(
            f"{name} has no pretrained 'imagenet' weights; pass weights=None or a "
            "path to a .weights.h5 file saved from the same model"
        )
    path = os.fspath(weights)
    if not path.endswith(".weights.h5"):
        raise ValueError(f"weights must be None or a '.weights.h5' file, got {path!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        with quiet_nested_container_warning():
            model.load_weights(path)
    except ValueError as err:
        raise ValueError(f"weights file {path} does not fit model {name}: {err}") from None
    return model


@contextlib.contextmanager
def quiet_nested_container_warning():
    """Silences Keras 3.15's "Skipping nested container" warning on weight loads.

    Keras emits it for a functional model's internal layer-tracking
    container, which holds no variables of its own, even when every weight
    loads; a real mismatch raises ``ValueError`` instead. The tests compare
    loaded weights array by array.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping nested container")
        yield
