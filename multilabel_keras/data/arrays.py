"""What the Python API accepts as images and as labels, checked the way scikit-learn checks.

``Predictor`` and the scikit-learn estimator take what the ecosystem passes:
one path, a list of paths, one image or a batch of images as arrays, a
multi-hot matrix (dense or SciPy sparse) or label sets. Anything else is a
``ValueError`` naming the argument, as ``sklearn.utils.check_array`` does,
never a riddle from deep inside.
"""

import os

import numpy as np

_PATH_TYPES = (str, bytes, os.PathLike)


def as_images(images, argument="images"):
    """File paths or a float32 batch ``(n, H, W, 3)`` of 0-255 pixels, from what a user passes.

    Args:
        images: one path (``str``, ``bytes``, ``os.PathLike``), a sequence of
            paths, one image (``(H, W)`` grey, ``(H, W, 1)`` or ``(H, W, 3)``),
            a batch (``(n, H, W)`` grey, ``(n, H, W, 1)`` or
            ``(n, H, W, 3)``) or a sequence of equally sized images.
        argument: the argument's name, for errors.

    Returns:
        A list of path strings, or a finite float32 array ``(n, H, W, 3)``.

    Raises:
        ValueError: anything else (a number, a 0-d array, a ragged list,
            NaN or infinite pixels, complex values), naming ``argument``.

    Example:
        >>> as_images("photo.jpg")
        ['photo.jpg']
        >>> as_images(np.zeros((8, 8))).shape
        (1, 8, 8, 3)
        >>> as_images(np.full((1, 2, 2, 3), np.nan))
        Traceback (most recent call last):
        ...
        ValueError: images: image 0 holds NaN or infinite pixel values
    """
    if isinstance(images, _PATH_TYPES):
        return [os.fsdecode(images) if isinstance(images, bytes) else os.fspath(images)]
    if isinstance(images, (list, tuple)) and images and all(isinstance(i, _PATH_TYPES)
                                                             for i in images):
        return [os.fsdecode(i) if isinstance(i, bytes) else os.fspath(i) for i in images]
    if isinstance(images, np.ndarray) and images.dtype.kind in "USO":
        if images.ndim > 1 or (images.ndim == 1 and not all(isinstance(i, _PATH_TYPES)
                                                            for i in images)):
            raise ValueError(f"{argument}: an array of {images.dtype} must be a 1-D list of paths, "
                             f"got shape {images.shape}")
        return as_images(images.tolist() if images.ndim else str(images), argument)
    if isinstance(images, (list, tuple)) and not images:
        return []
    if not isinstance(images, (np.ndarray, list, tuple)) and not hasattr(images, "__array__"):
        raise ValueError(f"{argument}: expected an image path, a list of paths or an image array, "
                         f"got {type(images).__name__}")
    try:
        array = np.asarray(images)
    except ValueError:
        raise ValueError(f"{argument}: the images are not all the same shape") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{argument}: expected numeric pixels (0-255), got dtype {array.dtype}")
    array = _batch_of_rgb(array, argument)
    finite = np.isfinite(array).reshape(len(array), -1).all(axis=1)
    if not finite.all():
        raise ValueError(f"{argument}: image {int(np.flatnonzero(~finite)[0])} holds NaN or "
                         f"infinite pixel values")
    return array.astype(np.float32, copy=False)


def _batch_of_rgb(array, argument):
    if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 3)):
        array = array[None]  # one image
    if array.ndim == 3:
        array = array[..., None]  # a batch of grey images
    if array.ndim != 4 or array.shape[-1] not in (1, 3) or min(array.shape[1:3], default=0) < 1:
        raise ValueError(f"{argument}: expected one image (H, W[, 3]) or a batch (n, H, W[, 3]), "
                         f"got an array of shape {array.shape}")
    return np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array


def resized(images, size):
    """A float batch at the model's side, resized as training's decoding does.

    Antialiased bilinear resizing, then rounding to 0-255, like
    ``images.decode_image``.

    Args:
        images: float array ``(n, H, W, 3)``.
        size: the model's input side.

    Returns:
        float32 array ``(n, size, size, 3)``.

    Example:
        >>> resized(np.zeros((1, 8, 8, 3)), 4).shape
        (1, 4, 4, 3)
    """
    if images.shape[1:3] == (size, size):
        return np.clip(np.round(images.astype(np.float32)), 0, 255)
    import tensorflow as tf

    out = tf.image.resize(tf.cast(images, tf.float32), (size, size), antialias=True)
    return np.clip(np.round(out.numpy()), 0, 255).astype(np.float32)


def as_label_sets(y, argument="y"):
    """``(label sets, classes)`` from a multi-hot matrix (dense or sparse) or label collections.

    Args:
        y: an ``(n, L)`` 0/1 matrix (NumPy or SciPy sparse, as
            scikit-learn's multi-label estimators take) or one collection of
            label names per image.
        argument: the argument's name, for errors.

    Returns:
        ``(label_sets, classes)``: for a matrix, classes are ``0 … L-1``
        and each set holds column numbers as strings; otherwise ``None``.

    Example:
        >>> from scipy.sparse import csr_matrix
        >>> as_label_sets(csr_matrix([[1, 0], [0, 1]]))
        ([{'0'}, {'1'}], [0, 1])
        >>> [sorted(labels) for labels in as_label_sets([["red", "dress"], []])[0]]
        [['dress', 'red'], []]
    """
    if hasattr(y, "toarray") and hasattr(y, "nnz"):  # a SciPy sparse matrix or array
        y = y.toarray()
    elif hasattr(y, "to_numpy"):  # a pandas DataFrame: its iteration yields column names
        y = y.to_numpy()
    elif isinstance(y, (list, tuple)) and y and all(isinstance(r, (list, tuple, np.ndarray))
                                                    for r in y):
        # A rectangular list of numbers reads as scikit-learn reads it: a label indicator matrix.
        try:
            matrix = np.asarray(y)
        except ValueError:
            matrix = None
        if matrix is not None and matrix.ndim == 2 and matrix.dtype.kind in "biuf":
            y = matrix
    if isinstance(y, (str, bytes)) or not hasattr(y, "__iter__") or (
            isinstance(y, np.ndarray) and y.ndim == 0):
        raise ValueError(f"{argument}: expected a multi-hot matrix or one collection of labels per "
                         f"image, got {type(y).__name__}")
    if isinstance(y, np.ndarray) and y.dtype.kind in "biuf":
        if y.ndim != 2:
            raise ValueError(f"{argument}: a numeric y must be a multi-hot (n, L) matrix, got shape "
                             f"{y.shape}; for label names give one collection per image")
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"{argument}: a multi-hot matrix holds only 0 and 1")
        return [{str(j) for j in np.flatnonzero(row)} for row in y], list(range(y.shape[1]))
    sets = []
    for i, labels in enumerate(y):
        if isinstance(labels, (str, bytes)) or not hasattr(labels, "__iter__"):
            raise ValueError(f"{argument}[{i}] is {labels!r}: give each image a set or list of "
                             f"labels")
        sets.append({str(label) for label in labels})
    return sets, None
