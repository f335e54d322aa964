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
            ``val_loss``, ``mAP``, ``val_mAP``).
        path: destination PNG (written atomically).
        title: optional figure title.

    Returns:
        None.

    Example:
        >>> plot_history(read_history("run/history.csv"), "run/plot.png")  # doctest: +SKIP
    """
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(rows)]
    panels = [("loss", "loss (binary cross-entropy)"), ("mAP", "mAP (exact)")]
    for ax, (key, label) in zip(axes, panels):
        for prefix, name in (("", "train"), ("val_", "validation")):
            values = [row.get(prefix + key, math.nan) for row in rows]
            if any(isinstance(v, float) and math.isfinite(v) for v in values):
                ax.plot(epochs, values, marker="o", markersize=3, label=name)
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
