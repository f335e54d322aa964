import math

import keras
import numpy as np
import pytest

from multilabel_keras import losses
from multilabel_keras.losses import (
    AsymmetricLoss,
    MultiLabelFocalLoss,
    PairwiseSoftmaxLoss,
    WeightedBinaryCrossentropy,
)


def test_asl_matches_a_hand_computed_example():
    # Positive p=0.9: (1-0.9)^1 * -log(0.9). Negative p=0.3: shifted to
    # 0.25, 0.25^4 * -log(0.75). Negative p=0.03 < clip: contributes 0.
    pos = 0.1 * -math.log(0.9)
    neg = 0.25**4 * -math.log(0.75)
    loss = AsymmetricLoss()  # gamma_neg=4, gamma_pos=1, clip=0.05
    assert (loss.gamma_neg, loss.gamma_pos, loss.clip) == (4.0, 1.0, 0.05)
    value = float(loss([[1.0, 0.0, 0.0]], [[0.9, 0.3, 0.03]]))
    assert value == pytest.approx((pos + neg + 0.0) / 3, rel=1e-5)


def test_focal_and_weighted_bce_known_values():
    # Focal, gamma 2, alpha 0.25: positive p=0.8 -> 0.25 * 0.2^2 * -log 0.8;
    # negative p=0.4 -> 0.75 * 0.4^2 * -log 0.6.
    expected = (0.25 * 0.04 * -math.log(0.8) + 0.75 * 0.16 * -math.log(0.6)) / 2
    assert float(MultiLabelFocalLoss()([[1.0, 0.0]], [[0.8, 0.4]])) == pytest.approx(expected, rel=1e-5)
    assert float(MultiLabelFocalLoss(gamma=0, alpha=None)([[1.0, 0.0]], [[0.8, 0.4]])) == pytest.approx(
        float(keras.losses.BinaryCrossentropy()([[1.0, 0.0]], [[0.8, 0.4]])), rel=1e-4)
    # Weighted BCE: 3 * -log 0.6 for the positive, -log 0.8 for the negative.
    wbce = WeightedBinaryCrossentropy(pos_weight=[3.0, 5.0])
    expected = (3 * -math.log(0.6) + -math.log(0.8)) / 2
    assert float(wbce([[1.0, 0.0]], [[0.6, 0.2]])) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", ["bce", "weighted_bce", "focal", "asl"])
def test_logits_equal_probabilities_and_unknown_is_ignored(name):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 5)).astype("float32")
    probs = 1 / (1 + np.exp(-logits))
    y = (rng.random((4, 5)) < 0.4).astype("float32")
    kwargs = {"pos_weight": [2.0] * 5} if name == "weighted_bce" else {}
    a = float(losses.get(name, **kwargs)(y, probs))
    b = float(losses.get(name, from_logits=True, **kwargs)(y, logits))
    assert a == pytest.approx(b, rel=1e-4)
    # Marking entries unknown equals dropping them: column 4 unknown
    # everywhere is the 4-label loss on the other columns.
    y_masked = y.copy()
    y_masked[:, 4] = -1
    full = float(losses.get(name, **{k: [2.0] * 4 for k in kwargs})(y[:, :4], probs[:, :4]))
    assert float(losses.get(name, **kwargs)(y_masked, probs)) == pytest.approx(full, rel=1e-5)
    # Whatever the model outputs for an unknown entry, the loss does not move.
    moved = probs.copy()
    moved[:, 4] = 0.999
    assert float(losses.get(name, **kwargs)(y_masked, moved)) == pytest.approx(full, rel=1e-5)


def test_pairwise_softmax_masks_too():
    probs = np.array([[[0.1, 0.9], [0.8, 0.2], [0.5, 0.5]]], "float32")
    value = float(PairwiseSoftmaxLoss()([[1.0, 0.0, -1.0]], probs))
    assert value == pytest.approx((-math.log(0.9) - math.log(0.8)) / 2, rel=1e-5)


def test_get_and_pos_weights():
    assert isinstance(losses.get("asl"), AsymmetricLoss)
    assert losses.get("bce").name == "bce"
    with pytest.raises(ValueError, match="unknown loss 'asll'"):
        losses.get("asll")
    assert losses.pos_weights_from_frequencies([[1, 0], [0, 0], [0, 0], [0, -1]]) == [3.0, 100.0]
    with pytest.raises(ValueError, match="pos_weight"):
        WeightedBinaryCrossentropy(pos_weight=[-1.0])


@pytest.mark.parametrize("name", ["bce", "weighted_bce", "focal", "asl", "softmax2"])
def test_each_loss_trains_a_tiny_model_and_round_trips(name, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(32, 6)).astype("float32")
    y = (x[:, :3] > 0).astype("float32")
    y[::5, 1] = -1  # partial labels
    inputs = keras.Input((6,))
    if name == "softmax2":
        outputs = keras.layers.Softmax()(keras.layers.Reshape((3, 2))(keras.layers.Dense(6)(inputs)))
    else:
        outputs = keras.layers.Dense(3, activation="sigmoid")(inputs)
    model = keras.Model(inputs, outputs)
    kwargs = {"pos_weight": [1.0, 2.0, 3.0]} if name == "weighted_bce" else {}
    model.compile(keras.optimizers.Adam(0.05), losses.get(name, **kwargs))
    history = model.fit(x, y, epochs=5, batch_size=8, verbose=0).history["loss"]
    assert all(np.isfinite(history)) and history[-1] < history[0]
    path = str(tmp_path / "m.keras")
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored.loss).__name__ == type(model.loss).__name__
    assert restored.loss.get_config() == model.loss.get_config()
    assert float(restored.evaluate(x, y, verbose=0)) == pytest.approx(
        float(model.evaluate(x, y, verbose=0)), rel=1e-5)
