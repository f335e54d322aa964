"""The twin-input multi-loss model for fine-grained classes (Xception by default)."""

import keras
from keras import layers, ops

from multilabel_keras.models.registry import register_model
from multilabel_keras.models.transfer import build_encoder


@keras.saving.register_keras_serializable(package="multilabel_keras")
class EuclideanDistance(keras.layers.Layer):
    """Euclidean distance between two batches of vectors, ``(batch, 1)``.

    The square root is taken of ``max(d², epsilon)``: its gradient at a
    distance of zero (two identical images) would otherwise be infinite.

    Args:
        squared: return the squared distance (no square root).
        epsilon: floor under the squared distance before the root.
        **kwargs: passed to ``keras.layers.Layer``.

    Example:
        >>> d = EuclideanDistance()([ops.array([[0.0, 3.0]]), ops.array([[4.0, 0.0]])])
        >>> float(d[0, 0])
        5.0
    """

    def __init__(self, squared=False, epsilon=1e-7, **kwargs):
        super().__init__(**kwargs)
        self.squared = bool(squared)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        a, b = inputs
        d2 = ops.sum(ops.square(a - b), axis=-1, keepdims=True)
        return d2 if self.squared else ops.sqrt(ops.maximum(d2, self.epsilon))

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], 1)

    def get_config(self):
        return {**super().get_config(), "squared": self.squared, "epsilon": self.epsilon}


DISTANCES = {"euclidean": False, "squared": True}


@register_model("xception_twin")
def twin_model(num_labels, input_shape=None, weights=None, backbone="xception", distance="euclidean",
               dropout=0.5, pooling="avg", class_activation="softmax", freeze_backbone=None,
               bn_inference=None, preprocessing=None):
    """Two images, one shared backbone, two category heads and a same/different head.

    ``image_a`` and ``image_b`` go through one ``encoder`` (preprocessing,
    backbone, pooling: one set of weights). One category head (dropout →
    dense) is applied to each feature vector, giving ``class_a`` and
    ``class_b``; ``same`` is a logistic unit on the distance between the
    two vectors. Training ``same`` pulls features of one class together
    and pushes classes apart. The recipe weighs the losses 1, 1, 0.5.

    Args:
        num_labels: number of classes (``num_classes=`` in ``build_model``).
        input_shape: ``(height, width, 3)``; default the backbone's size.
        weights: ``None``, ``"imagenet"`` or a backbone weights file.
        backbone: any ``keras.applications`` name in lower case.
        distance: ``"euclidean"`` (safe square root) or ``"squared"``.
        dropout: dropout rate of the category head.
        pooling: ``"avg"`` or ``"max"``.
        class_activation: ``"softmax"`` (one class per image) or
            ``"sigmoid"`` (label sets).
        freeze_backbone: default: frozen when ``weights`` is given.
        bn_inference: default: batch norm frozen when ``weights`` is given.
        preprocessing: how the weights want their pixels (see
            ``transfer_model``); ``None``: the family's own.

    Returns:
        An uncompiled ``keras.Model`` with inputs ``image_a``, ``image_b``
        and outputs ``class_a``, ``class_b``, ``same``.

    Example:
        >>> model = twin_model(5, (71, 71, 3))
        >>> model.output_names
        ['class_a', 'class_b', 'same']
    """
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {list(DISTANCES)}, got {distance!r}")
    if class_activation not in ("softmax", "sigmoid"):
        raise ValueError(f"class_activation must be 'softmax' or 'sigmoid', got {class_activation!r}")
    encoder = build_encoder(backbone, input_shape, weights, pooling, freeze_backbone, bn_inference,
                            preprocessing=preprocessing)
    shape = encoder.input_shape[1:]

    drop = layers.Dropout(dropout, name="head_dropout")
    classify = layers.Dense(num_labels, activation=class_activation, name="predictions")
    image_a = keras.Input(shape, name="image_a")
    image_b = keras.Input(shape, name="image_b")
    features_a, features_b = encoder(image_a), encoder(image_b)
    class_a = layers.Identity(name="class_a")(classify(drop(features_a)))
    class_b = layers.Identity(name="class_b")(classify(drop(features_b)))
    d = EuclideanDistance(squared=DISTANCES[distance], name="distance")([features_a, features_b])
    same = layers.Dense(1, activation="sigmoid", name="same")(d)
    return keras.Model([image_a, image_b], [class_a, class_b, same], name=f"{backbone}_twin")


def single_branch(model):
    """One branch of a twin model: an image → its category head.

    Args:
        model: a model from ``twin_model``.

    Returns:
        A ``keras.Model`` sharing the twin's weights, input ``image``,
        output ``predictions``.

    Example:
        >>> single = single_branch(twin_model(3, (71, 71, 3)))
        >>> single.output_shape
        (None, 3)
    """
    encoder = model.get_layer("encoder")
    image = keras.Input(encoder.input_shape[1:], name="image")
    x = model.get_layer("head_dropout")(encoder(image))
    return keras.Model(image, model.get_layer("predictions")(x), name=f"{model.name}_single")


def is_twin(model):
    """Whether ``model`` is a twin model (inputs ``image_a`` and ``image_b``)."""
    return sorted(getattr(t, "name", "") for t in model.inputs) == ["image_a", "image_b"]
