"""Property-based fuzzing of the manifest readers: a clear error or a correct result, never a crash."""

import csv
import io

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


def _accepted(call):
    """Runs a reader; the only failures allowed are our clear, named errors."""
    try:
        return call()
    except (ValueError, FileNotFoundError) as err:
        assert str(err), "an error must say what is wrong"
        return None


@SETTINGS
@given(rows=st.lists(st.tuples(st.sampled_from(FILES + ["missing.jpg", "../x.jpg", ""]),
                               st.lists(label, max_size=4)), max_size=6),
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
    samples = _accepted(lambda: from_csv(root / "m.csv"))
    if samples is not None:
        assert len(samples) == len(set(samples.paths)) <= len(rows)
        for labels in samples.labels:
            assert all(name == name.strip() and name and " " not in name for name in labels)


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
    samples = _accepted(lambda: from_celeba(root / "attr.txt", root))
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
    samples = _accepted(lambda: from_label_files(root))
    if samples is not None:
        assert all(c is not None for c in contents)
        for labels, written in zip(samples.labels, contents):
            # One label per line, with the file's universal newlines (\r too).
            lines = io.StringIO("\n".join(written), newline=None)
            assert labels == {line.strip() for line in lines if line.strip()}
