"""Walking a data folder: which files are images, and which are refused or left out, by name."""

import os
import warnings

from multilabel_keras.hints import Setting, hinted
from multilabel_keras.runs.folder import RunDir

# The one list of what an image file is, for every reader and command: the
# extensions of the formats the decoder reads (JPEG, PNG, BMP, GIF), matched
# without regard to case.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jfif", ".pjpeg", ".pjp", ".png", ".bmp", ".dib",
                    ".gif")
# Formats people keep beside their JPEGs that the image decoder cannot read:
# left out, but never without a word.
UNREAD_EXTENSIONS = (".webp", ".tif", ".tiff", ".heic", ".heif", ".avif", ".jp2", ".jxl",
                     ".ppm", ".pgm", ".pbm", ".ico", ".svg", ".psd", ".dng", ".cr2", ".nef")
SHOWN = 10  # file names quoted in one warning


def label_folders(root, allow_outside_root=False):
    """The label folders of a ``<label>/image.jpg`` data folder and the images in each.

    Links are followed only inside ``root`` (unless ``allow_outside_root``),
    and never in a loop or twice to the same folder, which would count
    every image again under other labels. A folder that cannot be read is
    an error, not a smaller data set. Files in a format the decoder does
    not read, images lying in ``root`` itself and names that are not
    valid UTF-8 are left out with one warning per kind that counts them
    and names the first few.

    Args:
        root: the data folder.
        allow_outside_root: follow links that lead outside ``root``.

    Returns:
        List of ``(folder name, sorted image paths)``, sorted by name;
        hidden folders (``.git``, ``.ipynb_checkpoints``) are not read.

    Example:
        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> os.makedirs(os.path.join(root, "red_dress"))
        >>> open(os.path.join(root, "red_dress", "a.jpg"), "wb").close()
        >>> [(name, [os.path.basename(p) for p in paths]) for name, paths in label_folders(root)]
        [('red_dress', ['a.jpg'])]
    """
    root = os.fspath(root)
    walker = _Walker(root, allow_outside_root)
    folders = []
    for kind, path in walker.scan(root, ()):
        if kind == "image":
            walker.loose.append(path)
            continue
        images = sorted(walker.images(path, (walker.base,)))
        if not images:
            walker.empty.append(path)
        folders.append((os.path.basename(path), images))
    walker.report()
    return folders


def images_under(folder):
    """Every image file under a folder, as the data readers see them.

    The same rules as ``label_folders``: hidden folders are not read,
    links are followed but never in a loop, and files in a format the
    decoder does not read or with names that are not valid UTF-8 are left
    out with a warning naming them.

    Args:
        folder: the folder.

    Returns:
        Sorted image paths (each folder's entries by name, depth first).

    Example:
        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> os.makedirs(os.path.join(root, "more"))
        >>> for name in ("b.png", "more/a.jpg", "notes.txt"):
        ...     open(os.path.join(root, name), "wb").close()
        >>> [os.path.relpath(p, root) for p in images_under(root)]
        ['b.png', 'more/a.jpg']
    """
    folder = os.fspath(folder)
    walker = _Walker(folder, allow_outside_root=True)
    found = list(walker.images(folder, ()))
    walker.report()
    return found


_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")


def _looks_like_image(entry, path):
    """Whether a file without an image extension starts like a JPEG, PNG or GIF.

    Only files the walker would otherwise pass over in silence are read,
    and only their first bytes; a file that cannot be read is not one.
    """
    try:
        if not entry.is_file() or entry.name.startswith("."):
            return False
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return head.startswith(_SIGNATURES)


def _hidden_folder(entry):
    return entry.name.startswith(".") and entry.is_dir()


class _Walker:
    def __init__(self, root, allow_outside_root):
        self.root, self.base = root, os.path.realpath(root)
        self.allow_outside_root = allow_outside_root
        self.visited = {}  # real path -> the path it was first reached by
        self.unread, self.loose, self.bad_names, self.empty = [], [], [], []
        self.ours, self.disguised = [], []

    def entries(self, folder):
        try:
            with os.scandir(folder) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as err:
            raise type(err)(err.errno, f"cannot read the data folder: {err.strerror}", folder) from None

    def usable_name(self, path, name):
        try:
            name.encode("utf-8")
            return True
        except UnicodeEncodeError:  # undecodable bytes arrive as lone surrogates
            self.bad_names.append(path)
            return False

    def is_folder(self, entry, path, ancestors):
        if not entry.is_dir():  # follows links; a link to a file is that file
            return False
        real = os.path.realpath(path)
        if entry.is_symlink():
            if real in ancestors:
                raise ValueError(f"{path} is a link back to {real} (a loop): remove the link")
            inside = os.path.commonpath([self.base, real]) == self.base
            if not inside and not self.allow_outside_root:
                raise hinted(ValueError, f"{path} is a link to {real}, outside the data folder "
                             f"{self.root}; pass ", Setting("allow_outside_root", True),
                             " to follow it")
        if real in self.visited:
            raise ValueError(f"{path} and {self.visited[real]} are the same folder (a link): "
                             f"its images would be counted twice; remove one")
        self.visited[real] = path
        return True

    def scan(self, folder, ancestors):
        """Yields ``("folder", path)`` and ``("image", path)``; notes what it leaves out."""
        ancestors = ancestors + (os.path.realpath(folder),)
        for entry in self.entries(folder):
            path = os.path.join(folder, entry.name)
            if not self.usable_name(path, entry.name) or _hidden_folder(entry):
                continue
            if self.is_folder(entry, path, ancestors):
                if RunDir(path).written_here():
                    self.ours.append(path)
                    continue
                yield "folder", path
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
                yield "image", path
            elif entry.name.lower().endswith(UNREAD_EXTENSIONS):
                self.unread.append(path)
            elif _looks_like_image(entry, path):
                self.disguised.append(path)

    def images(self, folder, ancestors):
        for kind, path in self.scan(folder, ancestors):
            if kind == "folder":
                yield from self.images(path, ancestors + (os.path.realpath(folder),))
            else:
                yield path

    def report(self):
        kinds = (
            (self.unread, "in a format the image decoder does not read (convert them to PNG or "
                          "JPEG)"),
            (self.loose, f"lying in {self.root} itself, not in a label folder"),
            (self.bad_names, "whose names are not valid UTF-8 (rename them)"),
            (self.disguised, "holding JPEG, PNG or GIF data under another extension (rename "
                             f"them to one of {', '.join(IMAGE_EXTENSIONS)})"),
            (self.empty, "label folder(s) holding no image: their labels get no training image"),
            (self.ours, "folder(s) written by multilabel_keras (a run or cached features) left "
                        "out of the data: keep runs outside the data folder"),
        )
        for paths, why in kinds:
            if paths:
                # Undecodable bytes appear as \udcXX: a lone surrogate cannot be printed.
                shown = ", ".join(p.encode("utf-8", "backslashreplace").decode()
                                  for p in paths[:SHOWN])
                more = f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else ""
                noun = "" if paths is self.empty or paths is self.ours else "file(s) left out, "
                warnings.warn(f"{len(paths)} {noun}{why}: {shown}{more}", UserWarning,
                              stacklevel=4)
