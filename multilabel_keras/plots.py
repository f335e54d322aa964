"""Training curves."""

import math

import matplotlib

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
