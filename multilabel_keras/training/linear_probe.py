"""LP-FT's first half: fit a transfer model's own head on its cached pooled features."""

import keras  # noqa: F401  (the docstring examples use it)
import numpy as np
import tensorflow as tf

from multilabel_keras.models import build_model  # noqa: F401  (the docstring examples use it)
from multilabel_keras.models.outputs import predict_batches
from multilabel_keras.models.surgery import head_of
from multilabel_keras.training.callbacks import ExactMAP
from multilabel_keras.training.compile import compile_model
from multilabel_keras.training.plans import Phase
from multilabel_keras.training.trainer import Trainer


def linear_probe(model, train_data, val_data, loss=None, seed=0, verbose=0):
    """Runs the frozen backbone once, then trains the head on the features to convergence.

    The head's layers are the model's own, so the model holds the fitted
    head afterwards; nothing needs joining.

    Args:
        model: a transfer model with its backbone frozen.
        train_data: finite dataset of training ``(images, targets)``, not augmented.
        val_data: finite validation dataset, or ``None``.
        loss: the loss object the model trains with.
        seed: shuffle seed.
        verbose: Keras verbosity of the head's training.

    Returns:
        Dict with ``val_mAP`` (best, or ``None`` without validation data)
        and ``epochs`` (head epochs run).

    Example:
        >>> import numpy as np, tensorflow as tf
        >>> from multilabel_keras import build_model
        >>> from multilabel_keras.training.compile import head_loss
        >>> from multilabel_keras.models.surgery import freeze_backbone
        >>> model = build_model("mobilenetv2", 2, (32, 32, 3))
        >>> freeze_backbone(model)
        >>> x = np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
        >>> y = np.array([[1, 0], [0, 1]] * 8, "float32")
        >>> train_ds = val_ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
        >>> summary = linear_probe(model, train_ds, val_ds, loss=head_loss("sigmoid"))
        >>> sorted(summary)
        ['epochs', 'val_mAP']
    """
    encoder, head = head_of(model)
    train_y, train_x = predict_batches(encoder, train_data)
    val_x = val_y = None
    if val_data is not None:
        val_y, val_x = predict_batches(encoder, val_data)
    best, epochs = fit_head_on_features(head, train_x, train_y, val_x, val_y, loss=loss, seed=seed,
                                        max_epochs=300 if val_x is not None else 50,
                                        verbose=verbose)
    return {"val_mAP": best, "epochs": epochs}


def fit_head_on_features(head, train_x, train_y, val_x=None, val_y=None, *, max_epochs=300,
                         patience=15, batch_size=64, learning_rate=1e-3, loss=None, loss_kwargs=None,
                         seed=0, verbose=0):
    """Trains a head on cached features until validation mAP stops improving.

    Features sit in memory, so an epoch costs milliseconds: the head is
    trained to convergence (the first half of LP-FT) rather than for a
    fixed small budget. The epoch with the best exact validation mAP is
    kept (the last one without validation data).

    Args:
        head: an uncompiled ``keras.Model`` taking ``(batch, dim)`` features.
        train_x: ``(n, dim)`` training features.
        train_y: ``(n, L)`` training targets (``-1`` unknown).
        val_x: validation features, or ``None``.
        val_y: validation targets, or ``None``.
        max_epochs: epochs at most.
        patience: stop after this many epochs without a better validation mAP.
        batch_size: feature rows per step.
        learning_rate: Adam's learning rate.
        loss: a loss name or object; default the head's own.
        loss_kwargs: arguments of a loss given by name.
        seed: shuffle seed.
        verbose: Keras verbosity.

    Returns:
        ``(best validation mAP or None, epochs run)``; ``head`` holds the
        kept weights.

    Example:
        >>> keras.utils.set_random_seed(0)
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(320, 8)).astype("float32")
        >>> y = np.stack([x[:, 0] > 0, x[:, 1] > 0], 1).astype("float32")
        >>> head = build_model("mlp", 2, (8,), hidden=())
        >>> best, epochs = fit_head_on_features(head, x[:256], y[:256], x[256:], y[256:],
        ...                                     max_epochs=60, learning_rate=1e-2)
        >>> best > 0.98
        True
    """
    train_y = np.asarray(train_y, np.float32)
    loss = compile_model(head, learning_rate, loss=loss, loss_kwargs=loss_kwargs,
                         train_targets=train_y)
    train_ds = (tf.data.Dataset.from_tensor_slices((np.asarray(train_x, np.float32), train_y))
                .shuffle(len(train_y), seed=seed).batch(batch_size))
    if val_x is None or not len(val_x):
        history = head.fit(train_ds, epochs=max_epochs, verbose=verbose, shuffle=False)
        return None, len(history.history.get("loss", []))
    val_ds = tf.data.Dataset.from_tensor_slices(
        (np.asarray(val_x, np.float32), np.asarray(val_y, np.float32))).batch(256)
    trainer = Trainer(head, "val_mAP", patience=patience)
    trainer.fit_phases(head, [Phase(None, max_epochs, True)], lambda *_: train_ds, None, loss,
                       [ExactMAP(val_ds, None, loss)], verbose)
    trainer.finish()
    return (None if trainer.best_weights is None else trainer.best), len(trainer.rows)
