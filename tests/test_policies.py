import json

import numpy as np
import pytest
from sklearn.metrics import f1_score, matthews_corrcoef

from multilabel_keras import LabelVocabulary, Predictor, evaluate, from_csv, make_dataset
from multilabel_keras.decisions import decide
from multilabel_keras.metrics import calibration_errors, multilabel_report
from multilabel_keras.decisions import choose_decision, global_threshold, tune_thresholds

from conftest import draw, write_rgb


def _scores(seed=0, n=60, labels=3):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, labels)) < 0.35).astype(int)
    p = np.clip(0.35 * y + rng.uniform(0, 0.65, (n, labels)), 0, 1)
    return y, p


def _brute(y, s, score):
    cuts = np.unique(s)
    cands = np.r_[(cuts[1:] + cuts[:-1]) / 2, cuts[-1]]
    return max(score(y, (s >= t).astype(int)) for t in cands)


@pytest.mark.parametrize("metric,score", [
    ("f1", lambda y, p: f1_score(y, p, zero_division=0)),
    ("mcc", matthews_corrcoef),
])
def test_per_label_thresholds_reach_the_best_achievable_value(metric, score):
    y, p = _scores()
    thresholds = tune_thresholds(y, p, metric=metric)
    for j in range(3):
        got = score(y[:, j], (p[:, j] >= thresholds[j]).astype(int))
        assert got == pytest.approx(_brute(y[:, j], p[:, j], score))


def test_precision_floor_policy():
    y, p = _scores(1)
    thresholds = tune_thresholds(y, p, metric="precision", min_precision=0.8)
    for j in range(3):
        pred = p[:, j] >= thresholds[j]
        assert y[pred, j].mean() >= 0.8
        lower = np.sort(p[:, j])[np.sort(p[:, j]) < thresholds[j]]
        if len(lower):  # one more prediction would break the floor
            extra = p[:, j] >= lower[-1]
            assert y[extra, j].mean() < 0.8 or extra.sum() == pred.sum()
    never = tune_thresholds([[1], [0]], [[0.2], [0.9]], metric="precision", min_precision=0.99)
    assert never[0] > 0.9


def test_global_top_k_and_at_least_one():
    y, p = _scores(2)
    t = global_threshold(y, p)
    best = _brute(y.ravel(), p.ravel(), lambda a, b: f1_score(a, b))
    assert f1_score(y.ravel(), (p.ravel() >= t).astype(int)) == pytest.approx(best)
    _, rule = choose_decision(y, p, "top_k", k=2)
    assert (decide(p, 0.5, rule).sum(1) == 2).all()
    thresholds, rule = choose_decision(y, p, "at_least_one")
    assert (decide(p, thresholds, rule).sum(1) >= 1).all()
    with pytest.raises(ValueError, match="unknown threshold policy"):
        choose_decision(y, p, "f2")


def test_metrics_ignore_unknown_entries():
    y = np.array([[1, 0, -1], [0, 1, 1], [1, -1, 0]])
    p = np.array([[0.9, 0.1, 0.99], [0.2, 0.8, 0.7], [0.6, 0.95, 0.1]])
    report = multilabel_report(y, p, 0.5)
    assert report["subset_accuracy"] == 1.0 and report["hamming_loss"] == 0.0
    assert report["mAP"] == 1.0 and report["unknown_entries"] == 2
    known = multilabel_report(np.array([[1, 0], [0, 1], [1, 0]]), p[:, :2], 0.5)
    assert known["per_label"]["0"] == report["per_label"]["0"]


def test_wide_csv_unknown_labels_reach_the_pipeline(tmp_path):
    for i in range(3):
        write_rgb(str(tmp_path / f"{i}.png"), draw("red", "square", seed=i))
    (tmp_path / "labels.csv").write_text(
        "filename,red,square,big\r\n0.png,1,0,?\r\n1.png,0,,1\r\n2.png,1,-1,0\r\n")
    samples = from_csv(tmp_path / "labels.csv")
    assert samples.labels == [{"red"}, {"big"}, {"red"}]
    assert samples.unknown == [{"big"}, {"square"}, {"square"}]
    vocab = LabelVocabulary().fit(samples.labels + [{"square"}])
    _, y = next(iter(make_dataset(samples, vocab, 16, batch_size=3)))
    assert y.numpy().tolist() == [[-1, 1, 0], [1, 0, -1], [0, 1, -1]]  # big, red, square
    (tmp_path / "bad.csv").write_text("filename,red\n0.png,yes\n")
    with pytest.raises(ValueError, match=r"line 2: column 'red' must be 1, 0, -1, \? or empty"):
        from_csv(tmp_path / "bad.csv")


@pytest.mark.slow
def test_thresholds_are_tuned_on_validation_and_applied_to_other_data(tmp_path, folder_data):
    """No leak: the saved thresholds are a function of the validation split only."""
    from multilabel_keras import from_folders, split_samples, train
    from multilabel_keras.models.outputs import predict_batches

    samples = from_folders(folder_data)
    vocab = LabelVocabulary().fit(samples.labels)
    fit, val = split_samples(samples, vocab, (0.75, 0.25), seed=3)
    result = train(fit, tmp_path / "run", val_samples=val, image_size=32, batch_size=8, epochs=2,
                   threshold_policy="mcc", verbose=0, train_map_samples=0)
    predictor = Predictor.load(tmp_path / "run")
    # Thresholds are tuned on the validation scores once calibrated on them (calibration.json).
    y_val, raw_val = predict_batches(predictor.model, make_dataset(val, vocab, 32))
    p_val = predictor.calibrated(raw_val)
    np.testing.assert_allclose(predictor.thresholds, tune_thresholds(y_val, p_val, metric="mcc"))
    y_fit, raw_fit = predict_batches(predictor.model, make_dataset(fit, vocab, 32))
    report = evaluate(predictor, fit)  # other data: decided with the validation thresholds
    expected = multilabel_report(y_fit, predictor.calibrated(raw_fit), predictor.thresholds,
                                 vocab.classes_, {"policy": "mcc"})
    assert report == {**expected, "tta": "none", "calibrated": True,
                      "uncalibrated_ece": calibration_errors(y_fit, raw_fit)[0], "skipped_images": []}
    saved = json.load(open(tmp_path / "run" / "thresholds.json"))
    assert saved["rule"] == {"policy": "mcc"} and "validation" in saved["source"]
    assert result.metrics["num_images"] == len(val)
