"""Iterative stratification for multi-label data (Sechidis et al., 2011)."""

import numpy as np


def iterative_split(multi_hot, fractions, seed=0):
    """Splits samples so every label is spread across subsets in proportion.

    A random split can leave a rare label with no example in validation.
    Iterative stratification (Sechidis, Tsoumakas & Vlahavas, ECML 2011)
    repeatedly takes the label with the fewest unassigned examples and deals
    those examples to the subset that wants that label most.

    Args:
        multi_hot: ``(n, num_labels)`` 0/1 array.
        fractions: subset sizes as fractions summing to 1, e.g. ``(0.8, 0.2)``.
        seed: random seed for tie-breaking.

    Returns:
        A list of sorted index arrays, one per fraction.

    Example:
        >>> y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1]])
        >>> train, val = iterative_split(y, (0.6, 0.4))
        >>> sorted(np.concatenate([train, val]).tolist())
        [0, 1, 2, 3, 4]
    """
    y = np.asarray(multi_hot) == 1  # unknown (-1) entries do not count as positives
    if y.ndim != 2:
        raise ValueError(f"multi_hot must be 2-D, got shape {y.shape}")
    fractions = np.asarray(fractions, dtype=float)
    if np.any(fractions < 0) or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(f"fractions must be non-negative and sum to 1, got {fractions.tolist()}")
    rng = np.random.default_rng(seed)
    n = len(y)
    wanted = fractions * n
    wanted_per_label = np.outer(fractions, y.sum(axis=0)).astype(float)
    assignment = np.full(n, -1)
    unassigned = np.ones(n, dtype=bool)

    def assign(index, choices):
        best = choices[np.flatnonzero(wanted[choices] == wanted[choices].max())]
        subset = rng.choice(best)
        assignment[index] = subset
        unassigned[index] = False
        wanted[subset] -= 1
        wanted_per_label[subset] -= y[index]

    while True:
        counts = y[unassigned].sum(axis=0)
        if not counts.any():
            break
        rarest = np.flatnonzero(counts == counts[counts > 0].min())
        label = rng.choice(rarest)
        for index in rng.permutation(np.flatnonzero(unassigned & y[:, label])):
            want = wanted_per_label[:, label]
            assign(index, np.flatnonzero(want == want.max()))
    # Examples without any label go wherever size is most lacking.
    for index in rng.permutation(np.flatnonzero(unassigned)):
        assign(index, np.arange(len(fractions)))
    return [np.flatnonzero(assignment == k) for k in range(len(fractions))]


def split_samples(samples, vocabulary, fractions=(0.8, 0.2), seed=0):
    """Splits ``Samples`` with iterative stratification on their labels.

    Args:
        samples: the ``Samples`` to split.
        vocabulary: a fitted ``LabelVocabulary``.
        fractions: subset sizes, summing to 1.
        seed: random seed.

    Returns:
        A tuple of ``Samples``, one per fraction.

    Example:
        >>> from multilabel_keras import LabelVocabulary, from_folders
        >>> samples = from_folders("data/fashion")
        >>> vocab = LabelVocabulary().fit(samples.labels)
        >>> train, val = split_samples(samples, vocab, (0.8, 0.2))
        >>> len(train), len(val), set(train.paths) & set(val.paths)
        (25, 5, set())
    """
    indices = iterative_split(vocabulary.transform(samples.labels, samples.unknown), fractions, seed)
    return tuple(samples.subset(idx) for idx in indices)
