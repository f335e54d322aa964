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

import os
import warnings

from multilabel_keras.io import read_json
from multilabel_keras.models.transfer import BACKBONES, PREPROCESSING
from multilabel_keras.training.config import ConfigError
from multilabel_keras.training.scaling_measure import TooFewImages, choose_scaling, sidecar_path


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
        what = f"its preprocessing is {shown}" if isinstance(stated, dict) else f"it holds {shown}"
        raise ValueError(f"{path} must hold {{\"preprocessing\": one of "
                         f"{', '.join(PREPROCESSING)}}}; {what}")
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
