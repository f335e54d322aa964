"""Crash-safe file writing: every artifact goes to a temporary name first."""

import contextlib
import json
import os
import stat
import tempfile
import threading

from multilabel_keras.hints import Setting, hinted

# A JSON record of ours (labels, thresholds, config, an index) is kilobytes; a CSV
# manifest of millions of rows fits too. Anything larger is refused, not read.
MAX_RECORD_BYTES = 256 * 1024 ** 2

_UMASK_LOCK = threading.Lock()


def file_mode():
    """The mode a newly created file gets under the process's umask (0644 under umask 022).

    ``tempfile.mkstemp`` creates files readable by their owner only; run
    files are renamed from such temporaries, so they are given this mode
    first, as ``open(path, "w")`` would have.

    Returns:
        The permission bits, ``0o666`` less the umask.

    Example:
        >>> old = os.umask(0o022); mode = file_mode(); _ = os.umask(old)
        >>> oct(mode)
        '0o644'
    """
    return 0o666 & ~_umask()


def folder_mode():
    """The mode a newly created folder gets under the process's umask (0755 under umask 022).

    ``tempfile.mkdtemp`` creates folders for their owner only; a folder
    renamed into place from one is given this mode first.

    Returns:
        The permission bits, ``0o777`` less the umask.

    Example:
        >>> old = os.umask(0o027); mode = folder_mode(); _ = os.umask(old)
        >>> oct(mode)
        '0o750'
    """
    return 0o777 & ~_umask()


def _umask():
    with _UMASK_LOCK:  # reading the umask means setting it: done under a lock
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside ``path``; renames it into place on success.

    A reader never sees a half-written file, and an error (or a kill) leaves
    the previous file untouched. The file gets the permissions the user's
    umask gives a new file (``file_mode``).

    Args:
        path: the final file path. Its extension is kept on the temporary
            name because some writers (Keras, matplotlib) dispatch on it.

    Returns:
        A context manager yielding the temporary path to write.

    Example:
        >>> with atomic_path("run/notes.txt") as tmp:
        ...     with open(tmp, "w") as f:
        ...         _ = f.write("written whole or not at all")
        >>> open("run/notes.txt").read()
        'written whole or not at all'
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    base = os.path.basename(path)
    stem, ext = os.path.splitext(base)
    if base.endswith(".weights.h5"):
        ext = ".weights.h5"
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp{ext}", dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if isinstance(err, OSError) and err.errno and err.filename in (None, tmp):
            # A full disk or a file-size limit: name the file being written, not its temporary.
            raise type(err)(err.errno, err.strerror or str(err), path) from None
        raise


def check_new_path(path, overwrite=False, replaceable=True, instead="a new path"):
    """Refuses to write where something already is, naming it: the one rule for every output.

    Args:
        path: the file or folder about to be written.
        overwrite: the caller's consent to replace it.
        replaceable: whether consent is enough; exports and presets are
            never written over (``False``), whatever ``overwrite`` says.
        instead: what to give instead, in the message for a path that is
            never replaced.

    Returns:
        ``path`` as a string, when writing there is allowed.

    Example:
        >>> check_new_path("photo.jpg")
        Traceback (most recent call last):
        ...
        FileExistsError: photo.jpg exists; pass overwrite=True to replace it
        >>> check_new_path("photo.jpg", replaceable=False, instead="a new --out")
        Traceback (most recent call last):
        ...
        FileExistsError: photo.jpg already exists; give a new --out (nothing is overwritten)
        >>> check_new_path("photo.jpg", overwrite=True)
        'photo.jpg'
    """
    path = os.fspath(path)
    if not os.path.lexists(path) or (overwrite and replaceable):
        return path
    if replaceable:
        raise hinted(FileExistsError, f"{path} exists; pass ", Setting("overwrite", True),
                     " to replace it")
    raise FileExistsError(f"{path} already exists; give {instead} (nothing is overwritten)")


def write_json(path, data):
    """Writes ``data`` as indented JSON, atomically.

    Args:
        path: destination file.
        data: anything ``json.dump`` accepts.

    Returns:
        None.

    Example:
        >>> write_json("run/settings.json", {"image_size": 96})
        >>> read_json("run/settings.json", "settings")
        {'image_size': 96}
    """
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=False)
            f.write("\n")


def read_regular(path, what="file", limit=MAX_RECORD_BYTES):
    """Reads a regular file of at most ``limit`` bytes; anything else is refused by name.

    The file is opened without blocking and checked before a byte is read,
    so a FIFO, a device (a link to ``/dev/zero``), a folder or a link loop
    is one ``ValueError`` naming it at once, never a hang or an endless
    read.

    Args:
        path: the file to read.
        what: a short description for messages (``"labels file"``).
        limit: the most bytes the file may hold.

    Returns:
        The file's bytes.

    Example:
        >>> os.mkfifo("pipe.json")
        >>> read_regular("pipe.json", "run config")
        Traceback (most recent call last):
        ...
        ValueError: run config pipe.json is not a regular file (it is a FIFO)
    """
    path = os.fspath(path)
    fd = open_regular(path, what, limit)
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{what} {path} holds more than {limit} bytes")
    return data


def open_regular(path, what="file", limit=None):
    """Opens a regular file for reading, refusing anything else by name (see ``read_regular``).

    Args:
        path: the file.
        what: a short description for messages.
        limit: the most bytes it may hold (``None``: any size).

    Returns:
        An open file descriptor; the caller closes it.

    Example:
        >>> os.close(open_regular("run/config.json", "run config"))
    """
    path = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except OSError as err:
        raise ValueError(f"cannot read {what} {path}: {err.strerror or err}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{what} {path} is not a regular file (it is {_kind(info.st_mode)})")
        if limit is not None and info.st_size > limit:
            raise ValueError(f"{what} {path} is {info.st_size} bytes, more than the {limit} "
                             f"it may hold")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _kind(mode):
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a file")


def read_json(path, what="file"):
    """Reads a JSON file (a bounded, regular file), turning a parse error into one that names it.

    Args:
        path: the file to read.
        what: a short description for error messages (``"labels file"``).

    Returns:
        The decoded JSON value.

    Example:
        >>> config = read_json("run/config.json", "run config")
        >>> config["image_size"]
        32
        >>> read_json("run/missing.json", "run config")
        Traceback (most recent call last):
        ...
        FileNotFoundError: run config not found: run/missing.json
    """
    data = read_regular(path, what)
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{what} {path} is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} {path} is not valid JSON: {err}") from None
    except RecursionError:  # hostile nesting ([[[[…) exhausts the decoder's stack
        raise ValueError(f"{what} {path} is nested too deeply to be read") from None


def read_index(folder, name, index_format, made_by):
    """Reads a folder's JSON index and checks that it is ours.

    Args:
        folder: the folder (TFRecords, cached features …).
        name: the index file name inside it.
        index_format: the expected ``format`` field.
        made_by: the function that writes such folders (for the message).

    Returns:
        The index dict.

    Example:
        >>> read_index("data/celeba_tfr", "tfrecords.json", "multilabel_keras.tfrecords",
        ...            "write_tfrecords")["num_records"]
        30
    """
    folder = os.fspath(folder)
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{folder} has no {name}; create it with {made_by}")
    index = read_json(path, index_format)
    if not isinstance(index, dict) or index.get("format") != index_format:
        raise ValueError(f"{path} is not a {index_format} index (made by {made_by})")
    return index
