"""Any ``keras.applications`` backbone + one shared multi-label head."""

import functools
import os

import keras
from keras import layers

from multilabel_keras.models.backbones import DEFAULT_SIZES, FAMILIES
from multilabel_keras.models.layers import preprocess_layer
from multilabel_keras.models.registry import register_model
from multilabel_keras.models.weights import load_weights_file

def _applications():
    """Lower-case name -> (keras.applications constructor, its family's ``BackboneSpec``)."""
    table = {}
    for attr in dir(keras.applications):
        constructor = getattr(keras.applications, attr)
        if attr[:1].isupper() and callable(constructor):
            module = constructor.__module__.rsplit(".", 1)[-1]
            if module in FAMILIES:
                table[attr.lower()] = (constructor, FAMILIES[module])
    return table


BACKBONES = _applications()


def build_backbone(name, input_shape=None, weights=None):
    """Builds a ``keras.applications`` network without its top.

    Args:
        name: lower-case application name (``"mobilenetv2"``).
        input_shape: ``(height, width, 3)``; default the network's own size.
        weights: ``None``; ``"imagenet"`` (downloads); or a path to a
            ``.weights.h5`` / Keras ``_notop.h5`` file of this backbone.

    Returns:
        ``(backbone, preprocess_mode)``: the headless ``keras.Model`` named
        ``backbone`` and its ``preprocess_layer`` mode (or ``None``).

    Example:
        >>> backbone, mode = build_backbone("mobilenetv2", (32, 32, 3))
        >>> mode
        'tf'
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; available: {', '.join(sorted(BACKBONES))}")
    constructor, spec = BACKBONES[name]
    mode = spec.preprocess
    size = DEFAULT_SIZES.get(name, spec.default_size)
    input_shape = tuple(input_shape or (size, size, 3))
    path = None
    if weights not in (None, "imagenet"):
        path = os.fspath(weights)
        if not path.endswith(".h5"):
            raise ValueError(f"weights must be None, 'imagenet' or a .weights.h5/.h5 file, got {path!r}")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"weights file not found: {path}")
    try:
        backbone = constructor(include_top=False, input_shape=input_shape,
                               weights=None if path else weights)
    except Exception as err:  # Keras raises a bare Exception when a download fails
        if weights == "imagenet" and "URL fetch failure" in str(err):
            raise ConnectionError(
                f"could not download the ImageNet weights of {name}: {err}. Without internet, "
                f"fetch that file on a machine that has it (or save "
                f"keras.applications.{constructor.__name__}(include_top=False, "
                f"weights='imagenet').save_weights('{name}.weights.h5') there) and pass "
                f"weights='path/to/{name}.weights.h5'"
            ) from err
        raise
    if path:
        load_weights_file(backbone, path, f"backbone {name}")
    backbone.name = "backbone"
    return backbone, mode


def transfer_model(
    num_labels,
    input_shape=None,
    weights=None,
    backbone="mobilenetv2",
    pooling="avg",
    dropout=0.2,
    hidden=None,
    freeze_backbone=None,
    head="sigmoid",
    bn_inference=None,
):
    """A pretrained backbone as feature extractor, plus a multi-label head.

    Raw 0-255 pixels go in: the backbone's own preprocessing is the first
    layer (``preprocess``). A pretrained backbone keeps its batch-norm
    layers frozen, which in Keras 3 also runs them in inference mode, so
    their statistics never drift, whether the rest is frozen or not
    (``training=False`` at call time does not do this for a nested model
    being trained). A backbone trained from random weights needs batch
    norm in training mode, or its untrained statistics shrink activations
    towards zero and no gradient gets through; its moving averages use
    momentum 0.9 so they track the data within tens of steps. The head is ``pooler`` → ``head_dropout`` → optional
    ``head_hidden`` (ReLU) → ``predictions``: one sigmoid per label, or with
    ``head="softmax2"`` a 2-way softmax per label (``head_pairs`` dense →
    ``[batch, num_labels, 2]``, train with ``PairwiseSoftmaxLoss``).

    Args:
        num_labels: number of output labels.
        input_shape: ``(height, width, 3)``; default the backbone's size.
        weights: ``None``, ``"imagenet"`` or a path to backbone weights.
        backbone: ``keras.applications`` name in lower case.
        pooling: ``"avg"`` or ``"max"`` global pooling.
        dropout: dropout rate before the output layer.
        hidden: optional width of a hidden dense layer.
        freeze_backbone: ``True`` trains the head only; default: frozen when
            ``weights`` is given, trainable when starting from random.
        head: ``"sigmoid"`` or ``"softmax2"``.
        bn_inference: freeze the backbone's batch norm (inference mode);
            default: when ``weights`` is given.

    Returns:
        An uncompiled ``keras.Model`` named after the backbone.

    Example:
        >>> model = transfer_model(5, (32, 32, 3), backbone="mobilenetv2")
        >>> model.output_shape, model.get_layer("backbone").trainable
        ((None, 5), True)
    """
    net, mode = build_backbone(backbone, input_shape, weights)
    prepare_backbone(net, weights, freeze_backbone, bn_inference)
    inputs = keras.Input(net.input_shape[1:], name="image")
    x = preprocess_layer(mode)(inputs) if mode else inputs
    x = pooling_layer(pooling)(net(x))
    x = layers.Dropout(dropout, name="head_dropout")(x)
    if hidden:
        x = layers.Dense(hidden, activation="relu", name="head_hidden")(x)
    outputs = head_outputs(x, num_labels, head)
    return keras.Model(inputs, outputs, name=backbone)


def prepare_backbone(net, weights, freeze_backbone=None, bn_inference=None):
    """Sets a backbone's trainable flags and batch-norm behaviour.

    Args:
        net: the backbone from ``build_backbone``.
        weights: the weights it was built with (``None`` = random).
        freeze_backbone: default: frozen when ``weights`` is given.
        bn_inference: default: batch norm frozen (inference mode) when
            ``weights`` is given; from scratch, momentum 0.9 instead.

    Returns:
        ``net``.

    Example:
        >>> net = prepare_backbone(build_backbone("mobilenetv2", (32, 32, 3))[0], None)
    """
    if freeze_backbone is None:
        freeze_backbone = weights is not None
    if bn_inference is None:
        bn_inference = weights is not None
    net.trainable = not freeze_backbone
    for layer in net.layers:
        if isinstance(layer, layers.BatchNormalization):
            if bn_inference:
                layer.trainable = False
            else:
                # ImageNet-sized momenta (0.999 in MobileNetV2) leave the moving
                # statistics at their initial values for thousands of steps, so a
                # small run from scratch predicts at chance in inference mode.
                layer.momentum = min(layer.momentum, 0.9)
    return net


def build_encoder(backbone, input_shape=None, weights=None, pooling="avg", freeze_backbone=None,
                  bn_inference=None, name="encoder"):
    """Raw 0-255 pixels → pooled backbone features, as one nested model.

    Layers are named as in ``transfer_model`` (``preprocess``, ``backbone``,
    ``pooler``), so heads trained on its output join back onto it.

    Args:
        backbone: ``keras.applications`` name in lower case.
        input_shape: ``(height, width, 3)``; default the backbone's size.
        weights: ``None``, ``"imagenet"`` or a backbone weights file.
        pooling: ``"avg"`` or ``"max"``.
        freeze_backbone: see ``prepare_backbone``.
        bn_inference: see ``prepare_backbone``.
        name: the model's name.

    Returns:
        A ``keras.Model`` with output ``(batch, features)``.

    Example:
        >>> build_encoder("mobilenetv2", (32, 32, 3)).output_shape
        (None, 1280)
    """
    net, mode = build_backbone(backbone, input_shape, weights)
    prepare_backbone(net, weights, freeze_backbone, bn_inference)
    image = keras.Input(net.input_shape[1:], name="image")
    x = preprocess_layer(mode)(image) if mode else image
    return keras.Model(image, pooling_layer(pooling)(net(x)), name=name)


def pooling_layer(pooling):
    """The global pooling layer named ``pooler`` (``"avg"`` or ``"max"``)."""
    pool = {"avg": layers.GlobalAveragePooling2D, "max": layers.GlobalMaxPooling2D}
    if pooling not in pool:
        raise ValueError(f"pooling must be 'avg' or 'max', got {pooling!r}")
    return pool[pooling](name="pooler")


def head_outputs(x, num_labels, head="sigmoid"):
    """The output layer(s) of a multi-label head, always ending in ``predictions``.

    Args:
        x: the head's input tensor (pooled features).
        num_labels: number of labels.
        head: ``"sigmoid"`` (``[batch, labels]``) or ``"softmax2"``
            (``[batch, labels, 2]``, softmax over ``[absent, present]``).

    Returns:
        The output tensor.

    Example:
        >>> y = head_outputs(keras.Input((8,)), 3, "softmax2")
        >>> tuple(y.shape)
        (None, 3, 2)
    """
    if head == "sigmoid":
        return layers.Dense(num_labels, activation="sigmoid", name="predictions")(x)
    if head == "softmax2":
        x = layers.Dense(num_labels * 2, name="head_pairs")(x)
        x = layers.Reshape((num_labels, 2), name="head_reshape")(x)
        return layers.Softmax(axis=-1, name="predictions")(x)
    raise ValueError(f"head must be 'sigmoid' or 'softmax2', got {head!r}")


for _name in BACKBONES:
    register_model(_name)(functools.partial(transfer_model, backbone=_name))
