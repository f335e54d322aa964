"""Keras callbacks: exact per-epoch mAP, best checkpoint, crash-safe history."""

import math

import keras
import numpy as np

from multilabel_keras.io import atomic_path
from multilabel_keras.metrics import mean_average_precision
from multilabel_keras.models.outputs import predict_batches
from multilabel_keras.models.precision import with_policy
from multilabel_keras.run_files import write_history


class ExactMAP(keras.callbacks.Callback):
    """Adds exact ``val_mAP`` / ``val_loss`` and a training ``mAP`` to epoch logs.

    Keras' ``AUC(curve="PR")`` approximates the area with 200 thresholds;
    this predicts the validation set once per epoch and computes average
    precision exactly. The training ``mAP`` is exact too: from the
    training pass's own outputs when an ``EpochOutputs`` metric is given
    (no extra inference), else from a fixed sample of training images
    without augmentation. Place it first in the callback list: later
    callbacks (checkpoint, early stopping, CSV log) read the values it adds.

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


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the best model so far to a ``.keras`` file, atomically.

    The file holds an uncompiled copy of the model (no optimizer state), so
    it is a third of the size and loads anywhere with ``safe_mode=True``.
    The best weights are also kept in memory and restored when training
    ends, so the model in hand is the one on disk.

    Args:
        path: destination ``.keras`` file, or ``None`` to keep the best
            weights in memory only.
        monitor: log key to maximise (e.g. ``"val_mAP"``).
        model: the model to keep and save when it is not the one being
            fitted (a tail sharing its layers, say); default the fitted one.

    Example:
        >>> BestCheckpoint("run/model.keras", monitor="val_mAP").best
        -inf
    """

    def __init__(self, path, monitor="val_mAP", model=None):
        super().__init__()
        self.kept_model = model
        self.path = path
        self.monitor = monitor
        self.best = -math.inf
        self.best_epoch = None
        self.best_weights = None
        self._twin = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(value) or value <= self.best:
            return
        self.best, self.best_epoch = float(value), epoch + 1
        self.best_weights = [np.array(w) for w in self._kept().get_weights()]
        if self.path is not None:
            save_inference_model(self._kept(), self.path, twin=self._get_twin())

    def _kept(self):
        return self.kept_model if self.kept_model is not None else self.model

    def _get_twin(self):
        if self._twin is None:
            self._twin = inference_copy(self._kept())
        return self._twin

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self._kept().set_weights(self.best_weights)

    def save_last_if_none(self, model=None):
        """Saves the last weights when no epoch was ever best.

        That happens when the monitored value was never finite (a
        validation split without positives, say); the run still needs its
        model file.

        Args:
            model: the trained model (default: the one being watched).

        Returns:
            None.
        """
        if self.best_weights is None and self.path is not None:
            model = model if model is not None else self._kept()
            save_inference_model(model, self.path, twin=inference_copy(model))


def inference_copy(model):
    """An uncompiled float32 copy of a functional model (same layers, fresh variables)."""
    # clone_model would carry the compile state over; from_config does not.
    try:
        copy = model.__class__.from_config(model.get_config())
    except (NotImplementedError, TypeError, ValueError):
        return None  # a subclassed model without get_config is saved as it is
    # A model trained in bfloat16 is saved computing in float32, as every run's model is.
    return with_policy(copy, "float32")


def save_inference_model(model, path, twin=None):
    """Saves ``model`` (or ``twin`` holding its weights) to ``path`` atomically.

    Args:
        model: the trained model.
        path: destination ``.keras`` file.
        twin: optional uncompiled copy from ``inference_copy``; when given,
            it receives the weights and is saved instead, without optimizer
            state.

    Returns:
        None.

    Example:
        >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, activation="sigmoid")])
        >>> save_inference_model(model, "run/tiny.keras")
        >>> keras.saving.load_model("run/tiny.keras", safe_mode=True).output_shape
        (None, 2)
    """
    target = model
    if twin is not None:
        twin.set_weights(model.get_weights())
        target = twin
    with atomic_path(path) as tmp:
        target.save(tmp)


class HistoryCSV(keras.callbacks.Callback):
    """Writes the epoch log to CSV after every epoch, replacing the file atomically.

    Args:
        path: destination ``history.csv``.
        rows: rows from earlier phases or runs to keep in front.

    Attributes:
        extra: columns added to every row from now on (``{"phase": 2}``).

    Example:
        >>> cb = HistoryCSV("run/log.csv")
        >>> cb.on_epoch_end(0, {"loss": 0.5})
        >>> open("run/log.csv").read().splitlines()
        ['epoch,loss', '1,0.5']
    """

    def __init__(self, path, rows=None):
        super().__init__()
        self.path = path
        self.rows = list(rows or [])
        self.extra = {}

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": len(self.rows) + 1, **self.extra}
        for key, value in (logs or {}).items():
            row[key] = float(np.asarray(value)) if not isinstance(value, str) else value
        self.rows.append(row)
        write_history(self.path, self.rows)
