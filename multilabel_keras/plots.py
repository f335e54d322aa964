"""Training curves."""

import math

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from multilabel_keras.io import atomic_path  # noqa: E402


def plot_history(rows, path, title=None):
    """Draws loss and mAP curves, training vs validation, to a PNG file.

    Args:
        rows: history rows (dicts with ``epoch`` and any of ``loss``,
            ``val_loss``, ``mAP``, ``val_mAP``; a ``phase`` column draws
            the transfer schedule's phase changes as dashed lines).
        path: destination PNG (written atomically).
        title: optional figure title.

    Returns:
        None.

    Example:
        >>> plot_history(read_history("run/history.csv"), "run/plot.png")  # doctest: +SKIP
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


def plot_pr_curves(y_true, scores, class_names, path, max_panels=40):
    """Draws one precision-recall curve per label (validation data) to a PNG file.

    Args:
        y_true: ``(n, L)`` labels (0/1, -1 unknown entries are left out).
        scores: ``(n, L)`` probabilities.
        class_names: ``L`` label names.
        path: destination PNG (written atomically).
        max_panels: labels drawn at most (the most frequent first).

    Returns:
        None.

    Example:
        >>> plot_pr_curves(y_val, p_val, vocab.classes_, "run/pr_curves.png")  # doctest: +SKIP
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    y_true = np.asarray(y_true)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-(y_true == 1).sum(0), kind="stable")[:max_panels]
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
        else:
            ax.set_title(f"{class_names[j]} (no positives)", fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall", fontsize=8)
        ax.set_ylabel("precision", fontsize=8)
        ax.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=80)
    plt.close(figure)
