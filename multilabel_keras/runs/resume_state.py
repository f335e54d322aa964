"""A run's resume state: its settings, the exact splits (fingerprinted), and weights after each epoch.

A killed run is resumed from another working folder too: image paths are
stored absolute. The files are fingerprinted when the run starts, and a
resume whose images changed (edited, replaced by look-alikes, removed) is
refused naming one changed file.
"""

import hashlib
import json
import os
import zipfile

import keras
import numpy as np

from multilabel_keras.data.sources import Samples
from multilabel_keras.io import atomic_path, open_regular

FORMAT = "multilabel_keras.resume"
VERSION = 3
# Files up to this size are hashed whole; larger ones by size, head and tail.
WHOLE_HASH_BYTES = 1024 ** 2


def save_state(run, model, meta, best_weights=None):
    """Writes a model's variables, its optimizer's and ``meta`` to the run's state file, atomically.

    The write goes to a temporary name and is renamed, so a kill at any
    moment leaves either the previous epoch's complete state or this
    one's, never a mix.

    Args:
        run: the ``RunDir``.
        model: a compiled model.
        meta: JSON-serialisable dict.
        best_weights: list of arrays (``get_weights`` order) or ``None``.

    Returns:
        None.

    Example:
        >>> save_state(RunDir("runs/x"), model, {"epochs_done": 3})  # doctest: +SKIP
    """
    meta = {"format": FORMAT, "version": VERSION, **meta}
    arrays = {"meta": np.array(json.dumps(meta))}
    for i, variable in enumerate(model.variables):
        arrays[f"model_{i}"] = keras.ops.convert_to_numpy(variable)
    optimizer = getattr(model, "optimizer", None)
    for i, variable in enumerate(optimizer.variables if optimizer is not None else []):
        arrays[f"optimizer_{i}"] = keras.ops.convert_to_numpy(variable)
    for i, value in enumerate(best_weights or []):
        arrays[f"best_{i}"] = np.asarray(value)
    with atomic_path(run.file(run.RESUME_STATE)) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def save_spec(run, spec, samples, val_samples):
    """Writes the run's settings and the exact splits used (absolute paths, fingerprinted).

    Args:
        run: the ``RunDir``.
        spec: JSON facts to resume with (``config``, ``vocabulary_classes`` …).
        samples: the training split.
        val_samples: the validation split or ``None``.

    Returns:
        None.
    """
    def stored(part):
        if part is None:
            return None
        data = part.to_json()
        data["paths"] = [os.path.abspath(p) for p in data["paths"]]
        data["fingerprints"] = [fingerprint(p) for p in data["paths"]]
        return data

    run.write_json(run.RESUME_SPEC, {"format": FORMAT, "version": VERSION, **spec})
    run.write_json(run.RESUME_SAMPLES, {"train": stored(samples), "val": stored(val_samples)})


def fingerprint(path):
    """A file's size and content hash (whole up to ``WHOLE_HASH_BYTES``, else size, head and tail).

    Args:
        path: an image file.

    Returns:
        ``"<size>:<blake2b hex>"``, or ``"missing"`` (absent, unreadable, or
        not a regular file: a FIFO put in an image's place is never opened
        for a blocking read).

    Example:
        >>> with open("one.bin", "wb") as f:
        ...     _ = f.write(b"abc")
        >>> fingerprint("one.bin")[:2], fingerprint("none.bin")
        ('3:', 'missing')
    """
    try:
        with os.fdopen(open_regular(path, "image"), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            digest = hashlib.blake2b(digest_size=16)
            if size <= WHOLE_HASH_BYTES:
                digest.update(f.read(WHOLE_HASH_BYTES + 1))
            else:
                digest.update(f.read(WHOLE_HASH_BYTES // 2))
                f.seek(size - WHOLE_HASH_BYTES // 2)
                digest.update(f.read(WHOLE_HASH_BYTES // 2))
    except (OSError, ValueError):
        return "missing"
    return f"{size}:{digest.hexdigest()}"


def load_resume(run):
    """Reads a killed run's resume folder, refusing it when its images changed.

    Args:
        run: the ``RunDir``.

    Returns:
        ``(spec, samples, val_samples, state)``; ``state`` is the saved
        record (``epochs_done`` …) or ``None`` when not even one epoch
        finished.

    Raises:
        FileNotFoundError: nothing to resume.
        ValueError: a file is damaged or was written by another version, or
            an image of the run changed since it started; the message names it.

    Example:
        >>> spec, samples, val, state = load_resume(RunDir("runs/x"))  # doctest: +SKIP
    """
    spec_path = run.file(run.RESUME_SPEC)
    if not run.has(run.RESUME_SPEC):
        raise FileNotFoundError(
            f"{run.path} has nothing to resume (no {run.RESUME_SPEC}): it finished, or it "
            f"was not started by train()"
        )
    spec = run.read_json(run.RESUME_SPEC, "resume spec")
    samples_path = run.file(run.RESUME_SAMPLES)
    data = run.read_json(run.RESUME_SAMPLES, "resume samples")
    if not isinstance(spec, dict) or not isinstance(data, dict):
        raise ValueError(f"{spec_path} and {samples_path} must hold JSON objects")
    _check_version(spec, spec_path)
    spec = {k: v for k, v in spec.items() if k not in ("format", "version")}
    samples = _checked_samples(data.get("train"), samples_path)
    val = data.get("val")
    val_samples = None if val is None else _checked_samples(val, samples_path)
    state = None
    if run.has(run.RESUME_STATE):
        state_path = run.checked(run.RESUME_STATE, "resume state")
        state = _read_meta(state_path)
        _check_version(state, state_path)
        if not isinstance(state.get("epochs_done"), int) or not isinstance(state.get("history_rows"), int):
            raise ValueError(f"{state_path}: 'epochs_done' and 'history_rows' must be integers")
    return spec, samples, val_samples, state


def _checked_samples(data, where):
    samples = Samples.from_json(data, where)
    prints = data.get("fingerprints")
    if not isinstance(prints, list) or len(prints) != len(samples):
        raise ValueError(f"{where}: the image fingerprints are missing: start the run again")
    for path, expected in zip(samples.paths, prints):
        found = fingerprint(path)
        if found != expected:
            what = "is gone or not a regular file" if found == "missing" else "changed"
            raise ValueError(f"cannot resume: {path} {what} since the run started (its images "
                             f"must be the same files); start the run again")
    return samples


def restore(model, run, fresh_optimizer=False):
    """Loads the saved variables (and, unless ``fresh_optimizer``, the optimizer's) into a model.

    Args:
        model: the rebuilt, compiled model.
        run: the ``RunDir``.
        fresh_optimizer: the resumed phase starts with a new optimizer,
            so the saved one (the previous phase's) is not loaded.

    Returns:
        The best weights saved (a list of arrays) or ``None``.

    Example:
        >>> best = restore(model, RunDir("runs/x"))  # doctest: +SKIP
    """
    path = run.checked(run.RESUME_STATE, "resume state")
    arrays = _read_arrays(path)
    _assign(model.variables, arrays, "model", path)
    optimizer = model.optimizer
    if not fresh_optimizer:
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        _assign(optimizer.variables, arrays, "optimizer", path)
    best = [arrays[f"best_{i}"] for i in range(_count(arrays, "best"))]
    return best or None


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
    except (KeyError, json.JSONDecodeError, RecursionError):
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
