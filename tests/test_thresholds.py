import json

import numpy as np
import pytest
from sklearn.metrics import f1_score

from multilabel_keras.decisions import tune_thresholds
from multilabel_keras.runs.records import load_thresholds, save_thresholds


def test_tuned_threshold_maximises_f1_on_the_tuning_data():
    rng = np.random.default_rng(0)
    y = (rng.random((80, 4)) < 0.3).astype(int)
    scores = np.clip(0.3 * y + 0.7 * rng.random((80, 4)), 0, 1)
    thresholds = tune_thresholds(y, scores)
    for j in range(4):
        tuned = f1_score(y[:, j], scores[:, j] >= thresholds[j])
        # Brute force over every cut point: none beats the tuned one.
        best = max(f1_score(y[:, j], scores[:, j] >= t) for t in np.unique(scores[:, j]))
        assert tuned == pytest.approx(best)
        assert 0 <= thresholds[j] <= 1


def test_threshold_sits_between_scores():
    t = tune_thresholds([[1], [1], [0], [0]], [[0.9], [0.6], [0.4], [0.1]])
    assert t[0] == pytest.approx(0.5)


def test_untunable_labels_keep_the_default():
    y = np.array([[1, 0], [1, 0], [1, 1]])
    s = np.array([[0.2, 0.1], [0.3, 0.4], [0.9, 0.8]])
    t = tune_thresholds(y, s, default=0.5)
    assert t[0] == 0.5  # no negatives
    y[:, 1] = 0
    assert tune_thresholds(y, s)[1] == 0.5  # no positives


def test_save_load_by_label_name(tmp_path):
    path = tmp_path / "thresholds.json"
    save_thresholds(path, [0.3, 0.7], ["blue", "red"], "test")
    data = json.loads(path.read_text())
    assert data == {"source": "test", "rule": {"policy": "f1"}, "thresholds": {"blue": 0.3, "red": 0.7}}
    np.testing.assert_allclose(load_thresholds(path, ["blue", "red"]), [0.3, 0.7])
    with pytest.raises(ValueError, match=r"missing \['green'\]"):
        load_thresholds(path, ["blue", "green", "red"])
    np.testing.assert_allclose(load_thresholds(tmp_path / "none.json", ["a", "b"]), [0.5, 0.5])
    path.write_text('{"thresholds": {"blue": 2, "red": 0.5}}')
    with pytest.raises(ValueError, match=r"'blue': 2\b"):
        load_thresholds(path, ["blue", "red"])


def test_predict_all_with_a_zero_score_keeps_that_example():
    # Every example positive but one negative at the top: F1 is best predicting all of them,
    # and the lowest score is exactly 0; that example must be predicted too.
    y = np.array([[0], [1], [1], [1], [1]])
    scores = np.array([[0.9], [0.6], [0.5], [0.2], [0.0]])
    t = tune_thresholds(y, scores)
    predicted = scores[:, 0] >= t[0]
    assert predicted.all()
    best = max(f1_score(y[:, 0], scores[:, 0] >= c) for c in np.unique(scores))
    assert f1_score(y[:, 0], predicted) == pytest.approx(best)
