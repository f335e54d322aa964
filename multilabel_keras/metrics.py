"""Multi-label metrics: exact mAP, F1, subset accuracy, Hamming loss, report."""

import warnings

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    hamming_loss,
    precision_recall_fscore_support,
)


def label_probabilities(outputs):
    """Per-label probabilities from a model's raw outputs.

    A per-label 2-way softmax head outputs ``[n, labels, 2]``; its
    ``[..., 1]`` (present) channel is the label's probability. Sigmoid
    outputs ``[n, labels]`` pass through.

    Args:
        outputs: array of shape ``(n, L)`` or ``(n, L, 2)``.

    Returns:
        ``np.ndarray`` of shape ``(n, L)``.

    Example:
        >>> label_probabilities(np.array([[[0.3, 0.7], [0.9, 0.1]]])).tolist()
        [[0.7, 0.1]]
    """
    outputs = np.asarray(outputs)
    if outputs.ndim == 3:
        if outputs.shape[-1] != 2:
            raise ValueError(f"expected [n, labels, 2] outputs, got shape {outputs.shape}")
        return outputs[..., 1]
    return outputs


def _check(y_true, scores):
    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    if y_true.ndim != 2 or y_true.shape != scores.shape:
        raise ValueError(
            f"y_true and scores must be 2-D arrays of one shape, got {y_true.shape} and {scores.shape}"
        )
    return y_true.astype(np.int64), scores


def average_precisions(y_true, scores):
    """Exact average precision of every label (``nan`` where it has no positive).

    Average precision is the area under the step-wise precision-recall
    curve computed from every distinct score, as in scikit-learn; it is not
    the interpolated 200-threshold PR-AUC that ``keras.metrics.AUC`` gives.

    Args:
        y_true: ``(n, L)`` 0/1 array.
        scores: ``(n, L)`` predicted probabilities.

    Returns:
        ``np.ndarray`` of ``L`` floats.

    Example:
        >>> average_precisions([[1, 0], [0, 0]], [[0.9, 0.2], [0.1, 0.3]]).tolist()
        [1.0, nan]
    """
    y_true, scores = _check(y_true, scores)
    out = np.full(y_true.shape[1], np.nan)
    for j in range(y_true.shape[1]):
        if y_true[:, j].any():
            out[j] = average_precision_score(y_true[:, j], scores[:, j])
    return out


def mean_average_precision(y_true, scores):
    """Macro mean of per-label average precision over labels with positives.

    Args:
        y_true: ``(n, L)`` 0/1 array.
        scores: ``(n, L)`` predicted probabilities.

    Returns:
        A float, or ``nan`` when no label has a positive.

    Example:
        >>> mean_average_precision([[1, 0], [0, 1]], [[0.9, 0.2], [0.1, 0.8]])
        1.0
    """
    aps = average_precisions(y_true, scores)
    if np.all(np.isnan(aps)):
        return float("nan")
    return float(np.nanmean(aps))


def binarize(scores, thresholds=0.5):
    """Turns scores into 0/1 predictions with per-label thresholds.

    Args:
        scores: ``(n, L)`` probabilities.
        thresholds: a float or ``L`` floats; a label is on when its score is
            at least its threshold.

    Returns:
        ``(n, L)`` int array.

    Example:
        >>> binarize([[0.2, 0.7]], [0.1, 0.8]).tolist()
        [[1, 0]]
    """
    scores = np.asarray(scores, dtype=np.float64)
    thresholds = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), scores.shape[-1:])
    return (scores >= thresholds).astype(np.int64)


def multilabel_report(y_true, scores, thresholds=0.5, class_names=None):
    """Computes the metrics dict used by ``evaluate`` and ``metrics.json``.

    The headline numbers are ``mAP`` (threshold-free) and ``micro_f1`` /
    ``macro_f1`` / ``subset_accuracy`` / ``hamming_loss`` at the given
    thresholds. ``elementwise_accuracy`` (Keras' ``binary_accuracy``) is
    included for comparison only: with few positives per image it is high
    even for a model that predicts nothing.

    Args:
        y_true: ``(n, L)`` 0/1 array.
        scores: ``(n, L)`` predicted probabilities.
        thresholds: a float or one per label.
        class_names: ``L`` label names for ``per_label`` (default ``"0"``…).

    Returns:
        A JSON-ready dict.

    Example:
        >>> r = multilabel_report([[1, 0], [0, 1]], [[0.9, 0.2], [0.4, 0.8]])
        >>> r["subset_accuracy"], r["mAP"]
        (1.0, 1.0)
    """
    y_true, scores = _check(y_true, scores)
    n, num_labels = y_true.shape
    names = list(class_names) if class_names is not None else [str(j) for j in range(num_labels)]
    if len(names) != num_labels:
        raise ValueError(f"{len(names)} class names for {num_labels} labels")
    pred = binarize(scores, thresholds)
    aps = average_precisions(y_true, scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        precision, recall, f1, support = precision_recall_fscore_support(
            y_true, pred, average=None, zero_division=0
        )
    thr = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (num_labels,))
    per_label = {
        name: {
            "precision": float(precision[j]),
            "recall": float(recall[j]),
            "f1": float(f1[j]),
            "ap": None if np.isnan(aps[j]) else float(aps[j]),
            "support": int(support[j]),
            "threshold": float(thr[j]),
        }
        for j, name in enumerate(names)
    }
    return {
        "num_images": int(n),
        "num_labels": int(num_labels),
        "mAP": None if np.all(np.isnan(aps)) else float(np.nanmean(aps)),
        "micro_f1": float(f1_score(y_true, pred, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(y_true, pred, average="macro", zero_division=0)),
        "subset_accuracy": float(accuracy_score(y_true, pred)),
        "hamming_loss": float(hamming_loss(y_true, pred)),
        "elementwise_accuracy": float((y_true == pred).mean()) if n else float("nan"),
        "per_label": per_label,
    }
