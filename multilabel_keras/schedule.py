"""The transfer-learning schedule: train the head, then unfreeze and fine-tune."""

import keras


def unfreeze_from(model, start, backbone="backbone"):
    """Makes the backbone trainable from layer ``start`` on, frozen before it.

    Batch-normalization layers stay frozen everywhere: the backbone runs in
    inference mode, and updating their scale and offset on a small data set
    undoes what pretraining learned.

    Args:
        model: a model built by ``build_model`` with a nested backbone.
        start: a layer name (``"mixed9"``) or a block prefix
            (``"block13"`` matches ``block13_sepconv1`` …); the first match in
            layer order starts the trainable part.
        backbone: name of the nested backbone layer.

    Returns:
        The names of the backbone layers that hold trainable weights now.

    Example:
        >>> unfreeze_from(model, "block_16")  # doctest: +SKIP
        ['block_16_expand', 'block_16_depthwise', 'block_16_project', 'Conv_1']
    """
    net = model.get_layer(backbone)
    names = [layer.name for layer in net.layers]
    matches = [i for i, n in enumerate(names) if n == start or n.startswith(f"{start}_")]
    if not matches:
        blocks = sorted({n.split("_")[0] for n in names if n.split("_")[0].startswith(("block", "mixed"))})
        raise ValueError(
            f"no layer named {start!r} (or starting with '{start}_') in backbone {net.name}; "
            f"blocks: {', '.join(blocks) or 'see model.get_layer(backbone).layers'}"
        )
    net.trainable = True
    first = matches[0]
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
        >>> freeze_backbone(model)  # doctest: +SKIP
    """
    model.get_layer(backbone).trainable = False


def fine_tune(model, dataset, epochs, start, learning_rate=1e-4, momentum=0.9, loss=None,
              steps_per_epoch=None, callbacks=None, verbose=1):
    """Phase 2 of the schedule: unfreeze from ``start`` and train with SGD.

    A low learning rate with momentum (the fine-grained recipe's SGD 1e-4,
    0.9) moves pretrained filters only a little. The model is recompiled,
    which a change of ``trainable`` needs anyway.

    Args:
        model: a model whose head was trained with the backbone frozen.
        dataset: training ``tf.data.Dataset`` of ``(images, multi_hot)``.
        epochs: epochs to train.
        start: where the trainable part begins (see ``unfreeze_from``).
        learning_rate: SGD learning rate.
        momentum: SGD momentum.
        loss: a Keras loss (default binary cross-entropy).
        steps_per_epoch: batches per epoch for a repeating dataset.
        callbacks: Keras callbacks.
        verbose: Keras verbosity.

    Returns:
        The Keras ``History``.

    Example:
        >>> fine_tune(model, train_ds, epochs=5, start="block13")  # doctest: +SKIP
    """
    unfreeze_from(model, start)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate, momentum=momentum),
        loss=loss or keras.losses.BinaryCrossentropy(),
    )
    return model.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch,
                     callbacks=callbacks, verbose=verbose, shuffle=False)
