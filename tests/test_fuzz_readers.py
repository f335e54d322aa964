"""Fuzzing the manifest readers: what was written is what is read back, or a clear error when it must be."""

import csv
import io
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multilabel_keras.data.formats import from_celeba, from_label_files
from multilabel_keras.data.sources import from_csv

# Duplicate entries and look-alike labels are warned about by design; here only errors matter.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

FILES = ["a.jpg", "b.jpg", "c.jpg"]
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
label = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                min_size=0, max_size=8)


def _images(root):
    for name in FILES:
        (root / name).write_bytes(b"\xff\xd8\xff\xd9")  # content is not read by the readers


# Labels a user writes in a space-separated cell: no white space or control characters inside.
word = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
               min_size=1, max_size=8)


def _read(call):
    """Runs a reader: ``(samples, None)``, or ``(None, error)`` for our clear, named errors."""
    try:
        return call(), None
    except (ValueError, FileNotFoundError) as err:
        assert str(err), "an error must say what is wrong"
        return None, err


@SETTINGS
@given(rows=st.lists(st.tuples(st.sampled_from(FILES + ["missing.jpg", "../x.jpg", ""]),
                               st.lists(word, max_size=4)), max_size=6),
       line_end=st.sampled_from(["\n", "\r\n"]), bom=st.booleans())
def test_csv_reader(tmp_path_factory, rows, line_end, bom):
    root = tmp_path_factory.mktemp("csv")
    _images(root)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=line_end)
    writer.writerow(["filename", "labels"])
    for name, labels in rows:
        writer.writerow([name, " ".join(labels)])
    (root / "m.csv").write_text(("\ufeff" if bom else "") + buffer.getvalue(), encoding="utf-8")
    # What the writer meant: each listed file once, with exactly its labels.
    expected, must_fail = {}, not rows
    for name, labels in rows:
        if name not in FILES or expected.get(name, set(labels)) != set(labels):
            must_fail = True  # missing, outside the root, unnamed, or listed twice differently
        expected.setdefault(name, set(labels))
    samples, error = _read(lambda: from_csv(root / "m.csv"))
    assert (samples is None) == must_fail, error
    if samples is not None:
        assert [os.path.basename(p) for p in samples.paths] == list(expected)
        assert samples.labels == list(expected.values())


@SETTINGS
@given(values=st.lists(st.lists(st.sampled_from(["1", "-1", "0", "?", "2", "x", ""]), min_size=3,
                                max_size=3), min_size=1, max_size=3),
       count=st.integers(0, 4), spaces=st.integers(1, 3))
def test_celeba_reader(tmp_path_factory, values, count, spaces):
    root = tmp_path_factory.mktemp("celeba")
    _images(root)
    lines = [str(count), "Smiling Eyeglasses Bald"]
    for name, row in zip(FILES, values):
        lines.append(name + "".join(" " * spaces + v for v in row))
    (root / "attr.txt").write_text("\n".join(lines) + "\n")
    must_fail = count != len(values) or any(v not in ("1", "-1", "0", "?") for row in values
                                             for v in row)
    samples, error = _read(lambda: from_celeba(root / "attr.txt", root))
    assert (samples is None) == must_fail, error
    if samples is not None:
        assert len(samples) == count == len(values)
        for labels, row in zip(samples.labels, values):
            assert labels == {n for n, v in zip(["Smiling", "Eyeglasses", "Bald"], row) if v == "1"}


@SETTINGS
@given(contents=st.lists(st.one_of(st.none(), st.lists(label, max_size=4)), min_size=3, max_size=3))
def test_label_file_reader(tmp_path_factory, contents):
    root = tmp_path_factory.mktemp("labelfiles")
    _images(root)
    for name, labels in zip(FILES, contents):
        if labels is not None:
            (root / f"{name}.txt").write_text("\n".join(labels), encoding="utf-8")
    samples, error = _read(lambda: from_label_files(root))
    assert (samples is None) == any(c is None for c in contents), error
    if samples is not None:
        for labels, written in zip(samples.labels, contents):
            # One label per line, with the file's universal newlines (\r too).
            lines = io.StringIO("\n".join(written), newline=None)
            assert labels == {line.strip() for line in lines if line.strip()}
