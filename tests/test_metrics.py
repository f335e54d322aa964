import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, hamming_loss

from multilabel_keras.decisions import binarize
from multilabel_keras.metrics import (
    average_precisions,
    mean_average_precision,
    multilabel_report,
)


def _data(seed=0, n=60, labels=5):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, labels)) < 0.35).astype(int)
    scores = np.clip(y * 0.35 + rng.random((n, labels)) * 0.65, 0, 1)
    return y, scores


def test_map_matches_sklearn_macro_average_precision():
    y, scores = _data()
    assert mean_average_precision(y, scores) == pytest.approx(
        average_precision_score(y, scores, average="macro")
    )


def test_labels_without_positives_are_left_out_of_map():
    y, scores = _data(1)
    y[:, 2] = 0
    aps = average_precisions(y, scores)
    assert math.isnan(aps[2])
    keep = [0, 1, 3, 4]
    assert mean_average_precision(y, scores) == pytest.approx(
        average_precision_score(y[:, keep], scores[:, keep], average="macro")
    )


def test_map_known_value():
    # Label 0: ranking pos, neg, pos -> AP = (1/1 + 2/3) / 2.
    y = np.array([[1], [0], [1]])
    s = np.array([[0.9], [0.8], [0.7]])
    assert mean_average_precision(y, s) == pytest.approx((1 + 2 / 3) / 2)


def test_report_matches_sklearn_at_thresholds():
    y, scores = _data(2)
    thresholds = np.array([0.3, 0.5, 0.6, 0.4, 0.5])
    pred = (scores >= thresholds).astype(int)
    report = multilabel_report(y, scores, thresholds, class_names=list("abcde"))
    assert report["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro"))
    assert report["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert report["hamming_loss"] == pytest.approx(hamming_loss(y, pred))
    assert report["subset_accuracy"] == pytest.approx(np.mean(np.all(y == pred, axis=1)))
    assert report["num_images"] == 60
    assert report["per_label"]["c"]["support"] == int(y[:, 2].sum())
    assert report["per_label"]["c"]["threshold"] == 0.6
    assert report["per_label"]["a"]["ap"] == pytest.approx(average_precision_score(y[:, 0], scores[:, 0]))


def test_elementwise_accuracy_flatters_an_empty_predictor():
    # Few positives: predicting nothing scores high element-wise, zero F1.
    y = np.zeros((20, 10), int)
    y[np.arange(20), np.arange(20) % 10] = 1
    report = multilabel_report(y, np.zeros((20, 10)) + 0.01)
    assert report["elementwise_accuracy"] == pytest.approx(0.9)
    assert report["micro_f1"] == 0.0 and report["subset_accuracy"] == 0.0


def test_binarize_and_shape_errors():
    np.testing.assert_array_equal(binarize([[0.5, 0.49]], 0.5), [[1, 0]])
    with pytest.raises(ValueError, match="one shape"):
        mean_average_precision([[1, 0]], [[0.5]])
    with pytest.raises(ValueError, match="class names"):
        multilabel_report([[1]], [[0.5]], class_names=["a", "b"])
