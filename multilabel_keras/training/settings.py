"""Every training setting: its default for each trainer that uses it, and its validity rule.

``TrainConfig`` (``config.py``) checks a run's settings against this table;
nothing else holds a default. A rule returns ``None`` for a good value, else
the words that follow the setting's name in a message, so that Python and
the command line say the same thing.
"""

import dataclasses
import math
import numbers
import os

from multilabel_keras.data.check import DEFAULT_MAX_PIXELS
from multilabel_keras.decisions import POLICIES

TRAINERS = ("image", "twin", "features")
PLANS = ("auto", "lp_ft", "frozen", "none")
# The keyword arguments each decision policy takes (see ``choose_decision``).
POLICY_ARGUMENTS = {"precision": ("min_precision",), "top_k": ("k",), "fixed": ("threshold",)}


# Rules: each returns None for a good value, else the words that follow the setting's name.

def _shown(value):
    return repr(value) if isinstance(value, str) else f"{value!r}"


def count(least):
    def rule(value):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
            return f"must be a whole number >= {least}, got {_shown(value)}"
    return rule


def rate(value):
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value <= 0):
        return f"must be a finite number > 0, got {_shown(value)}"


def fraction(top_open=False):
    shown = "[0, 1)" if top_open else "[0, 1]"

    def rule(value):
        if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                or not math.isfinite(value) or value < 0 or value > 1 or (top_open and value == 1)):
            return f"must be a number in {shown}, got {_shown(value)}"
    return rule


def choice(*options):
    def rule(value):
        if not isinstance(value, str) or value not in options:
            return f"must be one of {', '.join(options)}; got {_shown(value)}"
    return rule


def flag(value):
    if not isinstance(value, bool):
        return f"must be True or False, got {_shown(value)}"


def mapping(value):
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        return f"must be a dict of named arguments, got {_shown(value)}"


def optional(inner):
    def rule(value):
        return None if value is None else inner(value)
    return rule


def _rate_or_find(value):
    return None if value == "find" else rate(value)


def _decay(value):
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or not 0 < value <= 1):
        return f"must be a number in (0, 1], got {_shown(value)}"


def _seed(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < 2 ** 32:
        return f"must be a whole number in [0, 2**32), got {_shown(value)}"


def _model(value):
    if isinstance(value, str):
        return None if value else "must name a model (see list_models()), got ''"
    if not (hasattr(value, "layers") and hasattr(value, "fit")):
        return f"must be a model name or a keras.Model, got {type(value).__name__}"


def _name(what):
    def rule(value):
        if not isinstance(value, str) or not value:
            return f"must name {what}, got {_shown(value)}"
    return rule


def _weights(value):
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        return f"must be None, 'imagenet' or a weights file path, got {_shown(value)}"


def _augment(value):
    if not isinstance(value, bool) and not hasattr(value, "get_config"):
        return f"must be True, False or a Keras layer, got {_shown(value)}"


def _colour_labels(value):
    if value == "auto":
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        return f"must be 'auto' or a list of label names, got {_shown(value)}"


def _schedule(value):
    if isinstance(value, str):
        return choice(*PLANS)(value)
    if isinstance(value, dict):
        return None  # explicit phases, checked when the TransferSchedule is made
    if not (hasattr(value, "phases") and hasattr(value, "unfreeze_from")):
        return (f"must be one of {', '.join(PLANS)}, a dict of phases or a TransferSchedule; "
                f"got {_shown(value)}")


def _loss(value):
    if not isinstance(value, str) and not hasattr(value, "get_config"):
        return f"must be a loss name or a keras.losses.Loss, got {type(value).__name__}"


def _hidden(value):
    if not isinstance(value, (list, tuple)) or any(count(1)(v) for v in value):
        return f"must be a list of layer widths >= 1, got {_shown(value)}"


def _loss_weights(value):
    if (not isinstance(value, (list, tuple)) or len(value) != 3
            or any(rate(v) and v != 0 for v in value)):
        return f"must be three numbers >= 0 (class_a, class_b, same), got {_shown(value)}"


def _distribution(value):
    if value != "data_parallel" and not hasattr(value, "distribute_dataset"):
        return f"must be None, 'data_parallel' or a keras.distribution.Distribution, got {_shown(value)}"


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting: its default for each trainer that uses it, its rule and its meaning."""

    rule: object
    defaults: dict
    doc: str


_ALL = ("image", "twin", "features")


def _for(trainers, default):
    return {t: default for t in trainers}


SETTINGS = {
    "model": Setting(_model, _for(("image",), "smallervggnet"),
                     "a registered model name or a built keras.Model"),
    "backbone": Setting(_name("a keras.applications backbone"), _for(("twin",), "xception"),
                        "the twin's keras.applications backbone"),
    "val_split": Setting(fraction(top_open=True), _for(_ALL, 0.2),
                         "share held out for validation when no val_samples are given (0: none)"),
    "image_size": Setting(optional(count(8)), {"image": 96, "twin": None},
                          "side of the square model input (twin: None = the backbone's own)"),
    "batch_size": Setting(optional(count(1)), {"image": None, "twin": 16, "features": 32},
                          "images (pairs, feature rows) per batch; image: None = the recipe's"),
    "epochs": Setting(count(1), {"image": 75, "twin": 10, "features": 50},
                      "epochs over the training data, all phases together (image, not "
                      "given: 75, or the recipe's least updates from scratch)"),
    "learning_rate": Setting(optional(_rate_or_find), {"image": None, "twin": 1e-3, "features": 1e-3},
                             "Adam's (peak) learning rate; image: None = the recipe's, 'find' = "
                             "a range test's suggestion (runs without a transfer plan)"),
    "augment": Setting(_augment, _for(("image", "twin"), True),
                       "True (the recipe's RandomAffine), False, or a Keras layer"),
    "mix": Setting(optional(fraction()), _for(("image",), None),
                   "share of each batch replaced by 2x2 mosaics (None = the recipe's)"),
    "recolour": Setting(optional(fraction()), _for(("image",), None),
                        "share of each batch hue-turned with colour labels unknown"),
    "recolour_split": Setting(optional(flag), _for(("image",), None),
                              "untouched images teach colour labels only"),
    "colour_labels": Setting(_colour_labels, _for(("image",), "auto"),
                             "labels recolour treats as colours: 'auto' or names"),
    "lr_plan": Setting(optional(choice("decay", "cosine")), _for(("image",), None),
                       "Adam's learning-rate plan (None = the recipe's)"),
    "recipe": Setting(optional(choice("classic", "smallervggnet")), _for(("image",), None),
                      "the recipe whose settings fill what is not given"),
    "patience": Setting(optional(count(1)), _for(_ALL, None),
                        "stop a phase after this many epochs without a better monitored score"),
    "weights": Setting(optional(_weights), _for(("image", "twin"), None),
                       "None, 'imagenet' or a .weights.h5 file"),
    "model_kwargs": Setting(optional(mapping), _for(("image", "twin"), None),
                            "extra builder arguments (head='softmax2' …)"),
    "schedule": Setting(_schedule, _for(("image", "twin"), "auto"),
                        "the transfer plan: 'auto', 'lp_ft', 'frozen', 'none', or explicit phases"),
    "unfreeze_from": Setting(optional(_name("a block, 'all' or 'last:N'")),
                             _for(("image", "twin"), None),
                             "where fine-tuning starts (None = the plan's)"),
    "finetune_learning_rate": Setting(optional(rate), _for(("image", "twin"), None),
                                      "fine-tuning's learning rate (None = the plan's)"),
    "layer_decay": Setting(optional(_decay), _for(("image", "twin"), None),
                           "per-block fine-tuning rate factor, head at the full rate "
                           "(None = the plan's)"),
    "loss": Setting(optional(_loss), _for(("image", "features"), None),
                    "a loss name or object (None = the head's own)"),
    "loss_kwargs": Setting(optional(mapping), _for(("image", "features"), None),
                           "arguments of a loss given by name"),
    "threshold_policy": Setting(optional(choice(*POLICIES)), _for(_ALL, None),
                                "how decisions are tuned on validation (None: f1; twin softmax: top_k)"),
    "threshold_kwargs": Setting(optional(mapping), _for(_ALL, None),
                                "the policy's arguments (min_precision, k, threshold)"),
    "calibration": Setting(choice("temperature", "none"), _for(_ALL, "temperature"),
                           "per-label temperature scaling fitted on validation before thresholds"),
    "tta": Setting(choice("none", "flip"), _for(("image",), "none"),
                   "test-time augmentation of validation scores (and of the run's predictions)"),
    "on_bad_image": Setting(choice("skip", "error"), _for(("image", "twin"), "skip"),
                            "skip bad image files (each named) or stop at the first"),
    "max_bad_fraction": Setting(fraction(), _for(("image", "twin"), 0.2),
                                "fail when more than this share of images is bad"),
    "max_pixels": Setting(count(1), _for(("image", "twin"), DEFAULT_MAX_PIXELS),
                          "images whose header claims more pixels are refused"),
    "seed": Setting(_seed, _for(_ALL, 0),
                    "seed of every random draw: split, order, initialisation, dropout, augmentation"),
    "deterministic": Setting(flag, _for(_ALL, False),
                             "deterministic kernels (TensorFlow op determinism, PyTorch "
                             "deterministic algorithms): the same seed gives the same weights on "
                             "any thread count, at some speed"),
    "train_map_samples": Setting(count(0), _for(("image",), 512),
                                 "training images for a transfer plan's per-epoch training mAP"),
    "precision": Setting(choice("float32", "mixed_bfloat16"), _for(("image",), "float32"),
                         "training compute (the saved model is float32 either way)"),
    "distribution": Setting(optional(_distribution), _for(("image",), None),
                            "None or 'data_parallel' (keras.distribution, JAX)"),
    "loss_weights": Setting(_loss_weights, _for(("twin",), (1.0, 1.0, 0.5)),
                            "weights of the class_a, class_b and same losses"),
    "positive_ratio": Setting(fraction(), _for(("twin",), 0.5), "share of same-class pairs"),
    "same": Setting(choice("identical", "jaccard"), _for(("twin",), "identical"),
                    "when two label sets count as the same class"),
    "jaccard": Setting(fraction(), _for(("twin",), 0.5), "threshold for same='jaccard'"),
    "pairs_per_epoch": Setting(optional(count(1)), _for(("twin",), None),
                               "training pairs per epoch (None: one per image)"),
    "hidden": Setting(_hidden, _for(("features",), (500, 100)), "hidden widths of the mlp head"),
    "dropout": Setting(fraction(top_open=True), _for(("features",), 0.0),
                       "dropout after each hidden layer of the mlp head"),
}


# The numeric settings and their type: command-line text for them is parsed.
NUMBERS = {name: int for name in ("epochs", "batch_size", "image_size", "patience", "max_pixels",
                                  "train_map_samples", "pairs_per_epoch", "seed")}
NUMBERS.update({name: float for name in ("learning_rate", "finetune_learning_rate", "layer_decay",
                                         "val_split",
                                         "mix", "recolour", "max_bad_fraction", "positive_ratio",
                                         "jaccard", "dropout")})


def parse_text(name, text):
    """A setting's value from command-line text: numbers parsed, anything unparsable kept as text.

    The text that is not a number then fails the setting's rule with the
    same words as a wrong value given in Python.

    Example:
        >>> parse_text("epochs", "3"), parse_text("epochs", "three"), parse_text("learning_rate", "nan")
        (3, 'three', nan)
    """
    kind = NUMBERS.get(name)
    if not isinstance(text, str) or kind is None:
        return text
    try:
        return int(text) if kind is int else float(text)
    except ValueError:
        return text


def settings_of(trainer):
    """The names of the settings a trainer uses, in ``SETTINGS`` order.

    Example:
        >>> "on_bad_image" in settings_of("twin"), "on_bad_image" in settings_of("features")
        (True, False)
    """
    return [name for name, setting in SETTINGS.items() if trainer in setting.defaults]
