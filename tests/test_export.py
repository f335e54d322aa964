"""export: each format, loaded by its own runtime, scores like Predictor and carries the run's decisions."""

import json
import os

import numpy as np
import pytest

from multilabel_keras import LabelVocabulary, Predictor, build_model, from_folders
from multilabel_keras.cli import main
from multilabel_keras.data.images import load_images
from multilabel_keras.inference.export import export_run
from multilabel_keras.io import write_json
from multilabel_keras.runs.records import save_thresholds

CLASSES = ["blue", "circle", "red", "square"]


def _run(run_dir, model_name="mobilenetv2", **model_kwargs):
    """A run folder made by hand: untrained model, labels, thresholds, a top_k rule, config."""
    os.makedirs(run_dir)
    model = build_model(model_name, len(CLASSES), (32, 32, 3), **model_kwargs)
    model.save(os.path.join(run_dir, "model.keras"))
    LabelVocabulary(classes=CLASSES).fit([set()]).save(os.path.join(run_dir, "labels.json"))
    save_thresholds(os.path.join(run_dir, "thresholds.json"), [0.3, 0.45, 0.6, 0.75], CLASSES,
                    "test", rule={"policy": "top_k", "k": 2})
    write_json(os.path.join(run_dir, "config.json"), {"image_size": 32})
    return run_dir


def _scores(fmt, path, images):
    """Runs an exported model with the runtime a deployer would use, not with Keras."""
    if fmt == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(path)  # kept alive: serve() refers to its variables
        return np.asarray(loaded.serve(tf.constant(images)))
    if fmt == "tflite":
        import tensorflow as tf

        interpreter = tf.lite.Interpreter(model_path=path)
        entry = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(entry["index"], images.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(entry["index"], images)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images})[0]


# Each format with one attention head (test_calibration exports csra to ONNX after training).
@pytest.mark.parametrize("fmt,head", [("savedmodel", "csra"), ("tflite", "ml_decoder"),
                                      ("onnx", "ml_decoder")])
def test_attention_heads_export_with_calibration_and_flip_tta(tmp_path, folder_data, fmt, head):
    """Every format carries the head, the run's temperatures and its flip TTA: Predictor's scores."""
    from multilabel_keras.runs.records import save_calibration

    run = _run(str(tmp_path / "run"), head=head)
    save_calibration(os.path.join(run, "calibration.json"), [0.5, 1.0, 2.0, 3.0], CLASSES,
                     {"ece_before": 0.2, "ece_after": 0.1})
    write_json(os.path.join(run, "config.json"), {"image_size": 32, "tta": "flip"})
    path = export_run(run, tmp_path / "exported", fmt)
    images = load_images(from_folders(folder_data).paths[:5], 32)
    predictor = Predictor.load(run)
    expected = predictor.predict_scores(images)
    # The oracle of the scores: the model's raw outputs, mirrored, averaged, then calibrated by hand.
    raw = (predictor.model.predict_on_batch(images)
           + predictor.model.predict_on_batch(images[:, :, ::-1].copy())) / 2
    logits = np.log(raw) - np.log1p(-raw)
    np.testing.assert_allclose(expected, 1 / (1 + np.exp(-logits / [0.5, 1.0, 2.0, 3.0])),
                               atol=1e-5)
    np.testing.assert_allclose(_scores(fmt, path, images), expected, atol=1e-4)
    meta = json.loads((tmp_path / "exported" / "export.json").read_text())
    assert meta["tta"] == "flip" and meta["calibration"]["temperatures"]["square"] == 3.0


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite", "onnx"])
def test_exported_model_scores_like_the_predictor(tmp_path, folder_data, fmt):
    # A 2-way softmax head: the export must reduce it to the "present" channel as Predictor does.
    run = _run(str(tmp_path / "run"), head="softmax2")
    path = export_run(run, tmp_path / "exported", fmt)
    paths = from_folders(folder_data).paths[:5]
    images = load_images(paths, 32)
    expected = Predictor.load(run).predict_scores(paths)
    got = _scores(fmt, path, images)
    assert got.shape == (5, len(CLASSES))
    np.testing.assert_allclose(got, expected, atol=1e-4)

    meta = json.loads((tmp_path / "exported" / "export.json").read_text())
    saved = json.loads((tmp_path / "run" / "thresholds.json").read_text())
    assert meta["labels"] == json.loads((tmp_path / "run" / "labels.json").read_text())["classes"]
    assert meta["thresholds"] == saved["thresholds"] and meta["rule"] == saved["rule"]
    assert meta["input"]["shape"] == [None, 32, 32, 3] and meta["input"]["pixel_range"] == [0, 255]
    assert meta["format"] == fmt
    if fmt == "onnx":
        import onnx

        props = {p.key: p.value for p in onnx.load(path).metadata_props}
        assert json.loads(props["multilabel_keras"]) == meta


def test_sigmoid_savedmodel_and_folder_mode(tmp_path, folder_data):
    run = _run(str(tmp_path / "run"), "smallervggnet")
    old = os.umask(0o027)
    try:
        path = export_run(run, tmp_path / "sm", "savedmodel")
    finally:
        os.umask(old)
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o750)
    images = load_images(from_folders(folder_data).paths[:3], 32)
    np.testing.assert_allclose(_scores("savedmodel", path, images),
                               Predictor.load(run).predict_scores(images), atol=1e-4)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_export_refuses_an_existing_folder_and_keeps_it(tmp_path, capsys):
    run = _run(str(tmp_path / "run"), "smallervggnet")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep me")
    assert main(["export", "--run", run, "--format", "onnx", "--out", str(taken)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already exists" in err[0] and str(taken) in err[0]
    assert [p.name for p in taken.iterdir()] == ["mine.txt"]

    assert main(["export", "--run", run, "--format", "tflite", "--out", str(tmp_path / "t")]) == 0
    assert "model.tflite" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "t")) == ["export.json", "model.tflite"]


def test_missing_run_and_missing_converter_are_one_line(tmp_path, capsys, monkeypatch):
    assert main(["export", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2
    assert "no model.keras" in capsys.readouterr().err
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tf2onnx" else real(name, *a))
    run = _run(str(tmp_path / "run"), "smallervggnet")
    assert main(["export", "--run", run, "--format", "onnx", "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "tf2onnx" in err and "[export]" in err and not (tmp_path / "y").exists()
