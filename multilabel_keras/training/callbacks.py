"""The callback that adds exact per-epoch mAP to the logs the ``Trainer`` reads, and users' own."""

import keras
import numpy as np  # noqa: F401  (the docstring example uses it)

from multilabel_keras.metrics import mean_average_precision
from multilabel_keras.models.outputs import predict_batches


class ExactMAP(keras.callbacks.Callback):
    """Adds exact ``val_mAP`` / ``val_loss`` and a training ``mAP`` to epoch logs.

    Keras' ``AUC(curve="PR")`` approximates the area with 200 thresholds;
    this predicts the validation set once per epoch and computes average
    precision exactly. The training ``mAP`` is exact too: from the
    training pass's own outputs when an ``EpochOutputs`` metric is given
    (no extra inference), else from a fixed sample of training images
    without augmentation. Place it first in the callback list: later
    callbacks (the ``Trainer``'s) read the values it adds.

    Args:
        validation_data: finite dataset of ``(images, multi_hot)`` or ``None``.
        train_data: finite dataset of training images without augmentation,
            or ``None``.
        loss: a callable ``loss(y_true, probabilities)`` for ``val_loss``,
            applied to per-label probabilities (binary cross-entropy there
            equals a 2-way softmax head's categorical cross-entropy).
        train_outputs: an ``EpochOutputs`` metric the model was compiled
            with; used instead of ``train_data``.

    Example:
        >>> import tensorflow as tf
        >>> x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
        >>> y = np.array([[1, 0], [0, 1]] * 4, "float32")
        >>> val_ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="sigmoid")])
        >>> model.compile("adam", "binary_crossentropy")
        >>> cb = ExactMAP(val_ds, val_ds, keras.losses.BinaryCrossentropy())
        >>> history = model.fit(val_ds, epochs=1, callbacks=[cb], verbose=0)
        >>> sorted(history.history)
        ['loss', 'mAP', 'val_loss', 'val_mAP']
    """

    def __init__(self, validation_data=None, train_data=None, loss=None, train_outputs=None):
        super().__init__()
        self.validation_data = validation_data
        self.train_data = train_data
        self.loss = loss
        self.train_outputs = train_outputs

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        if self.train_outputs is not None:
            logs.pop(self.train_outputs.name, None)  # a row count, not a measure
            logs["mAP"] = mean_average_precision(*self.train_outputs.arrays())
        elif self.train_data is not None:
            y, p = predict_batches(self.model, self.train_data)
            logs["mAP"] = mean_average_precision(y, p)
        if self.validation_data is not None:
            y, p = predict_batches(self.model, self.validation_data)
            logs["val_mAP"] = mean_average_precision(y, p)
            if self.loss is not None:
                logs["val_loss"] = float(keras.ops.convert_to_numpy(self.loss(y, p)))


def user_callbacks(callbacks):
    """Checks the Keras callbacks a user passes to a trainer.

    They run after the library's own, so their ``on_epoch_end`` logs hold
    the exact ``mAP`` / ``val_mAP``: Keras' ``TensorBoard``, MLflow's and
    W&B's Keras callbacks, or your own.

    Args:
        callbacks: ``None`` or a list of ``keras.callbacks.Callback``.

    Returns:
        A list (empty for ``None``).

    Example:
        >>> len(user_callbacks([keras.callbacks.History()]))
        1
        >>> user_callbacks(["tensorboard"])
        Traceback (most recent call last):
        ...
        ValueError: callbacks[0] must be a keras.callbacks.Callback, got str
    """
    if callbacks is None:
        return []
    if isinstance(callbacks, keras.callbacks.Callback):
        callbacks = [callbacks]
    if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise ValueError(f"callbacks must be a list of keras.callbacks.Callback, got "
                         f"{type(callbacks).__name__}")
    callbacks = list(callbacks)
    for i, callback in enumerate(callbacks):
        if not isinstance(callback, keras.callbacks.Callback):
            raise ValueError(f"callbacks[{i}] must be a keras.callbacks.Callback, got "
                             f"{type(callback).__name__}")
    return callbacks
