"""fastai's ``fine_tune`` plan, on the library's own model and weights, as an accuracy baseline.

``Learner.fine_tune(epochs, base_lr=2e-3, freeze_epochs=1, lr_mult=100)``:
one epoch with the body frozen (one-cycle at ``base_lr``), then every layer
with one-cycle at ``base_lr / 2``, the body at ``1 / lr_mult`` of the head's
rate. Adam, flips and light affine augmentation. Here it runs on the same
Keras MobileNetV2, weights, preprocessing, batch size and epochs as the
library's plans (batch norm stays frozen, which helped both), so the rows
differ only in the plan. ``lr_mult=10`` is the variant that did best in the
peer comparison of issue 25.
"""

import math

import keras
import numpy as np

from multilabel_keras import RandomAffine, build_model, make_dataset
from multilabel_keras.models.surgery import find_backbone
from multilabel_keras.training.compile import LayerwiseAdam, compile_model


class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """fastai's one-cycle: cosine from ``peak / 25`` up to ``peak`` over ``pct`` of the steps, then
    cosine down to ``peak / 1e5``."""

    def __init__(self, peak, steps, pct=0.25):
        self.peak, self.steps, self.pct = float(peak), max(1, int(steps)), float(pct)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        up = max(1.0, self.pct * self.steps)
        start, end = self.peak / 25.0, self.peak / 1e5
        warm = keras.ops.minimum(step / up, 1.0)
        cool = keras.ops.clip((step - up) / max(1.0, self.steps - up), 0.0, 1.0)
        rising = start + (self.peak - start) * (1 - keras.ops.cos(math.pi * warm)) / 2
        falling = end + (self.peak - end) * (1 + keras.ops.cos(math.pi * cool)) / 2
        return keras.ops.where(step < up, rising, falling)

    def get_config(self):
        return {"peak": self.peak, "steps": self.steps, "pct": self.pct}


def fastai_fine_tune(train, val, vocab, size, epochs, weights, seed, lr_mult=100, base_lr=2e-3,
                     batch_size=32):
    """Trains with fastai's plan; returns ``(model, seconds)``."""
    keras.utils.set_random_seed(seed)
    model = build_model("mobilenetv2", vocab.num_labels, (size, size, 3), weights=weights)
    augment = RandomAffine(rotation=10.0, shift=0.05, shear=0.0, zoom=0.1, seed=seed)
    data = make_dataset(train, vocab, size, batch_size, augment=augment, shuffle=True,
                        repeat=True, seed=seed)
    steps = math.ceil(len(train) / batch_size)
    backbone = find_backbone(model)
    backbone.trainable = False
    compile_model(model, optimizer=keras.optimizers.Adam(OneCycle(base_lr, steps, 0.99)))
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
    later = max(1, epochs - 1)
    backbone.trainable = True
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    factors = {layer.name: 1.0 / lr_mult for layer in backbone.layers}
    compile_model(model, optimizer=LayerwiseAdam(OneCycle(base_lr / 2, later * steps),
                                                 layer_factors=factors))
    model.fit(data, epochs=later, steps_per_epoch=steps, verbose=0)
    return model


def predict(model, samples, size):
    from multilabel_keras.data.images import load_images

    images = load_images(samples.paths, size)
    return np.concatenate([model.predict_on_batch(images[i:i + 64])
                           for i in range(0, len(images), 64)])
