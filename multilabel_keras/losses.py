"""Multi-label losses, registered so saved models and configs round-trip."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="multilabel_keras")
class PairwiseSoftmaxLoss(keras.losses.Loss):
    """Cross-entropy of a per-label 2-way softmax head (the CelebA recipe).

    The model outputs ``[batch, num_labels, 2]`` (``[absent, present]``
    probabilities, or logits with ``from_logits=True``); targets are the
    usual multi-hot ``[batch, num_labels]``. With a softmax over two
    classes this equals binary cross-entropy on ``output[..., 1]``.

    Args:
        from_logits: the model outputs logits rather than probabilities.
        **kwargs: passed to ``keras.losses.Loss`` (``name``, ``reduction``).

    Example:
        >>> loss = PairwiseSoftmaxLoss()
        >>> round(float(loss([[1.0, 0.0]], [[[0.1, 0.9], [0.8, 0.2]]])), 4)
        0.1643
    """

    def __init__(self, from_logits=False, name="softmax2", **kwargs):
        super().__init__(name=name, **kwargs)
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(ops.convert_to_tensor(y_true), y_pred.dtype)
        if self.from_logits:
            log_probs = ops.log_softmax(y_pred, axis=-1)
        else:
            eps = keras.config.epsilon()
            log_probs = ops.log(ops.clip(y_pred, eps, 1.0 - eps))
        per_label = -(y_true * log_probs[..., 1] + (1.0 - y_true) * log_probs[..., 0])
        return ops.mean(per_label, axis=-1)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


def default_loss(model):
    """The loss that matches a model's output layout.

    Args:
        model: a Keras model.

    Returns:
        ``PairwiseSoftmaxLoss`` for ``[batch, labels, 2]`` outputs, binary
        cross-entropy for ``[batch, labels]``.

    Example:
        >>> default_loss(model).name  # doctest: +SKIP
        'binary_crossentropy'
    """
    if len(model.output_shape) == 3:
        return PairwiseSoftmaxLoss()
    return keras.losses.BinaryCrossentropy()
