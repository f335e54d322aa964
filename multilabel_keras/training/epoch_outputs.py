"""The training pass's own outputs, kept for an exact training mAP at no extra inference."""

import keras
import numpy as np
from keras import ops


class EpochOutputs(keras.metrics.Metric):
    """Keeps every training batch's targets and per-label probabilities of one epoch.

    Attached to ``compile(metrics=[...])``, it records what the training
    step already computed, so the per-epoch training mAP costs no extra
    forward pass (a second pass over a sample of training images cost about
    a sixth of the epoch). The outputs are those of the training pass:
    augmented images, dropout on, weights moving during the epoch, as
    Keras' own training accuracy. Keras resets it at every epoch's start.

    Args:
        capacity: rows to keep (batches per epoch x batch size); rows past
            it overwrite the last ones.
        num_labels: labels per row.
        name: the metric's name (its log value is the row count).

    Example:
        >>> m = EpochOutputs(4, 2)
        >>> m.update_state(np.array([[1, 0], [0, 1]], "float32"), np.array([[.9, .2], [.1, .8]], "float32"))
        >>> y, p = m.arrays()
        >>> y.tolist(), p.astype("float64").round(1).tolist()
        ([[1.0, 0.0], [0.0, 1.0]], [[0.9, 0.2], [0.1, 0.8]])
    """

    def __init__(self, capacity, num_labels, name="epoch_outputs", **kwargs):
        super().__init__(name=name, **kwargs)
        self.capacity, self.num_labels = int(capacity), int(num_labels)
        shape = (self.capacity, self.num_labels)
        self.targets = self.add_variable(shape=shape, initializer="zeros", name="targets")
        self.scores = self.add_variable(shape=shape, initializer="zeros", name="scores")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype="int32", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.cast(y_pred, "float32")
        if len(y_pred.shape) == 3:  # a 2-way softmax per label: the "present" channel
            y_pred = y_pred[..., 1]
        y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)), "float32")
        rows = ops.shape(y_pred)[0]
        count = ops.convert_to_tensor(self.count)
        start = ops.minimum(count, self.capacity - rows)
        self.targets.assign(ops.slice_update(ops.convert_to_tensor(self.targets), (start, 0), y_true))
        self.scores.assign(ops.slice_update(ops.convert_to_tensor(self.scores), (start, 0), y_pred))
        self.count.assign(ops.minimum(count + rows, self.capacity))

    def result(self):
        return ops.cast(self.count, "float32")

    def arrays(self):
        """The kept rows: ``(targets, probabilities)`` as NumPy arrays.

        Returns:
            Two ``(n, num_labels)`` float arrays (targets of ``-1`` are unknown).
        """
        count = int(ops.convert_to_numpy(self.count))
        return (np.asarray(ops.convert_to_numpy(self.targets))[:count],
                np.asarray(ops.convert_to_numpy(self.scores))[:count])

    def get_config(self):
        return {**super().get_config(), "capacity": self.capacity, "num_labels": self.num_labels}
