"""MultiLabelImageClassifier: scikit-learn's interface over train and Predictor."""

import json

import keras
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.utils import estimator_checks as checks

from multilabel_keras import LabelVocabulary, MultiLabelImageClassifier, from_folders
from multilabel_keras.data.images import load_images

from conftest import make_folder_data

TINY = dict(image_size=32, epochs=2, batch_size=8, val_split=0.25, seed=1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return from_folders(make_folder_data(tmp_path_factory.mktemp("est") / "data", per_folder=5))


@pytest.mark.parametrize("check", ["check_no_attributes_set_in_init", "check_get_params_invariance",
                                   "check_set_params", "check_estimator_cloneable",
                                   "check_do_not_raise_errors_in_init_or_set_params",
                                   "check_dont_overwrite_parameters"])
def test_the_scikit_learn_checks_that_apply(check, data):
    estimator = MultiLabelImageClassifier(**TINY)
    if check == "check_dont_overwrite_parameters":
        # Its data is tabular; ours are images, so this check is run by hand with image data.
        before = estimator.get_params()
        estimator.fit(data.paths, data.labels)
        assert estimator.get_params() == before
        return
    getattr(checks, check)("MultiLabelImageClassifier", estimator)


def test_parameters_default_constructible_and_vocabulary_is_an_estimator():
    checks.check_parameters_default_constructible("MultiLabelImageClassifier",
                                                  MultiLabelImageClassifier())
    vocab = LabelVocabulary(classes=["b", "a"])
    assert clone(vocab).get_params() == {"classes": ["b", "a"]}
    assert not hasattr(clone(vocab.fit([{"a"}])), "classes_")
    checks.check_no_attributes_set_in_init("LabelVocabulary", LabelVocabulary())


@pytest.mark.slow
def test_fit_predict_on_paths_equals_the_saved_model(data):
    clf = MultiLabelImageClassifier(**TINY).fit(data.paths, data.labels)
    assert list(clf.classes_) == ["blue", "circle", "red", "square"]
    # Oracle: plain Keras loads the saved model and scores the same files; calibration.json's
    # temperatures applied by hand.
    model = keras.saving.load_model(f"{clf.run_dir_}/model.keras", safe_mode=True)
    raw = np.asarray(model.predict_on_batch(load_images(data.paths, 32)), np.float64)
    with open(f"{clf.run_dir_}/calibration.json", encoding="utf-8") as f:
        table = json.load(f)["temperatures"]
    temperatures = np.array([table[name] for name in clf.classes_])
    logits = np.log(np.clip(raw, 1e-7, 1 - 1e-7)) - np.log1p(-np.clip(raw, 1e-7, 1 - 1e-7))
    expected = np.where(temperatures == 1, raw, 1 / (1 + np.exp(-logits / temperatures)))
    np.testing.assert_allclose(clf.predict_proba(data.paths), expected, atol=1e-5)
    predicted = clf.predict(data.paths)
    assert predicted.shape == (len(data), 4) and set(np.unique(predicted)) <= {0, 1}
    assert 0.0 <= clf.score(data.paths, clf._check_fitted().vocabulary.transform(data.labels)) <= 1.0


@pytest.mark.slow
def test_arrays_and_a_multi_hot_matrix_keep_the_column_order(data, tmp_path):
    images = load_images(data.paths, 32).astype(np.uint8)
    vocab = LabelVocabulary().fit(data.labels)
    # Twelve columns, so the label names "0".."11" sort differently from their numbers.
    y = np.zeros((len(data), 12), int)
    y[:, [3, 11, 7, 0]] = vocab.transform(data.labels)
    clf = MultiLabelImageClassifier(**TINY, run_dir=tmp_path / "run").fit(images, y)
    assert clf.classes_.tolist() == list(range(12)) and (tmp_path / "run" / "model.keras").is_file()
    scores = clf.predict_proba(images)
    model = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    names = clf.predictor_.vocabulary.classes_
    raw = clf.predictor_.calibrated(model.predict_on_batch(images.astype(np.float32)))
    np.testing.assert_allclose(scores, raw[:, [names.index(str(j)) for j in range(12)]], atol=1e-5)
    # Arrays at another size are resized as files are decoded: same scores as the files.
    big = np.stack([keras.ops.convert_to_numpy(keras.ops.image.resize(i, (64, 64))) for i in images])
    assert clf.predict_proba(big).shape == (len(data), 12)
    with pytest.raises(ValueError, match="X has 3 images but y has"):
        clone(clf).fit(images[:3], y)


@pytest.mark.slow
def test_pipeline_and_cross_val_score(data):
    pipe = Pipeline([("clf", MultiLabelImageClassifier(**{**TINY, "epochs": 1}))])
    y = LabelVocabulary().fit(data.labels).transform(data.labels)
    scores = cross_val_score(pipe, np.asarray(data.paths, dtype=object), y,
                             cv=KFold(2, shuffle=True, random_state=0))
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)


@pytest.mark.slow
def test_head_preprocessing_calibration_and_tta_reach_the_run(data):
    clf = MultiLabelImageClassifier(model="mobilenetv2", head="csra", preprocessing="torch",
                                    calibration="none", tta="flip", **TINY)
    assert clone(clf).get_params()["head"] == "csra"
    clf.fit(data.paths, data.labels)
    predictor = clf._check_fitted()
    assert predictor.tta == "flip" and predictor.temperatures is None
    assert type(predictor.model.get_layer("head_attention")).__name__ == "CSRA"
    images = load_images(data.paths, 32)
    np.testing.assert_allclose(clf.predict_proba(images), clf.predict_proba(images[:, :, ::-1]),
                               atol=1e-5)
