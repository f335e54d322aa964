"""The PyTorch peer: fastai's ``fine_tune`` plan in plain PyTorch, on the same MobileNetV2 weights.

The accuracy suite's yardstick for transfer learning is what a knowledgeable
PyTorch user would run: a vision learner with fastai's defaults. fastai
itself is not installed here, so this file is that recipe written out in
PyTorch 2.13 (CPU), on the very weights the library's rows use:

- **the network**: MobileNetV2 built in PyTorch, every weight copied from the
  Keras backbone (``port_mobilenetv2``), TensorFlow's ``same`` padding kept so
  the ported network computes the Keras features (tested to 1e-4). Inputs are
  scaled to ``[-1, 1]`` as the weights were trained.
- **the head**: fastai's ``create_head``: average and max pooling
  concatenated, batch norm, dropout 0.25, 512 units with ReLU, batch norm,
  dropout 0.5, one logit per label; ``BCEWithLogitsLoss``.
- **the plan**: ``fine_tune(epochs - 1, base_lr=2e-3, freeze_epochs=1,
  lr_mult)``: one one-cycle epoch with the body frozen except its batch norm
  (``train_bn``), then every layer for the other epochs, one-cycle at
  ``base_lr / 2`` starting at a fifth of it (``div=5``, ``pct_start=0.3``),
  the body at ``1 / lr_mult`` of the head's rate. AdamW with fastai's betas
  (0.9, 0.99), eps 1e-5, decoupled weight decay 0.01, and one-cycle momentum
  0.95 → 0.85 → 0.95. ``lr_mult=100`` is fastai's default; ``lr_mult=10`` is
  the variant that beat the library by 0.06-0.10 mAP in the comparison that
  opened issue 25.
- **the data**: the same decoded images in RAM (channels-last tensors),
  batch 32, shuffled, the last partial batch dropped (fastai's default),
  augmented per batch as fastai's ``aug_transforms`` does: a mirror, up to
  10 degrees of rotation and 1.1x zoom (each affine with probability
  0.75), brightness and contrast by up to 0.2. Perspective warp is left out.

Threads: ``torch.set_num_threads`` gets what TensorFlow uses, so the wall
times compare at equal threads.
"""

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# (expansion, output channels, repeats, first stride) of MobileNetV2's 17 inverted residual blocks.
BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))


def same_padding(x, kernel, stride):
    """TensorFlow's ``padding="same"``: the odd pixel of padding goes after, not before."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class ConvBN(nn.Module):
    def __init__(self, cin, cout, kernel=1, stride=1, groups=1, relu=True):
        super().__init__()
        self.kernel, self.stride, self.relu = kernel, stride, relu
        self.conv = nn.Conv2d(cin, cout, kernel, stride, groups=groups, bias=False)
        # Keras' epsilon, so the ported statistics give the Keras numbers.
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x):
        if self.kernel > 1:
            x = same_padding(x, self.kernel, self.stride)
        x = self.bn(self.conv(x))
        return F.relu6(x) if self.relu else x


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, expansion, stride):
        super().__init__()
        hidden = cin * expansion
        self.expand = ConvBN(cin, hidden) if expansion != 1 else None
        self.depthwise = ConvBN(hidden, hidden, 3, stride, groups=hidden)
        self.project = ConvBN(hidden, cout, relu=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        out = self.expand(x) if self.expand is not None else x
        out = self.project(self.depthwise(out))
        return x + out if self.residual else out


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0) without its top: a ``(N, 1280, h, w)`` feature map."""

    def __init__(self):
        super().__init__()
        layers, cin = [ConvBN(3, 32, 3, 2)], 32
        for expansion, cout, repeats, stride in BLOCKS:
            for i in range(repeats):
                layers.append(InvertedResidual(cin, cout, expansion, stride if i == 0 else 1))
                cin = cout
        layers.append(ConvBN(cin, 1280))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


def _keras_names():
    """Keras layer-name prefixes of each ConvBN, in the order ``MobileNetV2.modules`` meets them."""
    names, block = [("Conv1", "bn_Conv1")], 0
    for expansion, _, repeats, _ in BLOCKS:
        for _ in range(repeats):
            prefix = f"block_{block}_" if block else "expanded_conv_"
            if expansion != 1:
                names.append((f"{prefix}expand", f"{prefix}expand_BN"))
            names.append((f"{prefix}depthwise", f"{prefix}depthwise_BN"))
            names.append((f"{prefix}project", f"{prefix}project_BN"))
            block += 1
    names.append(("Conv_1", "Conv_1_bn"))
    return names


def port_mobilenetv2(keras_backbone):
    """A PyTorch ``MobileNetV2`` holding the Keras backbone's weights and batch-norm statistics.

    Args:
        keras_backbone: a ``keras.applications.MobileNetV2(include_top=False)`` model (alpha 1.0).

    Returns:
        ``MobileNetV2`` in eval mode whose output equals the Keras feature map, transposed to
        channels-first.
    """
    net = MobileNetV2()
    units = [m for m in net.modules() if isinstance(m, ConvBN)]
    names = _keras_names()
    if len(units) != len(names):
        raise AssertionError("MobileNetV2 layout and Keras names disagree")
    with torch.no_grad():
        for unit, (conv_name, bn_name) in zip(units, names):
            kernel = keras_backbone.get_layer(conv_name).get_weights()[0]
            if unit.conv.groups > 1:
                # Keras depthwise kernels are (h, w, channels, 1); PyTorch wants (channels, 1, h, w).
                kernel = kernel.transpose(2, 3, 0, 1)
            else:
                kernel = kernel.transpose(3, 2, 0, 1)
            unit.conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
            gamma, beta, mean, var = keras_backbone.get_layer(bn_name).get_weights()
            for target, value in ((unit.bn.weight, gamma), (unit.bn.bias, beta),
                                  (unit.bn.running_mean, mean), (unit.bn.running_var, var)):
                target.copy_(torch.from_numpy(value))
    return net.eval()


class Head(nn.Module):
    """fastai's ``create_head(nf, n_out)``."""

    def __init__(self, features, labels):
        super().__init__()
        self.layers = nn.Sequential(
            nn.BatchNorm1d(2 * features), nn.Dropout(0.25), nn.Linear(2 * features, 512, bias=False),
            nn.ReLU(inplace=True), nn.BatchNorm1d(512), nn.Dropout(0.5), nn.Linear(512, labels,
                                                                                   bias=False))

    def forward(self, maps):
        pooled = torch.cat([F.adaptive_max_pool2d(maps, 1), F.adaptive_avg_pool2d(maps, 1)], 1)
        return self.layers(pooled.flatten(1))


class Learner(nn.Module):
    def __init__(self, body, labels):
        super().__init__()
        self.body, self.head = body, Head(1280, labels)
        for module in self.head.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight)

    def forward(self, x):
        return self.head(self.body(x))


def augment(batch, generator):
    """fastai's ``aug_transforms`` defaults (without warp) on a ``(N, 3, H, W)`` batch in [-1, 1]."""
    n = batch.shape[0]
    uniform = lambda low, high: low + (high - low) * torch.rand(n, generator=generator)  # noqa: E731
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    angle = uniform(-10, 10) * math.pi / 180
    zoom = uniform(1.0, 1.1)
    keep = torch.rand(n, generator=generator) < 0.75
    angle, zoom = torch.where(keep, angle, 0.0), torch.where(keep, zoom, 1.0)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * flip, -sin, torch.zeros(n)], 1),
                         torch.stack([sin * flip, cos, torch.zeros(n)], 1)], 1)
    grid = F.affine_grid(theta, batch.shape, align_corners=False)
    out = F.grid_sample(batch, grid, padding_mode="reflection", align_corners=False)
    lit = torch.rand(n, generator=generator) < 0.75
    brightness = torch.where(lit, uniform(-0.2, 0.2), 0.0).view(n, 1, 1, 1)
    contrast = torch.where(lit, uniform(0.8, 1.2), 1.0).view(n, 1, 1, 1)
    return ((out + 2 * brightness) * contrast).clamp(-1, 1)


def _one_cycle(optimizer, peaks, steps, pct_start, div):
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=peaks, total_steps=max(2, steps), pct_start=pct_start,
        anneal_strategy="cos", div_factor=div, final_div_factor=1e5 / div,
        base_momentum=0.85, max_momentum=0.95)


def _fit(model, optimizer, scheduler, images, targets, epochs, batch_size, generator):
    loss_fn = nn.BCEWithLogitsLoss()
    steps = max(1, len(images) // batch_size)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for step in range(steps):
            index = order[step * batch_size:(step + 1) * batch_size]
            x = augment(images[index], generator).contiguous(memory_format=torch.channels_last)
            loss = loss_fn(model(x), targets[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()


def as_tensor(images):
    """uint8-range ``(N, H, W, 3)`` images to ``(N, 3, H, W)`` floats in [-1, 1] (channels-last)."""
    x = torch.from_numpy(np.asarray(images, np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2)
    return x.contiguous(memory_format=torch.channels_last)


def fine_tune(keras_backbone, images, targets, epochs, seed, lr_mult=100, base_lr=2e-3,
              batch_size=32, threads=None):
    """Trains fastai's plan for ``epochs`` in all (one frozen); returns the model.

    Args:
        keras_backbone: the Keras MobileNetV2 whose weights start the body.
        images: ``(N, H, W, 3)`` pixels in [0, 255].
        targets: ``(N, labels)`` 0/1 array.
        epochs: total epochs, the frozen one included.
        seed: seeds PyTorch's draws (initialisation, order, augmentation).
        lr_mult: the head's rate over the body's in the unfrozen stage.
        threads: PyTorch threads (default: PyTorch's own).

    Returns:
        the trained ``Learner`` in eval mode.
    """
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = Learner(port_mobilenetv2(keras_backbone), targets.shape[1])
    model = model.to(memory_format=torch.channels_last)
    x, y = as_tensor(images), torch.from_numpy(np.asarray(targets, np.float32))
    steps = max(1, len(x) // batch_size)
    body_norms = [p for m in model.body.modules() if isinstance(m, nn.BatchNorm2d)
                  for p in m.parameters()]
    frozen_ids = {id(p) for p in body_norms}
    for p in model.body.parameters():
        p.requires_grad = id(p) in frozen_ids
    # Frozen stage: one group at base_lr, as fastai's slice(base_lr) gives every group the same rate.
    trainable = body_norms + list(model.head.parameters())
    optimizer = torch.optim.AdamW(trainable, lr=base_lr, betas=(0.9, 0.99), eps=1e-5,
                                  weight_decay=0.01)
    _fit(model, optimizer, _one_cycle(optimizer, base_lr, steps, 0.99, 25.0), x, y, 1,
         batch_size, generator)
    later = epochs - 1
    if later < 1:
        return model.eval()
    for p in model.body.parameters():
        p.requires_grad = True
    peak = base_lr / 2
    groups = [{"params": list(model.body.parameters()), "lr": peak / lr_mult},
              {"params": list(model.head.parameters()), "lr": peak}]
    optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01)
    _fit(model, optimizer, _one_cycle(optimizer, [peak / lr_mult, peak], later * steps, 0.3, 5.0),
         x, y, later, batch_size, generator)
    return model.eval()


@torch.no_grad()
def predict(model, images, batch_size=64):
    """Sigmoid scores ``(N, labels)`` for ``(N, H, W, 3)`` pixels in [0, 255]."""
    model.eval()
    return np.concatenate([torch.sigmoid(model(as_tensor(images[i:i + batch_size]))).numpy()
                           for i in range(0, len(images), batch_size)])
