"""A backbone's weights taken out of a whole saved model (a fine-tuned classifier's ``.h5``)."""

import os

from multilabel_keras.io import atomic_path


def _groups(h5):
    # Legacy full-model files keep weights under "model_weights"; a backbone
    # nested in the classifier is one group there, named after the backbone.
    root = h5["model_weights"] if "model_weights" in h5 else h5
    yield root
    for name in root:
        if hasattr(root[name], "keys"):
            yield root[name]


def backbone_weights_from_h5(h5_path, backbone, out_path, image_size=None):
    """Writes a ``.weights.h5`` file of a backbone found inside a whole-model Keras ``.h5`` file.

    People share fine-tuned classifiers as one ``.h5`` file (backbone plus
    their own head); this copies the backbone's arrays out by layer name, so
    the backbone can feed this library's heads and LP-FT recipe. Every
    weight of the backbone must be found with its shape; nothing is guessed.

    Args:
        h5_path: the whole-model file (Keras 2 / ``tf.keras`` HDF5 format).
        backbone: a ``keras.applications`` name this library knows
            (``"mobilenetv2"``).
        out_path: the ``.weights.h5`` file to write (temporary name, then
            renamed).
        image_size: input side the backbone is built at (weights do not
            depend on it for these convolutional networks).

    Returns:
        The number of weight arrays copied.

    Example:
        >>> backbone_weights_from_h5("dog_breed_mobilenetv2.h5", "mobilenetv2",
        ...                          "mobilenetv2.weights.h5", 96)  # doctest: +SKIP
        262
    """
    import h5py

    from multilabel_keras.models.transfer import build_backbone

    if not str(out_path).endswith(".weights.h5"):
        raise ValueError(f"out_path must end with .weights.h5, got {out_path}")
    size = (image_size, image_size, 3) if image_size else None
    net = build_backbone(backbone, size)[0]
    wanted = [(layer.name, variable) for layer in net.layers for variable in layer.weights]
    try:
        f = h5py.File(os.fspath(h5_path), "r")
    except FileNotFoundError:
        raise FileNotFoundError(f"model file not found: {h5_path}") from None
    except OSError as err:
        if err.errno is not None:
            raise
        raise ValueError(f"{h5_path} is not an HDF5 Keras model file: {err}") from None
    with f:
        best, missing = None, None
        for group in _groups(f):
            absent = [f"{name}/{v.path.rsplit('/', 1)[-1]}" for name, v in wanted
                      if f"{name}/{v.path.rsplit('/', 1)[-1]}" not in group]
            if not absent:
                best = group
                break
            if missing is None or len(absent) < len(missing):
                missing = absent
        if best is None:
            raise ValueError(f"{h5_path} holds no complete {backbone} backbone: "
                             f"{len(missing)} of {len(wanted)} weights missing, e.g. {missing[0]}")
        for name, variable in wanted:
            key = f"{name}/{variable.path.rsplit('/', 1)[-1]}"
            value = best[key][()]
            if value.shape != tuple(variable.shape):
                raise ValueError(f"{h5_path}: weight {key} has shape {value.shape}, "
                                 f"{backbone} needs {tuple(variable.shape)}")
            variable.assign(value)
    with atomic_path(out_path) as tmp:
        net.save_weights(tmp)
    return len(wanted)
