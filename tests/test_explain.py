import cv2
import keras
import numpy as np
import pytest

from multilabel_keras import LabelVocabulary, from_folders, train
from multilabel_keras.data.images import load_images
from multilabel_keras.inference.explain import explain, grad_cam

from conftest import write_rgb


def _red_detector():
    """A hand-set model: a 1x1 conv that fires on red, pooled, one sigmoid."""
    inputs = keras.Input((32, 32, 3))
    conv = keras.layers.Conv2D(1, 1, activation="relu", name="red_map")
    x = conv(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(2, activation="sigmoid", name="predictions")
    outputs = dense(x)
    model = keras.Model(inputs, outputs)
    conv.set_weights([np.array([1.0, -0.5, -0.5]).reshape(1, 1, 3, 1) / 255, np.zeros(1)])
    dense.set_weights([np.array([[4.0, -4.0]]), np.zeros(2)])
    return model


def test_heat_falls_where_the_object_is():
    image = np.full((1, 32, 32, 3), 200.0, np.float32)
    image[0, 10:20, 3:12] = (220, 30, 30)  # a red patch in the left half
    heat, score = grad_cam(_red_detector(), image, label_index=0)
    assert heat.shape == (1, 32, 32) and 0 <= heat.min() and heat.max() == pytest.approx(1.0)
    assert heat[0, :, :16].sum() / heat[0].sum() > 0.9
    assert heat[0, 14, 7] > 0.9 and heat[0, 14, 28] < 0.05
    assert 0.5 < score[0] < 1


def test_grad_cam_refuses_a_model_without_spatial_features():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="sigmoid")(inputs))
    with pytest.raises(ValueError, match="4-D output"):
        grad_cam(model, np.zeros((1, 4)), 0)


@pytest.mark.slow
def test_explain_a_run_writes_an_overlay(tmp_path, folder_data):
    train(from_folders(folder_data), tmp_path / "run", image_size=32, batch_size=8, epochs=1,
          val_split=0, verbose=0, train_map_samples=0)
    photo = tmp_path / "photo.jpg"
    write_rgb(str(photo), np.full((40, 60, 3), 128, np.uint8))
    result = explain(tmp_path / "run", photo, "red")
    assert result["heat"].shape == (32, 32)
    model = keras.saving.load_model(tmp_path / "run" / "model.keras", safe_mode=True)
    red = LabelVocabulary.load(tmp_path / "run" / "labels.json").classes_.index("red")
    expected = model.predict_on_batch(load_images([photo], 32))[0, red]
    assert result["score"] == pytest.approx(float(expected), abs=1e-5)
    drawn = cv2.imread(result["overlay"])
    # A 40x60 photo is drawn at a usable size (long side 256, same aspect), bar on the right.
    assert drawn.shape == (round(40 * 256 / 60), 256 + 48, 3)
    jet = cv2.applyColorMap(np.array([[255], [0]], np.uint8), cv2.COLORMAP_JET)[:, 0]
    np.testing.assert_allclose(drawn[0, 256 + 14].astype(int), jet[0].astype(int), atol=4)
    np.testing.assert_allclose(drawn[-1, 256 + 14].astype(int), jet[1].astype(int), atol=4)
    with pytest.raises(ValueError, match="label 'green' is not in the run's labels"):
        explain(tmp_path / "run", photo, "green")
