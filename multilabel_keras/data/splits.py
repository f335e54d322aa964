"""Iterative stratification for multi-label data (Sechidis et al., 2011)."""

import warnings

import numpy as np

from multilabel_keras.hints import Setting, hinted


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
    _fill_short_subsets(assignment, y, target_sizes(fractions, n), rng)
    return [np.flatnonzero(assignment == k) for k in range(len(fractions))]


def target_sizes(fractions, n):
    """Whole subset sizes for ``n`` examples: largest remainders, and at least one each.

    Args:
        fractions: subset fractions summing to 1.
        n: number of examples.

    Returns:
        An int array summing to ``n``; every non-zero fraction gets at
        least one example when ``n`` allows it.

    Example:
        >>> target_sizes([0.8, 0.2], 3).tolist(), target_sizes([0.7, 0.15, 0.15], 20).tolist()
        ([2, 1], [14, 3, 3])
    """
    fractions = np.asarray(fractions, dtype=float)
    exact = fractions * n
    sizes = np.floor(exact).astype(int)
    for k in np.argsort(-(exact - sizes), kind="stable")[: n - sizes.sum()]:
        sizes[k] += 1
    for k in np.flatnonzero((fractions > 0) & (sizes == 0)):
        donor = int(np.argmax(sizes))
        if sizes[donor] > 1:
            sizes[donor] -= 1
            sizes[k] += 1
    return sizes


def _fill_short_subsets(assignment, y, sizes, rng):
    """Moves examples into subsets stratification left short, the least harmful first.

    With many labels of one image each, stratification alone sends every
    image to the largest subset and leaves validation empty. An example is
    taken from the most over-full subset; the one whose rarest label there
    is most common (an image without labels first) loses the least.
    """
    for k in range(len(sizes)):
        while np.sum(assignment == k) < sizes[k]:
            counts = np.bincount(assignment, minlength=len(sizes)) - sizes
            donor = int(np.argmax(counts))
            if counts[donor] <= 0:
                return
            members = np.flatnonzero(assignment == donor)
            label_counts = y[members].sum(axis=0)
            cost = np.array([label_counts[y[i]].min() if y[i].any() else np.inf for i in members])
            best = members[np.flatnonzero(cost == cost.max())]
            assignment[rng.choice(best)] = k


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
        (24, 6, set())
    """
    indices = iterative_split(vocabulary.transform(samples.labels, samples.unknown), fractions, seed)
    return tuple(samples.subset(idx) for idx in indices)


def check_hold_out(train_count, val_count, val_split):
    """Says when a requested validation split could not be honoured, with counts.

    Args:
        train_count: images left for training.
        val_count: images held out.
        val_split: the fraction asked for.

    Returns:
        None; warns when nothing was held out, raises when nothing is left
        to train on.

    Example:
        >>> check_hold_out(1, 0, 0.2)  # also warns on stderr
    """
    if not val_split:
        return
    total = train_count + val_count
    if train_count == 0:
        raise hinted(ValueError, f"val_split={val_split} of {total} image(s) leaves none to train "
                     f"on; add images or pass ", Setting("val_split", 0))
    if val_count == 0:
        warnings.warn(hinted(UserWarning, f"val_split={val_split} of {total} image(s) holds out "
                             f"none: no validation metrics, calibration or tuned thresholds "
                             f"(0.5 is used); add images, give validation data, or pass ",
                             Setting("val_split", 0), " to train without"), stacklevel=3)
