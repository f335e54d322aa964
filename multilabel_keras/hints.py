"""Error messages that name a setting: Python spells it as a keyword, the command line as a flag.

A message that says which setting would allow what was refused keeps the
setting as data (``Setting(name, value)``), not as text, so each interface
spells it its own way: ``overwrite=True`` in Python, ``--overwrite`` on the
command line (from ``cli_flags.FLAGS``), with no rewriting of strings.
"""

import collections

Setting = collections.namedtuple("Setting", "name value")


def python_spelling(name, value):
    """``overwrite=True``: how a Python caller passes the setting."""
    return f"{name}={value!r}"


def hinted(error_type, *parts):
    """An ``error_type`` whose message is ``parts`` (text and ``Setting`` items).

    Args:
        error_type: the exception class (``ValueError``, ``FileExistsError`` …).
        *parts: strings and ``Setting`` items, joined in order.

    Returns:
        The exception, spelled for Python; ``spelled(err, spell)`` spells it
        another way.

    Example:
        >>> err = hinted(FileExistsError, "runs/x is not empty; pass ", Setting("overwrite", True))
        >>> str(err)
        'runs/x is not empty; pass overwrite=True'
        >>> spelled(err, lambda name, value: "--" + name)
        'runs/x is not empty; pass --overwrite'
    """
    err = error_type(_join(parts, python_spelling))
    err.setting_parts = tuple(parts)
    return err


def spelled(err, spell):
    """An error's message with each named setting spelled by ``spell(name, value)``."""
    parts = getattr(err, "setting_parts", None)
    return str(err) if parts is None else _join(parts, spell)


def _join(parts, spell):
    return "".join(spell(*part) if isinstance(part, Setting) else str(part) for part in parts)
