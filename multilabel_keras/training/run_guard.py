"""A run folder has one writer, and only the files the library wrote are ever replaced or removed."""

import functools
import os
import re

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs are then not guarded against each other
    fcntl = None

LOCK_FILE = ".multilabel_keras.lock"
RESUME_DIR = "resume"
# Everything a trainer or extract_features writes into its folder: the manifest
# of what --overwrite may replace. A user's other files are never touched.
RUN_FILES = ("model.keras", "head.keras", "labels.json", "thresholds.json", "metrics.json",
             "config.json", "plot.png", "pr_curves.png", "history.csv", "test_metrics.json",
             "index.json", "features.npy", "backbone.weights.h5")
RESUME_FILES = ("spec.json", "samples.json", "state.npz")
# atomic_path's temporary names: ".<stem>.<random>.tmp<ext>", left behind by a kill.
_TEMP = re.compile(r"^\.(?P<stem>.+)\.[a-z0-9_]{8}\.tmp(?P<ext>\.[^.]+)?$")

_held = {}  # real path -> open lock file, for the locks this process holds
_claims = []  # folders claimed inside the current guarded call, released when it returns


def library_files(out_dir):
    """The files in ``out_dir`` that multilabel_keras wrote, and the others.

    Args:
        out_dir: a run or features folder.

    Returns:
        ``(ours, theirs)``: sorted paths relative to ``out_dir``.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> for name in ("model.keras", "notes.txt"):
        ...     open(os.path.join(folder, name), "w").close()
        >>> library_files(folder)
        (['model.keras'], ['notes.txt'])
    """
    ours, theirs = [], []
    for folder, dirs, files in os.walk(out_dir):
        relative = os.path.relpath(folder, out_dir)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = name if relative == "." else os.path.join(relative, name)
            (ours if _is_ours(relative, name) else theirs).append(path)
    return sorted(ours), sorted(theirs)


def _is_ours(relative, name):
    known = RUN_FILES + (LOCK_FILE,) if relative == "." else (
        RESUME_FILES if relative == RESUME_DIR else ())
    if name in known:
        return True
    temp = _TEMP.match(name)
    return bool(temp) and any(f"{temp['stem']}{temp['ext'] or ''}" == k for k in known)


def check_run_dir(out_dir, overwrite):
    """Refuses a run folder that would mix two runs, before anything is written.

    An empty folder is used; so is one left by a run of the library that
    stopped before finishing a single epoch (running the same command
    again starts it afresh). A run stopped later is refused with how to
    resume it; any other non-empty folder is refused unless ``overwrite``,
    which replaces only the library's own files (see ``RUN_FILES``).

    Args:
        out_dir: the run directory.
        overwrite: allow a non-empty folder.

    Returns:
        None.

    Example:
        >>> check_run_dir("runs/new", overwrite=False)
    """
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise NotADirectoryError(f"run directory {out_dir} exists and is not a folder")
    if not os.path.isdir(out_dir) or overwrite:
        return
    ours, theirs = library_files(out_dir)
    ours = [p for p in ours if p != LOCK_FILE]
    if not ours and not theirs:
        return
    if _stopped_run(out_dir) and not theirs:
        if not os.path.isfile(os.path.join(out_dir, RESUME_DIR, "state.npz")):
            return  # stopped before its first epoch: nothing to keep
        raise FileExistsError(
            f"{out_dir} holds a stopped run; continue it (multilabel-keras train --resume "
            f"{out_dir}, or resume_training in Python) or pass overwrite=True to start again")
    shown = ", ".join((theirs or ours)[:5])
    raise FileExistsError(
        f"run directory {out_dir} is not empty ({shown}); choose a new folder or pass "
        f"overwrite=True (which replaces only the files multilabel_keras writes)")


def _stopped_run(out_dir):
    return os.path.isfile(os.path.join(out_dir, RESUME_DIR, "spec.json"))


def claim_run_dir(out_dir, overwrite=False, fresh=True):
    """Creates the run folder and makes this process its only writer.

    Args:
        out_dir: the run directory.
        overwrite: as in ``check_run_dir``.
        fresh: a new run (not a resume): the folder is checked again
            under the lock, and the library files of an earlier run in it
            are removed so that none of them is mistaken for this run's.

    Returns:
        None. The claim ends when the guarded call (``train`` …) returns.

    Raises:
        FileExistsError: another process is writing into ``out_dir``.

    Example:
        >>> claim_run_dir("runs/new")  # doctest: +SKIP
    """
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    _lock(out_dir)
    if fresh:
        check_run_dir(out_dir, overwrite)
        remove_library_files(out_dir)


def remove_library_files(out_dir, only_resume=False):
    """Removes what the library wrote into ``out_dir`` (never anything else).

    Args:
        out_dir: a run folder.
        only_resume: remove only the resume state (a run that finished).

    Returns:
        None; a ``resume/`` folder is removed once it is empty.
    """
    ours, _ = library_files(out_dir)
    for path in ours:
        if path == LOCK_FILE or (only_resume and os.path.dirname(path) != RESUME_DIR):
            continue
        try:
            os.remove(os.path.join(out_dir, path))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(os.path.join(out_dir, RESUME_DIR))
    except OSError:
        pass  # absent, or holding a file of the user's


def _lock(out_dir):
    real = os.path.realpath(out_dir)
    if fcntl is None:
        return
    if real not in _held:
        handle = open(os.path.abspath(os.path.join(out_dir, LOCK_FILE)), "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            handle.close()
            raise FileExistsError(f"another process (pid {owner}) is writing into {out_dir}; wait "
                                  f"for it to end or choose another folder") from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        _held[real] = handle
    _claims.append(real)


def release_claims(fn):
    """Decorates a trainer so that the run folders it claimed are released when it returns.

    Args:
        fn: a function that calls ``claim_run_dir``.

    Returns:
        The wrapped function (same name, docstring and signature).
    """
    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        depth = len(_claims)
        try:
            return fn(*args, **kwargs)
        finally:
            while len(_claims) > depth:
                real = _claims.pop()
                if real not in _claims and real in _held:
                    _release(_held.pop(real))
    return guarded


def _release(handle):
    # Removed while still held: a writer that opened it before now finds, under
    # its own lock, a folder that check_run_dir refuses, never a half-written one.
    try:
        os.remove(handle.name)
    except OSError:
        pass
    handle.close()
