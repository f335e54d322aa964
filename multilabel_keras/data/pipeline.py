"""tf.data pipelines that stream images from disk to the model."""

import os

import numpy as np
import tensorflow as tf

from multilabel_keras.data.augment import RandomAffine


def orient(image, orientation):
    """Turns a decoded image upright from its EXIF orientation (1-8).

    Args:
        image: ``(H, W, C)`` tensor as stored in the file.
        orientation: scalar int tensor or int; 1 leaves the image as is.

    Returns:
        The image as a camera user saw it.

    Example:
        >>> orient(tf.zeros((2, 3, 3)), 6).shape
        TensorShape([3, 2, 3])
    """
    transposed = lambda: tf.transpose(image, (1, 0, 2))  # noqa: E731
    branches = [
        lambda: image,                                   # 1
        lambda: tf.image.flip_left_right(image),         # 2
        lambda: tf.image.rot90(image, 2),                # 3
        lambda: tf.image.flip_up_down(image),            # 4
        transposed,                                      # 5
        lambda: tf.image.rot90(image, 3),                # 6: rotate 90 clockwise
        lambda: tf.image.rot90(transposed(), 2),         # 7
        lambda: tf.image.rot90(image, 1),                # 8: rotate 90 counter-clockwise
    ]
    index = tf.clip_by_value(tf.cast(orientation, tf.int32) - 1, 0, 7)
    return tf.switch_case(index, branches)


def decode_image(data, image_size, orientation=1):
    """Decodes encoded image bytes to a ``(S, S, 3)`` uint8 tensor.

    This is the single preprocessing function shared by training, evaluation
    and ``Predictor``: JPEG, PNG, BMP and GIF (first frame); grayscale and
    RGBA become RGB; the image is resized (antialiased bilinear) to a square
    of ``image_size``. Pixel values stay in 0-255: every model scales its own
    inputs, so users feed raw pixels everywhere.

    Args:
        data: scalar string tensor of encoded bytes.
        image_size: side length of the square output.
        orientation: EXIF orientation (see ``orient``), applied before
            resizing.

    Returns:
        A uint8 tensor of shape ``(image_size, image_size, 3)``.

    Example:
        >>> raw = tf.io.encode_png(tf.zeros((8, 8, 1), tf.uint8))
        >>> decode_image(raw, 4).shape
        TensorShape([4, 4, 3])
    """
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    image = orient(image, orientation)
    image = tf.image.resize(image, (image_size, image_size), antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def load_image(path, image_size, orientation=1):
    """Reads and decodes one image file (see ``decode_image``).

    Args:
        path: file path (string or scalar string tensor).
        image_size: side length of the square output.
        orientation: EXIF orientation to apply (see ``orient``).

    Returns:
        A uint8 tensor of shape ``(image_size, image_size, 3)``.

    Example:
        >>> image = load_image("photo.jpg", 96)  # doctest: +SKIP
    """
    return decode_image(tf.io.read_file(path), image_size, orientation)


def load_images(paths, image_size):
    """Reads image files into one float32 batch, naming any file that fails.

    Each file is probed first (``probe_image``): empty, truncated,
    non-image and oversized files raise ``BadImageError`` naming the file,
    and EXIF orientation is honoured.

    Args:
        paths: list of file paths.
        image_size: side length of the square output.

    Returns:
        ``np.ndarray`` of shape ``(len(paths), image_size, image_size, 3)``,
        float32 in 0-255.

    Example:
        >>> batch = load_images(["a.jpg", "b.png"], 96)  # doctest: +SKIP
    """
    from multilabel_keras.data.check import probe_image

    images = []
    for path in paths:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"image not found: {path}")
        orientation = probe_image(path).orientation  # names the file if it is bad
        try:
            images.append(load_image(path, image_size, orientation).numpy())
        except tf.errors.NotFoundError:
            raise FileNotFoundError(f"image not found: {path}") from None
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as err:
            raise ValueError(f"cannot decode image {path}: {err.message}") from None
    return np.stack(images).astype(np.float32) if images else np.zeros(
        (0, image_size, image_size, 3), np.float32
    )


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
            there on the first pass and streamed from it afterwards.

    Returns:
        A ``tf.data.Dataset`` yielding float32 images ``(B, S, S, 3)`` in
        0-255 and float32 multi-hot labels ``(B, num_labels)``.

    Example:
        >>> ds = make_dataset(samples, vocab, image_size=96, batch_size=32,
        ...                   augment=True, shuffle=True)  # doctest: +SKIP
    """
    if isinstance(samples, (str, os.PathLike)):
        from multilabel_keras.data.tfrecords import tfrecord_dataset

        return tfrecord_dataset(samples, vocabulary, image_size, batch_size, augment=augment,
                                shuffle=shuffle, repeat=repeat, seed=seed)
    if len(samples) == 0:
        raise ValueError("make_dataset: no samples")
    labels = vocabulary.transform(samples.labels, samples.unknown).astype(np.float32)
    workers = max(2, os.cpu_count() or 2)
    orientation = np.asarray(samples.orientation or np.ones(len(samples)), dtype=np.int32)
    ds = tf.data.Dataset.from_tensor_slices(
        (np.asarray(samples.paths, dtype=str), orientation, labels))
    if shuffle and cache is None:
        # Shuffling file names is free; shuffling decoded images would need a
        # buffer of images in memory.
        ds = ds.shuffle(len(samples), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(
        lambda path, turn, y: (load_image(path, image_size, turn), y),
        num_parallel_calls=workers,
        deterministic=True,
    )
    if cache is not None:
        ds = ds.cache(os.fspath(cache))
        if shuffle:
            ds = ds.shuffle(min(len(samples), 2048), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    return batch_and_augment(ds, batch_size, augment, seed)


def batch_and_augment(ds, batch_size, augment=False, seed=None):
    """Batches ``(uint8 image, labels)`` pairs, augments, prefetches.

    Args:
        ds: dataset of single ``(S, S, 3)`` uint8 images and label vectors.
        batch_size: images per batch.
        augment: ``False``, ``True`` (default ``RandomAffine``) or a layer.
        seed: augmentation seed.

    Returns:
        A ``tf.data.Dataset`` of float32 image batches and labels, with the
        autotuner off (see ``make_dataset``).

    Example:
        >>> ds = batch_and_augment(pairs, 32, augment=True)  # doctest: +SKIP
    """
    workers = max(2, os.cpu_count() or 2)
    ds = ds.batch(batch_size)
    layer = RandomAffine(seed=seed) if augment is True else (augment or None)
    if layer is not None:
        ds = ds.map(
            lambda x, y: (layer(tf.cast(x, tf.float32), training=True), y),
            num_parallel_calls=workers,
            deterministic=True,
        )
    else:
        ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y))
    ds = ds.prefetch(2)
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)
