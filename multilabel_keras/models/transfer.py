"""Any ``keras.applications`` backbone + one shared multi-label head."""

import functools
import os

import keras
from keras import layers

from multilabel_keras.models.backbones import DEFAULT_SIZES, FAMILIES
from multilabel_keras.models.heads import attach_head, pooling_layer
from multilabel_keras.models.layers import MODES, preprocess_layer
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


def backbone_size(name):
    """The side in pixels a backbone is built at when no size is given.

    Example:
        >>> backbone_size("mobilenetv2"), backbone_size("inceptionv3")
        (224, 299)
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; available: {', '.join(sorted(BACKBONES))}")
    return DEFAULT_SIZES.get(name, BACKBONES[name][1].default_size)


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
    size = backbone_size(name)
    constructor, spec = BACKBONES[name]
    mode = spec.preprocess
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
    head="dense",
    bn_inference=None,
    preprocessing=None,
    head_options=None,
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
    momentum 0.9 so they track the data within tens of steps. The head is
    one of ``heads.HEADS``: ``dense`` (``pooler`` → ``head_dropout`` →
    optional ``head_hidden`` (ReLU) → ``predictions``, one sigmoid per
    label); ``softmax2`` (a 2-way softmax per label, ``[batch, num_labels,
    2]``, train with ``PairwiseSoftmaxLoss``); ``csra`` or ``ml_decoder``
    (attention over the backbone's map, ``head_dropout`` →
    ``head_attention`` → ``predictions``).

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
        head: ``"dense"`` (also spelled ``"sigmoid"``), ``"softmax2"``,
            ``"csra"`` or ``"ml_decoder"``.
        bn_inference: freeze the backbone's batch norm (inference mode);
            default: when ``weights`` is given.
        preprocessing: how the weights want their pixels: ``"tf"``
            ([-1, 1]), ``"torch"`` (ImageNet mean/std), ``"caffe"`` (BGR
            minus ImageNet mean) or ``"none"`` (0-255 as they come);
            default the family's own (``keras.applications``).
        head_options: arguments of the attention head (``lam``,
            ``temperature`` for ``csra``; ``groups``, ``dim``, ``heads``,
            ``dropout`` for ``ml_decoder``).

    Returns:
        An uncompiled ``keras.Model`` named after the backbone.

    Example:
        >>> model = transfer_model(5, (32, 32, 3), backbone="mobilenetv2")
        >>> model.output_shape, model.get_layer("backbone").trainable
        ((None, 5), True)
    """
    net, mode = build_backbone(backbone, input_shape, weights)
    mode = input_mode(mode, preprocessing)
    prepare_backbone(net, weights, freeze_backbone, bn_inference)
    inputs = keras.Input(net.input_shape[1:], name="image")
    x = preprocess_layer(mode)(inputs) if mode else inputs
    outputs = attach_head(net(x), num_labels, head, pooling, dropout, hidden, head_options)
    return keras.Model(inputs, outputs, name=backbone)


def input_mode(family_mode, preprocessing=None):
    """The preprocessing a backbone gets: the user's choice, else its family's.

    Args:
        family_mode: the family's ``preprocess`` mode (``None``: the network
            scales its own input).
        preprocessing: ``None`` (the family's), ``"tf"``, ``"torch"``,
            ``"caffe"`` or ``"none"`` (raw 0-255 pixels).

    Returns:
        A ``preprocess_layer`` mode, or ``None`` for no layer.

    Example:
        >>> input_mode("tf"), input_mode("tf", "torch"), input_mode("tf", "none")
        ('tf', 'torch', None)
    """
    if preprocessing is None:
        return family_mode
    if preprocessing == "none":
        return None
    if preprocessing not in MODES:
        raise ValueError(f"preprocessing must be one of {', '.join(PREPROCESSING)}; got {preprocessing!r}")
    return preprocessing


# What a user may say a weights file expects (``preprocessing=``).
PREPROCESSING = (*MODES, "none")


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
                  bn_inference=None, name="encoder", preprocessing=None):
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
        preprocessing: see ``transfer_model``.

    Returns:
        A ``keras.Model`` with output ``(batch, features)``.

    Example:
        >>> build_encoder("mobilenetv2", (32, 32, 3)).output_shape
        (None, 1280)
    """
    net, mode = build_backbone(backbone, input_shape, weights)
    mode = input_mode(mode, preprocessing)
    prepare_backbone(net, weights, freeze_backbone, bn_inference)
    image = keras.Input(net.input_shape[1:], name="image")
    x = preprocess_layer(mode)(image) if mode else image
    return keras.Model(image, pooling_layer(pooling)(net(x)), name=name)


for _name in BACKBONES:
    register_model(_name)(functools.partial(transfer_model, backbone=_name))
