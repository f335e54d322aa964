"""Continuing a killed ``train`` run from its last finished epoch."""

import warnings

import keras

from multilabel_keras.data.vocabulary import LabelVocabulary
from multilabel_keras.training import resume
from multilabel_keras.training.fit import train
from multilabel_keras.training.schedule import TransferSchedule


def resume_training(run_dir, verbose=1):
    """Continues a killed ``train`` run from its last finished epoch.

    The same arguments and the exact same train/validation split are used;
    weights and optimizer state come from the end of the last finished
    epoch; ``history.csv`` keeps its rows up to that epoch and goes on
    from there, so the run ends at the planned epoch count with no row
    twice.

    Args:
        run_dir: the run directory of the killed run.
        verbose: Keras verbosity.

    Returns:
        A ``TrainResult``.

    Example:
        >>> resume_training("runs/fashion")  # doctest: +SKIP
    """
    if keras.backend.backend() == "torch":
        warnings.warn("resuming under the PyTorch backend continues the run but does not "
                      "reproduce the uninterrupted run exactly (it does under TensorFlow and JAX)",
                      UserWarning, stacklevel=2)
    spec, samples, val_samples, state = resume.load_resume(run_dir)
    spec = dict(spec)
    classes = spec.pop("vocabulary_classes")
    schedule = spec.pop("schedule")
    if schedule is not None:
        schedule = TransferSchedule(**schedule)
    vocabulary = LabelVocabulary(classes=classes).fit([])
    return train(samples, run_dir, val_samples=val_samples, vocabulary=vocabulary,
                 schedule=schedule, verbose=verbose, resume_state=state or {"epochs_done": 0},
                 **spec)
