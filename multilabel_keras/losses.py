"""Multi-label losses with partial labels, registered so saved models round-trip.

Every loss here reads targets in ``{0, 1}`` with ``-1`` meaning "unknown":
unknown entries contribute nothing, and each image's loss is the mean over
its known labels (an image with no known label contributes 0).
"""

import keras
import numpy as np
from keras import ops

UNKNOWN = -1


def _known(y_true, dtype):
    y_true = ops.cast(ops.convert_to_tensor(y_true), dtype)
    mask = ops.cast(ops.not_equal(y_true, UNKNOWN), dtype)
    return y_true * mask, mask


def _masked_mean(per_label, mask):
    return ops.sum(per_label * mask, axis=-1) / ops.maximum(ops.sum(mask, axis=-1), 1.0)


def _log_probs(y_pred, from_logits):
    """``log p`` and ``log(1 - p)`` of sigmoid outputs, stable for logits."""
    if from_logits:
        return ops.log_sigmoid(y_pred), ops.log_sigmoid(-y_pred)
    eps = keras.config.epsilon()
    p = ops.clip(y_pred, eps, 1.0 - eps)
    return ops.log(p), ops.log(1.0 - p)


class _MultiLabelLoss(keras.losses.Loss):
    def __init__(self, from_logits=False, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true, mask = _known(y_true, y_pred.dtype)
        return _masked_mean(self.elementwise(y_true, y_pred), mask)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="multilabel_keras")
class WeightedBinaryCrossentropy(_MultiLabelLoss):
    """Binary cross-entropy with a per-label weight on the positive term.

    ``loss = -(w_j * y * log p + (1 - y) * log(1 - p))``; with
    ``pos_weight=None`` this is plain binary cross-entropy (with the mask).
    ``pos_weights_from_frequencies`` gives ``w_j = negatives / positives``.

    Args:
        pos_weight: ``None``, a float, or one float per label.
        from_logits: ``y_pred`` are logits.
        name: loss name.

    Example:
        >>> loss = WeightedBinaryCrossentropy(pos_weight=[2.0, 1.0])
        >>> round(float(loss([[1.0, -1.0]], [[0.5, 0.9]])), 4)  # -2 log .5, label 2 unknown
        1.3863
    """

    def __init__(self, pos_weight=None, from_logits=False, name="weighted_bce", **kwargs):
        super().__init__(from_logits=from_logits, name=name, **kwargs)
        if pos_weight is not None:
            pos_weight = [float(w) for w in np.atleast_1d(pos_weight)]
            if any(not np.isfinite(w) or w < 0 for w in pos_weight):
                raise ValueError(f"pos_weight must be finite and >= 0, got {pos_weight}")
        self.pos_weight = pos_weight

    def elementwise(self, y_true, y_pred):
        log_p, log_not_p = _log_probs(y_pred, self.from_logits)
        weight = 1.0 if self.pos_weight is None else ops.convert_to_tensor(self.pos_weight, y_pred.dtype)
        return -(weight * y_true * log_p + (1.0 - y_true) * log_not_p)

    def get_config(self):
        return {**super().get_config(), "pos_weight": self.pos_weight}


@keras.saving.register_keras_serializable(package="multilabel_keras")
class MultiLabelFocalLoss(_MultiLabelLoss):
    """Focal loss (Lin et al., 2017) applied to each label independently.

    ``loss = -alpha y (1 - p)^gamma log p - (1 - alpha)(1 - y) p^gamma log(1 - p)``:
    easy, confidently right entries are down-weighted.

    Args:
        gamma: focusing exponent (0 gives cross-entropy).
        alpha: weight of the positive term in ``[0, 1]``, or ``None`` for
            no class weighting.
        from_logits: ``y_pred`` are logits.
        name: loss name.

    Example:
        >>> round(float(MultiLabelFocalLoss(gamma=2, alpha=None)([[1.0]], [[0.9]])), 5)
        0.00105
    """

    def __init__(self, gamma=2.0, alpha=0.25, from_logits=False, name="focal", **kwargs):
        super().__init__(from_logits=from_logits, name=name, **kwargs)
        if gamma < 0 or (alpha is not None and not 0 <= alpha <= 1):
            raise ValueError(f"need gamma >= 0 and alpha in [0, 1] or None, got {gamma}, {alpha}")
        self.gamma = float(gamma)
        self.alpha = None if alpha is None else float(alpha)

    def elementwise(self, y_true, y_pred):
        log_p, log_not_p = _log_probs(y_pred, self.from_logits)
        p = ops.exp(log_p)
        pos = y_true * ops.power(1.0 - p, self.gamma) * log_p
        neg = (1.0 - y_true) * ops.power(p, self.gamma) * log_not_p
        if self.alpha is not None:
            pos, neg = self.alpha * pos, (1.0 - self.alpha) * neg
        return -(pos + neg)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}


@keras.saving.register_keras_serializable(package="multilabel_keras")
class AsymmetricLoss(_MultiLabelLoss):
    """Asymmetric Loss (Ridnik et al., ICCV 2021) for multi-label training.

    Positives: ``-(1 - p)^gamma_pos log p``. Negatives use a shifted
    probability ``p_m = max(p - clip, 0)``: ``-p_m^gamma_neg log(1 - p_m)``,
    so easy negatives (``p < clip``) are discarded entirely and the rest are
    focused harder than positives.

    Args:
        gamma_neg: focusing exponent of negatives.
        gamma_pos: focusing exponent of positives.
        clip: probability margin for negatives (0 disables it).
        from_logits: ``y_pred`` are logits.
        name: loss name.

    Example:
        >>> round(float(AsymmetricLoss()([[1.0, 0.0]], [[0.9, 0.3]])), 6)
        0.00583
    """

    def __init__(self, gamma_neg=4.0, gamma_pos=1.0, clip=0.05, from_logits=False, name="asl",
                 **kwargs):
        super().__init__(from_logits=from_logits, name=name, **kwargs)
        if gamma_neg < 0 or gamma_pos < 0 or not 0 <= clip < 1:
            raise ValueError(f"need gammas >= 0 and 0 <= clip < 1, got {gamma_neg}, {gamma_pos}, {clip}")
        self.gamma_neg, self.gamma_pos, self.clip = float(gamma_neg), float(gamma_pos), float(clip)

    def elementwise(self, y_true, y_pred):
        log_p, _ = _log_probs(y_pred, self.from_logits)
        p = ops.exp(log_p)
        p_m = ops.maximum(p - self.clip, 0.0)
        eps = keras.config.epsilon()
        pos = ops.power(1.0 - p, self.gamma_pos) * log_p
        neg = ops.power(p_m, self.gamma_neg) * ops.log(ops.maximum(1.0 - p_m, eps))
        return -(y_true * pos + (1.0 - y_true) * neg)

    def get_config(self):
        return {**super().get_config(), "gamma_neg": self.gamma_neg, "gamma_pos": self.gamma_pos,
                "clip": self.clip}


@keras.saving.register_keras_serializable(package="multilabel_keras")
class PairwiseSoftmaxLoss(_MultiLabelLoss):
    """Cross-entropy of a per-label 2-way softmax head (the CelebA recipe).

    The model outputs ``[batch, num_labels, 2]`` (``[absent, present]``
    probabilities, or logits with ``from_logits=True``); targets are the
    usual multi-hot ``[batch, num_labels]`` (``-1`` = unknown). With a
    softmax over two classes this equals binary cross-entropy on
    ``output[..., 1]``.

    Args:
        from_logits: the model outputs logits rather than probabilities.
        name: loss name.

    Example:
        >>> loss = PairwiseSoftmaxLoss()
        >>> round(float(loss([[1.0, 0.0]], [[[0.1, 0.9], [0.8, 0.2]]])), 4)
        0.1643
    """

    def __init__(self, from_logits=False, name="softmax2", **kwargs):
        super().__init__(from_logits=from_logits, name=name, **kwargs)

    def elementwise(self, y_true, y_pred):
        if self.from_logits:
            log_probs = ops.log_softmax(y_pred, axis=-1)
        else:
            eps = keras.config.epsilon()
            log_probs = ops.log(ops.clip(y_pred, eps, 1.0 - eps))
        return -(y_true * log_probs[..., 1] + (1.0 - y_true) * log_probs[..., 0])


LOSSES = {
    "bce": lambda **kw: WeightedBinaryCrossentropy(**{"name": "bce", **kw}),
    "weighted_bce": WeightedBinaryCrossentropy,
    "focal": MultiLabelFocalLoss,
    "asl": AsymmetricLoss,
    "softmax2": PairwiseSoftmaxLoss,
}


def get(name, **kwargs):
    """Returns a loss object by name.

    Args:
        name: ``"bce"``, ``"weighted_bce"``, ``"focal"``, ``"asl"`` or
            ``"softmax2"``; a ``keras.losses.Loss`` passes through.
        **kwargs: the loss's arguments (``gamma_neg=2`` …).

    Returns:
        A ``keras.losses.Loss``.

    Example:
        >>> get("asl", clip=0.1).clip
        0.1
    """
    if isinstance(name, keras.losses.Loss):
        return name
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name](**kwargs)


def pos_weights_from_frequencies(y_true, max_weight=100.0):
    """Per-label positive weights ``negatives / positives`` from training labels.

    Args:
        y_true: ``(n, L)`` targets (``-1`` entries are ignored).
        max_weight: cap for rare labels (a label with no positive gets it).

    Returns:
        A list of ``L`` floats for ``WeightedBinaryCrossentropy``.

    Example:
        >>> pos_weights_from_frequencies([[1, 0], [0, 0], [0, 1], [0, -1]])
        [3.0, 2.0]
    """
    y = np.asarray(y_true, dtype=np.float64)
    positives = (y == 1).sum(0)
    negatives = (y == 0).sum(0)
    weights = np.where(positives > 0, negatives / np.maximum(positives, 1), max_weight)
    return [float(w) for w in np.minimum(weights, max_weight)]


def default_loss(model):
    """The loss that matches a model's output layout.

    Args:
        model: a Keras model.

    Returns:
        ``PairwiseSoftmaxLoss`` for ``[batch, labels, 2]`` outputs, masked
        binary cross-entropy (``"bce"``) for ``[batch, labels]``.

    Example:
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="sigmoid")])
        >>> default_loss(model).name
        'bce'
    """
    if len(model.output_shape) == 3:
        return PairwiseSoftmaxLoss()
    return get("bce")
