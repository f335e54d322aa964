"""Reading a model's outputs: how many labels, which head, per-label probabilities."""

import keras
import numpy as np

HEADS = ("sigmoid", "softmax2", "softmax")
# Test-time augmentation: "flip" averages each image's scores with its mirror image's.
TTA = ("none", "flip")


def label_probabilities(outputs):
    """Per-label probabilities from a model's raw outputs.

    A per-label 2-way softmax head outputs ``[n, labels, 2]``; its
    ``[..., 1]`` (present) channel is the label's probability. Sigmoid
    outputs ``[n, labels]`` pass through.

    Args:
        outputs: array of shape ``(n, L)`` or ``(n, L, 2)``.

    Returns:
        ``np.ndarray`` of shape ``(n, L)``.

    Example:
        >>> label_probabilities(np.array([[[0.3, 0.7], [0.9, 0.1]]])).tolist()
        [[0.7, 0.1]]
    """
    outputs = np.asarray(outputs)
    if outputs.ndim == 3:
        if outputs.shape[-1] != 2:
            raise ValueError(f"expected [n, labels, 2] outputs, got shape {outputs.shape}")
        return outputs[..., 1]
    return outputs


def num_model_labels(model):
    """Number of labels a multi-label model predicts.

    Args:
        model: a model with ``[batch, labels]`` or ``[batch, labels, 2]``
            outputs.

    Returns:
        The label count.

    Example:
        >>> inputs = keras.Input((8,))
        >>> num_model_labels(keras.Model(inputs, keras.layers.Dense(4)(inputs)))
        4
    """
    shape = model.output_shape
    if isinstance(shape, dict) or (isinstance(shape, list) and isinstance(shape[0], tuple)):
        raise ValueError(f"model {model.name} has several outputs; expected one label output")
    return int(shape[1])


def output_heads(model):
    """The kind of head behind each output of a model.

    ``"softmax2"``: ``[batch, labels, 2]``, a 2-way softmax per label;
    ``"softmax"``: one softmax over classes (one class per image);
    ``"sigmoid"``: one independent probability per label (also any other
    2-D output whose activation cannot be told).

    Args:
        model: a built ``keras.Model``.

    Returns:
        Dict output name -> head kind, in output order.

    Example:
        >>> inputs = keras.Input((8,))
        >>> out = keras.layers.Dense(3, activation="softmax", name="classes")(inputs)
        >>> output_heads(keras.Model(inputs, out))
        {'classes': 'softmax'}
    """
    heads = {}
    for tensor, name in zip(model.outputs, model.output_names):
        shape = tuple(tensor.shape)
        if len(shape) == 3 and shape[-1] == 2:
            heads[name] = "softmax2"
            continue
        if len(shape) != 2:
            raise ValueError(f"output {name!r} of model {model.name} has shape {shape}; expected "
                             f"[batch, labels] or [batch, labels, 2]")
        layer = _producing_layer(model, tensor)
        activation = getattr(getattr(layer, "activation", None), "__name__", None)
        if isinstance(layer, keras.layers.Softmax) or activation == "softmax":
            heads[name] = "softmax"
        else:
            heads[name] = "sigmoid"
    return heads


def _producing_layer(model, tensor):
    """The layer behind an output, looking through pass-through ``Identity`` layers."""
    history = getattr(tensor, "_keras_history", None)
    layer = history[0] if history else None
    while isinstance(layer, keras.layers.Identity):
        node = layer._inbound_nodes[0]
        layer = node.input_tensors[0]._keras_history[0]
    return layer


def predict_batches(model, dataset, tta="none", progress=None):
    """Runs ``model`` over a finite dataset of ``(x, y)`` batches.

    Uses ``predict_on_batch`` per batch, which avoids the start-up cost
    ``model.predict`` pays on every call.

    Args:
        model: a Keras model.
        dataset: iterable of ``(x, y)`` batches (``y`` may be ``None``).
        tta: ``"none"`` or ``"flip"`` (see ``tta_probabilities``).
        progress: optional ``progress.Progress`` told of each batch's images.

    Returns:
        ``(y_true, scores)`` as numpy arrays; ``scores`` are per-label
        probabilities ``(n, L)`` whatever the head (``y_true`` is ``None``
        when the dataset carries no labels).

    Example:
        >>> inputs = keras.Input((2,))
        >>> model = keras.Model(inputs, keras.layers.Dense(3, activation="sigmoid")(inputs))
        >>> y, p = predict_batches(model, [(np.zeros((4, 2)), np.ones((4, 3)))])
        >>> y.shape, p.shape
        ((4, 3), (4, 3))
    """
    ys, ps = [], []
    for batch in dataset:
        x, y = batch if isinstance(batch, tuple) else (batch, None)
        ps.append(tta_probabilities(lambda images: model.predict_on_batch(host_batch(images)), x, tta))
        if y is not None:
            ys.append(np.asarray(y))
        if progress is not None:
            progress.update(len(ps[-1]))
    if progress is not None:
        progress.close()
    scores = np.concatenate(ps) if ps else np.zeros((0, model.output_shape[1]))
    return (np.concatenate(ys) if ys else None), scores


def tta_probabilities(forward, images, tta="none"):
    """Per-label probabilities of a batch, averaged over its test-time views.

    ``"flip"`` averages the probabilities of each image and of its
    left-right mirror image, so an image and its mirror get the same scores.

    Args:
        forward: function from an image batch ``(n, h, w, 3)`` to model outputs.
        images: the batch (array or tensor).
        tta: a name from ``TTA``.

    Returns:
        ``np.ndarray`` ``(n, L)``.

    Example:
        >>> forward = lambda x: np.asarray(x)[:, 0, :, 0]  # the first row's red pixels
        >>> tta_probabilities(forward, np.arange(4.0).reshape(1, 1, 4, 1), "flip").tolist()
        [[1.5, 1.5, 1.5, 1.5]]
    """
    if tta not in TTA:
        raise ValueError(f"tta must be one of {', '.join(TTA)}; got {tta!r}")
    scores = label_probabilities(forward(images))
    if tta == "flip":
        mirrored = np.ascontiguousarray(np.flip(np.asarray(images), axis=2))
        scores = (np.asarray(scores, np.float64) + label_probabilities(forward(mirrored))) / 2.0
    return scores


def host_batch(x):
    """A tf.data batch as the active Keras backend's ``predict_on_batch`` takes it.

    TensorFlow takes its own tensors as they are; JAX and PyTorch take
    NumPy arrays, not TensorFlow tensors (the input pipeline is tf.data on
    every backend).

    Args:
        x: a tensor, an array, or a dict / tuple of them.

    Returns:
        ``x`` unchanged under TensorFlow, else the same structure of
        NumPy arrays.

    Example:
        >>> host_batch(np.zeros((2, 3))).shape
        (2, 3)
    """
    if keras.backend.backend() == "tensorflow":
        return x
    return keras.tree.map_structure(np.asarray, x)
