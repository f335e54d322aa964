import json
import os

import keras
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from multilabel_keras import LabelVocabulary, Predictor, build_model, from_folders
from multilabel_keras.data.images import load_images
from multilabel_keras.inference import evaluate
from multilabel_keras.io import write_json
from multilabel_keras.runs.records import save_thresholds


def _write_run(run_dir, classes, outputs=None, image_size=32, thresholds=None):
    """A run directory made by hand: untrained model, labels, thresholds, config."""
    os.makedirs(run_dir, exist_ok=True)
    model = build_model("smallervggnet", outputs or len(classes), (image_size, image_size, 3))
    model.save(os.path.join(run_dir, "model.keras"))
    vocab = LabelVocabulary(classes=classes).fit([set()])
    vocab.save(os.path.join(run_dir, "labels.json"))
    if thresholds is not None:
        save_thresholds(os.path.join(run_dir, "thresholds.json"), thresholds, vocab.classes_, "test")
    write_json(os.path.join(run_dir, "config.json"), {"image_size": image_size})
    return model


def test_predict_uses_the_training_preprocessing_and_thresholds(tmp_path, folder_data):
    classes = ["blue", "circle", "red", "square"]
    model = _write_run(str(tmp_path / "run"), classes, thresholds=[0.0, 1.0, 0.0, 1.0])
    predictor = Predictor.load(tmp_path / "run")
    paths = from_folders(folder_data).paths[:3]
    results = predictor.predict(paths)
    expected = model.predict_on_batch(load_images(paths, 32))
    for result, row, path in zip(results, expected, paths):
        assert result["path"] == path
        assert [result["scores"][c] for c in classes] == pytest.approx(row.tolist(), abs=1e-5)
        # threshold 0 -> always on; threshold 1 -> on only for a score of exactly 1
        assert {"blue", "red"} <= set(result["labels"])
        assert "circle" not in result["labels"] or result["scores"]["circle"] >= 1.0
        ordered = [result["scores"][c] for c in result["labels"]]
        assert ordered == sorted(ordered, reverse=True)


def test_predict_on_arrays(tmp_path):
    _write_run(str(tmp_path / "run"), ["a", "b"])
    predictor = Predictor.load(tmp_path / "run")
    out = predictor.predict(np.zeros((2, 32, 32, 3), "float32"))
    assert len(out) == 2 and "path" not in out[0] and set(out[0]["scores"]) == {"a", "b"}
    np.testing.assert_array_equal(predictor.thresholds, [0.5, 0.5])  # no thresholds.json


def test_refuses_labels_that_do_not_match_the_model(tmp_path):
    _write_run(str(tmp_path / "run"), ["a", "b", "c"], outputs=4)
    with pytest.raises(ValueError, match="4 outputs but labels.json lists 3 labels"):
        Predictor.load(tmp_path / "run")


def test_refuses_thresholds_for_other_labels(tmp_path):
    _write_run(str(tmp_path / "run"), ["a", "b"])
    write_json(str(tmp_path / "run" / "thresholds.json"), {"thresholds": {"a": 0.5, "x": 0.5}})
    with pytest.raises(ValueError, match=r"missing \['b'\], unknown \['x'\]"):
        Predictor.load(tmp_path / "run")


def test_missing_pieces_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model.keras"):
        Predictor.load(tmp_path)
    _write_run(str(tmp_path / "run"), ["a", "b"])
    write_json(str(tmp_path / "run" / "config.json"), {"image_size": "big"})
    with pytest.raises(ValueError, match="image_size"):
        Predictor.load(tmp_path / "run")


def test_evaluate_streams_and_reports(tmp_path, folder_data):
    _write_run(str(tmp_path / "run"), ["blue", "circle", "red", "square"])
    samples = from_folders(folder_data)
    metrics = evaluate(tmp_path / "run", samples, batch_size=5)
    assert metrics["num_images"] == 24
    assert set(metrics["per_label"]) == {"blue", "circle", "red", "square"}
    model = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    y = LabelVocabulary(classes=["blue", "circle", "red", "square"]).fit([]).transform(samples.labels)
    scores = model.predict_on_batch(load_images(samples.paths, 32))
    assert metrics["mAP"] == pytest.approx(average_precision_score(y, scores, average="macro"))
    json.dumps(metrics)  # JSON-ready


def test_predictor_feeds_exactly_what_training_fed(tmp_path):
    # Oracle: the tf.data batches training sees, for files of every odd kind.
    from test_bad_input import _rgb, _save
    from PIL import Image

    from multilabel_keras import Samples, make_dataset
    from multilabel_keras.data.check import check_images

    exif = Image.Exif()
    exif[0x0112] = 6
    paths = [
        _save(_rgb(), tmp_path / "plain.jpg", format="JPEG", quality=90),
        _save(_rgb().convert("P"), tmp_path / "palette.png", format="PNG"),
        _save(_rgb().convert("CMYK"), tmp_path / "cmyk.jpg", format="JPEG"),
        _save(_rgb(), tmp_path / "turned.jpg", format="JPEG", exif=exif.tobytes()),
        _save(_rgb(70, 20).convert("L"), tmp_path / "tall_gray.png", format="PNG"),
    ]
    paths = [str(p) for p in paths]
    _write_run(str(tmp_path / "run"), ["a", "b"], image_size=24)
    predictor = Predictor.load(tmp_path / "run")
    # A model that returns its input: the scores are the pixels it was fed.
    inputs = keras.Input((24, 24, 3))
    predictor.model = keras.Model(inputs, keras.layers.Flatten()(inputs))
    fed = predictor.predict_scores(paths).reshape(-1, 24, 24, 3)

    samples, _ = check_images(Samples(paths, [{"a"}] * len(paths)))  # as train does
    vocab = LabelVocabulary(classes=["a", "b"]).fit([set()])
    trained_on = np.concatenate([x for x, _ in make_dataset(samples, vocab, 24, batch_size=2)])
    assert fed.shape == trained_on.shape == (5, 24, 24, 3)
    np.testing.assert_array_equal(fed, trained_on)
    # One file at a time takes the single-image path of the compiled function: the same pixels.
    one_by_one = np.concatenate([predictor.predict_scores([p]) for p in paths])
    np.testing.assert_array_equal(one_by_one.reshape(-1, 24, 24, 3), trained_on)
    # The EXIF turn really happened: the stored image is wider than tall, so red is on top now.
    assert fed[3, :6, :, 0].mean() > 150 and fed[3, -6:, :, 2].mean() > 150
