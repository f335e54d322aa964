"""Data that used to vanish, or be read wrong, without a word (issue 12)."""

import errno
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from multilabel_keras.data.diagnostics import MAX_PICTURE, inspect_data, label_statistics
from multilabel_keras.data.sources import Samples, from_csv, from_folders

from conftest import draw, make_folder_data, write_rgb


def _messages(caught):
    return [str(w.message) for w in caught]


def _read_folders(root, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples = from_folders(root, **kwargs)
    return samples, _messages(caught)


def test_unreadable_label_folder_is_an_error_not_a_smaller_data_set(tmp_path, monkeypatch):
    root = make_folder_data(tmp_path / "data", per_folder=2)
    locked = str(root / "blue_circle")
    real_scandir = os.scandir

    def scandir(path="."):
        # chmod 000 does not stop root (CI may run as root), so the refusal is simulated.
        if os.fspath(path) == locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(PermissionError) as err:
        from_folders(root)
    assert err.value.filename == locked and "cannot read" in str(err.value)


def test_unread_formats_and_loose_images_are_counted_and_named(tmp_path):
    root = make_folder_data(tmp_path / "data", per_folder=2)
    for name in ("x.webp", "y.TIFF", "z.tif"):
        (root / "red_square" / name).write_bytes(b"not decoded")
    write_rgb(str(root / "loose.jpg"), draw("red", "circle"))
    (root / "notes.txt").write_text("kept out, silently: not an image")
    samples, messages = _read_folders(root)
    assert len(samples) == 8  # the 8 JPEGs, nothing else
    unread = next(m for m in messages if "does not read" in m)
    assert unread.startswith("3 file(s)") and "x.webp" in unread and "y.TIFF" in unread
    loose = next(m for m in messages if "not in a label folder" in m)
    assert loose.startswith("1 file(s)") and "loose.jpg" in loose
    assert not any("notes.txt" in m for m in messages)


def test_many_left_out_files_are_counted_beyond_those_named(tmp_path):
    root = make_folder_data(tmp_path / "data", per_folder=1)
    for i in range(13):
        (root / "red_square" / f"{i:02d}.webp").write_bytes(b"x")
    _, messages = _read_folders(root)
    message = next(m for m in messages if "does not read" in m)
    assert message.startswith("13 file(s)") and message.endswith("and 3 more")


def test_link_out_of_the_root_is_refused_unless_allowed(tmp_path):
    root = make_folder_data(tmp_path / "data", per_folder=2)
    outside = tmp_path / "elsewhere" / "green_hat"
    write_rgb(str(outside / "a.jpg"), draw("red", "square"))
    os.symlink(outside, root / "green_hat")
    with pytest.raises(ValueError, match="green_hat is a link to .*outside the data folder") as err:
        from_folders(root)
    assert "allow_outside_root=True" in str(err.value)
    samples, _ = _read_folders(root, allow_outside_root=True)
    assert len(samples) == 9 and {"green", "hat"} in samples.labels


@pytest.mark.parametrize("target", ["root", "parent", "sibling"])
def test_links_that_would_count_images_twice_are_refused(tmp_path, target):
    root = make_folder_data(tmp_path / "data", per_folder=2)
    if target == "root":  # a link back to the root: every image again under other labels
        os.symlink(root, root / "red_square" / "again")
        match = "a link back to .* \\(a loop\\)"
    elif target == "parent":
        os.symlink("..", root / "red_square" / "up")
        match = "a link back to .* \\(a loop\\)"
    else:  # a second name for a label folder
        os.symlink(root / "red_square", root / "blue_square2")
        match = "are the same folder"
    with pytest.raises(ValueError, match=match):
        from_folders(root, allow_outside_root=True)


def test_links_inside_the_root_and_to_files_are_followed(tmp_path):
    root = make_folder_data(tmp_path / "data", per_folder=2)
    store = root / ".store"  # hidden: not read as a label folder itself
    write_rgb(str(store / "a.jpg"), draw("blue", "circle"))
    os.makedirs(root / "blue_hat")
    os.symlink(store / "a.jpg", root / "blue_hat" / "a.jpg")
    samples, messages = _read_folders(root)
    assert len(samples) == 9 and samples.labels[samples.paths.index(str(root / "blue_hat" / "a.jpg"))] == {"blue", "hat"}
    assert messages == []


def test_names_that_are_not_utf8_are_left_out_by_name(tmp_path):
    root = make_folder_data(tmp_path / "data", per_folder=2)
    folder = os.fsencode(root / "red_square")
    with open(os.path.join(folder, b"caf\xe9.jpg"), "wb") as f:
        f.write(b"x")
    os.makedirs(os.path.join(os.fsencode(root), b"r\xf6d_hat"))
    samples, messages = _read_folders(root)
    assert len(samples) == 8
    message = next(m for m in messages if "not valid UTF-8" in m)
    assert message.startswith("2 file(s)") and "caf\\udce9.jpg" in message
    message.encode("utf-8")  # printable: no lone surrogate reaches the user's terminal


def test_empty_label_folder_is_named(tmp_path):
    root = make_folder_data(tmp_path / "data", per_folder=2)
    os.makedirs(root / "green_hat")
    (root / "green_hat" / "x.webp").write_bytes(b"x")
    _, messages = _read_folders(root)
    assert any("holding no image" in m and "green_hat" in m for m in messages)


def _csv(tmp_path, text, mode="w"):
    root = tmp_path / "csv"
    for name in ("a.png", "b.png"):
        write_rgb(str(root / name), draw("red", "square"))
    path = root / "labels.csv"
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("text, match", [
    ("filename,labels\na.png,red\nb.png,red,square\n", "line 3: 3 fields, the header has 2; quote"),
    ("filename,labels\na.png,red\nb.png\n", "line 3: 1 fields, the header has 2; give every"),
    ("filename,red,blue\na.png,1,0\nb.png,1\n", "line 3: 2 fields, the header has 3"),
    ("filename,labels\na.png,\"" + "x" * 140_000 + "\"\n", "line 2: field larger than field limit"),
])
def test_csv_rows_that_do_not_fit_the_header_are_refused(tmp_path, text, match):
    # The old reader took 'b.png,red,square' as {red}: the third field vanished.
    with pytest.raises(ValueError, match=match):
        from_csv(_csv(tmp_path, text))


def test_csv_that_is_not_utf8_names_its_line(tmp_path):
    path = _csv(tmp_path, b"filename,labels\na.png,red\nb.png,caf\xe9\n", mode="wb")
    with pytest.raises(ValueError, match="labels.csv, line 3: not UTF-8"):
        from_csv(path)


def test_quoted_cells_still_read(tmp_path):
    samples = from_csv(_csv(tmp_path, 'filename,labels\na.png,"red square"\nb.png,\n'))
    assert samples.labels == [{"red", "square"}, set()]


def _cli(*args):
    # A subprocess: pytest would otherwise catch the warnings before the CLI prints them.
    done = subprocess.run([sys.executable, "-m", "multilabel_keras.cli", *args], capture_output=True,
                          text=True, timeout=300)
    # TensorFlow's own start-up lines (absl, oneDNN) are held back too: stderr is ours alone.
    return done.returncode, done.stderr.strip()


def test_cli_warnings_are_one_line_with_cli_flags(tmp_path):
    root = make_folder_data(tmp_path / "data", per_folder=2)
    (root / "red_square" / "x.webp").write_bytes(b"x")
    outside = tmp_path / "elsewhere"
    write_rgb(str(outside / "a.jpg"), draw("red", "square"))
    code, err = _cli("inspect", "--data", str(root))
    assert code == 0
    line = next(x for x in err.splitlines() if "left out" in x)
    assert line.startswith("multilabel-keras inspect: warning: 1 file(s) left out")
    assert "Traceback" not in err and "warnings.warn" not in err  # no source line under it
    os.symlink(outside, root / "green_hat")
    code, err = _cli("inspect", "--data", str(root))
    assert code == 2 and err.strip().count("\n") == 0
    assert "--allow-outside-root" in err and "allow_outside_root" not in err
    assert _cli("inspect", "--data", str(root), "--allow-outside-root")[0] == 0


def test_inspect_of_many_labels_stays_small(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"label{i:03d}" for i in range(700)]
    labels = [{names[j] for j in rng.choice(700, 3, replace=False)} for _ in range(1500)]
    samples = Samples([f"{i}.jpg" for i in range(1500)], labels)
    report = inspect_data(samples, tmp_path / "inspect")
    kept = report["cooccurrence_labels"]
    assert len(kept) == 500 and len(report["cooccurrence"]) == 500
    # Oracle: the counts of the kept labels, computed pair by pair.
    i, j = 3, 7
    both = sum(1 for s in labels if kept[i] in s and kept[j] in s)
    assert report["cooccurrence"][i][j] == both
    assert report["cooccurrence"][i][i] == report["support"][kept[i]]
    # The picture draws MAX_PICTURE labels: a few hundred kB, not gigabytes.
    assert os.path.getsize(tmp_path / "inspect" / "cooccurrence.png") < 2_000_000
    assert MAX_PICTURE < 100


def test_small_label_sets_keep_the_full_cooccurrence():
    samples = Samples(["a", "b", "c"], [{"red", "dress"}, {"red"}, {"blue", "dress"}])
    stats = label_statistics(samples)
    assert stats["cooccurrence_labels"] == ["blue", "dress", "red"]
    assert stats["cooccurrence"] == [[1, 1, 0], [1, 2, 1], [0, 1, 2]]
