"""backbone_weights_from_h5: a backbone nested in a saved classifier comes out array for array."""

import h5py
import keras
import numpy as np
import pytest

from multilabel_keras.models.transfer import build_backbone
from multilabel_keras.models.weights_from_model import backbone_weights_from_h5


def _classifier(path):
    backbone = build_backbone("mobilenetv2", (32, 32, 3))[0]
    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    keras.Model(inputs, keras.layers.Dense(3)(pooled)).save(path)  # legacy whole-model .h5
    return backbone


def test_backbone_comes_out_of_a_whole_model_file(tmp_path):
    source = _classifier(str(tmp_path / "classifier.h5"))
    out = tmp_path / "mobilenetv2.weights.h5"
    copied = backbone_weights_from_h5(tmp_path / "classifier.h5", "mobilenetv2", out, 32)
    loaded = build_backbone("mobilenetv2", (32, 32, 3), out)[0]
    fresh = build_backbone("mobilenetv2", (32, 32, 3))[0]
    assert copied == len(source.weights) == len(loaded.get_weights())
    for want, got in zip(source.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(got, want)
    # The oracle is not trivially met: a new backbone starts elsewhere.
    assert any(not np.array_equal(a, b) for a, b in zip(fresh.get_weights(), loaded.get_weights()))


def test_incomplete_or_foreign_files_are_named(tmp_path):
    _classifier(str(tmp_path / "classifier.h5"))
    with h5py.File(tmp_path / "classifier.h5", "a") as f:
        del f["model_weights/backbone/Conv1"]
    out = tmp_path / "x.weights.h5"
    with pytest.raises(ValueError, match=r"classifier\.h5 holds no complete mobilenetv2 .*Conv1"):
        backbone_weights_from_h5(tmp_path / "classifier.h5", "mobilenetv2", out, 32)
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match=r"text\.h5 is not an HDF5"):
        backbone_weights_from_h5(tmp_path / "text.h5", "mobilenetv2", out, 32)
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        backbone_weights_from_h5(tmp_path / "missing.h5", "mobilenetv2", out, 32)
    assert not out.exists()
