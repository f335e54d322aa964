"""A dense network for feature vectors (hidden 500 → 100)."""

import keras
from keras import layers

from multilabel_keras.models.registry import register_model
from multilabel_keras.models.weights import load_model_weights


@register_model("mlp")
def mlp(num_labels, input_shape=(2048,), weights=None, hidden=(500, 100), dropout=0.0):
    """Builds a multi-layer perceptron with sigmoid outputs.

    Meant for feature vectors (e.g. pooled backbone features). Given an
    image shape instead, it rescales 0-255 pixels to 0-1 and flattens them,
    which makes a quick baseline.

    Args:
        num_labels: number of output labels.
        input_shape: ``(features,)`` or ``(height, width, channels)``.
        weights: ``None`` or a path to a ``.weights.h5`` file of this model.
        hidden: sizes of the ReLU hidden layers.
        dropout: dropout rate after each hidden layer.

    Returns:
        An uncompiled ``keras.Model`` named ``mlp``.

    Example:
        >>> model = mlp(num_labels=5, input_shape=(2048,))
        >>> model.output_shape
        (None, 5)
    """
    input_shape = tuple(input_shape or (2048,))
    inputs = keras.Input(input_shape, name="features" if len(input_shape) == 1 else "image")
    x = inputs
    if len(input_shape) > 1:
        x = layers.Rescaling(1.0 / 255, name="rescale")(x)
        x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(hidden, start=1):
        x = layers.Dense(units, activation="relu", name=f"hidden{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"dropout{i}")(x)
    outputs = layers.Dense(num_labels, activation="sigmoid", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="mlp")
    return load_model_weights(model, weights, "mlp")
