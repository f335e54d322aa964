"""Calibration (temperatures, ECE, reliability), test-time flips and stated preprocessing."""

import json
import os

import keras
import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression

from multilabel_keras import Predictor, build_model, evaluate, from_folders, train
from multilabel_keras.data.images import load_images
from multilabel_keras.decisions import apply_temperatures, choose_decision, decide, fit_temperatures
from multilabel_keras.metrics import average_precisions, calibration_bins, calibration_errors
from multilabel_keras.runs import RunDir


def _overconfident(seed=0, n=400, labels=3):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, labels)) < 0.4).astype(int)
    signal = np.where(y == 1, 1.0, -1.0) + rng.normal(scale=1.5, size=y.shape)
    return y, 1.0 / (1.0 + np.exp(-4.0 * signal))       # logits four times too large


def test_temperatures_match_an_unpenalised_logistic_fit_of_the_logit():
    y, p = _overconfident()
    temperatures = fit_temperatures(y, p, min_examples=1)
    logits = np.log(p) - np.log1p(-p)
    for j in range(y.shape[1]):
        # Temperature scaling is a logistic regression on the logit with no intercept: a = 1/T.
        fit = LogisticRegression(fit_intercept=False, penalty=None).fit(logits[:, j:j + 1], y[:, j])
        assert temperatures[j] == pytest.approx(1.0 / fit.coef_[0, 0], rel=0.03)
    assert (temperatures > 2).all()


def test_calibration_keeps_ranking_and_decisions_and_lowers_ece():
    y, p = _overconfident(1)
    y_test, p_test = _overconfident(2)
    temperatures = fit_temperatures(y, p)
    calibrated, calibrated_test = apply_temperatures(p, temperatures), apply_temperatures(p_test,
                                                                                          temperatures)
    np.testing.assert_allclose(average_precisions(y_test, calibrated_test),
                               average_precisions(y_test, p_test))
    raw_thresholds, rule = choose_decision(y, p, "f1")
    cal_thresholds, _ = choose_decision(y, calibrated, "f1")
    np.testing.assert_array_equal(decide(p_test, raw_thresholds, rule),
                                  decide(calibrated_test, cal_thresholds, rule))
    assert calibration_errors(y_test, calibrated_test)[0] < 0.5 * calibration_errors(y_test, p_test)[0]


def test_labels_with_few_examples_take_the_pooled_temperature_and_unknowns_are_left_out():
    y, p = _overconfident(4, n=300, labels=3)
    y[:, 2] = 0
    y[:3, 2] = 1                       # three positives: too few for a temperature of its own
    y[10:20, 1] = -1                   # unknown entries are left out of every fit
    temperatures = fit_temperatures(y, p)
    logits = np.log(p) - np.log1p(-p)
    known = y != -1
    pooled = LogisticRegression(fit_intercept=False, penalty=None).fit(
        logits[known][:, None], y[known])
    assert temperatures[2] == pytest.approx(1.0 / pooled.coef_[0, 0], rel=0.03)
    own = LogisticRegression(fit_intercept=False, penalty=None).fit(
        logits[known[:, 1], 1:2], y[known[:, 1], 1])
    assert temperatures[1] == pytest.approx(1.0 / own.coef_[0, 0], rel=0.03)
    assert fit_temperatures(y, p, min_examples=1)[2] != temperatures[2]   # its own, from 3
    # Nothing to fit at all (no label has both classes): every score stays as it was.
    single = np.ones((4, 2), int)
    assert fit_temperatures(single, np.full((4, 2), 0.7)).tolist() == [1.0, 1.0]
    np.testing.assert_array_equal(apply_temperatures(p, np.ones(3)), p)
    counts, _, _ = calibration_bins(y[:, 1], p[:, 1])
    assert counts.sum() == 290


def test_ece_agrees_with_sklearn_calibration_curve_and_a_hand_count():
    y, p = _overconfident(3, n=300, labels=1)
    counts, conf, acc = calibration_bins(y[:, 0], p[:, 0], bins=10)
    prob_true, prob_pred = calibration_curve(y[:, 0], p[:, 0], n_bins=10, strategy="uniform")
    full = counts > 0
    np.testing.assert_allclose(acc[full], prob_true)
    np.testing.assert_allclose(conf[full], prob_pred)
    # By hand: two entries at 0.9 that are right (gap 0.1) and two at 0.3 that are wrong (gap 0.3).
    overall, per_label = calibration_errors([[1, 0], [1, 0]], [[0.9, 0.3], [0.9, 0.3]])
    assert overall == pytest.approx(0.2) and per_label.tolist() == pytest.approx([0.1, 0.3])


def test_flip_tta_gives_a_mirrored_image_the_same_scores(tmp_path):
    from multilabel_keras import LabelVocabulary

    model = build_model("smallervggnet", 3, (32, 32, 3))
    vocabulary = LabelVocabulary().fit([{"a"}, {"b"}, {"c"}])
    image = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    mirrored = image[:, :, ::-1].copy()
    plain = Predictor(model, vocabulary, image_size=32)
    flipped = Predictor(model, vocabulary, image_size=32, tta="flip")
    assert not np.allclose(plain.predict_scores(image), plain.predict_scores(mirrored), atol=1e-6)
    np.testing.assert_allclose(flipped.predict_scores(image), flipped.predict_scores(mirrored),
                               atol=1e-6)
    expected = (plain.predict_scores(image) + plain.predict_scores(mirrored)) / 2
    np.testing.assert_allclose(flipped.predict_scores(image), expected, atol=1e-6)
    # Files go through the compiled graph: the same average.
    from conftest import write_rgb

    write_rgb(str(tmp_path / "a.png"), np.round(image[0]).astype("uint8"))
    write_rgb(str(tmp_path / "b.png"), np.round(mirrored[0]).astype("uint8"))
    files = flipped.predict_scores([str(tmp_path / "a.png"), str(tmp_path / "b.png")])
    np.testing.assert_allclose(files[0], files[1], atol=1e-5)
    with pytest.raises(ValueError, match="tta must be one of none, flip"):
        Predictor(model, vocabulary, tta="rotate")


def test_stated_preprocessing_replaces_the_familys():
    plain = build_model("mobilenetv2", 2, (32, 32, 3))
    torch = build_model("mobilenetv2", 2, (32, 32, 3), preprocessing="torch")
    raw = build_model("mobilenetv2", 2, (32, 32, 3), preprocessing="none")
    from keras.applications.imagenet_utils import preprocess_input

    pixels = np.random.default_rng(0).uniform(0, 255, (1, 4, 4, 3)).astype("float32")
    for model, mode in ((plain, "tf"), (torch, "torch")):
        ours = keras.ops.convert_to_numpy(model.get_layer("preprocess")(pixels))
        np.testing.assert_allclose(ours, preprocess_input(pixels.copy(), mode=mode), atol=1e-4)
    assert "preprocess" not in [layer.name for layer in raw.layers]
    with pytest.raises(ValueError, match="preprocessing must be one of tf, torch, caffe, none; got 'imagenet'"):
        build_model("mobilenetv2", 2, (32, 32, 3), preprocessing="imagenet")


@pytest.mark.slow
def test_a_run_is_calibrated_recorded_and_served_calibrated(tmp_path, folder_data):
    samples = from_folders(folder_data)
    result = train(samples, tmp_path / "run", "mobilenetv2", image_size=32, epochs=2, batch_size=8,
                   val_split=0.4, tta="flip", verbose=0,
                   model_kwargs={"preprocessing": "torch", "head": "csra"})
    run = RunDir(tmp_path / "run")
    assert set(RunDir.RUN_FILES) <= set(os.listdir(run.path))
    saved = json.loads(open(run.file(run.CALIBRATION)).read())
    assert saved["method"] == "temperature" and saved["ece_after"] <= saved["ece_before"] + 1e-12
    config = run.read_config()
    assert config["tta"] == "flip" and config["model_kwargs"]["preprocessing"] == "torch"
    predictor = Predictor.load(run.path)
    assert predictor.tta == "flip"
    temperatures = run.read_calibration(predictor.vocabulary.classes_)
    np.testing.assert_array_equal(predictor.temperatures, temperatures)
    images = load_images(samples.paths, 32)
    raw = result.model.predict_on_batch(images)
    mirrored = result.model.predict_on_batch(images[:, :, ::-1].copy())
    expected = apply_temperatures((np.asarray(raw, float) + mirrored) / 2, temperatures)
    np.testing.assert_allclose(predictor.predict_scores(images), expected, atol=1e-5)
    np.testing.assert_allclose(predictor.predict_scores(samples.paths), expected, atol=1e-4)
    metrics = evaluate(run.path, samples)
    assert metrics["tta"] == "flip" and metrics["calibrated"] and "uncalibrated_ece" in metrics
    assert 0 <= metrics["ece"] <= 1 and set(metrics["per_label"][predictor.vocabulary.classes_[0]]) >= {"ece"}
    assert evaluate(run.path, samples, tta="none")["tta"] == "none"

    from multilabel_keras.inference.export import export_run

    onnx_path = export_run(run.path, tmp_path / "onnx", "onnx")
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_path)
    served = session.run(None, {session.get_inputs()[0].name: images})[0]
    np.testing.assert_allclose(served, expected, atol=1e-4)
    meta = json.loads(open(tmp_path / "onnx" / "export.json").read())
    assert meta["tta"] == "flip" and set(meta["calibration"]["temperatures"]) == set(
        predictor.vocabulary.classes_)


@pytest.mark.slow
def test_calibration_none_writes_no_calibration(tmp_path, folder_data):
    train(from_folders(folder_data), tmp_path / "run", "smallervggnet", image_size=32, epochs=1,
          batch_size=8, calibration="none", verbose=0)
    assert not os.path.exists(tmp_path / "run" / RunDir.CALIBRATION)
    assert Predictor.load(tmp_path / "run").temperatures is None


@pytest.mark.slow
def test_cli_flags_for_heads_preprocessing_calibration_and_tta(tmp_path, folder_data, capsys):
    from multilabel_keras.cli import main

    run = str(tmp_path / "run")
    assert main(["train", "--data", str(folder_data), "--model", "mobilenetv2", "--epochs", "1",
                 "--image-size", "32", "--batch-size", "8", "--head", "ml_decoder",
                 "--preprocessing", "caffe", "--calibration", "none", "--tta", "flip",
                 "--out", run, "--quiet"]) == 0
    config = RunDir(run).read_config()
    assert config["model_kwargs"] == {"head": "ml_decoder", "preprocessing": "caffe"}
    assert config["tta"] == "flip" and not os.path.exists(os.path.join(run, RunDir.CALIBRATION))
    capsys.readouterr()
    assert main(["evaluate", "--run", run, "--data", str(folder_data), "--tta", "none"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["tta"] == "none" and metrics["calibrated"] is False and "ece" in metrics
    image = from_folders(folder_data).paths[0]
    assert main(["predict", "--run", run, "--tta", "flip", image]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["path"] == image
    with pytest.raises(SystemExit) as stopped:
        main(["train", "--data", str(folder_data), "--out", str(tmp_path / "x"),
              "--head", "attention"])
    assert stopped.value.code == 2
    assert "invalid choice: 'attention'" in capsys.readouterr().err
