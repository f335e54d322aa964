"""What a label name is: one rule for every reader, the vocabulary and every command.

A label is the text a person would write down. Two spellings of it that a
reader cannot tell apart on screen must not become two labels, so every
name is put in Unicode NFC form (``café`` typed on macOS arrives as ``e`` +
a combining accent, NFD) and loses the white space around it (``red _circle/``
gives ``red``). Nothing else is changed: ``Red`` and ``red`` stay two labels,
but a warning names them, since they are rarely meant to differ.
"""

import unicodedata
import warnings

SHOWN = 10  # pairs quoted in one warning


def label_name(raw):
    """The label a raw name stands for: Unicode NFC, without surrounding white space.

    Args:
        raw: a label name as read from a folder, a CSV cell, a file or code.

    Returns:
        The name every reader and the vocabulary use (may be empty: the
        caller decides whether an empty name is an error or no label).

    Example:
        >>> label_name("  red ")
        'red'
        >>> label_name("cafe\\u0301") == label_name("caf\\u00e9") == "caf\\u00e9"
        True
    """
    if not isinstance(raw, str):
        raise ValueError(f"a label name must be a string, got {raw!r}")
    return unicodedata.normalize("NFC", raw).strip()


def normal_label_sets(label_sets, source="labels", look_alikes=True):
    """Every set's names by ``label_name``, empty names dropped, merges and look-alikes warned.

    Args:
        label_sets: iterable of iterables of raw label names.
        source: where they came from, for the warnings (a file or folder).
        look_alikes: also warn about names differing only in case or form
            (``warn_look_alikes``); a reader does, ``Samples`` does not
            repeat it.

    Returns:
        A list of sets of label names.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     sets = normal_label_sets([{"red ", "dress"}, {"red"}], "data")
        >>> sets == [{"red", "dress"}, {"red"}]
        True
        >>> print(caught[0].message)
        data: 2 spellings read as one label: 'red' and 'red ' are 'red' (white space around a label and Unicode normal forms are not part of its name)
    """
    cache, spellings, result = {}, {}, []
    for labels in label_sets:
        names = set()
        for raw in labels:
            name = cache.get(raw)
            if name is None:
                name = cache[raw] = label_name(raw)
                spellings.setdefault(name, []).append(raw)
            if name:
                names.add(name)
        result.append(names)
    merged = [(name, raws) for name, raws in sorted(spellings.items()) if name and len(raws) > 1]
    if merged:
        shown = "; ".join(f"{' and '.join(_shown(r) for r in sorted(raws))} are {name!r}"
                          for name, raws in merged[:SHOWN])
        more = f" and {len(merged) - SHOWN} more" if len(merged) > SHOWN else ""
        count = sum(len(raws) for _, raws in merged)
        warnings.warn(f"{source}: {count} spellings read as one label: {shown}{more} (white space "
                      f"around a label and Unicode normal forms are not part of its name)",
                      UserWarning, stacklevel=3)
    if look_alikes:
        warn_look_alikes([name for name in spellings if name], source)
    return result


def _shown(raw):
    # Two normal forms print alike: the one that is not NFC is shown with its escapes.
    return ascii(raw) if unicodedata.normalize("NFC", raw) != raw else repr(raw)


def warn_look_alikes(names, source):
    """Warns about label names that differ only in letter case or compatibility form.

    ``Red`` / ``red`` or ``ﬁsh`` / ``fish`` stay separate labels (a person
    may mean two things), but the user should know.

    Args:
        names: the label names.
        source: where they came from, for the warning.

    Returns:
        The groups warned about, each a sorted list of names.

    Example:
        >>> warn_look_alikes(["Red", "red", "blue"], "labels.csv")  # also warns on stderr
        [['Red', 'red']]
    """
    groups = {}
    for name in set(names):
        groups.setdefault(unicodedata.normalize("NFKC", name).casefold(), []).append(name)
    alike = sorted(sorted(group) for group in groups.values() if len(group) > 1)
    if alike:
        shown = "; ".join(" / ".join(repr(n) for n in group) for group in alike[:SHOWN])
        more = f" and {len(alike) - SHOWN} more" if len(alike) > SHOWN else ""
        warnings.warn(f"{source}: label names that differ only in case or form stay separate "
                      f"labels: {shown}{more}; rename them if they mean the same", UserWarning,
                      stacklevel=3)
    return alike


def warn_unused_labels(declared, label_sets, source):
    """Warns about labels a file declares but no image has, naming them.

    A wide CSV column, a CelebA attribute or a MIML class with no positive
    image cannot be learned and is left out of the vocabulary; this says so
    instead of losing it without a word.

    Args:
        declared: the label names the source lists.
        label_sets: the images' label sets.
        source: the file, for the warning.

    Returns:
        The sorted names left out.

    Example:
        >>> warn_unused_labels(["red", "blue"], [{"red"}], "wide.csv")  # also warns on stderr
        ['blue']
    """
    used = set().union(*label_sets) if label_sets else set()
    unused = sorted({label_name(n) for n in declared} - used - {""})
    if unused:
        shown = ", ".join(repr(n) for n in unused[:SHOWN])
        more = f" and {len(unused) - SHOWN} more" if len(unused) > SHOWN else ""
        warnings.warn(f"{source}: {len(unused)} label(s) with no positive image are left out of "
                      f"the labels: {shown}{more}", UserWarning, stacklevel=3)
    return unused
