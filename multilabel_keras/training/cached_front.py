"""LP-FT's fine-tuning on cached feature maps: the frozen front of the backbone runs once.

During fine-tuning only the last blocks learn; everything before them is
frozen and gives the same maps every epoch. Computing those maps once and
training the unfrozen tail (plus the head) on them cuts an epoch to the
tail's own cost. Augmentation is frozen into a few cached views of each
image (as it is, mirrored, two light shifts and zooms; LP-FT's default is
4), one drawn per image per pass. How views compare with un-augmented
maps on the accuracy suite: ``docs/benchmarks.md``.
"""

import warnings

import numpy as np

from multilabel_keras.data.augment import RandomAffine
from multilabel_keras.data.pipeline import make_dataset
from multilabel_keras.models.outputs import host_batch
from multilabel_keras.models.surgery import split_at

# Maps of the training and validation images are held in memory; above this the
# fine-tuning runs over the images instead.
MAX_CACHE_BYTES = 2 * 1024 ** 3


def map_batches(maps, targets, batch_size, seed, start_batch=0):
    """Endless training batches of cached maps, in a fresh order every pass.

    Each pass's order, and which view of each image it shows, are drawn
    from ``(seed, pass)`` alone, so a resumed run that starts at batch
    ``start_batch`` sees exactly the batches the uninterrupted run saw.

    Args:
        maps: ``(n, ...)`` cached maps, or a list of such arrays, one per
            view of the images (each pass shows one view of each image).
        targets: ``(n, L)`` targets.
        batch_size: rows per batch (the last batch of a pass may be smaller).
        seed: order seed.
        start_batch: index of the first batch, counted from the run's start.

    Yields:
        ``(maps, targets)`` batches.

    Example:
        >>> batches = map_batches(np.arange(5), np.arange(5), 2, seed=0)
        >>> sorted(np.concatenate([next(batches)[0] for _ in range(3)]).tolist())
        [0, 1, 2, 3, 4]
    """
    if not isinstance(maps, (list, tuple)):
        maps = [maps]
    n = len(targets)
    steps = max(1, -(-n // batch_size))
    batch, order, order_pass = int(start_batch), None, None
    while True:
        pass_index, step = divmod(batch, steps)
        if pass_index != order_pass:
            rng = np.random.default_rng([seed, pass_index])
            order, order_pass = rng.permutation(n), pass_index
            views = rng.integers(len(maps), size=n)
        rows = order[step * batch_size:(step + 1) * batch_size]
        batch_maps = np.empty((len(rows),) + maps[0].shape[1:], maps[0].dtype)
        for view, view_maps in enumerate(maps):
            picked = views[rows] == view
            batch_maps[picked] = view_maps[rows[picked]]
        yield batch_maps, targets[rows]
        batch += 1


class CachedFront:
    """The tail of a transfer model and the maps it fine-tunes on.

    Attributes:
        tail: maps → outputs (shares the model's layers: training it trains
            the model).
        val_data: validation ``(maps, targets)`` batches, or ``None``.
        sample_data: the maps of the training images that the per-epoch
            training mAP uses, or ``None``.
    """

    def __init__(self, tail, train_maps, train_targets, val_data, sample_data, batch_size, seed):
        self.tail, self.val_data, self.sample_data = tail, val_data, sample_data
        self._maps, self._targets = train_maps, train_targets
        self._batch_size, self._seed = batch_size, seed

    def train_data(self, with_augmentation, start_batch=0):
        """What ``fit_phases`` calls for a phase's data (maps carry no augmentation)."""
        return map_batches(self._maps, self._targets, self._batch_size, self._seed, start_batch)


def image_views(images, count, seed, batch_index):
    """The views of a batch of images whose maps fine-tuning trains on.

    View 0 is the images as they are, view 1 their mirror image, and each
    further view a light random shift and zoom (±10%, mirrored half of the
    time), drawn from ``(seed, view, batch_index)`` so a rerun caches the
    same maps. No rotation or shear: those hurt when they were frozen into
    a few fixed views.

    Args:
        images: ``(B, H, W, C)`` float images.
        count: how many views.
        seed: the run's seed.
        batch_index: the batch's index in the extraction.

    Returns:
        A list of ``count`` arrays shaped like ``images``.

    Example:
        >>> images = np.arange(8, dtype="float32").reshape(1, 2, 2, 2)
        >>> views = image_views(images, 2, seed=0, batch_index=0)
        >>> views[1][0, :, :, 0].tolist()
        [[2.0, 0.0], [6.0, 4.0]]
    """
    images = np.asarray(images)
    views = [images, images[:, :, ::-1, :]][:count]
    if count > 2:
        light = RandomAffine(rotation=0.0, shift=0.1, shear=0.0, zoom=0.1)
        for view in range(2, count):
            moved = light.transform(images, seed=(int(seed), view * 1_000_003 + int(batch_index)))
            views.append(np.asarray(moved))
    return views


def cache_front(model, start, samples, val_samples, vocabulary, image_size, batch_size, seed,
                sample_rows=None, views=1):
    """Runs the frozen front once over the training and validation images.

    Args:
        model: the transfer model (backbone frozen).
        start: where fine-tuning starts.
        samples: training ``Samples``.
        val_samples: validation ``Samples`` or ``None``.
        vocabulary: the run's ``LabelVocabulary``.
        image_size: input side.
        batch_size: batch size of the extraction and of training.
        seed: order seed of the training batches.
        sample_rows: indices of the training images for the per-epoch
            training mAP, or ``None``.
        views: views of each training image cached (see ``image_views``);
            each pass trains on one of them per image.

    Returns:
        A ``CachedFront``, or ``None`` (with a warning saying why) when the
        model cannot be split at ``start`` or the maps would not fit in
        ``MAX_CACHE_BYTES``; fine-tuning then runs over the images.

    Example:
        >>> front = cache_front(model, "last:7", samples, val, vocab, 96, 32, 0)  # doctest: +SKIP
    """
    try:
        front, tail = split_at(model, start)
    except ValueError as err:
        warnings.warn(f"fine-tuning runs over the images: {err}", UserWarning, stacklevel=3)
        return None
    views = max(1, int(views))
    count = len(samples) * views + (len(val_samples) if val_samples is not None else 0)
    size = count * 4 * int(np.prod(front.output_shape[1:]))
    if size > MAX_CACHE_BYTES:
        warnings.warn(f"fine-tuning runs over the images: the cached maps of {count} images would "
                      f"take {size / 1024 ** 3:.1f} GiB (more than {MAX_CACHE_BYTES / 1024 ** 3:.0f})",
                      UserWarning, stacklevel=3)
        return None

    def maps_of(part, count):
        maps, targets = [[] for _ in range(count)], []
        data = make_dataset(part, vocabulary, image_size, batch_size)
        for batch_index, (images, batch_targets) in enumerate(data):
            for view, shown in enumerate(image_views(images, count, seed, batch_index)):
                maps[view].append(np.asarray(front.predict_on_batch(host_batch(shown))))
            targets.append(np.asarray(batch_targets, np.float32))
        return [np.concatenate(m) for m in maps], np.concatenate(targets)

    train_maps, train_targets = maps_of(samples, views)
    val_data = None
    if val_samples is not None and len(val_samples):
        val_maps, val_targets = maps_of(val_samples, 1)
        val_data = _batches(val_maps[0], val_targets, batch_size)
    sample_data = None
    if sample_rows is not None and len(sample_rows):
        sample_data = _batches(train_maps[0][sample_rows], train_targets[sample_rows], batch_size)
    return CachedFront(tail, train_maps, train_targets, val_data, sample_data, batch_size, seed)


def _batches(maps, targets, batch_size):
    return [(maps[i:i + batch_size], targets[i:i + batch_size]) for i in range(0, len(maps), batch_size)]
