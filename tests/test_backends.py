"""The core tests pass on the JAX and PyTorch backends too (tf.data still feeds them).

Each backend runs in its own interpreter: Keras picks its backend once,
at import, from ``KERAS_BACKEND``.
"""

import importlib.util
import os
import subprocess
import sys

import keras
import pytest

# Models, losses, metrics, data pipeline and augmentation, the linear probe and LP-FT pieces,
# cached maps and features, prediction, Grad-CAM, and one run through every stage (export
# included). Slow end-to-end tests, resume and the export matrix run on TensorFlow only, to
# keep CI under 30 minutes (export from another backend runs on TensorFlow anyway).
CORE = [
    "tests/test_backends.py::test_the_backend_asked_for_is_the_one_running",
    "tests/test_models.py", "tests/test_losses.py", "tests/test_metrics.py",
    "tests/test_compile.py", "tests/test_heads.py", "tests/test_pipeline.py",
    "tests/test_augment.py", "tests/test_inference.py", "tests/test_explain.py",
    "tests/test_lpft.py", "tests/test_cached_front.py", "tests/test_features.py",
    "tests/test_backends.py::test_train_predict_explain_export_round_trip",
]
PACKAGES = {"jax": ("jax", "jaxlib"), "torch": ("torch",)}


def test_the_backend_asked_for_is_the_one_running():
    assert keras.backend.backend() == os.environ.get("KERAS_BACKEND", "tensorflow")


@pytest.mark.slow
@pytest.mark.parametrize("backend", sorted(PACKAGES))
def test_core_tests_pass_on(backend):
    missing = [p for p in PACKAGES[backend] if importlib.util.find_spec(p) is None]
    assert not missing, f"the {backend} backend needs {missing}: pip install -e '.[backends]'"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run(
        # -n 0: this test already holds one of the suite's workers; no workers of its own.
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore", "-n", "0",
         "-m", "not slow", *CORE],
        cwd=root, env=env, capture_output=True, text=True, timeout=1200)
    tail = "\n".join(done.stdout.splitlines()[-25:])
    assert done.returncode == 0, f"{backend}:\n{tail}"
    assert " passed" in tail and "failed" not in tail


def test_train_predict_explain_export_round_trip(tmp_path, folder_data):
    """One tiny run through every stage on whichever backend this interpreter runs."""
    import json

    import numpy as np
    from sklearn.metrics import average_precision_score

    from multilabel_keras import (Predictor, evaluate, explain, export_run, from_folders,
                                  train)
    from multilabel_keras.data.images import load_images

    samples = from_folders(folder_data)
    result = train(samples, tmp_path / "run", "smallervggnet", image_size=32, epochs=2,
                   batch_size=8, verbose=0)
    predictor = Predictor.load(result.run_dir)
    images = load_images(samples.paths, 32)
    scores = predictor.predict_scores(images)
    direct = keras.ops.convert_to_numpy(predictor.model(images, training=False))
    # Oracle: the model's own outputs, calibrated with calibration.json's temperatures by hand.
    temperatures = np.array([json.load(open(f"{result.run_dir}/calibration.json"))["temperatures"][n]
                             for n in result.vocabulary.classes_])
    logits = np.log(np.clip(direct, 1e-7, 1 - 1e-7)) - np.log1p(-np.clip(direct, 1e-7, 1 - 1e-7))
    calibrated = np.where(temperatures == 1, direct, 1 / (1 + np.exp(-logits / temperatures)))
    np.testing.assert_allclose(scores, calibrated, atol=1e-5)
    y = result.vocabulary.transform(samples.labels)
    report = evaluate(predictor, samples)
    assert report["mAP"] == pytest.approx(
        average_precision_score(y, scores, average="macro"), abs=1e-6)
    heat = explain(predictor, samples.paths[0], "red", out=str(tmp_path / "cam.png"))
    assert heat["heat"].shape == (32, 32) and 0.0 <= heat["heat"].min() <= heat["heat"].max() <= 1.0
    assert heat["score"] == pytest.approx(scores[0, result.vocabulary.classes_.index("red")],
                                          abs=1e-5)
    path = export_run(result.run_dir, tmp_path / "exported", "savedmodel")
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    np.testing.assert_allclose(np.asarray(loaded.serve(tf.constant(images))), scores, atol=1e-4)
