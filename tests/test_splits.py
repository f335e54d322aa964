import numpy as np
import pytest

from multilabel_keras import LabelVocabulary, from_folders, iterative_split, split_samples


def _labels(n=1000, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.random((n, 6)) < [0.5, 0.3, 0.1, 0.05, 0.02, 0.01]).astype(int)


def test_partition_is_complete_and_disjoint():
    y = _labels()
    parts = iterative_split(y, (0.7, 0.15, 0.15), seed=3)
    joined = np.concatenate(parts)
    assert len(joined) == len(y) == len(set(joined.tolist()))
    assert [len(p) for p in parts] == pytest.approx([700, 150, 150], abs=3)


def test_each_label_is_spread_in_proportion():
    y = _labels()
    train, val = iterative_split(y, (0.8, 0.2), seed=0)
    for j in range(y.shape[1]):
        total = y[:, j].sum()
        assert abs(y[val, j].sum() - 0.2 * total) <= 1, f"label {j}"
        assert y[val, j].sum() >= 1  # even the rarest label reaches validation


def test_stratification_beats_random_split_on_rare_labels():
    y = _labels(seed=5)
    train, val = iterative_split(y, (0.8, 0.2), seed=0)
    err_strat = np.abs(y[val].sum(0) - 0.2 * y.sum(0)).sum()
    rng = np.random.default_rng(0)
    err_random = np.mean([
        np.abs(y[rng.permutation(len(y))[:200]].sum(0) - 0.2 * y.sum(0)).sum() for _ in range(20)
    ])
    assert err_strat < err_random / 2


def test_same_seed_same_split_and_unlabelled_examples_assigned():
    y = np.zeros((10, 2), int)
    y[:4, 0] = 1
    a = iterative_split(y, (0.5, 0.5), seed=7)
    b = iterative_split(y, (0.5, 0.5), seed=7)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert sorted(np.concatenate(a).tolist()) == list(range(10))
    assert y[a[0], 0].sum() == 2


def test_bad_fractions():
    with pytest.raises(ValueError, match="sum to 1"):
        iterative_split(np.ones((4, 1)), (0.5, 0.2))


def test_split_samples(folder_data):
    samples = from_folders(folder_data)
    vocab = LabelVocabulary().fit(samples.labels)
    train, val = split_samples(samples, vocab, (0.75, 0.25))
    assert len(train) + len(val) == len(samples)
    assert not set(train.paths) & set(val.paths)
    assert set().union(*val.labels) == set(vocab.classes_)
