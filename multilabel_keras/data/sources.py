"""Readers that turn the layouts people have on disk into ``Samples``."""

import csv
import dataclasses
import difflib
import os
import warnings

from multilabel_keras.data.label_names import normal_label_sets, warn_unused_labels
from multilabel_keras.data.walk import IMAGE_EXTENSIONS, label_folders
from multilabel_keras.hints import Setting, hinted

__all__ = ["IMAGE_EXTENSIONS", "Samples", "from_csv", "from_folders", "load_samples",
           "warn_suspicious_labels"]


@dataclasses.dataclass
class Samples:
    """Image paths and their label sets, index-aligned.

    Label names follow one rule (``label_names.label_name``): Unicode NFC,
    no surrounding white space; spellings that become one name are warned
    about.

    Attributes:
        paths: image file paths.
        labels: one ``set`` of label names per path (may be empty).
        unknown: optional, one ``set`` per path of labels whose value is
            unknown (partial labels: neither present nor absent); losses
            and metrics ignore them.
        orientation: optional EXIF orientation (1-8) per path, filled in
            by ``check_images``; the pipeline turns images upright with it.

    Example:
        >>> s = Samples(["a.jpg", "b.jpg"], [{"red", "dress"}, {"blue"}])
        >>> len(s), s.subset([1]).paths
        (2, ['b.jpg'])
    """

    paths: list
    labels: list
    unknown: list = None
    orientation: list = None

    def __post_init__(self):
        self.paths = [os.fspath(p) for p in self.paths]
        if isinstance(self.labels, str):
            raise ValueError("Samples: labels must hold one collection of names per path")
        self.labels = list(self.labels)
        if any(isinstance(x, str) for x in self.labels):
            raise ValueError("Samples: labels must hold one collection of names per path, "
                             "not strings ({'red', 'dress'}, not 'red dress')")
        # Readers have applied the rule and warned, naming their file; this catches the rest.
        self.labels = normal_label_sets(self.labels, look_alikes=False)
        if len(self.paths) != len(self.labels):
            raise ValueError(
                f"Samples: {len(self.paths)} paths but {len(self.labels)} label sets"
            )
        if self.unknown is not None:
            self.unknown = normal_label_sets(self.unknown, "unknown labels", look_alikes=False)
            if len(self.unknown) != len(self.paths):
                raise ValueError(
                    f"Samples: {len(self.paths)} paths but {len(self.unknown)} unknown-label sets"
                )
            both = next((i for i, (a, b) in enumerate(zip(self.labels, self.unknown)) if a & b), None)
            if both is not None:
                raise ValueError(
                    f"Samples: {self.paths[both]} has {sorted(self.labels[both] & self.unknown[both])} "
                    f"both as present and unknown"
                )
            if not any(self.unknown):
                self.unknown = None
        if self.orientation is not None and len(self.orientation) != len(self.paths):
            raise ValueError(
                f"Samples: {len(self.paths)} paths but {len(self.orientation)} orientations"
            )

    def __len__(self):
        return len(self.paths)

    def to_json(self):
        """The samples as a JSON-ready dict (sets become sorted lists).

        Returns:
            Dict with ``paths``, ``labels``, ``unknown`` and ``orientation``.

        Example:
            >>> Samples(["a.jpg"], [{"red", "dress"}]).to_json()["labels"]
            [['dress', 'red']]
        """
        return {
            "paths": list(self.paths),
            "labels": [sorted(s) for s in self.labels],
            "unknown": None if self.unknown is None else [sorted(s) for s in self.unknown],
            "orientation": None if self.orientation is None else [int(o) for o in self.orientation],
        }

    @classmethod
    def from_json(cls, data, where):
        """The inverse of ``to_json``, checking the shape of what it reads.

        Args:
            data: a dict from ``to_json`` (extra keys are ignored).
            where: the file it came from, for error messages.

        Returns:
            ``Samples``.
        """
        if not isinstance(data, dict) or not isinstance(data.get("paths"), list) or not isinstance(
                data.get("labels"), list):
            raise ValueError(f"{where}: expected {{'paths': [...], 'labels': [...]}}")
        return cls(data["paths"], data["labels"], data.get("unknown"), data.get("orientation"))

    def subset(self, indices):
        """Returns the samples at ``indices`` (any integer sequence).

        Args:
            indices: positions to keep, in the order given.

        Returns:
            A new ``Samples``.
        """
        unknown = None if self.unknown is None else [self.unknown[i] for i in indices]
        orientation = None if self.orientation is None else [self.orientation[i] for i in indices]
        return Samples([self.paths[i] for i in indices], [self.labels[i] for i in indices], unknown,
                       orientation)


def from_folders(root, sep="_", allow_outside_root=False):
    """Reads the ``<label><sep><label>/image.jpg`` folder layout.

    Each sub-folder of ``root`` names the labels of the images inside it
    (at any depth): ``blue_dress/`` gives ``{"blue", "dress"}``.

    Args:
        root: the data set folder.
        sep: separator between labels in a folder name; ``None`` makes the
            whole folder name a single label.
        allow_outside_root: follow linked folders that lead outside
            ``root`` (refused by default; see ``label_folders``).

    Returns:
        ``Samples`` sorted by path, so runs are reproducible. A folder that
        cannot be read, a link loop or a link out of ``root`` is an error;
        files left out (``.webp``, ``.tiff`` …, images outside any label
        folder) are counted and named in a warning.

    Example:
        >>> samples = from_folders("data/fashion")
        >>> sorted(samples.labels[0])
        ['black', 'jeans']
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise NotADirectoryError(f"data folder not found: {root}")
    paths, labels = [], []
    for name, images in label_folders(root, allow_outside_root):
        names = {part for part in (name.split(sep) if sep else [name]) if part}
        paths.extend(images)
        labels.extend(set(names) for _ in images)
    if not paths:
        raise ValueError(
            f"no images found under {root}: expected sub-folders such as "
            f"'red{sep or ''}dress/' holding {', '.join(IMAGE_EXTENSIONS)} files"
        )
    samples = Samples(paths, normal_label_sets(labels, root))
    warn_suspicious_labels(samples, root)
    return samples


def from_csv(path, path_column="filename", labels_column="labels", label_sep=" ", root=None,
             allow_outside_root=False):
    """Reads a CSV manifest with one row per image.

    The default columns are ``filename,labels`` with labels separated by
    spaces (``shirt.jpg,"red shirt"``). Relative file names are resolved
    against ``root`` (default: the CSV file's folder). An empty labels cell
    means an image with no positive label.

    A file listed twice with the same labels is kept once (with a
    warning); listed twice with different labels, it is an error naming
    both lines. Labels that look like misspellings of a frequent label
    (``drss`` once beside ``dress`` 120 times) are warned about.

    Without a ``labels_column``, every other column is a label
    (``filename,red,dress,…``) holding ``1`` (present), ``0`` (absent) or
    ``-1`` / ``?`` / an empty cell (unknown: partial labels).

    Args:
        path: the CSV file (UTF-8, a byte-order mark is accepted).
        path_column: header of the column holding file names.
        labels_column: header of the column holding labels.
        label_sep: separator between labels inside the labels cell;
            ``None`` splits on any run of white space.
        root: folder that relative file names are relative to.
        allow_outside_root: accept absolute paths and paths that leave
            ``root`` (``../../etc/passwd``); refused by default, so a
            manifest from elsewhere cannot point the library at any file.

    Returns:
        ``Samples`` in file order.

    Example:
        >>> samples = from_csv("data/train.csv")
        >>> len(samples), sorted(samples.labels[0])
        (30, ['black', 'jeans'])
    """
    path = os.fspath(path)
    root = os.path.dirname(os.path.abspath(path)) if root is None else os.fspath(root)
    paths, labels = [], []
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(_checked_lines(f, path))
        header = next(_csv_rows(reader, path, lambda: [reader.fieldnames])) or []
        wide = labels_column not in header and len(header) > 1
        for column in (path_column,) if wide else (path_column, labels_column):
            if column not in header:
                raise ValueError(
                    f"{path}: missing column {column!r} (header is {header})"
                )
        columns = [c for c in header if c != path_column]
        unknown, lines, seen, duplicates = [], [], {}, []
        for row in _csv_rows(reader, path, lambda: reader):
            line = reader.line_num
            if None in row or None in row.values():
                got = len(header) + len(row.get(None, ())) - sum(v is None for v in row.values())
                hint = ("quote a cell holding a comma, or separate its labels with spaces "
                        "(\"red square\")"
                        if got > len(header) else "give every column a cell, even an empty one")
                raise ValueError(f"{path}, line {line}: {got} fields, the header has "
                                 f"{len(header)}; {hint}")
            name = (row[path_column] or "").strip()
            if not name:
                raise ValueError(f"{path}, line {line}: empty {path_column!r}")
            image = _inside(root, name, allow_outside_root, f"{path}, line {line}")
            if not os.path.isfile(image):
                raise FileNotFoundError(f"{path}, line {line}: image not found: {image}")
            if wide:
                present, missing = _wide_row(row, columns, f"{path}, line {line}")
            else:
                cell = row[labels_column] or ""
                sep = None if label_sep in (None, " ") else label_sep
                present = {label.strip() for label in cell.split(sep) if label.strip()}
                missing = set()
            if image in seen:
                first = seen[image]
                if labels[first] != present or unknown[first] != missing:
                    raise ValueError(
                        f"{path}: {name} is listed twice with different labels "
                        f"(lines {lines[first]} and {line})"
                    )
                duplicates.append(name)
                continue
            seen[image] = len(paths)
            lines.append(line)
            paths.append(image)
            labels.append(present)
            unknown.append(missing)
    if not paths:
        raise ValueError(f"{path}: the manifest lists no images")
    if duplicates:
        warnings.warn(f"{path}: {len(duplicates)} duplicate entries kept once: "
                      f"{', '.join(duplicates[:10])}", UserWarning, stacklevel=2)
    labels = normal_label_sets(labels, path)
    if wide:
        warn_unused_labels(columns, labels, path)
    elif label_sep == " ":
        _warn_commas(labels, path)
    samples = Samples(paths, labels, unknown if wide else None)
    warn_suspicious_labels(samples, path)
    return samples


def _warn_commas(label_sets, path):
    """A label holding a comma usually means comma-separated labels read as one."""
    odd = sorted({name for names in label_sets for name in names if "," in name or ";" in name})
    if odd:
        shown = ", ".join(repr(n) for n in odd[:10])
        more = f" and {len(odd) - 10} more" if len(odd) > 10 else ""
        warnings.warn(hinted(UserWarning, f"{path}: {len(odd)} label(s) hold a comma or a semicolon: "
                             f"{shown}{more}; labels in a cell are separated by spaces, so pass ",
                             Setting("label_sep", ","), " if the commas separate labels"),
                      stacklevel=3)


def _csv_rows(reader, path, rows):
    last = reader.line_num
    try:
        for row in rows():
            yield row
            last = reader.line_num
    except csv.Error as err:  # an over-long field, a stray quote, a NUL byte …
        raise ValueError(f"{path}, line {max(reader.line_num, last + 1)}: {err}") from None


def _checked_lines(f, path):
    """The CSV file's lines; text that is not UTF-8 is an error naming its line."""
    try:
        yield from f
    except UnicodeDecodeError as err:
        with open(path, "rb") as raw:
            number = next((n for n, line in enumerate(raw, start=1) if not _utf8(line)), "?")
        raise ValueError(f"{path}, line {number}: not UTF-8 text ({err.reason}); save it "
                         f"as UTF-8") from None


def _utf8(line):
    try:
        line.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _inside(root, name, allow_outside_root, where):
    image = os.path.normpath(name if os.path.isabs(name) else os.path.join(root, name))
    if allow_outside_root:
        return image
    if os.path.isabs(name):
        raise hinted(ValueError, f"{where}: absolute path {name!r} refused; pass ",
                     Setting("allow_outside_root", True), f" to accept paths outside {root}")
    base = os.path.realpath(root)
    if os.path.commonpath([base, os.path.realpath(image)]) != base:
        raise hinted(ValueError, f"{where}: path {name!r} leaves the data root {root}; pass ",
                     Setting("allow_outside_root", True), " to accept it")
    return image


def warn_suspicious_labels(samples, source, max_count=2, min_ratio=10, similarity=0.8):
    """Warns about rare labels that look like misspellings of frequent ones.

    Args:
        samples: ``Samples``.
        source: where they came from (for the message).
        max_count: a label on at most this many images is a suspect.
        min_ratio: the look-alike must be this many times more frequent.
        similarity: ``difflib`` ratio from which two names look alike.

    Returns:
        The ``(suspect, look_alike)`` pairs warned about.

    Example:
        >>> samples = Samples(["a.jpg"] * 13, [{"dress"}] * 12 + [{"drss"}])
        >>> warn_suspicious_labels(samples, "labels.csv")  # also warns on stderr
        [('drss', 'dress')]
    """
    counts = {}
    for labels in samples.labels:
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
    pairs = []
    for label, count in sorted(counts.items()):
        if count > max_count:
            continue
        frequent = [o for o, c in counts.items() if c >= min_ratio * count and o != label]
        close = difflib.get_close_matches(label, frequent, n=1, cutoff=similarity)
        if close:
            pairs.append((label, close[0]))
            warnings.warn(
                f"{source}: label {label!r} ({count} image(s)) looks like a misspelling of "
                f"{close[0]!r} ({counts[close[0]]} images)", UserWarning, stacklevel=3,
            )
    return pairs


def _wide_row(row, columns, where):
    present, missing = set(), set()
    for column in columns:
        value = (row.get(column) or "").strip()
        if value in ("1", "1.0"):
            present.add(column.strip())
        elif value in ("", "?", "-1", "-1.0"):
            missing.add(column.strip())
        elif value not in ("0", "0.0"):
            raise ValueError(f"{where}: column {column!r} must be 1, 0, -1, ? or empty, got {value!r}")
    return present, missing


def load_samples(path, **kwargs):
    """Reads a data set from a folder layout or a CSV manifest.

    Args:
        path: a folder (read with ``from_folders``) or a ``.csv`` file (read
            with ``from_csv``).
        **kwargs: passed to the reader.

    Returns:
        ``Samples``.

    Example:
        >>> len(load_samples("data/fashion")), len(load_samples("data/train.csv"))
        (30, 30)
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        return from_folders(path, **kwargs)
    if path.lower().endswith(".csv"):
        return from_csv(path, **kwargs)
    if not os.path.exists(path):
        raise FileNotFoundError(f"data not found: {path}")
    raise ValueError(f"cannot read {path}: expected a folder or a .csv manifest")
