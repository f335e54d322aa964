"""Training curves and validation precision-recall curves, as PNG files."""

import math

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from multilabel_keras.io import atomic_path  # noqa: E402


def plot_history(rows, path, title=None, best_epoch=None):
    """Draws loss and mAP curves, training vs validation, to a PNG file.

    Args:
        rows: history rows (dicts with ``epoch`` and any of ``loss``,
            ``val_loss``, ``mAP``, ``val_mAP``; a ``phase`` column draws
            the transfer schedule's phase changes as dashed lines).
        path: destination PNG (written atomically).
        title: optional figure title.
        best_epoch: the epoch whose weights the run kept (drawn as a
            green line with its value); ``0`` is the linear probe's head.

    Returns:
        None.

    Example:
        >>> import os
        >>> from multilabel_keras.runs.records import read_history
        >>> plot_history(read_history("run/history.csv"), "run/plot.png")
        >>> os.path.getsize("run/plot.png") > 0
        True
    """
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(rows)]
    panels = [("loss", "loss"), ("mAP", "mAP (exact)")]
    for ax, (key, label) in zip(axes, panels):
        for prefix, name in (("", "train"), ("val_", "validation")):
            values = [row.get(prefix + key, math.nan) for row in rows]
            if any(isinstance(v, float) and math.isfinite(v) for v in values):
                ax.plot(epochs, values, marker="o", markersize=3, label=name)
        for i in range(1, len(rows)):
            if rows[i].get("phase") != rows[i - 1].get("phase"):
                ax.axvline(epochs[i] - 0.5, color="grey", linestyle="--", linewidth=1)
                ax.annotate(f"phase {rows[i]['phase']:g}", (epochs[i] - 0.4, 0.98),
                            xycoords=("data", "axes fraction"), va="top", fontsize=8)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="tab:green", linewidth=1.5, alpha=0.8)
            ax.annotate(f"kept: epoch {best_epoch}", (best_epoch, 0.02), xycoords=("data", "axes fraction"),
                        color="tab:green", fontsize=8, ha="left", va="bottom")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=100)
    plt.close(figure)


def plot_pr_curves(y_true, scores, class_names, path, max_panels=40, thresholds=None, rule=None,
                   split="validation"):
    """Draws one precision-recall curve per label to a PNG file.

    Args:
        y_true: ``(n, L)`` labels (0/1, -1 unknown entries are left out).
        scores: ``(n, L)`` probabilities.
        class_names: ``L`` label names.
        path: destination PNG (written atomically).
        max_panels: labels drawn at most (the most frequent first).
        thresholds: the chosen thresholds (a float or ``L`` floats): each
            panel marks the precision and recall the decision rule gives.
        rule: the decision rule of ``choose_decision`` (``top_k`` and
            ``at_least_one`` move the marked point off the curve).
        split: the data's name, in the figure's title.

    Returns:
        ``{label: (recall, precision)}`` of each marked point (empty without
        ``thresholds``).

    Example:
        >>> y_val = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
        >>> p_val = np.array([[0.9, 0.2], [0.3, 0.8], [0.6, 0.4], [0.1, 0.3]])
        >>> plot_pr_curves(y_val, p_val, ["red", "dress"], "run/pr_curves.png", thresholds=0.5)
        {'red': (1.0, 1.0), 'dress': (0.5, 1.0)}
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    from multilabel_keras.decisions import decide

    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    chosen = decide(scores, thresholds, rule) if thresholds is not None else None
    limits = np.broadcast_to(np.asarray(thresholds if thresholds is not None else np.nan, float),
                             (scores.shape[1],))
    order = np.argsort(-(y_true == 1).sum(0), kind="stable")[:max_panels]
    marked = {}
    cols = min(4, max(1, len(order)))
    rows = max(1, int(np.ceil(len(order) / cols)))
    figure, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    for ax, j in zip(axes.ravel(), order):
        ax.set_visible(True)
        known = y_true[:, j] != -1
        y, s = y_true[known, j], scores[known, j]
        if (y == 1).any():
            precision, recall, _ = precision_recall_curve(y, s)
            ax.step(recall, precision, where="post")
            ax.set_title(f"{class_names[j]} (AP {average_precision_score(y, s):.3f})", fontsize=9)
            if chosen is not None:
                said = chosen[known, j] == 1
                hit = float((said & (y == 1)).sum())
                point = (hit / float((y == 1).sum()), hit / float(said.sum()) if said.any() else 1.0)
                marked[class_names[j]] = point
                ax.plot(*point, "o", color="tab:red", markersize=5)
                ax.annotate(f"t={limits[j]:.2f}", point, textcoords="offset points", xytext=(4, -10),
                            fontsize=7, color="tab:red")
        else:
            ax.set_title(f"{class_names[j]} (no positives)", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall", fontsize=8)
        ax.set_ylabel("precision", fontsize=8)
        ax.grid(alpha=0.3)
    figure.suptitle(f"precision-recall on the {split} split"
                    + (" (red: the chosen thresholds, tuned on it)" if chosen is not None else ""),
                    fontsize=10)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=80)
    plt.close(figure)
    return marked


def plot_reliability(y_true, curves, path, bins=10, split="validation"):
    """Draws a reliability diagram (pooled over labels) for one or more sets of scores.

    Each curve is the rate of positives against the mean score in
    equal-width score bins, over every known (image, label) entry; the
    diagonal is perfect calibration. The legend gives each curve's expected
    calibration error.

    Args:
        y_true: ``(n, L)`` labels (0/1, -1 unknown entries are left out).
        curves: ``{name: (n, L) probabilities}``.
        path: destination PNG (written atomically).
        bins: number of bins.
        split: the data's name, in the figure's title.

    Returns:
        ``{name: (mean_score, positive_rate)}`` of the non-empty bins.

    Example:
        >>> y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
        >>> p = np.array([[0.9, 0.2], [0.3, 0.8], [0.6, 0.4], [0.1, 0.3]])
        >>> points = plot_reliability(y, {"raw": p}, "run/reliability.png", bins=2)
        >>> [v.round(3).tolist() for v in points["raw"]]
        [[0.26, 0.767], [0.2, 1.0]]
    """
    from multilabel_keras.metrics import calibration_bins, calibration_errors

    figure, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect")
    points = {}
    for name, scores in curves.items():
        counts, conf, acc = calibration_bins(y_true, scores, bins)
        full = counts > 0
        points[name] = (conf[full], acc[full])
        ece = calibration_errors(y_true, scores, bins)[0]
        ax.plot(conf[full], acc[full], "o-", markersize=4, label=f"{name} (ECE {ece:.3f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean score in bin", fontsize=8)
    ax.set_ylabel("share of positives", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(f"reliability on the {split} split (all labels)", fontsize=9)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=80)
    plt.close(figure)
    return points
