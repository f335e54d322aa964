"""Run plots: the marked operating points are the decision rule's own precision and recall."""

import numpy as np
import pytest
from sklearn.metrics import precision_score, recall_score

from multilabel_keras.decisions import decide
from multilabel_keras.plots import plot_history, plot_pr_curves


@pytest.mark.parametrize("rule", [None, {"policy": "at_least_one"}, {"policy": "top_k", "k": 1}])
def test_marked_points_are_the_rules_precision_and_recall(tmp_path, rule):
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=(40, 3)) < 0.4).astype(int)
    y[:, 2][[0, 1]] = -1  # unknown entries are left out of the point, as of the curve
    scores = np.clip(0.5 * y + rng.uniform(0, 0.6, y.shape), 0, 1)
    thresholds = np.array([0.4, 0.6, 0.5])
    marked = plot_pr_curves(y, scores, ["a", "b", "c"], tmp_path / "pr.png", thresholds=thresholds,
                            rule=rule)
    assert (tmp_path / "pr.png").stat().st_size > 0
    said = decide(scores, thresholds, rule)
    for j, name in enumerate("abc"):
        known = y[:, j] != -1
        expected = (recall_score(y[known, j], said[known, j]),
                    precision_score(y[known, j], said[known, j], zero_division=1.0))
        assert marked[name] == pytest.approx(expected)
    assert plot_pr_curves(y, scores, ["a", "b", "c"], tmp_path / "bare.png") == {}


def test_history_plot_with_the_kept_epoch(tmp_path):
    rows = [{"epoch": e, "loss": 1.0 / e, "val_mAP": 0.5 + 0.1 * e, "phase": 2} for e in (1, 2, 3)]
    plot_history(rows, tmp_path / "plot.png", title="x", best_epoch=2)
    plot_history(rows, tmp_path / "plain.png", title="x")
    # The marked figure differs from the plain one only by what was drawn on it.
    assert (tmp_path / "plot.png").read_bytes() != (tmp_path / "plain.png").read_bytes()
