"""Decisions: tune a rule on validation scores, then apply it (pure: arrays in, arrays out)."""

import numpy as np

DEFAULT_THRESHOLD = 0.5


POLICIES = ("f1", "mcc", "precision", "global", "fixed", "top_k", "at_least_one")


def tune_thresholds(y_true, scores, default=DEFAULT_THRESHOLD, metric="f1", min_precision=0.9):
    """Chooses, for each label, the threshold that is best on validation data.

    Call this on validation predictions only: thresholds tuned on the data
    you report on inflate the report. Each candidate threshold is the
    midpoint between two adjacent distinct scores, so the choice does not
    sit on one example's exact score. Unknown entries (``-1``) are left
    out. A label with no positive (or no negative) keeps ``default``.

    Args:
        y_true: ``(n, L)`` validation labels (0/1, -1 unknown).
        scores: ``(n, L)`` validation probabilities.
        default: threshold for labels that cannot be tuned.
        metric: ``"f1"`` (max F1), ``"mcc"`` (max Matthews correlation) or
            ``"precision"`` (the lowest threshold whose precision reaches
            ``min_precision``, i.e. the most recall at that precision; a
            label that never reaches it gets a threshold above every score).
        min_precision: the precision floor for ``metric="precision"``.

    Returns:
        ``np.ndarray`` of ``L`` thresholds in ``[0, 1]``.

    Example:
        >>> tune_thresholds([[1], [1], [0]], [[0.4], [0.35], [0.2]]).round(3).tolist()
        [0.275]
    """
    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    if y_true.shape != scores.shape or y_true.ndim != 2:
        raise ValueError(f"shapes differ or are not 2-D: {y_true.shape} vs {scores.shape}")
    if metric not in ("f1", "mcc", "precision"):
        raise ValueError(f"metric must be 'f1', 'mcc' or 'precision', got {metric!r}")
    out = np.full(y_true.shape[1], float(default))
    for j in range(y_true.shape[1]):
        known = y_true[:, j] != -1
        positives = y_true[known, j] == 1
        if positives.all() or not positives.any():
            continue
        out[j] = _best_threshold(positives, scores[known, j], metric, min_precision)
    return out


def _best_threshold(positives, scores, metric, min_precision):
    order = np.argsort(-scores, kind="stable")
    s, p = scores[order], positives[order]
    tp = np.cumsum(p).astype(float)
    predicted = np.arange(1, len(s) + 1, dtype=float)
    fp = predicted - tp
    fn = p.sum() - tp
    tn = len(s) - p.sum() - fp
    # Only cut between distinct scores: ties are predicted together.
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "f1":
            value = 2 * tp / (predicted + p.sum())
        elif metric == "mcc":
            denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
            value = np.where(denom > 0, (tp * tn - fp * fn) / denom, 0.0)
        else:
            # Most predictions (lowest cut) whose precision still reaches the floor.
            value = np.where(tp / predicted >= min_precision, predicted, -1.0)
            if not (np.where(last_of_tie, value, -1) > 0).any():
                return float(min(1.0, np.nextafter(s[0], np.inf)))
    value = np.where(last_of_tie, value, -np.inf)
    k = int(np.argmax(value))
    if k + 1 < len(s):
        return float((s[k] + s[k + 1]) / 2)
    # Predicting every known example is best: the lowest score itself is the cut, since a
    # label is on at score >= threshold (0.0 when that score is exactly 0).
    return float(s[k])


def global_threshold(y_true, scores):
    """The single threshold, shared by all labels, that maximises micro-F1.

    Args:
        y_true: ``(n, L)`` validation labels (0/1, -1 unknown).
        scores: ``(n, L)`` validation probabilities.

    Returns:
        A float.

    Example:
        >>> round(global_threshold([[1, 0], [0, 1]], [[0.8, 0.3], [0.2, 0.6]]), 3)
        0.45
    """
    y_true = np.asarray(y_true)
    known = y_true != -1
    positives = y_true[known] == 1
    if positives.all() or not positives.any():
        return DEFAULT_THRESHOLD
    return _best_threshold(positives, np.asarray(scores, dtype=np.float64)[known], "f1", None)


def choose_decision(y_true, scores, policy="f1", min_precision=0.9, k=1, threshold=0.5):
    """Tunes a decision policy on validation data.

    Policies: ``"f1"``, ``"mcc"``, ``"precision"`` (per-label thresholds,
    see ``tune_thresholds``); ``"global"`` (one threshold for all labels,
    max micro-F1); ``"fixed"`` (``threshold`` for all, nothing tuned);
    ``"top_k"`` (the ``k`` highest-scoring labels, no thresholds);
    ``"at_least_one"`` (per-label F1 thresholds, and the top label when
    none passes).

    Args:
        y_true: validation labels ``(n, L)`` (unused for fixed / top_k).
        scores: validation probabilities ``(n, L)``.
        policy: a name from ``POLICIES``.
        min_precision: floor for ``"precision"``.
        k: labels per image for ``"top_k"``.
        threshold: the value for ``"fixed"``.

    Returns:
        ``(thresholds, rule)``: ``L`` thresholds and the JSON-ready rule
        dict that ``decide`` and ``thresholds.json`` use.

    Example:
        >>> t, rule = choose_decision([[1, 0], [0, 1]], [[0.8, 0.3], [0.2, 0.6]], "top_k", k=1)
        >>> rule
        {'policy': 'top_k', 'k': 1}
    """
    num_labels = np.asarray(scores).shape[1]
    if policy in ("f1", "mcc", "precision"):
        thresholds = tune_thresholds(y_true, scores, metric=policy, min_precision=min_precision)
        rule = {"policy": policy}
        if policy == "precision":
            rule["min_precision"] = float(min_precision)
    elif policy == "at_least_one":
        thresholds, rule = tune_thresholds(y_true, scores), {"policy": policy}
    elif policy == "global":
        thresholds, rule = np.full(num_labels, global_threshold(y_true, scores)), {"policy": policy}
    elif policy == "fixed":
        thresholds, rule = np.full(num_labels, float(threshold)), {"policy": policy}
    elif policy == "top_k":
        if int(k) < 1:
            raise ValueError(f"top_k needs k >= 1, got {k}")
        thresholds, rule = np.full(num_labels, DEFAULT_THRESHOLD), {"policy": policy, "k": int(k)}
    else:
        raise ValueError(f"unknown threshold policy {policy!r}; choose one of {', '.join(POLICIES)}")
    return thresholds, rule


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


def decide(scores, thresholds=0.5, rule=None):
    """Turns scores into 0/1 predictions under a decision rule.

    Args:
        scores: ``(n, L)`` probabilities.
        thresholds: a float or ``L`` floats.
        rule: ``None`` or a rule dict from ``choose_decision``: threshold
            policies use ``thresholds``; ``{"policy": "top_k", "k": k}``
            takes the ``k`` best labels; ``{"policy": "at_least_one"}``
            adds the best label to images where no threshold is passed.

    Returns:
        ``(n, L)`` int array.

    Example:
        >>> decide([[0.2, 0.4]], 0.5, {"policy": "at_least_one"}).tolist()
        [[0, 1]]
    """
    scores = np.asarray(scores, dtype=np.float64)
    policy = (rule or {}).get("policy")
    if policy == "top_k":
        k = min(int(rule["k"]), scores.shape[1])
        pred = np.zeros(scores.shape, np.int64)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        np.put_along_axis(pred, top, 1, axis=1)
        return pred
    pred = binarize(scores, thresholds)
    if policy == "at_least_one" and scores.shape[1]:
        empty = pred.sum(axis=1) == 0
        pred[empty, np.argmax(scores[empty], axis=1)] = 1
    return pred


# Per-label temperatures are searched on this log-spaced grid (1/20 … 20, ~2.5% apart).
_TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(20.0), 241))
_EDGE = 1e-7


def _logits(scores):
    p = np.clip(np.asarray(scores, dtype=np.float64), _EDGE, 1.0 - _EDGE)
    return np.log(p) - np.log1p(-p)


def fit_temperatures(y_true, scores, min_examples=10):
    """Per-label temperature scaling fitted on validation scores.

    Label ``j``'s calibrated score is ``sigmoid(logit(p) / T_j)``, with
    ``T_j`` the value of a log-spaced grid over [1/20, 20] that minimises
    the binary cross-entropy on the label's known validation entries. A
    label with fewer than ``min_examples`` positives or negatives there
    takes the temperature fitted on every label's entries pooled: a few
    examples fit a temperature to noise (the rare labels of the accuracy
    suite came out worse calibrated on test than before). Temperatures keep
    each label's ranking, so average precision and the decisions of
    per-label thresholds tuned afterwards do not change; what changes is
    whether a score of 0.8 means 80%.

    Args:
        y_true: validation targets ``(n, L)`` (``-1`` unknown).
        scores: validation probabilities ``(n, L)``.
        min_examples: positives and negatives a label needs for a
            temperature of its own (1: every label with both; a huge
            number: one temperature for all).

    Returns:
        ``np.ndarray`` of ``L`` temperatures (1 where nothing can be fitted).

    Example:
        >>> y = np.array([[1], [0], [1], [0]])
        >>> p = np.array([[0.999], [0.001], [0.001], [0.999]])  # confidently wrong half the time
        >>> bool(fit_temperatures(y, p)[0] > 5)
        True
    """
    y_true = np.asarray(y_true)
    logits = _logits(scores)
    if y_true.shape != logits.shape or y_true.ndim != 2:
        raise ValueError(f"y_true and scores must be 2-D arrays of one shape, got "
                         f"{y_true.shape} and {logits.shape}")
    known = y_true != -1
    pooled = _best_temperature(y_true[known] == 1, logits[known])
    temperatures = np.full(y_true.shape[1], pooled)
    for j in range(y_true.shape[1]):
        y = y_true[known[:, j], j] == 1
        if min(y.sum(), (~y).sum()) >= max(1, min_examples):
            temperatures[j] = _best_temperature(y, logits[known[:, j], j])
    return temperatures


def _best_temperature(positive, logits):
    """The grid temperature with the least cross-entropy; 1 without both classes."""
    if positive.all() or not positive.any():
        return 1.0
    scaled = logits[None, :] / _TEMPERATURES[:, None]
    # Cross-entropy of sigmoid(scaled), written to stay finite for large logits.
    loss = np.mean(np.logaddexp(0.0, np.where(positive, -scaled, scaled)), axis=1)
    return float(_TEMPERATURES[int(np.argmin(loss))])


def apply_temperatures(scores, temperatures):
    """Calibrated scores: ``sigmoid(logit(p) / T)`` per label; a label with ``T = 1`` is unchanged.

    Args:
        scores: ``(n, L)`` probabilities.
        temperatures: ``L`` temperatures (from ``fit_temperatures``), or ``None``.

    Returns:
        ``(n, L)`` float64 probabilities.

    Example:
        >>> apply_temperatures([[0.9, 0.9]], [1.0, 2.0]).round(3).tolist()
        [[0.9, 0.75]]
    """
    scores = np.asarray(scores, dtype=np.float64)
    if temperatures is None:
        return scores
    temperatures = np.broadcast_to(np.asarray(temperatures, dtype=np.float64), scores.shape[-1:])
    calibrated = 1.0 / (1.0 + np.exp(-_logits(scores) / temperatures))
    return np.where(temperatures == 1.0, scores, calibrated)
