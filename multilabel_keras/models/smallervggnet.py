"""SmallerVGGNet: the five-convolution network of the classic fashion recipe."""

import keras
from keras import layers

from multilabel_keras.models.registry import register_model
from multilabel_keras.models.weights import load_model_weights


@register_model("smallervggnet")
def smallervggnet(num_labels, input_shape=(96, 96, 3), weights=None, dropout=0.5, pooling=None,
                  stage_dropout=0.25):
    """Builds SmallerVGGNet with ``num_labels`` independent sigmoid outputs.

    CONV32 → pool 3 → (CONV64 ×2) → pool 2 → (CONV128 ×2) → pool 2 →
    dense 1024 → ``num_labels`` sigmoid; each convolution is followed by
    ReLU and batch normalization, each stage by dropout 0.25. The model
    takes raw 0-255 pixels and rescales them itself, so training and
    prediction can never disagree about scaling.

    Args:
        num_labels: number of output labels.
        input_shape: ``(height, width, channels)``; at least 24×24.
        weights: ``None`` or a path to a ``.weights.h5`` file of this model.
        dropout: dropout rate before the output layer.
        pooling: ``None`` (the recipe's flatten → dense 1024) or ``"avg"``
            (global average pooling → dense 1024: 94% fewer weights at 96
            px, and a label's evidence may sit anywhere in the image).
        stage_dropout: dropout rate after each convolution stage.

    Returns:
        An uncompiled ``keras.Model`` named ``smallervggnet``.

    Example:
        >>> model = smallervggnet(num_labels=6, input_shape=(32, 32, 3))
        >>> model.output_shape
        (None, 6)
    """
    input_shape = tuple(input_shape or (96, 96, 3))
    if min(input_shape[:2]) < 24:
        raise ValueError(f"smallervggnet needs images of at least 24x24, got {input_shape}")
    inputs = keras.Input(input_shape, name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    stages = [(32, 1, 3), (64, 2, 2), (128, 2, 2)]
    for stage, (filters, convs, pool) in enumerate(stages, start=1):
        for i in range(1, convs + 1):
            x = layers.Conv2D(filters, 3, padding="same", name=f"conv{stage}_{i}")(x)
            x = layers.Activation("relu", name=f"relu{stage}_{i}")(x)
            x = layers.BatchNormalization(name=f"bn{stage}_{i}")(x)
        x = layers.MaxPooling2D(pool, name=f"pool{stage}")(x)
        x = layers.Dropout(stage_dropout, name=f"dropout{stage}")(x)
    if pooling not in (None, "avg"):
        raise ValueError(f"pooling must be None or 'avg', got {pooling!r}")
    x = layers.GlobalAveragePooling2D(name="pooler")(x) if pooling else layers.Flatten(name="flatten")(x)
    x = layers.Dense(1024, name="fc")(x)
    x = layers.Activation("relu", name="fc_relu")(x)
    x = layers.BatchNormalization(name="fc_bn")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_labels, activation="sigmoid", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="smallervggnet")
    return load_model_weights(model, weights, "smallervggnet")
