"""Per-label decision thresholds, tuned on validation data."""

import os

import numpy as np

from multilabel_keras.io import read_json, write_json

DEFAULT_THRESHOLD = 0.5


def tune_thresholds(y_true, scores, default=DEFAULT_THRESHOLD):
    """Chooses, for each label, the threshold that maximises its F1.

    Call this on validation predictions only: thresholds tuned on the data
    you report on inflate the report. Each candidate threshold is the
    midpoint between two adjacent distinct scores, so the choice does not
    sit on one example's exact score. A label with no positive (or no
    negative) in ``y_true`` keeps ``default``.

    Args:
        y_true: ``(n, L)`` 0/1 validation labels.
        scores: ``(n, L)`` validation probabilities.
        default: threshold for labels that cannot be tuned.

    Returns:
        ``np.ndarray`` of ``L`` thresholds in ``(0, 1]``.

    Example:
        >>> tune_thresholds([[1], [1], [0]], [[0.4], [0.35], [0.2]]).round(3).tolist()
        [0.275]
    """
    y_true = np.asarray(y_true).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if y_true.shape != scores.shape or y_true.ndim != 2:
        raise ValueError(f"shapes differ or are not 2-D: {y_true.shape} vs {scores.shape}")
    out = np.full(y_true.shape[1], float(default))
    for j in range(y_true.shape[1]):
        positives = y_true[:, j]
        if positives.all() or not positives.any():
            continue
        out[j] = _best_f1_threshold(positives, scores[:, j])
    return out


def _best_f1_threshold(positives, scores):
    order = np.argsort(-scores, kind="stable")
    s, p = scores[order], positives[order]
    true_pos = np.cumsum(p)
    predicted = np.arange(1, len(s) + 1)
    # Only cut between distinct scores: ties are predicted together.
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    f1 = 2 * true_pos / (predicted + p.sum())
    f1 = np.where(last_of_tie, f1, -1)
    k = int(np.argmax(f1))
    if k + 1 < len(s):
        return float((s[k] + s[k + 1]) / 2)
    return float(s[k]) if s[k] > 0 else float(np.nextafter(0, 1))


def save_thresholds(path, thresholds, class_names, source):
    """Writes ``thresholds.json``: one threshold per label name.

    Args:
        path: destination file.
        thresholds: ``L`` floats.
        class_names: ``L`` label names, in vocabulary order.
        source: how they were chosen (e.g. ``"f1 on validation split"``).

    Returns:
        None.

    Example:
        >>> save_thresholds("run/thresholds.json", [0.4, 0.6], ["a", "b"],
        ...                 "default")  # doctest: +SKIP
    """
    thresholds = [float(t) for t in thresholds]
    if len(thresholds) != len(class_names):
        raise ValueError(f"{len(thresholds)} thresholds for {len(class_names)} labels")
    write_json(path, {"source": source, "thresholds": dict(zip(class_names, thresholds))})


def load_thresholds(path, class_names):
    """Reads ``thresholds.json`` and orders it like ``class_names``.

    A missing file means the default 0.5 for every label.

    Args:
        path: the ``thresholds.json`` file.
        class_names: the vocabulary's label names.

    Returns:
        ``np.ndarray`` of ``L`` thresholds.

    Example:
        >>> load_thresholds("run/thresholds.json", vocab.classes_)  # doctest: +SKIP
    """
    if not os.path.exists(path):
        return np.full(len(class_names), DEFAULT_THRESHOLD)
    data = read_json(path, "thresholds file")
    table = data.get("thresholds") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise ValueError(f"thresholds file {path} must hold {{'thresholds': {{label: value}}}}")
    missing = [name for name in class_names if name not in table]
    extra = sorted(set(table) - set(class_names))
    if missing or extra:
        raise ValueError(
            f"thresholds file {path} does not match the labels: "
            f"missing {missing}, unknown {extra}"
        )
    values = [table[name] for name in class_names]
    bad = [n for n, v in zip(class_names, values) if not isinstance(v, (int, float)) or not 0 <= v <= 1]
    if bad:
        raise ValueError(f"thresholds file {path}: thresholds for {bad} are not numbers in [0, 1]")
    return np.asarray(values, dtype=np.float64)
