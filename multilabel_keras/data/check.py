"""Image files checked before TensorFlow sees them: format, size, truncation, EXIF orientation."""

import concurrent.futures
import dataclasses
import os
import re
import stat
import struct
import sys

from multilabel_keras.hints import Setting, hinted
from multilabel_keras.progress import Progress

DEFAULT_MAX_PIXELS = 80_000_000  # ~ 9000 x 9000; a 40000 x 40000 header would need 4.8 GB
MAX_FILE_BYTES = 256 << 20  # no photo is this big; a link to /dev/zero or a huge blob is
_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class BadImageError(ValueError):
    """An image file that cannot be used; the message names the file and why."""


@dataclasses.dataclass
class ImageInfo:
    """What the header of an image file says.

    Attributes:
        format: ``"jpeg"``, ``"png"``, ``"gif"`` or ``"bmp"`` (from the bytes,
            not the file name).
        width: pixels.
        height: pixels.
        orientation: EXIF orientation 1-8 (1 = as stored).
    """

    format: str
    width: int
    height: int
    orientation: int = 1


def probe_image(path, max_pixels=DEFAULT_MAX_PIXELS):
    """Reads an image file's header (and end) without decoding the pixels.

    Refuses, with ``BadImageError``: anything that is not a regular file
    (a FIFO, a device, a socket: refused by type without opening it); a
    file over ``MAX_FILE_BYTES``; an empty file; content that is no
    JPEG/PNG/GIF/BMP whatever its extension; a JPEG without its end marker
    or a PNG without its ``IEND`` chunk (truncated); a header claiming more
    than ``max_pixels`` pixels (refused before any decoding allocates
    them).

    Args:
        path: the image file.
        max_pixels: largest ``width * height`` accepted (``None``: no cap).

    Returns:
        An ``ImageInfo``.

    Example:
        >>> probe_image("photo.jpg").orientation  # no EXIF tag: upright
        1
    """
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise BadImageError(f"{path}: file not found") from None
    except OSError as err:
        raise BadImageError(f"{path}: cannot read ({err.strerror or err})") from None
    if not stat.S_ISREG(mode):
        # Opening a FIFO blocks forever and a device never ends: refuse by type, unopened.
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise BadImageError(f"{path}: {kind}, not an image file; left unopened")
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise BadImageError(f"{path}: {size / 2**20:,.0f} MiB, over the {MAX_FILE_BYTES >> 20} "
                                f"MiB cap for one image file")
        with open(path, "rb") as f:
            head = f.read(1 << 20)
            f.seek(max(0, size - 1024))
            tail = f.read()
    except FileNotFoundError:
        raise BadImageError(f"{path}: file not found") from None
    except OSError as err:
        raise BadImageError(f"{path}: cannot read ({err.strerror or err})") from None
    if size == 0:
        raise BadImageError(f"{path}: empty file (0 bytes)")
    try:
        info = _parse(head, tail)
    except (struct.error, IndexError):
        info = None
    if info is None:
        raise BadImageError(f"{path}: not a JPEG, PNG, GIF or BMP image (unrecognised or damaged header)")
    if isinstance(info, str):
        raise BadImageError(f"{path}: {info}")
    if info.width < 1 or info.height < 1:
        raise BadImageError(f"{path}: header claims {info.width}x{info.height} pixels")
    if max_pixels is not None and info.width * info.height > max_pixels:
        raise BadImageError(
            f"{path}: {info.width}x{info.height} pixels is over the cap of {max_pixels:,} "
            f"(max_pixels=); refused before decoding"
        )
    return info


def _parse(head, tail):
    if head[:3] == b"\xff\xd8\xff":
        if b"\xff\xd9" not in tail:
            return "truncated JPEG (no end-of-image marker)"
        return _parse_jpeg(head)
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        if b"IEND" not in tail:
            return "truncated PNG (no IEND chunk)"
        width, height = struct.unpack(">II", head[16:24])
        return ImageInfo("png", width, height)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        width, height = struct.unpack("<HH", head[6:10])
        return ImageInfo("gif", width, height)
    if head[:2] == b"BM" and len(head) >= 26:
        width, height = struct.unpack("<ii", head[18:26])
        return ImageInfo("bmp", width, abs(height))
    return None


def _parse_jpeg(data):
    i, orientation = 2, 1
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return "damaged JPEG (bad segment marker)"
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if 0xD0 <= marker <= 0xD9 or marker == 0x01:
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker == 0xE1 and data[i + 4 : i + 10] == b"Exif\x00\x00":
            orientation = _exif_orientation(data[i + 10 : i + 2 + length])
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return ImageInfo("jpeg", width, height, orientation)
        if marker == 0xDA:
            break
        i += 2 + length
    return "damaged JPEG (no frame header)"


def _exif_orientation(tiff):
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return 1
    (offset,) = struct.unpack(order + "I", tiff[4:8])
    (count,) = struct.unpack(order + "H", tiff[offset : offset + 2])
    for k in range(count):
        entry = tiff[offset + 2 + 12 * k : offset + 14 + 12 * k]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag == 0x0112 and kind == 3:
            (value,) = struct.unpack(order + "H", entry[8:10])
            return value if 1 <= value <= 8 else 1
    return 1


@dataclasses.dataclass
class CheckReport:
    """What ``check_images`` found.

    Attributes:
        total: images checked.
        skipped: ``(path, reason)`` for every image left out.
        orientations: EXIF orientation per kept image.
    """

    total: int
    skipped: list
    orientations: list

    def summary(self):
        """One line, then one line per skipped file with its reason."""
        lines = [f"{len(self.skipped)} of {self.total} images skipped"]
        lines += [f"  skipped {path}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)


def decode_check(path):
    """Decodes an image file completely, as training will, and names it if that fails.

    A file whose header is sound but whose body is damaged passes
    ``probe_image`` and would stop TensorFlow mid-run with an error naming
    no file; decoding it once beforehand finds it.

    Args:
        path: an image file that passed ``probe_image``.

    Returns:
        None.

    Raises:
        BadImageError: the pixels cannot be decoded.

    Example:
        >>> decode_check("photo.jpg")
        >>> open("broken.jpg", "wb").write(open("photo.jpg", "rb").read()[:200])
        200
        >>> decode_check("broken.jpg")
        Traceback (most recent call last):
        ...
        multilabel_keras.data.check.BadImageError: ...
    """
    import tensorflow as tf

    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.OpError, OSError) as err:
        reason = str(getattr(err, "message", err)).strip().splitlines()[0]
        reason = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:\w*\]\s*$", "", reason)[:160]
        raise BadImageError(f"{path}: damaged image data ({reason})") from None


def check_images(samples, on_bad_image="skip", max_bad_fraction=0.2, max_pixels=DEFAULT_MAX_PIXELS,
                 log=None, decode=True):
    """Checks every image of a data set before training or evaluation.

    Args:
        samples: ``Samples``.
        on_bad_image: ``"skip"`` (leave bad images out, print a summary
            naming each and why) or ``"error"`` (raise on the first).
        max_bad_fraction: with ``"skip"``, raise when more than this share
            of the images is bad (something is wrong with the data set).
        max_pixels: the pixel cap (see ``probe_image``).
        log: where the summary goes (default: standard error).
        decode: also decode every image in full (``decode_check``), so a
            damaged body is found now rather than mid-run.

    Returns:
        ``(kept_samples, report)``; ``kept_samples.orientation`` holds the
        EXIF orientation of each kept image.

    Example:
        >>> from multilabel_keras import from_csv
        >>> samples, report = check_images(from_csv("labels.csv"))
        >>> len(samples), report.skipped
        (30, [])
    """
    if on_bad_image not in ("skip", "error"):
        raise ValueError(f"on_bad_image must be 'skip' or 'error', got {on_bad_image!r}")
    kept, skipped, orientations = [], [], []
    results = _check_all(samples.paths, max_pixels, decode)
    for i, path in enumerate(samples.paths):
        info = results[path]
        if isinstance(info, BadImageError):
            if on_bad_image == "error":
                raise info
            skipped.append((path, str(info).split(": ", 1)[-1]))
            continue
        kept.append(i)
        orientations.append(info.orientation)
    report = CheckReport(len(samples), skipped, orientations)
    if skipped:
        print(report.summary(), file=log or sys.stderr)
        if len(skipped) > max_bad_fraction * len(samples):
            raise hinted(BadImageError, f"{len(skipped)} of {len(samples)} images are bad, more than ",
                         Setting("max_bad_fraction", float(f"{max_bad_fraction:g}")),
                         f"; first: {skipped[0][0]}: {skipped[0][1]}")
    result = samples.subset(kept)
    result.orientation = orientations
    return result, report


def _check_all(paths, max_pixels, decode):
    """Probes (and decodes) each distinct file once, in threads: ``{path: ImageInfo or BadImageError}``."""

    def one(path):
        try:
            info = probe_image(path, max_pixels)  # first: never open a FIFO or decode a huge file
            if decode:
                decode_check(path)
            return info
        except BadImageError as err:
            return err

    unique = list(dict.fromkeys(paths))
    bar = Progress(len(unique), "checking images")
    results = {}
    if not decode:  # header reads are too quick to gain from threads
        for path in unique:
            results[path] = one(path)
            bar.update()
    else:
        with concurrent.futures.ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as pool:
            for path, result in zip(unique, pool.map(one, unique)):
                results[path] = result
                bar.update()
    bar.close()
    return results
