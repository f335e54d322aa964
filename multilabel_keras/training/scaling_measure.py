"""Measuring how a weights file wants its pixels, from the user's own images.

A network whose first normalisation is a batch norm carries the mean and
variance its inputs had in training: the scaling under which the user's
images come closest to them (Gaussian Kullback-Leibler divergence per
channel, median over channels) is the one the weights were trained with.
Networks without one (VGG, ConvNeXt, EfficientNet, whose own input
normalisation comes first) get a linear probe instead: a logistic
regression on the frozen pooled features under each scaling, the family's
own kept unless another beats it on validation by ``MARGIN`` mAP.
``input_scaling`` decides when to measure and warns with the choice.
"""

import dataclasses
import os

import keras
import numpy as np

from multilabel_keras.data.pipeline import make_dataset
from multilabel_keras.metrics import mean_average_precision
from multilabel_keras.models.layers import MODES, preprocess_layer
from multilabel_keras.models.transfer import PREPROCESSING, build_backbone, prepare_backbone

# Training and validation images the probe looks at (each at most).
PROBE_IMAGES = 256
# Another scaling must beat the family's own by this much validation mAP: a
# probe on a few hundred images moves by about 0.01 between seeds.
MARGIN = 0.01
# Fewest (fitting, scoring) images a probe's mAP means anything on.
PROBE_LEAST = (8, 4)
DESCRIBED = {"tf": "pixels scaled to [-1, 1]", "torch": "ImageNet mean/std",
             "caffe": "BGR minus the ImageNet mean", "none": "raw 0-255 pixels"}


class TooFewImages(ValueError):
    """Too few images to measure a weights file's scaling with the probe."""


def sidecar_path(weights):
    """Where the JSON that says a weights file's scaling lives: the file's path plus ``.json``.

    Example:
        >>> sidecar_path("mnv2.weights.h5")
        'mnv2.weights.h5.json'
    """
    return os.fspath(weights) + ".json"


@dataclasses.dataclass(frozen=True)
class ScalingChoice:
    """The scaling chosen for a weights file, and the measurements behind it.

    Attributes:
        mode: the chosen ``preprocessing`` (``"tf"``, ``"torch"``, ``"caffe"``
            or ``"none"``).
        family: the backbone family's own scaling (what ``keras.applications``
            feeds its ImageNet weights).
        method: ``"batch_norm"`` (distance to the first batch norm's
            statistics, lower is closer) or ``"probe"`` (a linear probe's
            validation mAP, higher is better).
        scores: the measurement under each scaling tried.
        images: the images measured (``(training, validation)`` for the probe).
    """

    mode: str
    family: str
    method: str
    scores: dict
    images: tuple

    def record(self):
        """The JSON fact a run keeps (``config.json``'s ``input_scaling``)."""
        return {"chosen": self.mode, "family": self.family, "method": self.method,
                "scores": {k: float(f"{v:.4g}") for k, v in self.scores.items()},
                "images": list(self.images)}

    def message(self, weights, setting="preprocessing"):
        """The one line a user sees, naming the choice and how to make it.

        Args:
            weights: the weights file measured.
            setting: where the caller states it: ``"preprocessing"`` (an
                argument) or ``"model_kwargs.preprocessing"`` (``train``'s).
        """
        said = (f"model_kwargs={{'preprocessing': {self.mode!r}}}"
                if setting == "model_kwargs.preprocessing" else f"{setting}={self.mode!r}")
        scores = ", ".join(f"{k} {v:.3g}" for k, v in self.scores.items())
        why = (f"its inputs closest to the statistics the first batch norm was trained on "
               f"({self.images[0]} training images; divergence {scores})"
               if self.method == "batch_norm" else
               f"the best linear probe on {self.images[1]} validation images (mAP {scores})")
        return (f"{weights} does not say how it wants its pixels: chose preprocessing "
                f"{self.mode!r} ({DESCRIBED[self.mode]}), {why}; the family's own is "
                f"{self.family!r}. Say {said} (--preprocessing "
                f"{self.mode}) or write {{\"preprocessing\": \"{self.mode}\"}} to "
                f"{sidecar_path(weights)} to skip this check")


def choose_scaling(backbone, weights, samples, val_samples, vocabulary, image_size, seed=0,
                   images=PROBE_IMAGES, method="auto"):
    """Chooses a weights file's input scaling from the user's own images.

    ``"batch_norm"``: the user's training images go through the layers
    before the network's first batch norm under each scaling
    (``"tf"``, ``"torch"``, ``"caffe"``, ``"none"``); the one whose
    per-channel mean and variance are closest to that batch norm's moving
    statistics wins (Kullback-Leibler divergence of the two Gaussians,
    median over channels). ``"probe"``: a logistic regression per label
    (scikit-learn, standardised pooled features) fitted on up to
    ``images`` training images and scored on up to ``images`` validation
    images (a third of the training pick without a validation set), under
    each of the family's scaling and the other three of ``MODES``.

    Args:
        backbone: a ``keras.applications`` name in lower case.
        weights: the weights file (or ``"imagenet"``).
        samples: training ``Samples``.
        val_samples: validation ``Samples`` or ``None``.
        vocabulary: a fitted ``LabelVocabulary``.
        image_size: the run's image size.
        seed: which images are measured.
        images: the most training (and validation) images used.
        method: ``"auto"`` (``"batch_norm"`` where the network has one
            before any other normalisation, else ``"probe"``),
            ``"batch_norm"`` or ``"probe"``.

    Returns:
        A ``ScalingChoice``.

    Example:
        >>> from multilabel_keras import LabelVocabulary, from_folders
        >>> samples = from_folders("data/fashion")
        >>> vocab = LabelVocabulary().fit(samples.labels)
        >>> choice = choose_scaling("mobilenetv2", None, samples, None, vocab, 32, images=12)
        >>> choice.method, sorted(choice.scores)
        ('batch_norm', ['caffe', 'none', 'tf', 'torch'])
    """
    net, family = build_backbone(backbone, (image_size, image_size, 3), weights)
    prepare_backbone(net, weights, freeze_backbone=True, bn_inference=True)
    family = family or "none"
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.permutation(len(samples))[:images])
    norm = first_batch_norm(net) if method in ("auto", "batch_norm") else None
    if method == "batch_norm" and norm is None:
        raise ValueError(f"{backbone} has no batch norm before its first other normalisation; "
                         f"use method='probe'")
    if norm is not None:
        pixels, _ = _pixels(samples.subset(pick), vocabulary, image_size)
        front = keras.Model(net.input, norm.input)
        scores = {mode: _divergence(front, norm, mode, pixels)
                  for mode in [family, *(m for m in PREPROCESSING if m != family)]}
        chosen = min(scores, key=lambda m: (scores[m], m != family))
        return ScalingChoice(chosen, family, "batch_norm", scores, (len(pixels),))
    if val_samples is not None and len(val_samples):
        held = np.sort(rng.permutation(len(val_samples))[:images])
        fit_part, score_part = samples.subset(pick), val_samples.subset(held)
    else:
        cut = max(1, len(pick) * 2 // 3)
        fit_part, score_part = samples.subset(pick[:cut]), samples.subset(pick[cut:])
    if len(fit_part) < PROBE_LEAST[0] or len(score_part) < PROBE_LEAST[1]:
        raise TooFewImages(
            f"{len(fit_part)} training and {len(score_part)} validation images are too few to "
            f"probe how {weights} wants its pixels (at least {PROBE_LEAST[0]} and "
            f"{PROBE_LEAST[1]})")
    fit_x, fit_y = _pixels(fit_part, vocabulary, image_size)
    score_x, score_y = _pixels(score_part, vocabulary, image_size)
    scores = {}
    for mode in [family, *(m for m in MODES if m != family)]:
        encoder = _pooled(net, mode)
        scores[mode] = _probe_map(_features(encoder, fit_x), fit_y,
                                  _features(encoder, score_x), score_y)
    return ScalingChoice(pick_scaling(scores, family), family, "probe", scores,
                         (len(fit_x), len(score_x)))


def first_batch_norm(net):
    """The network's first normalisation layer when it is a batch norm, else ``None``.

    Example:
        >>> from multilabel_keras.models.transfer import build_backbone
        >>> first_batch_norm(build_backbone("mobilenetv2", (32, 32, 3))[0]).name
        'bn_Conv1'
    """
    for layer in net.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            return layer
        if "normalization" in type(layer).__name__.lower():
            return None  # a LayerNormalization or a Normalization of the network's own input
    return None


def _divergence(front, norm, mode, pixels):
    x = pixels if mode == "none" else keras.ops.convert_to_numpy(preprocess_layer(mode)(pixels))
    # Called eagerly: predict_on_batch would trace a function per scaling and batch shape,
    # and TensorFlow prints a retracing warning even for a quiet run.
    z = np.concatenate([keras.ops.convert_to_numpy(front(x[i:i + 64], training=False))
                        for i in range(0, len(x), 64)]).astype(np.float64)
    z = z.reshape(-1, z.shape[-1])
    mean, var = z.mean(0), z.var(0) + norm.epsilon
    trained_mean = np.asarray(norm.moving_mean, np.float64)
    trained_var = np.asarray(norm.moving_variance, np.float64) + norm.epsilon
    ratio = var / trained_var
    kl = 0.5 * (ratio + (mean - trained_mean) ** 2 / trained_var - 1.0 - np.log(ratio))
    return float(np.median(kl))


def pick_scaling(scores, family, margin=MARGIN):
    """The family's own scaling unless another scores more than ``margin`` above it.

    Args:
        scores: scaling name -> validation mAP (``nan``: no label could be scored).
        family: the family's own scaling, a key of ``scores``.
        margin: how much better another must be.

    Returns:
        A key of ``scores``.

    Example:
        >>> pick_scaling({"tf": 0.70, "torch": 0.705, "caffe": 0.5}, "tf")
        'tf'
        >>> pick_scaling({"tf": 0.70, "torch": 0.75, "caffe": 0.5}, "tf")
        'torch'
    """
    known = {k: v for k, v in scores.items() if not np.isnan(v)}
    if not known:
        return family
    best = max(known, key=known.get)
    own = scores[family]
    return best if np.isnan(own) or known[best] > own + margin else family


def _pixels(samples, vocabulary, image_size):
    xs, ys = [], []
    for x, y in make_dataset(samples, vocabulary, image_size, 64):
        xs.append(np.asarray(x))
        ys.append(np.asarray(y))
    return np.concatenate(xs), np.concatenate(ys)


def _pooled(net, mode):
    image = keras.Input(net.input_shape[1:])
    x = image if mode == "none" else preprocess_layer(mode)(image)
    return keras.Model(image, keras.layers.GlobalAveragePooling2D()(net(x)))


def _features(encoder, pixels):
    return np.concatenate([keras.ops.convert_to_numpy(encoder(pixels[i:i + 64], training=False))
                           for i in range(0, len(pixels), 64)]).astype(np.float64)


def _probe_map(fit_x, fit_y, score_x, score_y):
    """Validation mAP of one logistic regression per label (labels with both classes known)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(fit_x)
    fit_x, score_x = scaler.transform(fit_x), scaler.transform(score_x)
    scores = np.full(score_y.shape, 0.5)
    for j in range(fit_y.shape[1]):
        known = fit_y[:, j] >= 0
        if len(np.unique(fit_y[known, j])) == 2:
            model = LogisticRegression(C=0.1, max_iter=300).fit(fit_x[known], fit_y[known, j])
            scores[:, j] = model.predict_proba(score_x)[:, 1]
    return mean_average_precision(score_y, scores)
