import json

import numpy as np
import pytest

from multilabel_keras import LabelVocabulary


def test_fit_returns_self_and_sorts_classes():
    vocab = LabelVocabulary()
    assert vocab.fit([{"red", "dress"}, {"blue", "jeans"}, set()]) is vocab
    assert vocab.classes_ == ["blue", "dress", "jeans", "red"]
    assert vocab.num_labels == 4


def test_transform_and_inverse_round_trip():
    vocab = LabelVocabulary().fit([{"red", "dress"}, {"blue", "jeans"}])
    y = vocab.transform([{"red", "jeans"}, set(), {"blue", "dress", "red"}])
    np.testing.assert_array_equal(y, [[0, 0, 1, 1], [0, 0, 0, 0], [1, 1, 0, 1]])
    assert vocab.inverse_transform(y) == [["jeans", "red"], [], ["blue", "dress", "red"]]


def test_unknown_labels_warn_by_name_and_are_dropped():
    vocab = LabelVocabulary().fit([{"red"}, {"blue"}])
    with pytest.warns(UserWarning, match=r"\['grene', 'purple'\]"):
        y = vocab.transform([{"red", "grene"}, {"purple"}])
    np.testing.assert_array_equal(y, [[0, 1], [0, 0]])


def test_fixed_classes_are_kept():
    vocab = LabelVocabulary(classes=["b", "a", "c"]).fit([{"a"}])
    assert vocab.classes_ == ["a", "b", "c"]


def test_save_load_json(tmp_path):
    vocab = LabelVocabulary().fit([{"red", "dress"}, {"blue"}])
    path = tmp_path / "labels.json"
    vocab.save(path)
    data = json.loads(path.read_text())
    assert data["classes"] == ["blue", "dress", "red"]
    loaded = LabelVocabulary.load(path)
    assert loaded.classes_ == vocab.classes_
    np.testing.assert_array_equal(loaded.transform([{"red"}]), vocab.transform([{"red"}]))


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "not valid JSON"),
        ('{"classes": []}', "non-empty label names"),
        ('{"classes": ["b", "a"]}', "classes must be sorted"),
        ('{"classes": ["a", "a"]}', "'a' is listed twice"),
        ('{"classes": ["a", " b"]}', "' b' is not a label name"),
        ('["a"]', "non-empty label names"),
    ],
)
def test_load_rejects_bad_files(tmp_path, content, message):
    path = tmp_path / "labels.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        LabelVocabulary.load(path)


def test_string_instead_of_set_is_an_error():
    with pytest.raises(TypeError, match="did you mean"):
        LabelVocabulary().fit(["red", "blue"])


def test_unfitted_use_is_an_error():
    with pytest.raises(RuntimeError, match="not fitted"):
        LabelVocabulary().transform([{"a"}])


@pytest.mark.parametrize("row", [[1, -1], [0, 2], [0.5, 1]])
def test_inverse_transform_refuses_what_scikit_learn_refuses(row):
    from sklearn.preprocessing import MultiLabelBinarizer

    reference = MultiLabelBinarizer().fit([{"dress", "red"}])
    with pytest.raises(ValueError):
        reference.inverse_transform(np.array([row]))
    vocab = LabelVocabulary().fit([{"dress", "red"}])
    with pytest.raises(ValueError, match="only 0s and 1s"):
        vocab.inverse_transform([row])
    decoded = reference.inverse_transform(np.array([[1, 0], [1, 1]]))
    assert vocab.inverse_transform([[True, False], [1, 1]]) == [list(t) for t in decoded]
