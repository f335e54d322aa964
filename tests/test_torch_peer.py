"""The accuracy suite's PyTorch peer: the ported network must be the Keras network, the plan fastai's.

Oracles: the Keras MobileNetV2's own output on the same pixels; fastai's
one-cycle formula written out by hand.
"""

import math
import os
import sys

import keras
import numpy as np
import pytest
import torch  # the [backends] extra, which CI installs
sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks"))
import torch_peer  # noqa: E402


def _keras_backbone(size, seed=0):
    model = keras.applications.MobileNetV2(input_shape=(size, size, 3), include_top=False,
                                           weights=None)
    rng = np.random.default_rng(seed)
    # Fresh batch-norm layers are identities; random statistics make a wrong port show.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shapes = [w.shape for w in layer.get_weights()]
            layer.set_weights([rng.uniform(0.5, 1.5, shapes[0]), rng.normal(0, 0.1, shapes[1]),
                               rng.normal(0, 0.1, shapes[2]), rng.uniform(0.5, 2.0, shapes[3])])
    return model


@pytest.mark.parametrize("size", [32, 45])
def test_ported_mobilenetv2_computes_the_keras_feature_map(size):
    # 45 is odd: TensorFlow's "same" padding then pads on both sides, not only after.
    backbone = _keras_backbone(size)
    x = np.random.default_rng(1).uniform(-1, 1, (2, size, size, 3)).astype("float32")
    expected = backbone.predict_on_batch(x)
    ported = torch_peer.port_mobilenetv2(backbone)
    with torch.no_grad():
        got = ported(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy().transpose(0, 2, 3, 1)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_one_cycle_follows_fastais_formula():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=1.0, betas=(0.9, 0.99))
    steps, peak, div, pct = 40, 1e-3, 5.0, 0.3
    scheduler = torch_peer._one_cycle(optimizer, peak, steps, pct, div)
    rates, betas = [], []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        betas.append(optimizer.param_groups[0]["betas"][0])
        optimizer.step()
        scheduler.step()
    top = round(pct * steps) - 1

    def cosine(start, end, fraction):
        return end + (start - end) * (1 + math.cos(math.pi * fraction)) / 2

    assert rates[0] == pytest.approx(peak / div)
    assert max(rates) == pytest.approx(peak)
    assert rates[top] == pytest.approx(peak)
    assert rates[-1] == pytest.approx(peak / 1e5)
    middle = top + (steps - 1 - top) // 2
    assert rates[middle] == pytest.approx(cosine(peak, peak / 1e5, (middle - top) / (steps - 1 - top)))
    # Momentum runs the other way: 0.95 at the ends, 0.85 at the peak rate.
    assert betas[0] == pytest.approx(0.95) and betas[top] == pytest.approx(0.85)


def test_augment_keeps_shape_range_and_is_seeded():
    batch = torch.rand(4, 3, 16, 16) * 2 - 1
    one = torch_peer.augment(batch, torch.Generator().manual_seed(3))
    two = torch_peer.augment(batch, torch.Generator().manual_seed(3))
    assert one.shape == batch.shape
    assert float(one.min()) >= -1 and float(one.max()) <= 1
    assert torch.equal(one, two)
    assert not torch.equal(one, batch)


def test_fine_tune_trains_body_and_head_and_freezes_the_body_first():
    backbone = _keras_backbone(32)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    targets = (rng.uniform(size=(8, 3)) < 0.5).astype("float32")
    before = torch_peer.port_mobilenetv2(backbone).layers[0].conv.weight.detach().clone()
    one_epoch = torch_peer.fine_tune(backbone, images, targets, epochs=1, seed=0, batch_size=4)
    # fine_tune(epochs=1) is the frozen epoch alone: convolutions untouched, batch norm trained.
    assert torch.equal(one_epoch.body.layers[0].conv.weight, before)
    two_epochs = torch_peer.fine_tune(backbone, images, targets, epochs=2, seed=0, batch_size=4)
    assert not torch.equal(two_epochs.body.layers[0].conv.weight, before)
    scores = torch_peer.predict(two_epochs, images)
    assert scores.shape == (8, 3)
    assert np.all((scores >= 0) & (scores <= 1))
    again = torch_peer.predict(torch_peer.fine_tune(backbone, images, targets, epochs=2, seed=0,
                                                    batch_size=4), images)
    np.testing.assert_allclose(scores, again, atol=1e-6)
