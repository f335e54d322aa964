"""One seed for every random draw of a run, and deterministic kernels on request."""

import os

import keras


def seed_everything(seed, deterministic=False):
    """Seeds Python, NumPy and the backend; optionally makes the backend's kernels deterministic.

    The data stream (order, augmentation, mosaics, recolouring) is keyed by
    ``(seed, batch index)`` on its own; this covers initialisation and
    dropout. On one machine, backend and thread count the same seed then
    gives the same weights. Some multi-threaded kernels may still sum in a
    varying order; ``deterministic=True`` asks the backend for kernels that
    do not (TensorFlow's op determinism, PyTorch's deterministic
    algorithms; JAX on CPU is deterministic already), at some speed. It
    holds for the rest of the process.

    Args:
        seed: the run's seed.
        deterministic: turn on deterministic kernels.

    Returns:
        None.

    Example:
        >>> seed_everything(0)
        >>> a = keras.random.uniform((2,), seed=1)
        >>> seed_everything(0)
        >>> bool((keras.random.uniform((2,), seed=1) == a).numpy().all())
        True
    """
    keras.utils.set_random_seed(int(seed))
    if not deterministic:
        return
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # what CUDA asks for
        torch.use_deterministic_algorithms(True)
