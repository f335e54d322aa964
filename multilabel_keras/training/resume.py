"""Resuming a killed training run exactly where its last finished epoch left it."""

import json
import os
import zipfile

import keras
import numpy as np

from multilabel_keras.data.sources import Samples
from multilabel_keras.io import atomic_path, read_json, write_json
from multilabel_keras.training.run_guard import RESUME_DIR, remove_library_files

STATE_FILE = "state.npz"
FORMAT = "multilabel_keras.resume"
VERSION = 2


class ResumeState(keras.callbacks.Callback):
    """Saves everything a resumed run needs after every epoch, as one file.

    ``resume/state.npz`` holds every model variable (dropout's random state
    included), the optimizer's variables, the best weights so far and a
    JSON record: epochs done, history rows, best value and epoch, the
    early-stopping counter. It is written to a temporary name and renamed,
    so a kill at any moment leaves either the previous epoch's complete
    state or this one's, never a mix.

    Args:
        run_dir: the run directory.
        checkpoint: the run's ``BestCheckpoint``.
        history: the run's ``HistoryCSV``.
        extra: JSON facts to keep with every state (the linear probe's
            result, say).

    Attributes:
        phase_end: epoch count at which the current phase ends (set by
            ``fit_phases``); an early-stopped phase is saved as finished.
        stopper: the phase's ``Patience`` callback or ``None``.

    Example:
        >>> cb = ResumeState("runs/x", checkpoint, history)  # doctest: +SKIP
    """

    def __init__(self, run_dir, checkpoint, history, extra=None):
        super().__init__()
        self.path = os.path.join(os.fspath(run_dir), RESUME_DIR, STATE_FILE)
        self.checkpoint, self.history = checkpoint, history
        self.extra = dict(extra or {})
        self.phase_end, self.stopper = None, None

    def on_epoch_end(self, epoch, logs=None):
        stopped = self.stopper is not None and self.stopper.stop
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "epochs_done": self.phase_end if stopped and self.phase_end else epoch + 1,
            "history_rows": len(self.history.rows),
            "best": None if self.checkpoint.best_epoch is None else self.checkpoint.best,
            "best_epoch": self.checkpoint.best_epoch,
            "patience": None if self.stopper is None or stopped else self.stopper.state,
            **self.extra,
        }
        save_state(self.path, self.model, meta, self.checkpoint.best_weights)


def save_state(path, model, meta, best_weights=None):
    """Writes a model's variables, its optimizer's and ``meta`` to one ``.npz``, atomically.

    Args:
        path: the ``.npz`` file.
        model: a compiled model.
        meta: JSON-serialisable dict.
        best_weights: list of arrays (``get_weights`` order) or ``None``.

    Returns:
        None.

    Example:
        >>> save_state("runs/x/resume/state.npz", model, {"epochs_done": 3})  # doctest: +SKIP
    """
    arrays = {"meta": np.array(json.dumps(meta))}
    for i, variable in enumerate(model.variables):
        arrays[f"model_{i}"] = keras.ops.convert_to_numpy(variable)
    optimizer = getattr(model, "optimizer", None)
    for i, variable in enumerate(optimizer.variables if optimizer is not None else []):
        arrays[f"optimizer_{i}"] = keras.ops.convert_to_numpy(variable)
    for i, value in enumerate(best_weights or []):
        arrays[f"best_{i}"] = np.asarray(value)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def save_spec(run_dir, spec, samples, val_samples):
    """Writes the training arguments and the exact splits used, for ``resume``."""
    folder = os.path.join(os.fspath(run_dir), RESUME_DIR)
    write_json(os.path.join(folder, "spec.json"), {"format": FORMAT, "version": VERSION, **spec})
    write_json(os.path.join(folder, "samples.json"), {
        "train": samples.to_json(),
        "val": None if val_samples is None else val_samples.to_json(),
    })


def load_resume(run_dir):
    """Reads a killed run's resume folder.

    Args:
        run_dir: the run directory.

    Returns:
        ``(spec, samples, val_samples, state)``; ``state`` is the saved
        record (``epochs_done`` …) or ``None`` when not even one epoch
        finished.

    Raises:
        FileNotFoundError: nothing to resume.
        ValueError: a file is damaged or was written by another version;
            the message names it.

    Example:
        >>> spec, samples, val, state = load_resume("runs/x")  # doctest: +SKIP
    """
    folder = os.path.join(os.fspath(run_dir), RESUME_DIR)
    spec_path = os.path.join(folder, "spec.json")
    if not os.path.isfile(spec_path):
        raise FileNotFoundError(
            f"{run_dir} has nothing to resume (no {RESUME_DIR}/spec.json): it finished, or it "
            f"was not started by train()"
        )
    spec = read_json(spec_path, "resume spec")
    data = read_json(os.path.join(folder, "samples.json"), "resume samples")
    if not isinstance(spec, dict) or not isinstance(data, dict):
        raise ValueError(f"{folder}: spec.json and samples.json must hold JSON objects")
    _check_version(spec, spec_path)
    spec = {k: v for k, v in spec.items() if k not in ("format", "version")}
    samples = Samples.from_json(data.get("train"), f"{folder}/samples.json")
    val = data.get("val")
    val_samples = None if val is None else Samples.from_json(val, f"{folder}/samples.json")
    state_path = os.path.join(folder, STATE_FILE)
    state = None
    if os.path.isfile(state_path):
        state = _read_meta(state_path)
        _check_version(state, state_path)
        if not isinstance(state.get("epochs_done"), int) or not isinstance(state.get("history_rows"), int):
            raise ValueError(f"{state_path}: 'epochs_done' and 'history_rows' must be integers")
    return spec, samples, val_samples, state


def restore(model, run_dir, fresh_optimizer=False):
    """Loads the saved variables (and, unless ``fresh_optimizer``, the optimizer's) into a model.

    Args:
        model: the rebuilt, compiled model.
        run_dir: the run directory.
        fresh_optimizer: the resumed phase starts with a new optimizer,
            so the saved one (the previous phase's) is not loaded.

    Returns:
        The best weights saved (a list of arrays) or ``None``.

    Example:
        >>> best = restore(model, "runs/x")  # doctest: +SKIP
    """
    path = os.path.join(os.fspath(run_dir), RESUME_DIR, STATE_FILE)
    arrays = _read_arrays(path)
    _assign(model.variables, arrays, "model", path)
    optimizer = model.optimizer
    if not fresh_optimizer:
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        _assign(optimizer.variables, arrays, "optimizer", path)
    best = [arrays[f"best_{i}"] for i in range(_count(arrays, "best"))]
    return best or None


def finish(run_dir):
    """Removes the resume state once the run is complete (a user's file in ``resume/`` stays)."""
    remove_library_files(os.fspath(run_dir), only_resume=True)


def dumps_ok(value):
    """Whether ``value`` is plain JSON (what a resumable argument must be)."""
    try:
        json.dumps(value)
        return True
    except TypeError:
        return False


def _check_version(record, path):
    if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("version") != VERSION:
        found = record.get("version") if isinstance(record, dict) else None
        raise ValueError(f"{path} was written by another version of multilabel_keras (resume "
                         f"format {found!r}, this one reads {VERSION}): start the run again")


def _read_arrays(path):
    try:
        with np.load(path, allow_pickle=False) as saved:
            return {name: saved[name] for name in saved.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is damaged ({err}): start the run again") from None


def _read_meta(path):
    arrays = _read_arrays(path)
    try:
        meta = json.loads(str(arrays["meta"]))
    except (KeyError, json.JSONDecodeError):
        raise ValueError(f"{path} has no readable record: start the run again") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: its record must be a JSON object")
    return meta


def _count(arrays, prefix):
    return sum(1 for name in arrays if name.startswith(prefix + "_"))


def _assign(variables, arrays, prefix, path):
    count = _count(arrays, prefix)
    if count != len(variables):
        raise ValueError(f"{path} holds {count} {prefix} variables, the {prefix} has "
                         f"{len(variables)}: was the run changed?")
    for i, variable in enumerate(variables):
        value = arrays[f"{prefix}_{i}"]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"{path}: {prefix} variable {i} has shape {value.shape}, "
                             f"expected {tuple(variable.shape)}: was the run changed?")
        variable.assign(value)
