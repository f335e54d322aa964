"""Pairs of images for the twin model, with a chosen share of same-class pairs."""

import numpy as np
import tensorflow as tf

from multilabel_keras.data.augment import RandomAffine, batch_and_augment
from multilabel_keras.data.images import load_image, pipeline_workers


class PairSampler:
    """Draws ``(i, j, same)`` index pairs from one ``Samples`` set.

    Each pair is positive with probability ``positive_ratio``, whatever the
    batch composition (swapping same-class samples inside a random batch,
    as the original recipe did, gives positives in about one batch in four).
    Pairs only ever combine images of the set the sampler was built on, so
    a sampler over the validation split never touches training images.

    "Same" means, for label sets: identical sets (``same="identical"``, the
    default; for single-label data, the same class), or a Jaccard index of
    at least ``jaccard`` (``same="jaccard"``).

    Args:
        samples: ``Samples``.
        vocabulary: a fitted ``LabelVocabulary``.
        positive_ratio: expected share of same pairs, in ``[0, 1]``.
        same: ``"identical"`` or ``"jaccard"``.
        jaccard: threshold for ``same="jaccard"``.
        seed: random seed.

    Example:
        >>> from multilabel_keras import LabelVocabulary, from_folders
        >>> train_samples = from_folders("data/fashion")
        >>> vocab = LabelVocabulary().fit(train_samples.labels)
        >>> sampler = PairSampler(train_samples, vocab, positive_ratio=0.5, seed=0)
        >>> i, j, same = sampler.sample(1000)
        >>> bool(0.4 < same.mean() < 0.6)
        True
    """

    def __init__(self, samples, vocabulary, positive_ratio=0.5, same="identical", jaccard=0.5,
                 seed=0):
        if not 0 <= positive_ratio <= 1:
            raise ValueError(f"positive_ratio must be in [0, 1], got {positive_ratio}")
        if same not in ("identical", "jaccard"):
            raise ValueError(f"same must be 'identical' or 'jaccard', got {same!r}")
        self.samples = samples
        self.y = (vocabulary.transform(samples.labels) == 1).astype(np.float32)
        self.positive_ratio = float(positive_ratio)
        self.same, self.jaccard = same, float(jaccard)
        self.rng = np.random.default_rng(seed)
        keys = [frozenset(labels) for labels in samples.labels]
        groups = {}
        for i, key in enumerate(keys):
            groups.setdefault(key, []).append(i)
        self.group_of = np.array([list(groups).index(k) for k in keys]) if keys else np.zeros(0, int)
        self.groups = [np.array(g) for g in groups.values()]
        self.pairable = np.array([i for g in self.groups if len(g) > 1 for i in g])
        if same == "jaccard":
            self.pairable = self._jaccard_pairable()
        if len(samples) < 2:
            raise ValueError("pairs need at least two images")
        if positive_ratio > 0 and not len(self.pairable):
            raise ValueError("no two images count as the same class: no positive pair can be drawn")

    def _jaccard_pairable(self):
        """Images that have at least one partner with Jaccard >= the threshold."""
        if len(self.y) > 10000:  # the n x n matrix would be too large; sample blindly
            return np.arange(len(self.y))
        inter = self.y @ self.y.T
        sizes = self.y.sum(1)
        union = sizes[:, None] + sizes[None, :] - inter
        ok = (union > 0) & (inter >= self.jaccard * np.maximum(union, 1e-9))
        np.fill_diagonal(ok, False)
        return np.flatnonzero(ok.any(1))

    def is_same(self, i, j):
        """Whether images ``i`` and ``j`` count as the same class."""
        if self.same == "identical":
            return bool(self.group_of[i] == self.group_of[j])
        inter = float(self.y[i] @ self.y[j])
        union = float(self.y[i].sum() + self.y[j].sum() - inter)
        return union > 0 and inter / union >= self.jaccard

    def _partner(self, i, positive):
        for _ in range(1000):
            if positive and self.same == "identical":
                group = self.groups[self.group_of[i]]
                j = int(self.rng.choice(group))
            else:
                j = int(self.rng.integers(len(self.samples)))
            if j != i and self.is_same(i, j) == positive:
                return j
        return None

    def sample(self, count):
        """Draws ``count`` pairs.

        Args:
            count: number of pairs.

        Returns:
            ``(i, j, same)``: two int arrays of image indices and a 0/1
            float array.
        """
        first, second, same = [], [], []
        misses = 0
        while len(first) < count:
            if misses > 1000:
                raise ValueError("cannot draw pairs of the requested kind from these labels")
            positive = bool(self.rng.random() < self.positive_ratio)
            pool = self.pairable if positive else None
            i = int(self.rng.choice(pool)) if pool is not None else int(self.rng.integers(len(self.samples)))
            j = self._partner(i, positive)
            if j is None:
                misses += 1  # this image has no partner of the wanted kind; draw another
                continue
            first.append(i)
            second.append(j)
            same.append(float(positive))
        return np.array(first), np.array(second), np.array(same, np.float32)


def pair_dataset(sampler, targets, image_size=96, batch_size=32, pairs=None, augment=False,
                 repeat=False, seed=None):
    """A ``tf.data`` pipeline of image pairs for the twin model.

    With ``repeat`` a fresh set of pairs is drawn every pass; otherwise the
    pairs are drawn once (a fixed validation set).

    Args:
        sampler: a ``PairSampler``.
        targets: ``(n, classes)`` class targets of the sampler's images
            (one-hot for softmax heads, multi-hot for sigmoid heads).
        image_size: side of the square images.
        batch_size: pairs per batch.
        pairs: pairs per pass (default: one per image).
        augment: ``False``, ``True`` or a layer, applied to each side.
        repeat: draw new pairs forever.
        seed: augmentation seed.

    Returns:
        A dataset of ``({"image_a", "image_b"}, {"class_a", "class_b",
        "same"})`` batches.

    Example:
        >>> from multilabel_keras import LabelVocabulary, from_folders
        >>> samples = from_folders("data/fashion")
        >>> vocab = LabelVocabulary().fit(samples.labels)
        >>> sampler = PairSampler(samples, vocab, seed=0)
        >>> one_hot = vocab.transform(samples.labels)
        >>> ds = pair_dataset(sampler, one_hot, 71, 16, repeat=True)
        >>> inputs, targets = next(iter(ds))
        >>> tuple(inputs["image_a"].shape), sorted(targets)
        ((16, 71, 71, 3), ['class_a', 'class_b', 'same'])
    """
    pairs = int(pairs or len(sampler.samples))
    paths = np.asarray(sampler.samples.paths, dtype=str)
    targets = np.asarray(targets, np.float32)
    fixed = None if repeat else sampler.sample(pairs)

    def indices():
        while True:
            yield from zip(*(fixed if fixed is not None else sampler.sample(pairs)))
            if fixed is not None:
                return

    spec = (tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.float32))
    ds = tf.data.Dataset.from_generator(indices, output_signature=spec)
    if fixed is not None:
        # A known size keeps Keras from warning that validation "ran out of data".
        ds = ds.apply(tf.data.experimental.assert_cardinality(pairs))
    workers = pipeline_workers()

    def load(i, j, same):
        images = tf.stack([load_image(tf.gather(paths, i), image_size),
                           load_image(tf.gather(paths, j), image_size)])
        labels = {"class_a": tf.gather(targets, i), "class_b": tf.gather(targets, j),
                  "same": tf.reshape(same, (1,))}
        return images, labels

    ds = ds.map(load, num_parallel_calls=workers, deterministic=True)
    # Both sides are batched as one image batch so one augmentation call serves them.
    ds = batch_and_augment(ds, batch_size, False)
    layer = RandomAffine(seed=seed) if augment is True else augment

    def split(x, y):
        if layer:
            shape = tf.shape(x)
            flat = tf.reshape(x, tf.concat([[-1], shape[2:]], 0))
            x = tf.reshape(layer(flat, training=True), shape)
        return {"image_a": x[:, 0], "image_b": x[:, 1]}, y

    return ds.map(split, num_parallel_calls=workers, deterministic=True).prefetch(2)
