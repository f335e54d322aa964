"""The learning-rate range test: a short run with a rising rate, read for the rate to train at.

Smith's range test (2017), as fastai's ``lr_find`` runs it: one step per
rate, rates rising geometrically from ``start`` to ``stop``, the loss
smoothed with a bias-corrected moving average, stopped once it passes four
times its lowest value. The suggestion is the rate of the lowest smoothed
loss divided by ten (fastai's ``minimum`` suggestion): the fastest rate
still well short of where training diverges. The model's weights (batch
norm statistics included) are put back afterwards.
"""

import dataclasses
import math

import keras
import numpy as np


@dataclasses.dataclass
class RangeTest:
    """What a range test measured.

    Attributes:
        rates: the learning rate of each step taken.
        losses: the smoothed training loss after each step.
        suggestion: the rate to train at (lowest smoothed loss's rate / 10).
        lowest: the rate where the smoothed loss was lowest.
    """

    rates: list
    losses: list
    suggestion: float
    lowest: float


def range_rates(start, stop, steps):
    """The geometric rates of a range test, ``start`` to ``stop`` in ``steps`` steps.

    Example:
        >>> [round(r, 6) for r in range_rates(1e-4, 1e-2, 3)]
        [0.0001, 0.001, 0.01]
    """
    return [start * (stop / start) ** (i / (steps - 1)) for i in range(steps)]


def find_learning_rate(model, batches, loss="binary_crossentropy", start=1e-6, stop=1.0,
                       steps=60, divergence=4.0, smoothing=0.9):
    """Runs a learning-rate range test with Adam and restores the model.

    Args:
        model: a built Keras model (compiled here with a fresh Adam; compile
            it again afterwards).
        batches: an endless dataset or iterable of ``(x, y)`` batches.
        loss: the training loss (a name, ``keras.losses.Loss`` or callable).
        start: the first rate.
        stop: the last rate tried.
        steps: steps from ``start`` to ``stop`` (one batch each); at least 5.
        divergence: stop once the smoothed loss exceeds this many times its
            lowest value (or is not finite).
        smoothing: weight of the past in the loss's moving average.

    Returns:
        A ``RangeTest``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(64, 4)).astype("float32")
        >>> y = (x[:, :2] > 0).astype("float32")
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="sigmoid")])
        >>> before = [w.copy() for w in model.get_weights()]
        >>> test = find_learning_rate(model, [(x, y)] * 40, steps=40)
        >>> 1e-6 <= test.suggestion <= 0.1, all((a == b).all() for a, b in zip(before, model.get_weights()))
        (True, True)
    """
    if not isinstance(steps, int) or steps < 5:
        raise ValueError(f"steps must be a whole number >= 5, got {steps!r}")
    if not 0 < start < stop:
        raise ValueError(f"the range test needs 0 < start < stop, got start={start!r}, stop={stop!r}")
    saved = [np.array(keras.ops.convert_to_numpy(v)) for v in model.weights]
    rates = range_rates(float(start), float(stop), steps)
    optimizer = keras.optimizers.Adam(rates[0])
    model.compile(optimizer, loss)
    tried, losses = [], []
    average, best = 0.0, math.inf
    try:
        stream = iter(batches)
        for i, rate in enumerate(rates):
            try:
                x, y = next(stream)[:2]
            except StopIteration:
                break
            optimizer.learning_rate.assign(rate)
            value = float(np.asarray(model.train_on_batch(x, y)).ravel()[0])
            average = smoothing * average + (1 - smoothing) * value
            smoothed = average / (1 - smoothing ** (i + 1))
            tried.append(rate)
            losses.append(smoothed)
            if not math.isfinite(smoothed) or (i > 0 and smoothed > divergence * best):
                break
            best = min(best, smoothed)
    finally:
        for variable, value in zip(model.weights, saved):
            variable.assign(value)
    finite = [(v, r) for v, r in zip(losses, tried) if math.isfinite(v)]
    if not finite:
        raise ValueError("the learning-rate range test saw no finite loss; check the data "
                         "and the loss")
    lowest = min(finite)[1]
    return RangeTest(tried, losses, max(float(start), lowest / 10.0), lowest)
