import os

import pytest

from multilabel_keras import from_csv, from_folders, load_samples


def test_from_folders_splits_folder_names(folder_data):
    samples = from_folders(folder_data)
    assert len(samples) == 24
    assert samples.paths == sorted(samples.paths)
    by_folder = {os.path.basename(os.path.dirname(p)): labels for p, labels in zip(samples.paths, samples.labels)}
    assert by_folder["red_square"] == {"red", "square"}
    assert by_folder["blue_circle"] == {"blue", "circle"}


def test_from_folders_other_separator(tmp_path, folder_data):
    samples = from_folders(folder_data, sep=None)
    assert {"red_square"} in samples.labels


def test_from_folders_errors(tmp_path):
    with pytest.raises(NotADirectoryError, match="missing"):
        from_folders(tmp_path / "missing")
    (tmp_path / "empty" / "red_dress").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images found"):
        from_folders(tmp_path / "empty")


def test_from_csv_reads_relative_paths_and_empty_labels(csv_data):
    samples = from_csv(csv_data)
    assert len(samples) == 8
    assert all(os.path.isfile(p) for p in samples.paths)
    assert samples.labels[1] == {"red", "square"}
    assert samples.labels[5] == set()


def test_from_csv_accepts_bom_and_crlf(tmp_path, csv_data):
    text = csv_data.read_text().replace("\n", "\r\n")
    bom = csv_data.parent / "bom.csv"
    bom.write_bytes("\ufeff".encode() + text.encode())
    assert from_csv(bom).labels == from_csv(csv_data).labels


def test_from_csv_names_the_bad_line(csv_data):
    bad = csv_data.parent / "bad.csv"
    bad.write_text("filename,labels\nimages/0.png,red\nimages/nope.png,blue\n")
    with pytest.raises(FileNotFoundError, match=r"line 3.*nope\.png"):
        from_csv(bad)
    bad.write_text("file,labels\nimages/0.png,red\n")
    with pytest.raises(ValueError, match="missing column 'filename'"):
        from_csv(bad)


def test_load_samples_dispatches(folder_data, csv_data, tmp_path):
    assert len(load_samples(folder_data)) == 24
    assert len(load_samples(csv_data)) == 8
    other = tmp_path / "x.txt"
    other.write_text("")
    with pytest.raises(ValueError, match="expected a folder or a .csv"):
        load_samples(other)
    with pytest.raises(FileNotFoundError):
        load_samples(tmp_path / "none.csv")


def test_subset_keeps_alignment(folder_data):
    samples = from_folders(folder_data)
    sub = samples.subset([3, 0])
    assert sub.paths == [samples.paths[3], samples.paths[0]]
    assert sub.labels == [samples.labels[3], samples.labels[0]]
