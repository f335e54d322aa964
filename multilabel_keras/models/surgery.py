"""Model surgery: a transfer model's backbone, its blocks, freezing and splitting.

Transfer plans ask the model for these (where its backbone is, how its
blocks group, where its head begins) instead of matching layer names
themselves; what differs per backbone family is in ``backbones.py``.
"""

import keras

from multilabel_keras.models.backbones import BLOCK_PREFIXES, END_MARKER


def backbone_blocks(net):
    """Splits a backbone's layers into named blocks, in layer order.

    A block starts right after the last layer of the block before it, so
    the residual convolutions and additions between named layers belong to
    the block they feed. InceptionV3 blocks are named by the ``mixedN``
    layer that ends them: block ``mixed9`` starts right after ``mixed8``.

    Args:
        net: a ``keras.Model`` (the nested backbone).

    Returns:
        A list of ``(block_name, first_layer_index)`` pairs; empty when the
        network's layer names follow no known block pattern.

    Example:
        >>> from multilabel_keras import build_model
        >>> model = build_model("mobilenetv2", 6, (32, 32, 3))
        >>> blocks = backbone_blocks(model.get_layer("backbone"))
        >>> blocks[-2:]
        [('block_15', 134), ('block_16', 143)]
    """
    names = [layer.name for layer in net.layers]
    markers = [i for i, n in enumerate(names) if END_MARKER.match(n)]
    if markers:
        starts = [0] + [i + 1 for i in markers[:-1]]
        return [(names[end], start) for start, end in zip(starts, markers)]
    last = {}
    order = []
    for i, name in enumerate(names):
        match = next((m for m in (p.match(name) for p in BLOCK_PREFIXES) if m), None)
        if match:
            block = match.group(1)
            if block not in last:
                order.append(block)
            last[block] = i
    blocks = []
    for k, block in enumerate(order):
        first = names.index(next(n for n in names if n.startswith(block)))
        start = last[order[k - 1]] + 1 if k else first
        blocks.append((block, min(start, first)))
    return blocks


def block_rate_factors(net, decay):
    """Layer-wise learning-rate factors: each block down from the top gets ``decay`` times more.

    The head keeps the full rate; the backbone's last block gets
    ``decay``, the one below ``decay ** 2`` … and the layers before the
    first block ``decay ** (blocks + 1)`` (layer-wise decay, as BEiT and
    ELECTRA fine-tune; fastai's discriminative rates are its two-group
    form).

    Args:
        net: the nested backbone.
        decay: factor per block, in (0, 1].

    Returns:
        ``{layer_name: factor}`` for the backbone's layers (empty when
        ``decay`` is 1 or its blocks cannot be told apart).

    Example:
        >>> from multilabel_keras import build_model
        >>> factors = block_rate_factors(build_model("mobilenetv2", 2, (32, 32, 3)).get_layer(
        ...     "backbone"), 0.5)
        >>> factors["block_16_project"], factors["block_15_project"], factors["Conv1"] * 2 ** 18
        (0.5, 0.25, 1.0)
    """
    import bisect

    blocks = backbone_blocks(net)
    if not blocks or decay == 1:
        return {}
    starts = [start for _, start in blocks]
    return {layer.name: float(decay) ** (len(blocks) - (bisect.bisect_right(starts, i) - 1))
            for i, layer in enumerate(net.layers)}


def resolve_start(net, start):
    """Finds the index of the first layer to unfreeze.

    Args:
        net: the nested backbone.
        start: ``"all"``, ``"last:N"`` (the last N blocks), a block name from
            ``backbone_blocks`` (``"block13"``, ``"mixed9"``), a layer name,
            or a layer-name prefix (``"conv5_block16"``).

    Returns:
        A layer index into ``net.layers``.

    Example:
        >>> from multilabel_keras import build_model
        >>> model = build_model("mobilenetv2", 6, (32, 32, 3))
        >>> resolve_start(model.get_layer("backbone"), "last:2")
        134
    """
    names = [layer.name for layer in net.layers]
    if start == "all":
        return 0
    blocks = backbone_blocks(net)
    if isinstance(start, str) and start.startswith("last:"):
        count = start[5:]
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"expected 'last:N' with N >= 1 blocks, got {start!r}")
        if not blocks:
            raise ValueError(
                f"cannot tell the blocks of backbone {net.name} apart; pass a layer name instead"
            )
        if int(count) > len(blocks):
            raise ValueError(f"{start!r}: backbone {net.name} has only {len(blocks)} blocks")
        return blocks[-int(count)][1]
    for block, first in blocks:
        if block == start:
            return first
    matches = [i for i, n in enumerate(names) if n == start or n.startswith(f"{start}_")]
    if not matches:
        listed = ", ".join(b for b, _ in blocks) or "see model.get_layer('backbone').layers"
        raise ValueError(
            f"no layer named {start!r} (or starting with '{start}_') in backbone {net.name}; "
            f"blocks: {listed}"
        )
    return matches[0]


def unfreeze_from(model, start, backbone="backbone"):
    """Makes the backbone trainable from ``start`` on, frozen before it.

    Batch-normalization layers stay frozen everywhere: the backbone runs in
    inference mode, and updating their scale and offset on a small data set
    undoes what pretraining learned.

    Args:
        model: a model built by ``build_model`` with a nested backbone.
        start: where the trainable part begins (see ``resolve_start``):
            ``"last:2"``, ``"block13"``, ``"mixed9"`` or a layer name.
        backbone: name of the nested backbone layer.

    Returns:
        The names of the backbone layers that hold trainable weights now.

    Example:
        >>> from multilabel_keras import build_model
        >>> model = build_model("mobilenetv2", 6, (32, 32, 3))
        >>> unfreeze_from(model, "block_16")
        ['block_16_expand', 'block_16_depthwise', 'block_16_project', 'Conv_1']
    """
    net = find_backbone(model, backbone)
    first = resolve_start(net, start)
    net.trainable = True
    unfrozen = []
    for i, layer in enumerate(net.layers):
        trainable = i >= first and not isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = trainable
        if trainable and layer.weights:
            unfrozen.append(layer.name)
    return unfrozen


def freeze_backbone(model, backbone="backbone"):
    """Freezes the whole nested backbone (phase 1: train the head only).

    Args:
        model: a model with a nested backbone layer.
        backbone: its name.

    Returns:
        None.

    Example:
        >>> from multilabel_keras import build_model
        >>> model = build_model("mobilenetv2", 6, (32, 32, 3))
        >>> freeze_backbone(model)
        >>> model.get_layer("backbone").trainable, len(model.trainable_weights)  # the head's
        (False, 2)
    """
    find_backbone(model, backbone).trainable = False


def find_backbone(model, name="backbone"):
    """The nested backbone of a transfer or twin model (clear error if none)."""
    # A twin model holds its backbone inside the shared "encoder".
    for layer in [model, *[la for la in model.layers if isinstance(la, keras.Model)]]:
        try:
            return layer.get_layer(name)
        except ValueError:
            continue
    raise ValueError(
            f"model {model.name} has no nested '{name}' layer; the freeze/fine-tune schedule "
            f"needs a transfer model such as build_model('mobilenetv2', ...)"
        )


def split_at(model, start):
    """Splits a transfer model at the first layer fine-tuning unfreezes.

    Args:
        model: a chain model built by ``build_model`` (``preprocess`` →
            ``backbone`` → ``pooler`` → head).
        start: where fine-tuning starts (see ``resolve_start``).

    Returns:
        ``(front, tail)`` sharing the model's layers: images → the maps
        entering the first unfrozen layer; maps → the model's outputs. The
        tail's backbone part is named ``backbone`` so that
        ``unfreeze_from(tail, start)`` finds it.

    Raises:
        ValueError: nothing lies before ``start``, or the layers from
            ``start`` on need more than the one tensor entering it.

    Example:
        >>> from multilabel_keras import build_model
        >>> front, tail = split_at(build_model("mobilenetv2", 3, (32, 32, 3)), "last:2")
        >>> front.output_shape, tail.output_shape
        ((None, 1, 1, 160), (None, 3))
    """
    backbone = find_backbone(model)
    index = resolve_start(backbone, start)
    entering = backbone.layers[max(index, 1)].input
    if index <= 1 or not keras.backend.is_keras_tensor(entering):
        raise ValueError(f"no single tensor enters {start!r} of {backbone.name} after a frozen part")
    try:
        tail_backbone = keras.Model(entering, backbone.output, name="backbone")
    except ValueError as err:
        raise ValueError(f"the layers from {start!r} on need more than the tensor entering it: {err}")
    names = [layer.name for layer in model.layers]
    at = names.index(backbone.name)
    x = images = keras.Input(tuple(model.input_shape[1:]), name="image")
    for layer in model.layers[1:at]:
        x = layer(x)
    front = keras.Model(images, keras.Model(backbone.input, entering)(x), name=f"{model.name}_front")
    maps = keras.Input(tuple(entering.shape[1:]), name="maps")
    x = tail_backbone(maps)
    for layer in model.layers[at + 1:]:
        x = layer(x)
    return front, keras.Model(maps, x, name=f"{model.name}_tail")


def head_of(model, after=None):
    """The layers after ``after`` as a model of their own, sharing their weights.

    Args:
        model: a chain model built by ``build_model`` (``pooler`` → head, or
            ``backbone`` → an attention head).
        after: the last layer of the feature extractor; default ``pooler``,
            or ``backbone`` for a head that reads the feature map.

    Returns:
        ``(encoder, head)``: images → features (pooled vectors or maps),
        features → outputs.

    Example:
        >>> from multilabel_keras import build_model
        >>> encoder, head = head_of(build_model("mobilenetv2", 3, (32, 32, 3)))
        >>> encoder.output_shape, head.output_shape
        ((None, 1280), (None, 3))
    """
    names = [layer.name for layer in model.layers]
    if after is None:
        after = "pooler" if "pooler" in names else "backbone"
    if after not in names:
        raise ValueError(f"model {model.name} has no {after!r} layer; a linear probe needs a "
                         f"transfer model such as build_model('mobilenetv2', ...)")
    # What enters the next layer: a nested backbone's own ``output`` lies in its inner graph.
    pooled = model.layers[names.index(after) + 1].input
    encoder = keras.Model(model.input, pooled, name=f"{model.name}_encoder")
    features = keras.Input(tuple(pooled.shape[1:]), name="features")
    x = features
    for layer in model.layers[names.index(after) + 1:]:
        x = layer(x)
    return encoder, keras.Model(features, x, name=f"{model.name}_head")


def lp_ft_start(blocks):
    """Where LP-FT's fine-tuning starts: the last 40% of a backbone's blocks (7 of 17).

    Args:
        blocks: ``backbone_blocks`` of the backbone.

    Returns:
        ``"last:N"``, or ``"all"`` when its blocks cannot be told apart.

    Example:
        >>> lp_ft_start([("block_%d" % i, i) for i in range(17)])
        'last:7'
    """
    return f"last:{max(1, round(0.4 * len(blocks)))}" if blocks else "all"


def is_transfer_model(model, model_kwargs=None):
    """Whether a model is a transfer model (backbone + head) that LP-FT can train.

    Args:
        model: the built model.
        model_kwargs: its builder options (``freeze_backbone=False`` opts out).

    Returns:
        bool.
    """
    if (model_kwargs or {}).get("freeze_backbone") is False:
        return False
    names = {layer.name for layer in model.layers}
    return {"backbone", "predictions"} <= names and bool({"pooler", "head_attention"} & names)
