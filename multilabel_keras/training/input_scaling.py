"""How a weights file wants its pixels: said by the user, by a JSON beside it, or measured.

A ``.h5`` file of backbone weights does not record the input scaling it was
trained with, and a wrong one (``[-1, 1]`` for weights trained on ImageNet
mean/std, RGB for BGR) still trains, only worse: a silent mistake. When
nobody says, ``train`` measures it. A network whose first normalisation is
a batch norm carries the mean and variance its inputs had in training: the
scaling under which the user's images come closest to them (Gaussian
Kullback-Leibler divergence per channel, median over channels) is the one
the weights were trained with. Networks without one (VGG, ConvNeXt,
EfficientNet, whose own input normalisation comes first) get a
linear probe instead: a logistic regression on the frozen pooled features
under each scaling, the family's own kept unless another beats it on
validation by ``MARGIN`` mAP. Either way a warning names the choice.
"""

import dataclasses
import os
import warnings

import keras
import numpy as np

from multilabel_keras.data.pipeline import make_dataset
from multilabel_keras.io import read_json
from multilabel_keras.metrics import mean_average_precision
from multilabel_keras.models.layers import MODES, preprocess_layer
from multilabel_keras.models.transfer import BACKBONES, PREPROCESSING, build_backbone, prepare_backbone
from multilabel_keras.training.config import ConfigError

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


def sidecar_path(weights):
    """Where the JSON that says a weights file's scaling lives: the file's path plus ``.json``.

    Example:
        >>> sidecar_path("mnv2.weights.h5")
        'mnv2.weights.h5.json'
    """
    return os.fspath(weights) + ".json"


def sidecar_preprocessing(weights):
    """The ``preprocessing`` a JSON beside a weights file states, or ``None`` without one.

    Args:
        weights: a weights file path (anything else: ``None``).

    Returns:
        A name from ``PREPROCESSING`` or ``None``.

    Raises:
        ValueError: naming the JSON file when it is not an object with a
            known ``"preprocessing"``.

    Example:
        >>> import json
        >>> with open("mnv2.weights.h5.json", "w") as f:
        ...     json.dump({"preprocessing": "torch"}, f)
        >>> sidecar_preprocessing("mnv2.weights.h5")
        'torch'
    """
    if weights in (None, "imagenet"):
        return None
    path = sidecar_path(weights)
    if not os.path.lexists(path):
        return None
    try:
        stated = read_json(path, "weights scaling file")
    except OSError as err:
        raise ValueError(f"weights scaling file {path} cannot be read: {err.strerror or err}") from None
    value = stated.get("preprocessing") if isinstance(stated, dict) else None
    if value not in PREPROCESSING:
        shown = repr(value if isinstance(stated, dict) else stated)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise ValueError(f"{path} must hold {{\"preprocessing\": one of "
                         f"{', '.join(PREPROCESSING)}}}; its preprocessing is {shown}"
                         if isinstance(stated, dict) else
                         f"{path} must hold {{\"preprocessing\": one of "
                         f"{', '.join(PREPROCESSING)}}}; it holds {shown}")
    return value


def settle_scaling(config, backbone, samples, val_samples, vocabulary, image_size, seed,
                   stacklevel=2, measure=True):
    """A run's backbone input scaling: the user's, the weights' JSON, or measured and warned.

    Args:
        config: the run's ``TrainConfig`` (``weights``, ``model_kwargs``).
        backbone: the ``keras.applications`` name the run builds on (any
            other model: nothing to settle).
        samples, val_samples, vocabulary: the run's data.
        image_size: the run's image size.
        seed: which images are measured.
        stacklevel: ``warnings.warn``'s, counted from here: the frame of
            the user's call.
        measure: ``False`` keeps the family's own when nothing is said (a
            run resumed from before scalings were recorded was trained so).

    Returns:
        ``(ScalingChoice or None, config)``; a stated or measured scaling is
        written into the config's ``model_kwargs``, so a resumed run builds
        the same model without measuring again.
    """
    given = config.model_kwargs or {}
    choice, said = resolve_scaling(backbone, config.weights, given.get("preprocessing"), samples,
                                   val_samples, vocabulary, image_size, seed,
                                   "model_kwargs.preprocessing", stacklevel + 1, measure)
    if said is not None and said != given.get("preprocessing"):
        config = config.replace(model_kwargs={**given, "preprocessing": said})
    return choice, config


def resolve_scaling(backbone, weights, said, samples, val_samples, vocabulary, image_size, seed,
                    setting="preprocessing", stacklevel=2, measure=True):
    """The scaling a backbone gets: ``said``, else the weights' JSON, else measured and warned.

    Args:
        backbone: a model or backbone name (only ``keras.applications``
            names have a scaling to settle).
        weights: ``None``, ``"imagenet"`` or a weights file.
        said: the caller's ``preprocessing`` (``None``, ``"auto"`` or a
            name from ``PREPROCESSING``).
        samples, val_samples, vocabulary, image_size, seed: as ``choose_scaling``.
        setting: the setting's name in an error.
        stacklevel: ``warnings.warn``'s, counted from here.
        measure: ``False``: the family's own unless ``said`` (neither the
            weights' JSON is read nor anything measured: a run resumed
            from before scalings were recorded was trained so).

    Returns:
        ``(ScalingChoice or None, preprocessing or None)`` (``None``: the
        family's own).

    Raises:
        ConfigError: naming ``setting``: an unknown scaling, ``"auto"``
            without pretrained weights of a ``keras.applications``
            backbone, or too few images for the probe to measure.
    """
    check_scaling(backbone, weights, said, setting)
    known = isinstance(backbone, str) and backbone in BACKBONES
    if known and said is None and measure:
        said = sidecar_preprocessing(weights)
    if not (measure and should_measure(backbone, weights, said)):
        return None, said
    try:
        choice = choose_scaling(backbone, weights, samples, val_samples, vocabulary, image_size,
                                seed)
    except TooFewImages as err:
        raise ConfigError([(setting, f"cannot be measured: {err}; say it (tf, torch, caffe "
                                      f"or none)")]) from None
    warnings.warn(choice.message(weights, setting), UserWarning, stacklevel=stacklevel)
    return choice, choice.mode


def check_scaling(backbone, weights, said, setting="preprocessing"):
    """Refuses a ``preprocessing`` that is unknown, or ``"auto"`` with nothing to measure.

    Args:
        backbone: a model or backbone name.
        weights: ``None``, ``"imagenet"`` or a weights file.
        said: the caller's ``preprocessing``.
        setting: the setting's name in the error.

    Raises:
        ConfigError: naming ``setting``.

    Example:
        >>> check_scaling("smallervggnet", "w.weights.h5", "auto")
        Traceback (most recent call last):
        ...
        multilabel_keras.training.config.ConfigError: preprocessing 'auto' measures how a keras.applications backbone's weights want their pixels; 'smallervggnet' is not one
    """
    if said not in (None, "auto", *PREPROCESSING):
        raise ConfigError([(setting, f"must be one of {', '.join(PREPROCESSING)} or auto; "
                            f"got {said!r}")])
    if said == "auto" and not (isinstance(backbone, str) and backbone in BACKBONES):
        name = backbone if isinstance(backbone, str) else getattr(backbone, "name", backbone)
        raise ConfigError([(setting, f"'auto' measures how a keras.applications backbone's "
                            f"weights want their pixels; {name!r} is not one")])
    if said == "auto" and weights is None:
        raise ConfigError([(setting, "'auto' chooses how pretrained weights want their pixels; "
                            "give weights (a file or 'imagenet'), or leave it out")])


def should_measure(model_name, weights, preprocessing):
    """Whether ``train`` should measure the scaling: a backbone, a weights file, nothing said.

    ``preprocessing="auto"`` asks for it also with ``"imagenet"`` weights; ``keras.applications``' own scaling is right for those, so it
    is not run there unasked.

    Example:
        >>> should_measure("mobilenetv2", "w.weights.h5", None), should_measure("mobilenetv2", "imagenet", None)
        (True, False)
    """
    if not isinstance(model_name, str) or model_name not in BACKBONES or weights is None:
        return False
    return preprocessing == "auto" or (preprocessing is None and weights != "imagenet")


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
