"""tf.data pipelines that stream images from disk to the model."""

import os

import numpy as np
import tensorflow as tf

from multilabel_keras.data.augment import batch_and_augment
from multilabel_keras.data.images import load_image, pipeline_workers
from multilabel_keras.data.tfrecords import tfrecord_dataset

# Decoded evaluation images kept in memory (uint8, S*S*3 bytes each): 512 MiB
# holds about 18,000 images at 96 px or 3,500 at 224 px. A larger set streams.
EVAL_MEMORY_BYTES = 512 * 1024 ** 2


def make_dataset(
    samples,
    vocabulary,
    image_size=96,
    batch_size=32,
    augment=False,
    shuffle=False,
    repeat=False,
    seed=None,
    cache=None,
    mix=0.0,
    recolour=None,
    start_batch=0,
):
    """Builds a ``tf.data`` pipeline of ``(images, multi_hot)`` batches.

    Images are read and decoded from disk in parallel as the model consumes
    them (the data set is never held in memory), augmented a batch at a
    time with one ``RandomAffine`` resampling, and prefetched so the next
    batch is ready when a training step ends.

    TensorFlow's autotuner is switched off and parallelism is set by hand:
    with it on, a new iterator stalls for seconds at epoch boundaries while
    the autotune thread starts, on small machines in about a third of the
    epochs.

    Args:
        samples: ``Samples`` (paths and label sets), or a folder written by
            ``write_tfrecords`` (read with ``tfrecord_dataset``).
        vocabulary: a fitted ``LabelVocabulary`` (for TFRecords it must
            match the one they were written with; ``None`` uses theirs).
        image_size: side length of the square images.
        batch_size: images per batch.
        augment: ``False``, ``True`` (default ``RandomAffine``), or any Keras
            layer / callable applied to float image batches.
        shuffle: reshuffle file order on every pass.
        repeat: repeat forever (train with ``steps_per_epoch``).
        seed: seed for shuffling.
        cache: optional file path prefix; decoded, resized images are cached
            there on the first pass and streamed from it afterwards (``""``:
            kept in memory, as ``evaluation_dataset`` does when they fit).
        mix: share of each batch replaced by 2x2 mosaics of four images
            with the union of their labels (see ``augment.mosaic``).
        recolour: ``None``, ``(colour_mask, probability)`` or
            ``(colour_mask, probability, split)``: that share of each batch
            gets its hue turned and its colour labels marked unknown (see
            ``recolour.recolour``).
        start_batch: begin at this batch
            of the endless stream (a resumed run picks up where the killed
            one stopped, same order, same augmentation).

    Returns:
        A ``tf.data.Dataset`` yielding float32 images ``(B, S, S, 3)`` in
        0-255 and float32 multi-hot labels ``(B, num_labels)``.

    Example:
        >>> from multilabel_keras import LabelVocabulary, from_folders
        >>> samples = from_folders("data/fashion")
        >>> vocab = LabelVocabulary().fit(samples.labels)
        >>> ds = make_dataset(samples, vocab, image_size=96, batch_size=8,
        ...                   augment=True, shuffle=True)
        >>> images, labels = next(iter(ds))
        >>> tuple(images.shape), tuple(labels.shape), images.dtype.name
        ((8, 96, 96, 3), (8, 6), 'float32')
    """
    if isinstance(samples, (str, os.PathLike)):
        return tfrecord_dataset(samples, vocabulary, image_size, batch_size, augment=augment, mix=mix,
                                recolour=recolour,
                                shuffle=shuffle, repeat=repeat, seed=seed)
    if len(samples) == 0:
        raise ValueError("make_dataset: no samples")
    labels = vocabulary.transform(samples.labels, samples.unknown).astype(np.float32)
    workers = pipeline_workers()
    orientation = np.asarray(samples.orientation or np.ones(len(samples)), dtype=np.int32)
    # Bytes, not str: a file name that is not valid UTF-8 is still a file TensorFlow can open.
    table = (np.asarray([os.fsencode(p) for p in samples.paths], dtype=object), orientation, labels)
    endless = shuffle and repeat and cache is None
    if endless:
        # Pass k's order depends on (seed, k) only, so any batch of the
        # stream can be the first one.
        ds = _shuffled_indices(len(samples), seed, start_batch * batch_size)
        columns = [tf.constant(column) for column in table]
        ds = ds.map(lambda i: tuple(tf.gather(column, i) for column in columns))
    else:
        ds = tf.data.Dataset.from_tensor_slices(table)
        if shuffle and cache is None:
            # Shuffling file names is free; shuffling decoded images would
            # need a buffer of images in memory.
            ds = ds.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(
        lambda path, turn, y: (load_image(path, image_size, turn), y),
        num_parallel_calls=workers,
        deterministic=True,
    )
    if endless:
        # Every file was decoded once before training (check_images); one that
        # is damaged or replaced since is dropped from the stream (TensorFlow
        # logs it) rather than ending a long run at a random step.
        ds = ds.ignore_errors(log_warning=True)
    if cache is not None:
        ds = ds.cache(os.fspath(cache))
        if shuffle:
            ds = ds.shuffle(min(len(samples), 2048), seed=seed, reshuffle_each_iteration=True)
    if repeat and not endless:
        ds = ds.repeat()
    return batch_and_augment(ds, batch_size, augment, seed, mix, recolour, start_batch)


def evaluation_dataset(samples, vocabulary, image_size=96, batch_size=32,
                       memory_bytes=EVAL_MEMORY_BYTES):
    """The dataset a model is scored on every epoch: decoded once, then read from memory.

    Decoding and resizing the same validation files every epoch costs as
    much as a good part of the forward pass; when the decoded images fit in
    ``memory_bytes`` (uint8, ``image_size**2 * 3`` bytes each) they are
    kept after the first pass, else every pass streams from disk as
    ``make_dataset`` does.

    Args:
        samples: ``Samples`` (or a TFRecord folder, always streamed).
        vocabulary: a fitted ``LabelVocabulary``.
        image_size: side length of the square images.
        batch_size: images per batch.
        memory_bytes: the most decoded-image memory to hold.

    Returns:
        A finite ``tf.data.Dataset`` of ``(images, multi_hot)`` batches in
        file order, as ``make_dataset(samples, vocabulary, image_size,
        batch_size)`` yields them.

    Example:
        >>> from multilabel_keras import LabelVocabulary, from_folders
        >>> samples = from_folders("data/fashion")
        >>> vocab = LabelVocabulary().fit(samples.labels)
        >>> ds = evaluation_dataset(samples, vocab, image_size=32, batch_size=8)
        >>> first = [labels.numpy() for _, labels in ds]
        >>> again = [labels.numpy() for _, labels in ds]
        >>> all((a == b).all() for a, b in zip(first, again))
        True
    """
    fits = (not isinstance(samples, (str, os.PathLike))
            and len(samples) * int(image_size) ** 2 * 3 <= memory_bytes)
    return make_dataset(samples, vocabulary, image_size, batch_size, cache="" if fits else None)


def _shuffled_indices(count, seed, skip):
    """Endless passes over ``count`` indices, each in its own order, from position ``skip``."""
    first = skip // count
    passes = tf.data.Dataset.counter(first)
    base = tf.constant(int(seed or 0), tf.int64)

    def one_pass(k):
        order = tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64),
                                                         seed=tf.stack([base, k]))
        return tf.data.Dataset.from_tensor_slices(order)

    return passes.flat_map(one_pass).skip(skip - first * count)
