"""The one place a model is compiled: its heads decide the loss, the phase the optimizer."""

import keras

from multilabel_keras import losses as loss_registry
from multilabel_keras.models.outputs import output_heads

# Loss names that fit a sigmoid head; "softmax2" is the 2-way head's own.
SIGMOID_LOSSES = ("bce", "weighted_bce", "focal", "asl")


def head_loss(head, loss=None, loss_kwargs=None, train_targets=None, output="predictions"):
    """The loss object for one output head, refusing combinations that cannot train.

    Args:
        head: ``"sigmoid"``, ``"softmax2"`` or ``"softmax"`` (see
            ``output_heads``).
        loss: ``None`` (the head's own: masked binary cross-entropy,
            ``PairwiseSoftmaxLoss`` or categorical cross-entropy), a name
            from ``losses.LOSSES``, or a ``keras.losses.Loss``.
        loss_kwargs: arguments of a loss given by name.
        train_targets: ``(n, L)`` training targets; ``"weighted_bce"``
            without ``pos_weight`` takes negatives / positives from them.
        output: the output's name, for error messages.

    Returns:
        A ``keras.losses.Loss``.

    Example:
        >>> head_loss("softmax2").name
        'softmax2'
        >>> head_loss("sigmoid", "softmax2")
        Traceback (most recent call last):
        ...
        ValueError: loss 'softmax2' needs the 2-way softmax head (--head softmax2); output 'predictions' has one sigmoid per label: choose one of bce, weighted_bce, focal, asl
    """
    if isinstance(loss, keras.losses.Loss):
        return loss
    if loss is not None and not isinstance(loss, str):
        raise TypeError(f"loss must be a name or a keras.losses.Loss, got {type(loss).__name__}")
    kwargs = dict(loss_kwargs or {})
    if head == "softmax":
        if loss not in (None, "categorical_crossentropy"):
            raise ValueError(f"output {output!r} is a softmax over classes; it trains with "
                             f"categorical cross-entropy, not {loss!r}")
        return keras.losses.CategoricalCrossentropy(**kwargs)
    if head == "softmax2":
        if loss not in (None, "softmax2"):
            raise ValueError(f"output {output!r} is a 2-way softmax per label; it trains with loss "
                             f"'softmax2', not {loss!r}")
        return loss_registry.get("softmax2", **kwargs)
    if loss == "softmax2":
        raise ValueError(f"loss 'softmax2' needs the 2-way softmax head (--head softmax2); output "
                         f"{output!r} has one sigmoid per label: choose one of "
                         f"{', '.join(SIGMOID_LOSSES)}")
    loss = loss or "bce"
    if loss == "weighted_bce" and "pos_weight" not in kwargs and train_targets is not None:
        kwargs["pos_weight"] = loss_registry.pos_weights_from_frequencies(train_targets)
    return loss_registry.get(loss, **kwargs)


def adam(learning_rate=1e-3, decay_epochs=None, steps_per_epoch=None, plan="decay",
         warmup_epochs=1, layer_factors=None):
    """Adam, with a learning-rate plan when the epochs are known.

    With ``decay_epochs`` and ``steps_per_epoch``, ``plan="decay"`` decays
    the rate as ``lr / (1 + (lr / epochs) * step)``, the classic recipe's
    ``Adam(lr, decay=lr / epochs)``; ``plan="cosine"`` warms up linearly
    over ``warmup_epochs`` to ``lr`` (at most half the steps), then follows
    a cosine down to zero.

    Args:
        learning_rate: initial (``"decay"``) or peak (``"cosine"``) rate.
        decay_epochs: planned epochs (enables the plan).
        steps_per_epoch: batches per epoch (enables the plan).
        plan: ``"decay"`` or ``"cosine"``.
        warmup_epochs: warm-up length of ``"cosine"``.
        layer_factors: ``{layer_name: factor}``: a ``LayerwiseAdam``.

    Returns:
        A ``keras.optimizers.Adam``.

    Example:
        >>> round(float(adam(1e-3).learning_rate), 6)
        0.001
    """
    if plan not in ("decay", "cosine"):
        raise ValueError(f"learning-rate plan must be 'decay' or 'cosine', got {plan!r}")
    rate = learning_rate
    if decay_epochs and steps_per_epoch and plan == "decay":
        rate = keras.optimizers.schedules.InverseTimeDecay(
            learning_rate, decay_steps=1, decay_rate=learning_rate / decay_epochs)
    elif decay_epochs and steps_per_epoch:
        total = int(decay_epochs) * int(steps_per_epoch)
        warmup = min(int(warmup_epochs) * int(steps_per_epoch), total // 2)
        rate = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(1, total - warmup), warmup_target=learning_rate,
            warmup_steps=warmup)
    if layer_factors:
        return LayerwiseAdam(rate, layer_factors=layer_factors)
    return keras.optimizers.Adam(rate)


@keras.saving.register_keras_serializable(package="multilabel_keras")
class LayerwiseAdam(keras.optimizers.Adam):
    """Adam whose learning rate is scaled per layer (discriminative fine-tuning rates).

    Args:
        learning_rate: the head's rate, or a schedule.
        layer_factors: ``{layer_name: factor}``; a variable's factor is its
            layer's (the first part of ``variable.path``), 1 if unnamed.
        **kwargs: passed to ``keras.optimizers.Adam``.

    Example:
        >>> opt = LayerwiseAdam(0.1, layer_factors={"slow": 0.1})
        >>> fast, slow = keras.Variable(1.0, name="w"), keras.Variable(1.0, name="w")
        >>> fast._path, slow._path = "fast/w", "slow/w"
        >>> _ = opt.apply_gradients([(keras.ops.ones(()), fast), (keras.ops.ones(()), slow)])
        >>> round(1 - float(fast.numpy()), 4), round(1 - float(slow.numpy()), 4)
        (0.1, 0.01)
    """

    def __init__(self, learning_rate=1e-3, layer_factors=None, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.layer_factors = {str(k): float(v) for k, v in (layer_factors or {}).items()}
        self._factors = []

    def build(self, variables):
        super().build(variables)
        self._factors = [self.layer_factors.get(v.path.split("/")[0], 1.0) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        factor = self._factors[self._get_variable_index(variable)]
        if factor != 1.0:
            learning_rate = keras.ops.multiply(learning_rate, factor)
        return super().update_step(gradient, variable, learning_rate)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if keras.backend.backend() == "torch":
            # Torch's fused Adam would skip update_step, and with it the factors.
            for grad, variable in zip(grads, trainable_variables):
                self.update_step(grad, variable, learning_rate)
            return
        super()._backend_update_step(grads, trainable_variables, learning_rate)

    def get_config(self):
        return {**super().get_config(), "layer_factors": self.layer_factors}


def compile_model(model, learning_rate=1e-3, epochs=None, steps_per_epoch=None, loss=None, *,
                  optimizer=None, loss_kwargs=None, train_targets=None, loss_weights=None,
                  lr_plan="decay", metrics=None):
    """Compiles a model for multi-label training, choosing each loss from its head.

    Like keras-hub's ``compile(loss="auto")``: a sigmoid head gets masked
    binary cross-entropy (a target of ``-1`` adds nothing), a per-label
    2-way softmax gets ``PairwiseSoftmaxLoss``, a softmax over classes gets
    categorical cross-entropy; a named loss that does not fit its head is
    refused before anything trains. A model with several outputs (the twin)
    gets one loss per output and an accuracy for each (``binary_accuracy``
    for a one-unit output). Every trainer and
    every phase of the transfer schedule compiles here.

    Args:
        model: a built ``keras.Model``.
        learning_rate: Adam's learning rate (default optimizer only).
        epochs: planned epochs, for Adam's decay (default optimizer only).
        steps_per_epoch: batches per epoch, for Adam's decay.
        loss: ``None`` (each head's own), a loss name or object for every
            output, or a dict output name -> name or object.
        optimizer: a Keras optimizer; default ``adam(learning_rate,
            epochs, steps_per_epoch, lr_plan)``.
        loss_kwargs: arguments of a loss given by name.
        train_targets: training targets for ``"weighted_bce"``'s weights.
        loss_weights: dict output name -> weight (several outputs).
        lr_plan: the default Adam's plan, ``"decay"`` or ``"cosine"``.
        metrics: metrics of a one-output model (``EpochOutputs``).

    Returns:
        The loss object, or a dict of them for a model with several outputs
        (the model is compiled in place).

    Example:
        >>> inputs = keras.Input((4,))
        >>> model = keras.Model(inputs, keras.layers.Dense(3, activation="sigmoid")(inputs))
        >>> compile_model(model).name
        'bce'
    """
    heads = output_heads(model)
    if optimizer is None:
        optimizer = adam(learning_rate, epochs, steps_per_epoch, lr_plan)
    if len(heads) == 1:
        (name, head), = heads.items()
        if isinstance(loss, dict):
            loss = loss.get(name)
        resolved = head_loss(head, loss, loss_kwargs, train_targets, name)
        model.compile(optimizer=optimizer, loss=resolved, metrics=metrics)
        return resolved
    given = loss if isinstance(loss, dict) else {name: loss for name in heads}
    unknown = sorted(set(given) - set(heads))
    if unknown:
        raise ValueError(f"losses given for {unknown}, but model {model.name} has outputs "
                         f"{list(heads)}")
    resolved = {name: head_loss(head, given.get(name), loss_kwargs, train_targets, name)
                for name, head in heads.items()}
    widths = {name: tensor.shape[-1] for name, tensor in zip(model.output_names, model.outputs)}
    metrics = {name: "binary_accuracy" if widths[name] == 1 else "accuracy" for name in heads}
    model.compile(optimizer=optimizer, loss=resolved, loss_weights=loss_weights, metrics=metrics)
    return resolved


def loss_name(loss):
    """A loss (or a dict of them) as the names ``config.json`` records.

    Args:
        loss: a loss object, a name, or a dict of either.

    Returns:
        A string, or a dict of strings.

    Example:
        >>> loss_name({"a": keras.losses.CategoricalCrossentropy()})
        {'a': 'categorical_crossentropy'}
    """
    if isinstance(loss, dict):
        return {key: loss_name(value) for key, value in loss.items()}
    if isinstance(loss, str):
        return loss
    return getattr(loss, "name", type(loss).__name__)
