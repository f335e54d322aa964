"""Data-parallel training across devices and processes, on ``keras.distribution`` (JAX).

Keras 3 does not run ``tf.distribute.MultiWorkerMirroredStrategy`` (keras
issue #20585); its own path is ``keras.distribution``: every process calls
``keras.distribution.initialize`` (JAX's distributed runtime), the model's
variables are replicated over a one-axis device mesh, each global batch is
split across the devices, and each process feeds its own slice of every
global batch of the ``tf.data`` stream (``shard_batches``). With the same
global batch size, the weights after each step are those of one process
training alone, up to float rounding (the sums over devices run in
another order).

A process learns its place from the environment, as Keras reads it:
``KERAS_DISTRIBUTION_JOB_ADDRESSES`` (the coordinator's ``host:port``),
``KERAS_DISTRIBUTION_NUM_PROCESSES`` and ``KERAS_DISTRIBUTION_PROCESS_ID``.
"""

import contextlib
import os
import tempfile

import keras

MODES = ("data_parallel",)
_ENV = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
        "KERAS_DISTRIBUTION_PROCESS_ID")
_state = {}


class Placement:
    """Where this process stands in a distributed run.

    Attributes:
        process_id: this process's index (0 writes the run directory).
        num_processes: processes in the run.
        devices: every device of the run, all processes together.
        distribution: the ``keras.distribution.DataParallel`` in force.
    """

    def __init__(self, process_id, num_processes, devices, distribution):
        self.process_id, self.num_processes = process_id, num_processes
        self.devices, self.distribution = devices, distribution

    @property
    def is_chief(self):
        return self.process_id == 0


@contextlib.contextmanager
def worker_folder(placement):
    """Where a process other than 0 writes: a temporary folder, removed afterwards.

    The run directory is written once, by process 0; the others train the
    same steps into a folder of their own.

    Args:
        placement: this process's ``Placement``, or ``None`` (not distributed).

    Returns:
        A context manager yielding the folder, or ``None`` for process 0
        and undistributed runs.

    Example:
        >>> with worker_folder(None) as folder:
        ...     folder is None
        True
    """
    if placement is None or placement.is_chief:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix=f"multilabel_keras_process{placement.process_id}_") as folder:
        yield folder


def setup_distribution(mode="data_parallel"):
    """Starts the distributed runtime (once per process) and sets a ``DataParallel`` distribution.

    Call it before anything else computes with the backend (``train`` does
    it first thing when given ``distribution``).

    Args:
        mode: ``"data_parallel"``, or a ``keras.distribution`` object
            (``DataParallel`` …) to use as it is.

    Returns:
        A ``Placement``.

    Raises:
        ValueError: the backend is not JAX, the mode is unknown, or the
            environment describes the cluster incompletely.

    Example:
        >>> setup_distribution("data_parallel")  # doctest: +SKIP
    """
    if keras.backend.backend() != "jax":
        raise ValueError(
            f"distributed training runs on keras.distribution, which needs the JAX backend "
            f"(KERAS_BACKEND=jax); this process runs {keras.backend.backend()!r}. TensorFlow's "
            f"MultiWorkerMirroredStrategy is not supported by Keras 3 (keras issue #20585)")
    given_distribution = hasattr(mode, "distribute_dataset")  # DataParallel, ModelParallel …
    if not given_distribution and mode not in MODES:
        raise ValueError(f"distribution must be one of {', '.join(MODES)} or a "
                         f"keras.distribution.Distribution, not {mode!r}")
    if "placement" in _state:
        return _state["placement"]
    given = [name for name in _ENV if os.environ.get(name)]
    if given and len(given) != len(_ENV):
        missing = ", ".join(name for name in _ENV if name not in given)
        raise ValueError(f"a multi-process run needs all of {', '.join(_ENV)}; missing: {missing}")
    num_processes, process_id = 1, 0
    if given:
        try:
            num_processes = int(os.environ["KERAS_DISTRIBUTION_NUM_PROCESSES"])
            process_id = int(os.environ["KERAS_DISTRIBUTION_PROCESS_ID"])
        except ValueError:
            raise ValueError("KERAS_DISTRIBUTION_NUM_PROCESSES and KERAS_DISTRIBUTION_PROCESS_ID "
                             "must be integers") from None
        if not 0 <= process_id < num_processes:
            raise ValueError(f"KERAS_DISTRIBUTION_PROCESS_ID must be in 0..{num_processes - 1}, "
                             f"not {process_id}")
        if num_processes > 1:
            keras.distribution.initialize()  # reads the three variables
    devices = keras.distribution.list_devices()
    if given_distribution:
        distribution = mode
    else:
        # The stream is sharded here (shard_batches): Keras' own sharding needs a
        # static batch size, which the augmented pipeline does not declare.
        distribution = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
    keras.distribution.set_distribution(distribution)
    _state["placement"] = Placement(process_id, num_processes, devices, distribution)
    return _state["placement"]


def shard_batches(dataset, batch_size, placement):
    """This process's part of every global batch: rows ``[p*B/n, (p+1)*B/n)``.

    The same split as Keras' ``rebatch`` + ``shard``: process ``p`` of
    ``n`` takes the ``p``-th consecutive slice of each global batch, so the
    processes together see exactly the batches one process would.

    Args:
        dataset: ``tf.data.Dataset`` of global ``(x, y)`` batches.
        batch_size: the global batch size.
        placement: from ``setup_distribution``.

    Returns:
        The dataset of this process's slices (unchanged for one process).

    Example:
        >>> import tensorflow as tf
        >>> ds = tf.data.Dataset.from_tensor_slices((tf.range(8), tf.range(8))).batch(4)
        >>> [x.numpy().tolist() for x, _ in shard_batches(ds, 4, Placement(1, 2, [], None))]
        [[2, 3], [6, 7]]
    """
    if placement.num_processes == 1:
        return dataset
    share = batch_size // placement.num_processes
    lo, hi = placement.process_id * share, (placement.process_id + 1) * share
    return dataset.map(lambda x, y: (x[lo:hi], y[lo:hi]))


def check_global_batch(batch_size, placement):
    """Refuses a global batch that the devices cannot share evenly.

    Args:
        batch_size: the global batch size (all devices together).
        placement: from ``setup_distribution``.

    Returns:
        None.

    Example:
        >>> check_global_batch(32, Placement(0, 1, ["cpu:0", "cpu:1"], None))
        >>> check_global_batch(33, Placement(0, 1, ["cpu:0", "cpu:1"], None))
        Traceback (most recent call last):
        ...
        ValueError: --batch-size 33 is the global batch; it must be a multiple of the 2 devices of the run
    """
    if batch_size % len(placement.devices):
        raise ValueError(f"--batch-size {batch_size} is the global batch; it must be a multiple "
                         f"of the {len(placement.devices)} devices of the run")
