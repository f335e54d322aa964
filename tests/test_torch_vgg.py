"""The speed benchmark's PyTorch SmallerVGGNet must be the library's network, or the ratio means nothing.

Oracle: the Keras model's own scores on the same pixels, with its weights
copied into the PyTorch one.
"""

import os
import sys

import numpy as np
import torch  # the [backends] extra, which CI installs

from multilabel_keras import build_model
from multilabel_keras.training.recipes import resolve_recipe

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks"))
import torch_vgg  # noqa: E402


def _keras_model(labels=5, size=32):
    model = build_model("smallervggnet", labels, (size, size, 3),
                        **resolve_recipe("smallervggnet")["model_kwargs"])
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            shapes = [w.shape for w in layer.get_weights()]
            layer.set_weights([rng.uniform(0.5, 1.5, shapes[0]), rng.normal(0, 0.1, shapes[1]),
                               rng.normal(0, 0.1, shapes[2]), rng.uniform(0.5, 2.0, shapes[3])])
    return model


def _copy_weights(keras_model, net):
    keras_layers = [layer for layer in keras_model.layers if layer.get_weights()]
    torch_layers = [m for m in net.modules()
                    if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.BatchNorm2d,
                                      torch.nn.BatchNorm1d))]
    assert len(keras_layers) == len(torch_layers)
    with torch.no_grad():
        for source, target in zip(keras_layers, torch_layers):
            weights = source.get_weights()
            if isinstance(target, torch.nn.Conv2d):
                target.weight.copy_(torch.from_numpy(weights[0].transpose(3, 2, 0, 1)))
                target.bias.copy_(torch.from_numpy(weights[1]))
            elif isinstance(target, torch.nn.Linear):
                target.weight.copy_(torch.from_numpy(weights[0].T))
                target.bias.copy_(torch.from_numpy(weights[1]))
            else:
                for name, value in zip(("weight", "bias", "running_mean", "running_var"), weights):
                    getattr(target, name).copy_(torch.from_numpy(value))


def test_the_pytorch_network_is_the_keras_recipe_network():
    keras_model = _keras_model()
    net = torch_vgg.SmallerVGGNet(5)
    assert sum(p.numel() for p in net.parameters()) == keras_model.count_params() - sum(
        int(np.prod(w.shape)) for w in keras_model.non_trainable_weights)
    _copy_weights(keras_model, net)
    images = np.random.default_rng(1).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    expected = keras_model.predict_on_batch(images)
    np.testing.assert_allclose(torch_vgg.predict(net, images), expected, atol=1e-5)


def test_augmentation_keeps_shape_range_and_layout_and_is_seeded():
    batch = torch.rand(4, 3, 32, 32) * 255
    a = torch_vgg.augment(batch, torch.Generator().manual_seed(0))
    b = torch_vgg.augment(batch, torch.Generator().manual_seed(0))
    assert a.shape == batch.shape and a.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(a, b) and 0 <= a.min() and a.max() <= 255
    assert not torch.allclose(a, batch)


def test_training_from_files_and_from_memory_counts_every_step(tmp_path):
    import cv2

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f"{i}.jpg"))
        assert cv2.imwrite(paths[-1], image)
    targets = rng.integers(0, 2, (8, 3)).astype(np.float32)
    seen = []
    model = torch_vgg.train_from_files(paths, targets, 32, epochs=2, batch_size=4, workers=0,
                                       on_epoch=lambda epoch, n: seen.append(n))
    assert seen == [8, 8]
    torch.manual_seed(0)  # train_* seeds the weights the same way
    assert not torch.equal(model.head[0].weight, torch_vgg.SmallerVGGNet(3).head[0].weight)
    seen.clear()
    torch_vgg.train_in_ram(images, targets, epochs=1, batch_size=4,
                           on_epoch=lambda epoch, n: seen.append(n))
    assert seen == [8]
