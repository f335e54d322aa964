"""SmallerVGGNet in plain PyTorch, trained the way the library trains it: the speed peer.

The same network as ``build_model("smallervggnet")`` with the library's recipe
(convolutions 32 / 64x2 / 128x2 with ReLU then batch norm, max pooling 3-2-2,
dropout 0.1 between stages, global average pooling, dense 1024, dropout 0.5,
sigmoid outputs with binary cross-entropy, Adam at 1e-3, batch 16), in
channels-last memory, fed three ways:

``train_in_ram``   decoded images held as one tensor, augmented per batch;
``train_from_files`` JPEG files decoded by a ``DataLoader`` (OpenCV in
                   worker processes, as many workers as ``tf.data`` uses),
                   then augmented per batch;
both with the recipe's augmentation written in PyTorch (shifts of 10%, zoom
of 10%, left-right flips, one bilinear resampling) and a hue turn of the
same share of each batch as the library's recolouring. ``compiled=True``
runs the model under ``torch.compile``.

``benchmarks/train_throughput.py`` times these beside the library's paths;
``benchmarks/predict_latency.py`` uses ``predict`` at batch 1 and 64.
"""

import math
import os

import cv2
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F


class SmallerVGGNet(nn.Module):
    """The recipe's SmallerVGGNet (``pooling="avg"``, ``stage_dropout=0.1``) on ``(N, 3, H, W)`` 0-255."""

    def __init__(self, num_labels, stage_dropout=0.1, dropout=0.5):
        super().__init__()
        layers, channels = [], 3
        for filters, convs, pool in ((32, 1, 3), (64, 2, 2), (128, 2, 2)):
            for _ in range(convs):
                # ReLU then batch norm, in the Keras model's order.
                layers += [nn.Conv2d(channels, filters, 3, padding=1), nn.ReLU(inplace=True),
                           nn.BatchNorm2d(filters, eps=1e-3, momentum=0.01)]
                channels = filters
            layers += [nn.MaxPool2d(pool), nn.Dropout(stage_dropout)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(channels, 1024), nn.ReLU(inplace=True),
                                  nn.BatchNorm1d(1024, eps=1e-3, momentum=0.01),
                                  nn.Dropout(dropout), nn.Linear(1024, num_labels))

    def forward(self, x):
        x = self.features(x / 255.0)
        return self.head(x.mean(dim=(2, 3)))  # logits


def augment(batch, generator, recolour=0.75):
    """Shifts, zoom and flips in one bilinear resampling, and a hue turn on a share of the batch."""
    n = batch.shape[0]
    uniform = lambda low, high: low + (high - low) * torch.rand(n, generator=generator)  # noqa: E731
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    zoom = uniform(0.9, 1.1)
    zeros = torch.zeros(n)
    theta = torch.stack([torch.stack([flip / zoom, zeros, uniform(-0.2, 0.2)], 1),
                         torch.stack([zeros, 1 / zoom, uniform(-0.2, 0.2)], 1)], 1)
    grid = F.affine_grid(theta, batch.shape, align_corners=False)
    out = F.grid_sample(batch, grid, padding_mode="border", align_corners=False)
    # Hue turn: a rotation about the grey axis (YIQ), angle uniform, on `recolour` of the batch.
    angle = torch.where(torch.rand(n, generator=generator) < recolour,
                        uniform(0, 2 * math.pi), torch.zeros(n))
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    cos, sin, one, zero = torch.cos(angle), torch.sin(angle), torch.ones(n), torch.zeros(n)
    turn = torch.stack([torch.stack([one, zero, zero], 1), torch.stack([zero, cos, -sin], 1),
                        torch.stack([zero, sin, cos], 1)], 1)
    matrix = torch.linalg.inv(to_yiq) @ turn @ to_yiq  # (n, 3, 3)
    out = torch.einsum("nij,njhw->nihw", matrix, out)
    return out.clamp(0, 255).contiguous(memory_format=torch.channels_last)


class FileImages(torch.utils.data.Dataset):
    """JPEG files decoded with OpenCV and resized to a square, with their label vectors."""

    def __init__(self, paths, targets, size):
        self.paths, self.targets, self.size = list(paths), targets, size

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        data = np.fromfile(os.fspath(self.paths[i]), np.uint8)
        image = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        image = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(image).permute(2, 0, 1), self.targets[i]


def _model(num_labels, compiled, seed):
    torch.manual_seed(seed)
    model = SmallerVGGNet(num_labels).to(memory_format=torch.channels_last)
    runner = torch.compile(model) if compiled else model
    return model, runner, torch.optim.Adam(model.parameters(), lr=1e-3)


def _step(runner, optimizer, loss_fn, x, y):
    loss = loss_fn(runner(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def train_in_ram(images, targets, epochs, batch_size=16, compiled=False, seed=0, on_epoch=None):
    """Trains on decoded images ``(N, H, W, 3)`` 0-255 held in memory.

    Args:
        images: uint8 or float pixels.
        targets: ``(N, L)`` multi-hot.
        epochs: passes over the images.
        batch_size: images per step.
        compiled: run the model under ``torch.compile``.
        seed: weights, order and augmentation.
        on_epoch: called with ``(epoch, images_seen)`` after each epoch.

    Returns:
        The trained ``SmallerVGGNet``.
    """
    x_all = torch.from_numpy(np.asarray(images, np.float32)).permute(0, 3, 1, 2)
    y_all = torch.from_numpy(np.asarray(targets, np.float32))
    model, runner, optimizer = _model(y_all.shape[1], compiled, seed)
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.BCEWithLogitsLoss()
    steps = len(x_all) // batch_size
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x_all), generator=generator)
        for step in range(steps):
            index = order[step * batch_size:(step + 1) * batch_size]
            _step(runner, optimizer, loss_fn, augment(x_all[index], generator), y_all[index])
        if on_epoch:
            on_epoch(epoch, steps * batch_size)
    return model


def train_from_files(paths, targets, size, epochs, batch_size=16, workers=2, seed=0,
                     on_epoch=None):
    """Trains from JPEG files through a ``DataLoader`` (decoding in ``workers`` processes).

    Args and Returns as ``train_in_ram``, with ``paths`` and the image ``size``.
    """
    y_all = torch.from_numpy(np.asarray(targets, np.float32))
    model, runner, optimizer = _model(y_all.shape[1], False, seed)
    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        FileImages(paths, y_all, size), batch_size=batch_size, shuffle=True, drop_last=True,
        num_workers=workers, persistent_workers=workers > 0, generator=generator)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    for epoch in range(epochs):
        seen = 0
        for x, y in loader:
            _step(runner, optimizer, loss_fn, augment(x.float(), generator), y)
            seen += len(x)
        if on_epoch:
            on_epoch(epoch, seen)
    return model


def predict(model, images):
    """Sigmoid scores of ``(N, H, W, 3)`` 0-255 images in one forward pass (eval mode, no grad)."""
    model.eval()
    with torch.inference_mode():
        x = torch.from_numpy(np.asarray(images, np.float32)).permute(0, 3, 1, 2)
        return torch.sigmoid(model(x.contiguous(memory_format=torch.channels_last))).numpy()
