"""The one compile path: each head gets its loss, -1 stays unknown in every phase."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from multilabel_keras import Samples, TransferSchedule, build_model, compile_model, fine_tune, train
from multilabel_keras.losses import PairwiseSoftmaxLoss
from multilabel_keras.models.outputs import output_heads
from multilabel_keras.models.transfer import build_backbone

from conftest import make_folder_data

# Label 1 known positive at p = 0.5, label 2 unknown: the masked mean is -log(0.5).
Y, P = np.array([[1.0, -1.0]]), np.array([[0.5, 0.9]])
MASKED = -math.log(0.5)


def _loss_value(model, y=Y, p=P):
    return float(keras.ops.convert_to_numpy(model.loss(y, p)))


def test_heads_are_read_from_the_model():
    assert output_heads(build_model("mlp", 3, (4,))) == {"predictions": "sigmoid"}
    assert output_heads(build_model("mobilenetv2", 3, (32, 32, 3), head="softmax2")) == {
        "predictions": "softmax2"}
    twin = build_model("xception_twin", 3, (71, 71, 3), backbone="mobilenetv2")
    assert output_heads(twin) == {"class_a": "softmax", "class_b": "softmax", "same": "sigmoid"}


def test_each_head_gets_its_own_loss_and_mismatches_are_refused():
    sigmoid = build_model("mlp", 2, (4,))
    assert compile_model(sigmoid).name == "bce"
    assert _loss_value(sigmoid) == pytest.approx(MASKED, rel=1e-5)
    pairs = build_model("mobilenetv2", 2, (32, 32, 3), head="softmax2")
    assert isinstance(compile_model(pairs), PairwiseSoftmaxLoss)
    with pytest.raises(ValueError, match="2-way softmax per label.*'softmax2', not 'focal'"):
        compile_model(pairs, loss="focal")
    with pytest.raises(ValueError, match="needs the 2-way softmax head"):
        compile_model(sigmoid, loss="softmax2")
    with pytest.raises(ValueError, match="unknown loss 'nope'"):
        compile_model(sigmoid, loss="nope")


def test_weighted_bce_by_name_weighs_from_the_training_targets():
    model = build_model("mlp", 2, (4,))
    targets = np.array([[1, 0], [0, 0], [0, 1], [0, -1]])
    loss = compile_model(model, loss="weighted_bce", train_targets=targets)
    assert loss.pos_weight == [3.0, 2.0]  # negatives / positives, counted by hand


def test_twin_gets_one_loss_per_output_and_its_accuracies():
    twin = build_model("xception_twin", 3, (71, 71, 3), backbone="mobilenetv2")
    losses = compile_model(twin, loss_weights={"class_a": 1.0, "class_b": 1.0, "same": 0.5})
    assert isinstance(losses["class_a"], keras.losses.CategoricalCrossentropy)
    assert losses["same"].name == "bce"
    with pytest.raises(ValueError, match="categorical cross-entropy, not 'asl'"):
        compile_model(twin, loss={"class_a": "asl"})


def test_fine_tune_keeps_unknown_targets_out_of_the_loss(tmp_path):
    # Before the one compile path, fine_tune used Keras' plain BCE: -2.09 for this target.
    path = str(tmp_path / "mnv2.weights.h5")
    build_backbone("mobilenetv2", (32, 32, 3))[0].save_weights(path)
    model = build_model("mobilenetv2", 2, (32, 32, 3), weights=path)
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    y = np.array([[1, -1], [0, 1], [-1, -1], [1, 0]], "float32")
    fine_tune(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(4), epochs=1, start="last:1",
              verbose=0)
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert _loss_value(model) == pytest.approx(MASKED, rel=1e-5)


@pytest.mark.slow
def test_every_phase_of_a_schedule_trains_on_the_masked_loss(tmp_path):
    path = str(tmp_path / "mnv2.weights.h5")
    build_backbone("mobilenetv2", (32, 32, 3))[0].save_weights(path)
    base = make_folder_data(tmp_path / "data", per_folder=3)
    paths = sorted(str(p) for p in base.rglob("*.jpg"))
    # Partial labels: the shape is unknown for every second image.
    labels = [{p.split("/")[-2].split("_")[0]} | ({p.split("/")[-2].split("_")[1]} if i % 2 else set())
              for i, p in enumerate(paths)]
    unknown = [set() if i % 2 else {"circle", "square"} for i in range(len(paths))]
    samples = Samples(paths, labels, unknown)
    seen = []

    class LossProbe(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append((type(self.model.optimizer).__name__, _loss_value(self.model)))

    original_fit = keras.Model.fit

    def fit_with_probe(self, *args, callbacks=None, **kwargs):
        return original_fit(self, *args, callbacks=[*(callbacks or []), LossProbe()], **kwargs)

    keras.Model.fit = fit_with_probe
    try:
        result = train(samples, tmp_path / "run", "mobilenetv2", weights=path, image_size=32,
                       batch_size=4, val_split=0.25, verbose=0, train_map_samples=0,
                       schedule=TransferSchedule(1, 1, "last:1", final_epochs=1))
    finally:
        keras.Model.fit = original_fit
    assert [name for name, _ in seen] == ["Adam", "SGD", "SGD"]
    assert all(value == pytest.approx(MASKED, rel=1e-5) for _, value in seen)
    assert all(np.isfinite(row["loss"]) for row in result.history)
