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
        >>> import numpy as np
        >>> from multilabel_keras import build_model
        >>> trained = build_model("smallervggnet", 6, (32, 32, 3))
        >>> trained.save_weights("smallervggnet.weights.h5")
        >>> model = build_model("smallervggnet", 6, (32, 32, 3))
        >>> model = load_model_weights(model, "smallervggnet.weights.h5", "smallervggnet")
        >>> all(np.array_equal(a, b) for a, b in zip(model.get_weights(), trained.get_weights()))
        True
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
    return load_weights_file(model, path, f"model {name}")


def load_weights_file(model, path, what):
    """Loads a weights file into ``model``, naming the file in every error.

    Args:
        model: the built ``keras.Model``.
        path: a ``.weights.h5`` (or legacy Keras ``.h5``) file.
        what: what the weights are for, in error messages (``"model mlp"``).

    Returns:
        The model.

    Example:
        >>> from multilabel_keras import build_model
        >>> build_model("smallervggnet", 6, (32, 32, 3)).save_weights("six.weights.h5")
        >>> model = build_model("smallervggnet", 4, (32, 32, 3))
        >>> load_weights_file(model, "six.weights.h5", "model smallervggnet")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: weights file six.weights.h5 does not fit model smallervggnet: ...
        >>> load_weights_file(model, "missing.weights.h5", "model smallervggnet")
        Traceback (most recent call last):
        ...
        FileNotFoundError: weights file not found: missing.weights.h5
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        with quiet_nested_container_warning():
            model.load_weights(path)
    except ValueError as err:
        raise ValueError(f"weights file {path} does not fit {what}: {err}") from None
    except OSError as err:
        if err.errno is not None:  # permission denied and the like: the OS's own error
            raise
        # h5py's errors carry no errno: the file is not HDF5, or is cut short.
        raise ValueError(f"weights file {path} is not a readable Keras weights file (.h5): "
                         f"{err}") from None
    except (KeyError, TypeError, RuntimeError) as err:
        raise ValueError(f"weights file {path} is damaged or not Keras weights: {err}") from None
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
