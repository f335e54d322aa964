"""Image files to pixels: decode, turn upright, resize; the one preprocessing function."""

import os

import numpy as np
import tensorflow as tf

from multilabel_keras.data.check import probe_image


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
    # In float: oneDNN has no uint8 transpose and TensorFlow logs an error line for it.
    image = orient(tf.cast(image, tf.float32), orientation)
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
        >>> image = load_image("photo.jpg", 96)
        >>> tuple(image.shape), image.dtype.name
        ((96, 96, 3), 'uint8')
    """
    return decode_image(tf.io.read_file(path), image_size, orientation)


def checked_orientation(path):
    """Checks an image file before decoding and returns its EXIF orientation.

    Args:
        path: the image file.

    Returns:
        The orientation (1-8) for ``orient``.

    Raises:
        FileNotFoundError: no such file.
        BadImageError: the file is empty, truncated, not an image or
            oversized (see ``probe_image``), naming it.

    Example:
        >>> checked_orientation("no/such.jpg")
        Traceback (most recent call last):
        ...
        FileNotFoundError: image not found: no/such.jpg
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image not found: {path}")
    return probe_image(path).orientation


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
        >>> batch = load_images(["a.jpg", "b.png"], 96)
        >>> batch.shape, batch.dtype.name
        ((2, 96, 96, 3), 'float32')
    """
    images = []
    for path in paths:
        path = os.fspath(path)
        orientation = checked_orientation(path)
        try:
            # Bytes: a name that is not valid UTF-8 still reaches the file.
            images.append(load_image(os.fsencode(path), image_size, orientation).numpy())
        except tf.errors.NotFoundError:
            raise FileNotFoundError(f"image not found: {path}") from None
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as err:
            raise ValueError(f"cannot decode image {path}: {err.message}") from None
    return np.stack(images).astype(np.float32) if images else np.zeros(
        (0, image_size, image_size, 3), np.float32
    )


def pipeline_workers():
    """Parallel calls of the ``tf.data`` maps: the cores this process may use, at most 8.

    ``os.cpu_count`` counts the whole machine; a container or ``taskset``
    allows fewer cores, and more decoders than cores only take turns with
    the training step.

    Returns:
        An int from 1 to 8.

    Example:
        >>> 1 <= pipeline_workers() <= 8
        True
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 2
    return max(1, min(8, cores))
