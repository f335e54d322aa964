"""``RunDir``: the one owner of a run folder's file names, reads, writes and lock.

Every module that reads or writes a run folder (the trainers, ``Predictor``,
``evaluate``, ``export``, the command line) asks a ``RunDir`` for the file;
no other module spells a run file's name. Reads go through
``io.read_regular``: a FIFO, a device or an oversized file in a run folder
is refused by name before a byte is read. Writes go through ``io``'s atomic
writes (temporary name, then rename).
"""

import contextlib
import os
import re

from multilabel_keras.hints import Setting, hinted
from multilabel_keras.io import open_regular, read_json, write_json
from multilabel_keras.runs import records

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs are then not guarded against each other
    fcntl = None

# atomic_path's temporary names: ".<stem>.<random>.tmp<ext>", left behind by a kill.
_TEMP = re.compile(r"^\.(?P<stem>.+)\.[a-z0-9_]{8}\.tmp(?P<ext>\.[^.]+)?$")
# A saved model or resume state larger than this is not one the library wrote.
MAX_MODEL_BYTES = 16 * 1024 ** 3


class RunDir:
    """A run folder (or a cached-features folder): where each file lives and how it is read.

    Args:
        path: the folder (it need not exist yet).

    Attributes:
        path: the folder as given (a string).

    Example:
        >>> run = RunDir("runs/fashion")
        >>> os.path.basename(run.file(RunDir.MODEL))
        'model.keras'
        >>> run.read_config()["image_size"]
        32
        >>> sorted(run.library_files()[0])[:3]
        ['calibration.json', 'config.json', 'history.csv']
    """

    MODEL = "model.keras"
    HEAD = "head.keras"
    LABELS = "labels.json"
    THRESHOLDS = "thresholds.json"
    CONFIG = "config.json"
    HISTORY = "history.csv"
    PLOT = "plot.png"
    PR_CURVES = "pr_curves.png"
    CALIBRATION = "calibration.json"
    RELIABILITY = "reliability.png"
    REPORT = "report.html"
    METRICS = "metrics.json"
    TEST_METRICS = "test_metrics.json"
    FEATURES_INDEX = "index.json"
    FEATURES = "features.npy"
    BACKBONE = "backbone.weights.h5"
    EXPLAIN = "explain"
    LOCK = ".multilabel_keras.lock"
    RESUME = "resume"
    RESUME_SPEC = os.path.join(RESUME, "spec.json")
    RESUME_SAMPLES = os.path.join(RESUME, "samples.json")
    RESUME_STATE = os.path.join(RESUME, "state.npz")
    # Everything a trainer or extract_features writes at the top of its folder: what
    # overwrite may replace. A user's other files are never touched.
    FILES = (MODEL, HEAD, LABELS, THRESHOLDS, METRICS, CONFIG, PLOT, PR_CURVES, HISTORY,
             TEST_METRICS, FEATURES_INDEX, FEATURES, BACKBONE, CALIBRATION, RELIABILITY, REPORT)
    # What a finished training run holds (a run without validation data has no PR_CURVES,
    # CALIBRATION or RELIABILITY).
    RUN_FILES = (MODEL, LABELS, THRESHOLDS, CONFIG, HISTORY, PLOT, METRICS, PR_CURVES,
                 CALIBRATION, RELIABILITY)
    RESUME_FILES = (RESUME_SPEC, RESUME_SAMPLES, RESUME_STATE)

    def __init__(self, path):
        if isinstance(path, RunDir):
            path = path.path
        self.path = os.fspath(path)

    def __fspath__(self):
        return self.path

    def __repr__(self):
        return f"RunDir({self.path!r})"

    def file(self, name):
        """The path of one of the folder's files (a name from this class's constants)."""
        return os.path.join(self.path, name)

    def has(self, name):
        """Whether the file exists (as anything: a FIFO there is refused when read, not ignored)."""
        return os.path.lexists(self.file(name))

    # Reads: bounded, regular files only, each error naming the file.

    def read_json(self, name, what):
        """Reads one of the folder's JSON files (see ``io.read_json``)."""
        return read_json(self.file(name), what)

    def checked(self, name, what):
        """The path of a file that another library opens (Keras, NumPy), checked first.

        Args:
            name: the file's name in the folder.
            what: a short description for messages.

        Returns:
            The path; a missing file, a FIFO, a device or a file over
            ``MAX_MODEL_BYTES`` raises an error naming it.
        """
        os.close(open_regular(self.file(name), what, MAX_MODEL_BYTES))
        return self.file(name)

    def read_config(self):
        """The run's ``config.json`` (a dict)."""
        config = self.read_json(self.CONFIG, "run config")
        if not isinstance(config, dict):
            raise ValueError(f"run config {self.file(self.CONFIG)} must hold a JSON object")
        return config

    def read_labels(self):
        """The run's ``LabelVocabulary``."""
        from multilabel_keras.data.vocabulary import LabelVocabulary

        return LabelVocabulary.load(self.file(self.LABELS))

    def read_thresholds(self, class_names):
        """``(thresholds, rule)`` of the run, ordered like ``class_names`` (0.5 each if absent)."""
        path = self.file(self.THRESHOLDS)
        return records.load_thresholds(path, class_names), records.load_rule(path)

    def read_calibration(self, class_names):
        """The run's per-label temperatures ordered like ``class_names``, or ``None`` (uncalibrated)."""
        return records.load_calibration(self.file(self.CALIBRATION), class_names)

    def read_history(self):
        """The epoch rows of ``history.csv`` (empty when absent)."""
        return records.read_history(self.file(self.HISTORY))

    # Writes: atomic, with the user's umask.

    def write_json(self, name, data):
        write_json(self.file(name), data)

    def write_history(self, rows):
        records.write_history(self.file(self.HISTORY), rows)

    def write_thresholds(self, thresholds, class_names, source, rule=None):
        records.save_thresholds(self.file(self.THRESHOLDS), thresholds, class_names, source, rule)

    def write_calibration(self, temperatures, class_names, errors):
        records.save_calibration(self.file(self.CALIBRATION), temperatures, class_names, errors)

    # The folder's life: checked, claimed under a lock, cleaned.

    def library_files(self):
        """The files in the folder that multilabel_keras wrote, and the others.

        Returns:
            ``(ours, theirs)``: sorted paths relative to the folder.

        Example:
            >>> import tempfile
            >>> folder = tempfile.mkdtemp()
            >>> for name in ("model.keras", "notes.txt"):
            ...     open(os.path.join(folder, name), "w").close()
            >>> RunDir(folder).library_files()
            (['model.keras'], ['notes.txt'])
        """
        ours, theirs = [], []
        for folder, dirs, files in os.walk(self.path):
            relative = os.path.relpath(folder, self.path)
            for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
                path = name if relative == "." else os.path.join(relative, name)
                (ours if self._is_ours(path) else theirs).append(path)
        return sorted(ours), sorted(theirs)

    def _is_ours(self, path):
        known = self.FILES + (self.LOCK,) + self.RESUME_FILES
        if path in known:
            return True
        folder, name = os.path.split(path)
        temp = _TEMP.match(name)
        return bool(temp) and os.path.join(folder, f"{temp['stem']}{temp['ext'] or ''}") in known

    def written_here(self):
        """Whether the folder is one the library wrote (a run, cached features), never data.

        The data readers leave such a folder out, so a run kept inside a
        data folder cannot have its plots read back as images of a label.

        Returns:
            True for a folder holding a run's config and labels, cached
            features, or a run's lock (a run being written).

        Example:
            >>> RunDir("runs/fashion").written_here(), RunDir("data/fashion").written_here()
            (True, False)
        """
        return (self.has(self.LOCK) or (self.has(self.CONFIG) and self.has(self.LABELS))
                or (self.has(self.FEATURES_INDEX) and self.has(self.FEATURES)))

    def stopped(self):
        """Whether the folder holds a run that was stopped before it finished."""
        return self.has(self.RESUME_SPEC)

    def check_free(self, overwrite=False):
        """Refuses a folder that would mix two runs, before anything is written.

        An empty folder is used; so is one left by a run of the library that
        stopped before finishing a single epoch (running the same command
        again starts it afresh). A run stopped later is refused with how to
        resume it; any other non-empty folder is refused unless ``overwrite``,
        which replaces only the library's own files (see ``FILES``).

        Args:
            overwrite: allow a non-empty folder.

        Returns:
            None.

        Example:
            >>> RunDir("runs/new").check_free()
            >>> RunDir("runs/fashion").check_free()  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            FileExistsError: run directory runs/fashion is not empty (calibration.json, config.json, ...
        """
        if os.path.lexists(self.path) and not os.path.isdir(self.path):
            raise NotADirectoryError(f"run directory {self.path} exists and is not a folder")
        if not os.path.isdir(self.path) or overwrite:
            return
        ours, theirs = self.library_files()
        ours = [p for p in ours if p != self.LOCK]
        if not ours and not theirs:
            return
        if self.stopped() and not theirs:
            if not self.has(self.RESUME_STATE):
                return  # stopped before its first epoch: nothing to keep
            raise hinted(FileExistsError,
                         f"{self.path} holds a stopped run; continue it (resume_training in Python, "
                         f"or multilabel-keras train --resume {self.path}) or pass ",
                         Setting("overwrite", True), " to start again")
        shown = ", ".join((theirs or ours)[:5])
        raise hinted(FileExistsError,
                     f"run directory {self.path} is not empty ({shown}); choose a new folder or "
                     f"pass ", Setting("overwrite", True),
                     " (which replaces only the files multilabel_keras writes)")

    @contextlib.contextmanager
    def claim(self, overwrite=False, fresh=True):
        """Creates the folder and holds it as this process's, for the ``with`` block.

        Args:
            overwrite: as in ``check_free``.
            fresh: a new run (not a resume): the folder is checked again
                under the lock, and the library files of an earlier run in
                it are removed so that none is mistaken for this run's.

        Returns:
            A context manager; the folder's lock is released when it exits.

        Raises:
            FileExistsError: another process (or another run in this one)
                is writing into the folder.

        Example:
            >>> with RunDir("runs/new").claim():
            ...     os.path.exists("runs/new/.multilabel_keras.lock")
            True
            >>> os.path.exists("runs/new/.multilabel_keras.lock")
            False
        """
        os.makedirs(self.path, exist_ok=True)
        with self.lock():
            if fresh:
                self.check_free(overwrite)
                self.remove_library_files()
            yield self

    @contextlib.contextmanager
    def lock(self):
        """The folder's advisory lock, held for the ``with`` block (no-op without ``fcntl``)."""
        if fcntl is None:
            yield
            return
        handle = open(os.path.abspath(self.file(self.LOCK)), "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "?"
            handle.close()
            raise FileExistsError(f"another process (pid {owner}) is writing into {self.path}; "
                                  f"wait for it to end or choose another folder") from None
        try:
            handle.truncate(0)
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            # Removed while still held: a writer that opened it before now finds, under
            # its own lock, a folder that check_free refuses, never a half-written one.
            with contextlib.suppress(OSError):
                os.remove(handle.name)
            handle.close()

    def remove_library_files(self, only_resume=False):
        """Removes what the library wrote into the folder (never anything else).

        Args:
            only_resume: remove only the resume state (a run that finished).

        Returns:
            None; ``resume/`` is removed once it is empty.
        """
        ours, _ = self.library_files()
        for path in ours:
            if path == self.LOCK or (only_resume and os.path.dirname(path) != self.RESUME):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.file(path))
        with contextlib.suppress(OSError):
            os.rmdir(self.file(self.RESUME))  # absent, or holding a file of the user's
