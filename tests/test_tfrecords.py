import os

import numpy as np
import pytest

from multilabel_keras import LabelVocabulary, from_folders, make_dataset
from multilabel_keras.data import read_tfrecord_index, tfrecord_dataset, write_tfrecords


@pytest.fixture
def records(tmp_path, folder_data):
    samples = from_folders(folder_data)
    vocab = LabelVocabulary().fit(samples.labels)
    index = write_tfrecords(samples, vocab, tmp_path / "tfr", shards=3)
    return samples, vocab, tmp_path / "tfr", index


def test_round_trip_matches_the_file_pipeline(records):
    samples, vocab, folder, index = records
    assert index["num_records"] == 24 and [s["count"] for s in index["shards"]] == [8, 8, 8]
    assert not [f for f in os.listdir(folder) if ".tmp" in f]
    by_path = {}
    for x, y, p in tfrecord_dataset(folder, vocab, image_size=32, batch_size=5, with_paths=True):
        for image, labels, path in zip(x.numpy(), y.numpy(), p.numpy()):
            by_path[path.decode()] = (image, labels)
    assert sorted(by_path) == sorted(samples.paths)
    x_ref, y_ref = next(iter(make_dataset(samples, vocab, image_size=32, batch_size=24)))
    for i, path in enumerate(samples.paths):
        np.testing.assert_array_equal(by_path[path][0], x_ref.numpy()[i])  # same decoded pixels
        np.testing.assert_array_equal(by_path[path][1], y_ref.numpy()[i])


def test_make_dataset_reads_a_records_folder_shuffled_and_repeated(records):
    samples, vocab, folder, _ = records
    ds = make_dataset(str(folder), vocab, image_size=32, batch_size=8, augment=True, shuffle=True,
                      repeat=True, seed=1)
    batches = [b for _, b in zip(range(6), ds)]  # two passes over 24 records
    assert all(x.shape == (8, 32, 32, 3) and y.shape == (8, 4) for x, y in batches)
    totals = sum(y.numpy().sum(0) for _, y in batches)
    expected = 2 * vocab.transform(samples.labels).sum(0)
    np.testing.assert_array_equal(totals, expected)


def test_resized_records_and_errors(tmp_path, records):
    samples, vocab, folder, _ = records
    small = write_tfrecords(samples, vocab, tmp_path / "small", shards=2, image_size=16)
    assert small["image_size"] == 16
    x, _ = next(iter(tfrecord_dataset(tmp_path / "small", vocab, image_size=16, batch_size=4)))
    assert x.shape == (4, 16, 16, 3)
    with pytest.raises(FileExistsError, match="already holds TFRecords"):
        write_tfrecords(samples, vocab, folder)
    other = LabelVocabulary().fit([{"red", "green"}])
    with pytest.raises(ValueError, match="another vocabulary"):
        tfrecord_dataset(folder, other)
    os.remove(folder / read_tfrecord_index(folder)["shards"][1]["file"])
    with pytest.raises(FileNotFoundError, match="shard data-1-of-3.tfrecord is missing"):
        tfrecord_dataset(folder, vocab)
