"""LP-FT's first half: fit a transfer model's own head on its cached pooled features."""

from multilabel_keras.models.outputs import predict_batches
from multilabel_keras.models.surgery import head_of
from multilabel_keras.training.features import fit_head_on_features


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
