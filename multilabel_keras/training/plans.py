"""Transfer plans: which phases a run trains, chosen by name or given as explicit phases.

``schedule="auto"`` (the default) picks LP-FT for a transfer model given
pretrained weights and trains every layer otherwise, and says which plan it
chose and why; ``"lp_ft"``, ``"frozen"`` (head only) and ``"none"`` name a
plan; a ``TransferSchedule`` or a dict of its fields gives the phases. The
``epochs`` setting is always the epochs over the training data, all phases
together.
"""

import dataclasses

import keras

from multilabel_keras.models.surgery import (
    backbone_blocks,
    block_rate_factors,
    find_backbone,
    is_transfer_model,
    lp_ft_start,
    unfreeze_from,
)
from multilabel_keras.training.compile import adam, compile_model
from multilabel_keras.training.config import ConfigError

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
        layer_decay: discriminative fine-tuning rates (``"adam_cosine"``
            only): the head learns at ``finetune_learning_rate``, the
            backbone's last block at ``layer_decay`` times it, each block
            below ``layer_decay`` times the one above (1: one rate for all).

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
    layer_decay: float = 1.0

    def __post_init__(self):
        for name in ("freeze_epochs", "finetune_epochs", "final_epochs", "warmup_epochs"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"TransferSchedule.{name} must be >= 0")
        if self.optimizer not in ("sgd", "adam_cosine"):
            raise ValueError(f"TransferSchedule.optimizer must be 'sgd' or 'adam_cosine', "
                             f"got {self.optimizer!r}")
        if self.total_epochs == 0 and not self.linear_probe:
            raise ValueError("TransferSchedule has no epochs in any phase")
        if not 0 < float(self.layer_decay) <= 1:
            raise ValueError(f"TransferSchedule.layer_decay must be in (0, 1], got {self.layer_decay!r}")
        if float(self.layer_decay) != 1 and self.optimizer != "adam_cosine":
            raise ValueError("TransferSchedule.layer_decay needs optimizer='adam_cosine'")

    @classmethod
    def lp_ft(cls, epochs, learning_rate=3e-4, unfreeze_from="last:7", cache_front=True,
              cached_views=4, layer_decay=1.0):
        """The default recipe for a pretrained backbone: linear probe, then fine-tune.

        Args:
            epochs: fine-tuning epochs over the images.
            learning_rate: Adam's peak rate, reached after one warm-up epoch
                (chosen on the accuracy suite, ``docs/benchmarks.md``).
            unfreeze_from: where fine-tuning starts (default: the last 7
                blocks, batch norm excepted; ``train`` picks the last 40%
                of a backbone's blocks, 7 of MobileNetV2's 17).
            cache_front: fine-tune on cached maps of the frozen layers
                (``cached_front.py``; measured against fine-tuning over
                augmented images in ``docs/benchmarks.md``).
            cached_views: views of each training image in the cache: the
                image, its mirror and two light shifts/zooms.
            layer_decay: per-block rate factor (see the class).

        Returns:
            A ``TransferSchedule``.
        """
        return cls(freeze_epochs=0, finetune_epochs=int(epochs), unfreeze_from=unfreeze_from,
                   finetune_learning_rate=learning_rate, linear_probe=True,
                   optimizer="adam_cosine", cache_front=bool(cache_front),
                   cached_views=int(cached_views), layer_decay=float(layer_decay))

    @property
    def total_epochs(self):
        return int(self.freeze_epochs) + int(self.finetune_epochs) + int(self.final_epochs)

    def phases(self):
        """Returns ``(phase_number, epochs, augment)`` for each non-empty phase over images."""
        plan = [(1, self.freeze_epochs, True), (2, self.finetune_epochs, True),
                (3, self.final_epochs, False)]
        return [(n, int(e), aug) for n, e, aug in plan if int(e) > 0]

    def finetune_optimizer(self, steps_per_epoch, layer_factors=None):
        """A new optimizer for phases 2 and 3.

        Args:
            steps_per_epoch: batches per epoch (for the warm-up and decay).
            layer_factors: ``{layer_name: factor}`` of ``layer_decay``.

        Returns:
            A Keras optimizer.
        """
        if self.optimizer == "sgd":
            return keras.optimizers.SGD(self.finetune_learning_rate, momentum=self.momentum)
        # One plan over phases 2 and 3: fit_phases keeps this optimizer into phase 3.
        epochs = max(1, int(self.finetune_epochs) + int(self.final_epochs))
        return adam(self.finetune_learning_rate, epochs, steps_per_epoch, "cosine",
                    self.warmup_epochs, layer_factors=layer_factors)


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


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase of a run, everything decided before training starts.

    Attributes:
        number: 1 (head only), 2 (fine-tuning), 3 (fine-tuning without
            augmentation), or ``None`` for a run without a transfer plan.
        epochs: its epochs over the training data.
        augment: whether its batches are augmented.
        unfreeze_from: where to unfreeze the backbone when this phase
            starts (``None``: leave it as it is).
        optimizer: a new optimizer to compile with when it starts
            (``None``: the one in use carries on).
    """

    number: object
    epochs: int
    augment: bool
    unfreeze_from: object = None
    optimizer: object = None


@dataclasses.dataclass(frozen=True)
class Plan:
    """The plan a run trains with.

    Attributes:
        name: ``"lp_ft"``, ``"frozen"``, ``"none"`` or ``"phases"``.
        schedule: its ``TransferSchedule`` (``None`` for ``"none"``).
        reason: why it was chosen, in words (logged by the trainers).
    """

    name: str
    schedule: object
    reason: str
    layer_factors: object = None

    def record(self, phases):
        """What ``config.json`` keeps of the plan: epochs run over the data, the plan, its schedule."""
        return {"epochs": sum(phase.epochs for phase in phases), "plan": self.reason,
                "schedule": None if self.schedule is None else dataclasses.asdict(self.schedule)}

    def phases(self, epochs, steps_per_epoch=None):
        """The run's ``Phase`` list, each with the optimizer it starts with.

        A new SGD each fine-tuning phase, as the published recipe; the
        warm-up + cosine plan spans phases 2 and 3, so its optimizer is made
        once, when fine-tuning starts.

        Args:
            epochs: the ``epochs`` setting (used without a schedule).
            steps_per_epoch: batches per epoch (for the fine-tuning
                optimizers' warm-up and decay).

        Returns:
            A list of ``Phase``.

        Example:
            >>> plan = Plan("phases", TransferSchedule(2, 3, "last:1", final_epochs=1), "")
            >>> [(p.number, p.epochs, p.augment, p.unfreeze_from) for p in plan.phases(6, 10)]
            [(1, 2, True, None), (2, 3, True, 'last:1'), (3, 1, False, None)]
            >>> [p.optimizer is not None for p in plan.phases(6, 10)]
            [False, True, True]
        """
        if self.schedule is None:
            return [Phase(None, int(epochs), True)]
        phases, unfrozen = [], False
        for number, count, augment in self.schedule.phases():
            start, optimizer = None, None
            if number > 1 and (not unfrozen or self.schedule.optimizer == "sgd"):
                optimizer = self.schedule.finetune_optimizer(steps_per_epoch, self.layer_factors)
                if not unfrozen:
                    start, unfrozen = self.schedule.unfreeze_from, True
            phases.append(Phase(number, count, augment, start, optimizer))
        return phases


# What a phase dict may set (every TransferSchedule field).
PHASE_FIELDS = tuple(f.name for f in dataclasses.fields(TransferSchedule))


def choose_plan(config, model, trainer="image"):
    """Resolves the ``schedule`` setting for a built model.

    Args:
        config: the run's ``TrainConfig``.
        model: the built model.
        trainer: ``"image"`` or ``"twin"`` (the twin has no linear probe:
            ``"auto"`` trains it as built).

    Returns:
        A ``Plan``.

    Raises:
        ConfigError: the plan cannot train this model, or a plan setting
            (``unfreeze_from``, ``finetune_learning_rate``) was given to a
            plan that does not use it.

    Example:
        >>> from multilabel_keras import build_model
        >>> from multilabel_keras.training.config import TrainConfig
        >>> model = build_model("mobilenetv2", 3, (32, 32, 3))
        >>> plan = choose_plan(TrainConfig("image", model="mobilenetv2", weights="w.weights.h5",
        ...                                epochs=4), model)
        >>> plan.name, plan.schedule.unfreeze_from, plan.schedule.finetune_epochs
        ('lp_ft', 'last:7', 4)
        >>> plan.reason
        'lp_ft: pretrained weights given; linear probe, then fine-tune the last 7 of 17 backbone blocks'
        >>> choose_plan(TrainConfig("image", epochs=4), model).reason
        'none: no pretrained weights, so every layer trains from the start'
    """
    plan = _choose_plan(config, model, trainer)
    decay = 1.0 if plan.schedule is None else float(plan.schedule.layer_decay)
    if decay == 1.0:
        return plan
    factors = block_rate_factors(find_backbone(model), decay)
    reason = f"{plan.reason}, each block down at {decay:g} times the rate of the one above"
    return dataclasses.replace(plan, layer_factors=factors, reason=reason)



def _choose_plan(config, model, trainer="image"):
    """``choose_plan`` before layer-wise rates are attached."""
    requested = config.schedule
    epochs = int(config.epochs)
    # The twin holds its backbone inside its shared encoder (find_backbone finds it there).
    transfer = trainer == "twin" or is_transfer_model(model, config.model_kwargs)
    if isinstance(requested, TransferSchedule):
        return Plan("phases", requested, "phases: the schedule given")
    if isinstance(requested, dict):
        return Plan("phases", _from_phases(config, requested), "phases: the phases given")
    name, reason = requested, "asked for"
    if requested == "auto":
        if trainer == "twin":
            name, reason = "none", "the twin trains as built unless phases are given"
        elif config.weights is None:
            name, reason = "none", "no pretrained weights, so every layer trains from the start"
        elif not transfer:
            name, reason = "none", f"{model.name} has no pretrained backbone and head to split"
        else:
            name, reason = "lp_ft", "pretrained weights given"
    unused = [k for k in ("unfreeze_from", "finetune_learning_rate", "layer_decay")
              if k in config.given and name in ("none", "frozen")]
    if unused:
        raise ConfigError([(k, f"is not used by plan {name!r} ({reason}): nothing is fine-tuned")
                           for k in unused])
    if name == "none":
        return Plan("none", None, f"none: {reason}")
    if not transfer or trainer == "twin" and name == "lp_ft":
        why = ("the twin has no linear-probe phase; give phases (freeze_epochs …) instead"
               if trainer == "twin" else
               f"{model.name} is not a transfer model (a pretrained backbone with a head), "
               f"such as build_model('mobilenetv2', ...)")
        raise ConfigError([("schedule", f"{name!r} cannot train this model: {why}")])
    if name == "frozen":
        return Plan("frozen", TransferSchedule(freeze_epochs=epochs),
                    f"frozen: {reason}; the head trains {epochs} epochs, the backbone stays frozen")
    blocks = backbone_blocks(find_backbone(model))
    start = config.unfreeze_from or lp_ft_start(blocks)
    where = (f"the last {start[5:]} of {len(blocks)} backbone blocks"
             if start.startswith("last:") else
             "every backbone layer (its blocks could not be told apart)" if start == "all" and not blocks
             else "every backbone block" if start == "all" else f"backbone block {start!r} on")
    rate = config.finetune_learning_rate
    options = {} if config.layer_decay is None else {"layer_decay": config.layer_decay}
    schedule = (TransferSchedule.lp_ft(epochs, rate, start, **options) if rate is not None
                else TransferSchedule.lp_ft(epochs, unfreeze_from=start, **options))
    return Plan("lp_ft", schedule, f"lp_ft: {reason}; linear probe, then fine-tune {where}")


def _from_phases(config, phases):
    unknown = sorted(set(phases) - set(PHASE_FIELDS))
    if unknown:
        raise ConfigError([("schedule", f"has no phase setting {', '.join(map(repr, unknown))} "
                            f"(it takes: {', '.join(PHASE_FIELDS)})")])
    fields = dict(phases)
    later = int(fields.get("finetune_epochs", 0)) + int(fields.get("final_epochs", 0))
    if "freeze_epochs" not in fields and "epochs" in config.given:
        fields["freeze_epochs"] = int(config.epochs) - later
    if config.unfreeze_from is not None:
        fields.setdefault("unfreeze_from", config.unfreeze_from)
    if config.finetune_learning_rate is not None:
        fields.setdefault("finetune_learning_rate", config.finetune_learning_rate)
    if config.layer_decay is not None:
        fields.setdefault("layer_decay", config.layer_decay)
    try:
        return TransferSchedule(**fields)
    except (TypeError, ValueError) as err:
        raise ConfigError([("schedule", f"cannot be trained: {err}")]) from None
