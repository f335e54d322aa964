"""The transfer-learning schedule: train the head, then unfreeze and fine-tune."""

import dataclasses
import re

import keras

from multilabel_keras.training.compile import adam, compile_model

# Layer-name prefixes that group a keras.applications network into blocks,
# tried in order: InceptionResNetV2 repeats (block8_10_*), numbered blocks
# (block13_*, block_16_*, block7a_*, conv5_block3_*, ..._stage_3_block_2_*)
# and MobileNetV3's expanded_conv_10_*.
_BLOCK_PATTERNS = (
    re.compile(r"^(block\d+_\d+)_"),
    re.compile(r"^(.*?block_?\d+[a-z]?)(?:_|$)"),
    re.compile(r"^(expanded_conv(?:_\d+)?)_"),
)
# InceptionV3 names a block by the concatenation that ends it (mixed9).
_END_MARKER = re.compile(r"^mixed\d+$")


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
    markers = [i for i, n in enumerate(names) if _END_MARKER.match(n)]
    if markers:
        starts = [0] + [i + 1 for i in markers[:-1]]
        return [(names[end], start) for start, end in zip(starts, markers)]
    last = {}
    order = []
    for i, name in enumerate(names):
        match = next((m for m in (p.match(name) for p in _BLOCK_PATTERNS) if m), None)
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


@dataclasses.dataclass
class TransferSchedule:
    """The phases of transfer learning, as ``train`` runs them.

    Phase 1 trains the head with the backbone frozen: for
    ``freeze_epochs`` epochs over the images (Adam at ``train``'s learning
    rate), or, with ``linear_probe``, on pooled features cached in memory
    until validation mAP stops improving (LP-FT: Kumar et al., ICLR 2022,
    fine-tuning a converged head distorts pretrained features least).
    Phase 2 unfreezes from ``unfreeze_from`` and fine-tunes at
    ``finetune_learning_rate``: SGD with momentum, or Adam with a linear
    warm-up and a cosine decay to zero (``optimizer="adam_cosine"``).
    Phase 3, if asked for, goes on with the same settings without
    augmentation. Batch norm of a pretrained backbone stays in inference
    mode throughout.

    Attributes:
        freeze_epochs: epochs of phase 1 over images (0 with ``linear_probe``).
        finetune_epochs: epochs of phase 2 (0: stop after phase 1).
        unfreeze_from: where phase 2 starts unfreezing (see
            ``resolve_start``): ``"all"``, ``"last:2"`` (default), a block.
        finetune_learning_rate: learning rate of phases 2 and 3 (the
            warm-up's target with ``"adam_cosine"``).
        momentum: SGD momentum.
        final_epochs: epochs of phase 3 without augmentation.
        linear_probe: fit the head on cached features first.
        optimizer: ``"sgd"`` or ``"adam_cosine"`` for phases 2 and 3.
        warmup_epochs: warm-up length of ``"adam_cosine"``.
        cache_front: fine-tune on maps of the frozen layers cached once
            (see ``training/cached_front.py``), in ``cached_views`` views;
            ``train`` falls back to the images where it cannot.
        cached_views: views of each training image cached with
            ``cache_front`` (1: as they are; 2: and mirrored; more: and
            light shifts and zooms; see ``cached_front.image_views``).

    Example:
        >>> TransferSchedule(5, 10, "block13").total_epochs
        15
        >>> TransferSchedule.lp_ft(8).unfreeze_from
        'last:7'
        >>> TransferSchedule.lp_ft(8).phases()
        [(2, 8, True)]
    """

    freeze_epochs: int = 5
    finetune_epochs: int = 0
    unfreeze_from: str = "last:2"
    finetune_learning_rate: float = 1e-4
    momentum: float = 0.9
    final_epochs: int = 0
    linear_probe: bool = False
    optimizer: str = "sgd"
    warmup_epochs: int = 1
    cache_front: bool = False
    cached_views: int = 1

    def __post_init__(self):
        for name in ("freeze_epochs", "finetune_epochs", "final_epochs", "warmup_epochs"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"TransferSchedule.{name} must be >= 0")
        if self.optimizer not in ("sgd", "adam_cosine"):
            raise ValueError(f"TransferSchedule.optimizer must be 'sgd' or 'adam_cosine', "
                             f"got {self.optimizer!r}")
        if self.total_epochs == 0 and not self.linear_probe:
            raise ValueError("TransferSchedule has no epochs in any phase")

    @classmethod
    def lp_ft(cls, epochs, learning_rate=3e-4, unfreeze_from="last:7", cache_front=True,
              cached_views=4):
        """The default recipe for a pretrained backbone: linear probe, then fine-tune.

        Args:
            epochs: fine-tuning epochs over the images.
            learning_rate: Adam's peak rate, reached after one warm-up epoch
                (3e-4 beat 1e-4 by 0.017 mAP on the accuracy suite's task a).
            unfreeze_from: where fine-tuning starts (default: the last 7
                blocks, batch norm excepted; ``train`` picks the last 40%
                of a backbone's blocks, 7 of MobileNetV2's 17).
            cache_front: fine-tune on cached maps of the frozen layers
                (accuracy suite, seed 0: better on all three tasks than
                fine-tuning over augmented images, in 60-80% of the time).
            cached_views: views of each training image in the cache: the
                image, its mirror and two light shifts/zooms. Over seven
                task-seed pairs of the accuracy suite 4 views beat 1 by
                0.021 mAP on average (seed 1's rare labels 0.847 -> 0.984;
                worst loss 0.018, on mirrored digits) for 5-15% more time.

        Returns:
            A ``TransferSchedule``.
        """
        return cls(freeze_epochs=0, finetune_epochs=int(epochs), unfreeze_from=unfreeze_from,
                   finetune_learning_rate=learning_rate, linear_probe=True,
                   optimizer="adam_cosine", cache_front=bool(cache_front),
                   cached_views=int(cached_views))

    @property
    def total_epochs(self):
        return int(self.freeze_epochs) + int(self.finetune_epochs) + int(self.final_epochs)

    def phases(self):
        """Returns ``(phase_number, epochs, augment)`` for each non-empty phase over images."""
        plan = [(1, self.freeze_epochs, True), (2, self.finetune_epochs, True),
                (3, self.final_epochs, False)]
        return [(n, int(e), aug) for n, e, aug in plan if int(e) > 0]

    def finetune_optimizer(self, steps_per_epoch):
        """A new optimizer for phases 2 and 3.

        Args:
            steps_per_epoch: batches per epoch (for the warm-up and decay).

        Returns:
            A Keras optimizer.
        """
        if self.optimizer == "sgd":
            return keras.optimizers.SGD(self.finetune_learning_rate, momentum=self.momentum)
        # One plan over phases 2 and 3: fit_phases keeps this optimizer into phase 3.
        epochs = max(1, int(self.finetune_epochs) + int(self.final_epochs))
        return adam(self.finetune_learning_rate, epochs, steps_per_epoch, "cosine",
                    self.warmup_epochs)


def fine_tune(model, dataset, epochs, start, learning_rate=1e-4, momentum=0.9, loss=None,
              steps_per_epoch=None, callbacks=None, verbose=1):
    """Phase 2 of the schedule on its own: unfreeze from ``start`` and train with SGD.

    A low learning rate with momentum (the fine-grained recipe's SGD 1e-4,
    0.9) moves pretrained filters only a little. The model is recompiled,
    which a change of ``trainable`` needs anyway. ``train(...,
    schedule=TransferSchedule(...))`` runs all phases with logging.

    Args:
        model: a model whose head was trained with the backbone frozen.
        dataset: training ``tf.data.Dataset`` of ``(images, multi_hot)``.
        epochs: epochs to train.
        start: where the trainable part begins (see ``resolve_start``).
        learning_rate: SGD learning rate.
        momentum: SGD momentum.
        loss: a loss name or object; default the head's own (masked binary
            cross-entropy, or ``PairwiseSoftmaxLoss`` for a 2-way head).
        steps_per_epoch: batches per epoch for a repeating dataset.
        callbacks: Keras callbacks.
        verbose: Keras verbosity.

    Returns:
        The Keras ``History``.

    Example:
        >>> from multilabel_keras import build_model
        >>> model = build_model("mobilenetv2", 6, (32, 32, 3))
        >>> import numpy as np, tensorflow as tf
        >>> train_ds = tf.data.Dataset.from_tensor_slices(
        ...     (np.zeros((8, 32, 32, 3), "float32"), np.ones((8, 6), "float32"))).batch(4)
        >>> history = fine_tune(model, train_ds, epochs=2, start="block_16", verbose=0)
        >>> len(history.history["loss"])
        2
    """
    unfreeze_from(model, start)
    compile_model(model, loss=loss, optimizer=keras.optimizers.SGD(learning_rate, momentum=momentum))
    return model.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch,
                     callbacks=callbacks, verbose=verbose, shuffle=False)
