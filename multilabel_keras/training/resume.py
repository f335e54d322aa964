"""Resuming a killed training run from its last completed epoch."""

import json
import os
import shutil

import keras
import numpy as np

from multilabel_keras.data.sources import Samples
from multilabel_keras.io import atomic_path, read_json, write_json

RESUME_DIR = "resume"


class ResumeState(keras.callbacks.Callback):
    """Saves what a resumed run needs after every epoch, atomically.

    ``resume/weights.weights.h5`` (model weights), ``resume/optimizer.npz``
    (optimizer variables, so Adam's moments and the step count carry on)
    and ``resume/state.json`` (epochs done, best value and epoch), written
    in that order: a kill at any point leaves a consistent last state.

    Args:
        run_dir: the run directory.
        checkpoint: the run's ``BestCheckpoint`` (its best value is saved).

    Example:
        >>> cb = ResumeState("runs/x", checkpoint)  # doctest: +SKIP
    """

    def __init__(self, run_dir, checkpoint):
        super().__init__()
        self.folder = os.path.join(os.fspath(run_dir), RESUME_DIR)
        self.checkpoint = checkpoint

    def on_epoch_end(self, epoch, logs=None):
        with atomic_path(os.path.join(self.folder, "weights.weights.h5")) as tmp:
            self.model.save_weights(tmp)
        variables = [keras.ops.convert_to_numpy(v) for v in self.model.optimizer.variables]
        with atomic_path(os.path.join(self.folder, "optimizer.npz")) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, *variables)
        write_json(os.path.join(self.folder, "state.json"), {
            "epochs_done": epoch + 1,
            "best": None if self.checkpoint.best_epoch is None else self.checkpoint.best,
            "best_epoch": self.checkpoint.best_epoch,
        })


def save_spec(run_dir, spec, samples, val_samples):
    """Writes the training arguments and the exact splits used, for ``resume``."""
    folder = os.path.join(os.fspath(run_dir), RESUME_DIR)
    write_json(os.path.join(folder, "spec.json"), spec)
    write_json(os.path.join(folder, "samples.json"), {
        "train": samples.to_json(),
        "val": None if val_samples is None else val_samples.to_json(),
    })


def load_resume(run_dir):
    """Reads a killed run's resume folder.

    Args:
        run_dir: the run directory.

    Returns:
        ``(spec, samples, val_samples, state)``; ``state`` is ``None`` when
        not even one epoch finished.

    Example:
        >>> spec, samples, val, state = load_resume("runs/x")  # doctest: +SKIP
    """
    folder = os.path.join(os.fspath(run_dir), RESUME_DIR)
    if not os.path.isfile(os.path.join(folder, "spec.json")):
        raise FileNotFoundError(
            f"{run_dir} has nothing to resume (no {RESUME_DIR}/spec.json): it finished, or it "
            f"was not started by train()"
        )
    spec = read_json(os.path.join(folder, "spec.json"), "resume spec")
    data = read_json(os.path.join(folder, "samples.json"), "resume samples")
    if not isinstance(spec, dict) or not isinstance(data, dict):
        raise ValueError(f"{folder}: spec.json and samples.json must hold JSON objects")
    samples = Samples.from_json(data.get("train"), f"{folder}/samples.json")
    val = data.get("val")
    val_samples = None if val is None else Samples.from_json(val, f"{folder}/samples.json")
    state_path = os.path.join(folder, "state.json")
    state = read_json(state_path, "resume state") if os.path.isfile(state_path) else None
    if state is not None and not (isinstance(state, dict) and isinstance(state.get("epochs_done"), int)):
        raise ValueError(f"{state_path}: 'epochs_done' must be an integer")
    return spec, samples, val_samples, state


def restore(model, run_dir, state):
    """Loads the saved weights and optimizer variables into a compiled model."""
    folder = os.path.join(os.fspath(run_dir), RESUME_DIR)
    optimizer = model.optimizer
    if not optimizer.built:  # built first, so loading the weights finds its variables
        optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(folder, "weights.weights.h5"))
    with np.load(os.path.join(folder, "optimizer.npz"), allow_pickle=False) as saved:
        values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    if len(values) != len(optimizer.variables):
        raise ValueError(f"{folder}/optimizer.npz holds {len(values)} variables, the optimizer "
                         f"has {len(optimizer.variables)}: was the run changed?")
    for variable, value in zip(optimizer.variables, values):
        variable.assign(value)


def finish(run_dir):
    """Removes the resume folder once the run is complete."""
    shutil.rmtree(os.path.join(os.fspath(run_dir), RESUME_DIR), ignore_errors=True)


def dumps_ok(value):
    """Whether ``value`` is plain JSON (what a resumable argument must be)."""
    try:
        json.dumps(value)
        return True
    except TypeError:
        return False
