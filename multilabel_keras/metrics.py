"""Multi-label metrics: exact mAP, F1, subset accuracy, Hamming loss, calibration error, report.

Targets may hold ``-1`` for "unknown" (partial labels): those entries are
left out of every metric.
"""


import numpy as np
from sklearn.metrics import average_precision_score

from multilabel_keras.decisions import decide


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
        known = y_true[:, j] != -1
        if (y_true[known, j] == 1).any():
            out[j] = average_precision_score(y_true[known, j], scores[known, j])
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


def calibration_bins(y_true, scores, bins=10):
    """Counts, mean score and positive rate in equal-width score bins, over known entries.

    Bins follow ``sklearn.calibration.calibration_curve(strategy="uniform")``:
    edges ``linspace(0, 1, bins + 1)``, a score on an inner edge in the
    lower bin.

    Args:
        y_true: ``(n,)`` 0/1 (``-1`` unknown) targets of one label, or any shape.
        scores: probabilities of the same shape.
        bins: number of bins.

    Returns:
        ``(counts, mean_score, positive_rate)``, arrays of ``bins`` (``nan``
        where a bin is empty).

    Example:
        >>> counts, conf, acc = calibration_bins([1, 0, 1], [0.95, 0.05, 0.15], bins=2)
        >>> counts.tolist(), acc.tolist()
        ([2, 1], [0.5, 1.0])
    """
    y = np.asarray(y_true).ravel()
    p = np.asarray(scores, dtype=np.float64).ravel()
    known = y != -1
    y, p = y[known], p[known]
    ids = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], p)
    counts = np.bincount(ids, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.bincount(ids, weights=p, minlength=bins) / counts
        positive_rate = np.bincount(ids, weights=(y == 1).astype(float), minlength=bins) / counts
    return counts, mean_score, positive_rate


def calibration_errors(y_true, scores, bins=10):
    """Expected calibration error, overall and per label.

    ECE is the share-weighted mean gap between a bin's mean score and its
    rate of positives (equal-width bins). ``overall`` pools every known
    (image, label) entry; ``per_label`` uses each label's column.

    Args:
        y_true: ``(n, L)`` 0/1 array (``-1`` unknown).
        scores: ``(n, L)`` predicted probabilities.
        bins: number of bins.

    Returns:
        ``(overall, per_label)``: a float and an array of ``L`` (``nan``
        for a label with no known entry).

    Example:
        >>> overall, per_label = calibration_errors([[1, 0], [1, 0]], [[0.9, 0.2], [0.9, 0.2]])
        >>> round(overall, 3), per_label.round(3).tolist()
        (0.15, [0.1, 0.2])
    """
    y_true, scores = _check(y_true, scores)

    def ece(y, p):
        counts, conf, acc = calibration_bins(y, p, bins)
        total = counts.sum()
        if not total:
            return float("nan")
        full = counts > 0
        return float(np.sum(counts[full] * np.abs(conf[full] - acc[full])) / total)

    per_label = np.array([ece(y_true[:, j], scores[:, j]) for j in range(y_true.shape[1])])
    return ece(y_true, scores), per_label


def _ratio(num, den):
    return float(num / den) if den else 0.0


def multilabel_report(y_true, scores, thresholds=0.5, class_names=None, rule=None):
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
        rule: optional decision rule (see ``decide``).

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
    pred = decide(scores, thresholds, rule)
    aps = average_precisions(y_true, scores)
    known = y_true != -1
    positive = (y_true == 1) & known
    tp = (positive & (pred == 1)).sum(0)
    fp = (~positive & known & (pred == 1)).sum(0)
    fn = (positive & (pred == 0)).sum(0)
    support = positive.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    errors = known & (pred != y_true)
    ece, label_ece = calibration_errors(y_true, scores)
    thr = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (num_labels,))
    per_label = {
        name: {
            "precision": float(precision[j]),
            "recall": float(recall[j]),
            "f1": float(f1[j]),
            "ap": None if np.isnan(aps[j]) else float(aps[j]),
            "support": int(support[j]),
            "threshold": float(thr[j]),
            "ece": None if np.isnan(label_ece[j]) else float(label_ece[j]),
        }
        for j, name in enumerate(names)
    }
    return {
        "num_images": int(n),
        "num_labels": int(num_labels),
        "mAP": None if np.all(np.isnan(aps)) else float(np.nanmean(aps)),
        "micro_f1": _ratio(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum()),
        "macro_f1": float(f1.mean()) if num_labels else 0.0,
        "subset_accuracy": float((~errors.any(axis=1)).mean()) if n else float("nan"),
        "hamming_loss": _ratio(errors.sum(), known.sum()),
        "elementwise_accuracy": 1.0 - _ratio(errors.sum(), known.sum()) if n else float("nan"),
        "ece": None if np.isnan(ece) else ece,
        "unknown_entries": int((~known).sum()),
        "per_label": per_label,
    }
