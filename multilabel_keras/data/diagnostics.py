"""Data set diagnostics: label statistics, co-occurrence, unseen combinations."""

import collections
import os

import numpy as np

from multilabel_keras.data.splits import split_samples
from multilabel_keras.data.vocabulary import LabelVocabulary
from multilabel_keras.io import atomic_path, check_new_path, write_json


MAX_COOCCURRENCE = 500  # labels in the co-occurrence counts
MAX_PICTURE = 40  # labels drawn in the co-occurrence picture


def label_statistics(samples, vocabulary=None):
    """Counts that describe a multi-label data set.

    Args:
        samples: ``Samples``.
        vocabulary: a fitted ``LabelVocabulary`` (default: fitted here).

    Returns:
        Dict with ``num_images``, ``num_labels``, ``support`` (positives
        per label), ``cardinality`` (mean labels per image), ``density``
        (cardinality / labels), ``images_without_labels``,
        ``unknown_entries``, ``distinct_label_sets``, ``cooccurrence``
        (list of lists: images holding both labels; the diagonal is the
        support) and ``cooccurrence_labels``, its rows' labels: all of
        them, or the ``MAX_COOCCURRENCE`` most frequent when there are
        more (memory and file size grow with their square).

    Example:
        >>> from multilabel_keras.data.sources import Samples
        >>> label_statistics(Samples(["a", "b"], [{"red", "dress"}, {"red"}]))["support"]
        {'dress': 1, 'red': 2}
    """
    vocabulary = vocabulary or LabelVocabulary().fit(samples.labels)
    y = vocabulary.transform(samples.labels, samples.unknown)
    positive = y == 1
    per_image = positive.sum(1)
    names = vocabulary.classes_
    support = positive.sum(0)
    kept = np.arange(len(names))
    if len(names) > MAX_COOCCURRENCE:
        kept = np.sort(np.argsort(-support, kind="stable")[:MAX_COOCCURRENCE])
    pairs = positive[:, kept].astype(np.float32)
    return {
        "num_images": len(samples),
        "num_labels": len(names),
        "support": {n: int(c) for n, c in zip(names, support)},
        "cardinality": float(per_image.mean()) if len(samples) else 0.0,
        "density": float(per_image.mean() / len(names)) if len(samples) and names else 0.0,
        "images_without_labels": int((per_image == 0).sum()),
        "unknown_entries": int((y == -1).sum()),
        "distinct_label_sets": len({frozenset(s) for s in samples.labels}),
        # float32 counts are exact below 2**24 images per pair.
        "cooccurrence": np.rint(pairs.T @ pairs).astype(np.int64).tolist(),
        "cooccurrence_labels": [names[i] for i in kept],
    }


def unseen_combinations(train, other):
    """Label sets that occur in ``other`` but never in ``train``.

    A model rarely predicts a combination it never saw (the classic recipe
    could not say "black dress" because no training image had both).

    Args:
        train: training ``Samples``.
        other: validation or test ``Samples``.

    Returns:
        List of ``{"labels": [...], "count": n}``, most frequent first.

    Example:
        >>> from multilabel_keras import from_folders
        >>> train, test = from_folders("data/fashion"), from_folders("data/test")
        >>> unseen_combinations(train, test)
        [{'labels': ['black', 'dress'], 'count': 3}]
    """
    seen = {frozenset(s) for s in train.labels}
    counts = collections.Counter(frozenset(s) for s in other.labels if frozenset(s) not in seen)
    return [{"labels": sorted(s), "count": c}
            for s, c in sorted(counts.items(), key=lambda kv: (-kv[1], sorted(kv[0])))]


def rare_labels(samples, fractions=(0.8, 0.2), vocabulary=None):
    """Labels with too few positives to appear in every split.

    Args:
        samples: ``Samples``.
        fractions: the planned split sizes.
        vocabulary: a fitted ``LabelVocabulary`` (default: fitted here).

    Returns:
        Dict label -> positives, for labels where the smallest split would
        expect fewer than one positive (``support * min(fractions) < 1``).

    Example:
        >>> from multilabel_keras import Samples
        >>> samples = Samples(["a.jpg"] * 20, [{"red"}] * 17 + [{"purple"}] * 3)
        >>> rare_labels(samples, (0.8, 0.2))
        {'purple': 3}
    """
    support = label_statistics(samples, vocabulary)["support"]
    smallest = min(f for f in fractions if f > 0)
    return {n: c for n, c in support.items() if c * smallest < 1}


def plot_cooccurrence(matrix, names, path):
    """Draws the label co-occurrence matrix as a heat map PNG.

    With more than ``MAX_PICTURE`` labels only the most frequent are
    drawn (the title says how many of how many), so the picture's size
    stays bounded: 700 labels drawn in full took gigabytes.

    Args:
        matrix: ``L x L`` counts.
        names: ``L`` label names.
        path: destination PNG (written atomically).

    Returns:
        The names drawn.

    Example:
        >>> from multilabel_keras import from_folders
        >>> samples = from_folders("data/fashion")
        >>> stats = label_statistics(samples)
        >>> plot_cooccurrence(stats["cooccurrence"], stats["cooccurrence_labels"], "cooc.png")
        ['black', 'blue', 'dress', 'jeans', 'red', 'shirt']
    """
    from multilabel_keras.plots import plt

    matrix = np.asarray(matrix)
    names = list(names)
    title = "label co-occurrence"
    if len(names) > MAX_PICTURE:
        kept = np.sort(np.argsort(-np.diag(matrix), kind="stable")[:MAX_PICTURE])
        title += f": the {MAX_PICTURE} most frequent of {len(names)} labels"
        matrix, names = matrix[np.ix_(kept, kept)], [names[i] for i in kept]
    size = max(4.0, 0.45 * len(names) + 2)
    figure, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix, cmap="viridis")
    ax.set_xticks(range(len(names)), [n[:30] for n in names], rotation=90, fontsize=8)
    ax.set_yticks(range(len(names)), [n[:30] for n in names], fontsize=8)
    if len(names) <= 20:
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] < matrix.max() / 2 else "black")
    figure.colorbar(image, ax=ax, label="images with both labels")
    ax.set_title(title)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=90)
    plt.close(figure)
    return names


def inspect_data(samples, out_dir=None, val_split=0.2, seed=0, overwrite=False):
    """The report behind ``multilabel-keras inspect``.

    Statistics of the whole set, the labels too rare for a
    ``val_split`` hold-out, and the label combinations of that hold-out
    (the split ``train`` would make with the same seed) never seen in its
    training part.

    Args:
        samples: ``Samples``.
        out_dir: optional folder for ``inspect.json`` and
            ``cooccurrence.png``.
        val_split: hold-out fraction to check.
        seed: the split seed (as in ``train``).
        overwrite: replace an ``inspect.json`` or ``cooccurrence.png``
            already in ``out_dir`` (refused by default: they may be the
            user's).

    Returns:
        The report dict.

    Example:
        >>> from multilabel_keras import from_folders
        >>> report = inspect_data(from_folders("data/fashion"), "inspect/")
        >>> report["num_images"], sorted(os.listdir("inspect"))
        (30, ['cooccurrence.png', 'inspect.json'])
    """
    outputs = [] if out_dir is None else [os.path.join(out_dir, n)
                                          for n in ("cooccurrence.png", "inspect.json")]
    for path in outputs:
        check_new_path(path, overwrite)
    vocabulary = LabelVocabulary().fit(samples.labels)
    report = label_statistics(samples, vocabulary)
    report["labels"] = vocabulary.classes_
    fractions = (1 - val_split, val_split)
    report["rare_labels"] = rare_labels(samples, fractions, vocabulary)
    train, held_out = split_samples(samples, vocabulary, fractions, seed)
    report["unseen_in_training"] = unseen_combinations(train, held_out)
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        plot_cooccurrence(report["cooccurrence"], report["cooccurrence_labels"], outputs[0])
        write_json(outputs[1], report)
    return report
