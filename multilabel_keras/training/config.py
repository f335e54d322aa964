"""``TrainConfig``: every setting of a training run, its default and its validity rule, in one place.

Python keywords, the command line (only the flags the user set) and a saved
run all build a ``TrainConfig``; it is validated once, on construction, with
one message per bad setting in the same words whichever way it was built
(the command line only swaps a setting's name for its flag). Each trainer
(``"image"``, ``"twin"``, ``"features"``) uses a subset of the settings; one
it does not use is refused by name rather than dropped.
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


class ConfigError(ValueError):
    """Bad settings: one ``(setting, problem)`` pair each, all found at once.

    The message names each setting (``"epochs must be a whole number >= 1,
    got 0"``); the command line prints the same words with the flag's name.

    Attributes:
        problems: list of ``(setting, text)`` pairs; ``text`` follows the
            setting's name in a message.
    """

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("; ".join(f"{name} {text}" for name, text in self.problems))


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
                      "epochs over the training data, all phases together"),
    "learning_rate": Setting(optional(rate), {"image": None, "twin": 1e-3, "features": 1e-3},
                             "Adam's (peak) learning rate; image: None = the recipe's"),
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
    "loss": Setting(optional(_loss), _for(("image", "features"), None),
                    "a loss name or object (None = the head's own)"),
    "loss_kwargs": Setting(optional(mapping), _for(("image", "features"), None),
                           "arguments of a loss given by name"),
    "threshold_policy": Setting(optional(choice(*POLICIES)), _for(_ALL, None),
                                "how decisions are tuned on validation (None: f1; twin softmax: top_k)"),
    "threshold_kwargs": Setting(optional(mapping), _for(_ALL, None),
                                "the policy's arguments (min_precision, k, threshold)"),
    "on_bad_image": Setting(choice("skip", "error"), _for(("image", "twin"), "skip"),
                            "skip bad image files (each named) or stop at the first"),
    "max_bad_fraction": Setting(fraction(), _for(("image", "twin"), 0.2),
                                "fail when more than this share of images is bad"),
    "max_pixels": Setting(count(1), _for(("image", "twin"), DEFAULT_MAX_PIXELS),
                          "images whose header claims more pixels are refused"),
    "seed": Setting(_seed, _for(_ALL, 0), "seed of the split, order and augmentation"),
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
NUMBERS.update({name: float for name in ("learning_rate", "finetune_learning_rate", "val_split",
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


class TrainConfig:
    """The settings of one training run, complete and checked.

    Every setting not given takes its default for the trainer (see
    ``SETTINGS``); a setting the trainer does not use, an unknown name, or
    a value its rule refuses raises one ``ConfigError`` that lists every
    problem at once.

    Args:
        trainer: ``"image"`` (``train``), ``"twin"`` (``train_twin``) or
            ``"features"`` (``train_on_features``).
        **settings: the settings the caller chose.

    Attributes:
        trainer: as given.
        given: the names the caller set (the rest are defaults).

    Example:
        >>> config = TrainConfig("image", epochs=3, image_size=32)
        >>> config.epochs, config.batch_size, sorted(config.given)
        (3, None, ['epochs', 'image_size'])
        >>> TrainConfig("image", epochs=0, learning_rate=float("nan"))
        Traceback (most recent call last):
        ...
        multilabel_keras.training.config.ConfigError: epochs must be a whole number >= 1, got 0; learning_rate must be a finite number > 0, got nan
        >>> TrainConfig("twin", loss="focal")
        Traceback (most recent call last):
        ...
        multilabel_keras.training.config.ConfigError: loss is not used by the twin trainer (it trains with each head's own loss)
    """

    def __init__(self, trainer="image", **settings):
        if trainer not in TRAINERS:
            raise ValueError(f"trainer must be one of {', '.join(TRAINERS)}, got {trainer!r}")
        self.trainer = trainer
        self.given = frozenset(settings)
        problems = []
        for name, value in settings.items():
            setting = SETTINGS.get(name)
            if setting is None:
                problems.append((name, _unknown(name, trainer)))
            elif trainer not in setting.defaults:
                problems.append((name, _unused(name, trainer)))
            else:
                text = setting.rule(value)
                if text:
                    problems.append((name, text))
        values = {name: SETTINGS[name].defaults[trainer] for name in settings_of(trainer)}
        values.update({k: v for k, v in settings.items() if k in values})
        if not problems:
            problems += _across(values, self.given)
        if problems:
            raise ConfigError(problems)
        self._values = values

    def __getattr__(self, name):
        values = self.__dict__.get("_values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"TrainConfig has no setting {name!r}")

    def __repr__(self):
        shown = ", ".join(f"{k}={self._values[k]!r}" for k in sorted(self.given))
        return f"TrainConfig({self.trainer!r}, {shown})"

    def as_dict(self):
        """Every setting's value (given or default), as a new dict."""
        return dict(self._values)

    def replace(self, **changes):
        """A new config with ``changes`` given on top of the settings given here."""
        return TrainConfig(self.trainer, **{**{k: self._values[k] for k in self.given}, **changes})

    def to_json(self):
        """The given settings as plain JSON, or ``None`` when one cannot be (a built model, a loss object).

        What is returned rebuilds this config with ``from_json``; a resume
        spec and ``config.json`` are written from it.

        Example:
            >>> TrainConfig("image", epochs=3, schedule={"freeze_epochs": 1, "finetune_epochs": 2}).to_json()
            {'trainer': 'image', 'settings': {'epochs': 3, 'schedule': {'freeze_epochs': 1, 'finetune_epochs': 2}}}
        """
        settings = {}
        for name in sorted(self.given):
            value = self._values[name]
            if hasattr(value, "phases") and dataclasses.is_dataclass(value):
                value = dataclasses.asdict(value)
            elif isinstance(value, os.PathLike):
                value = os.fspath(value)
            elif isinstance(value, tuple):
                value = list(value)
            if not _plain(value):
                return None
            settings[name] = value
        return {"trainer": self.trainer, "settings": settings}

    @classmethod
    def from_run(cls, run_dir):
        """The settings a finished run was trained with (its ``config.json``), checked again.

        Args:
            run_dir: a run folder written by ``train``, ``train_twin`` or
                ``train_on_features``.

        Returns:
            A ``TrainConfig`` (to train again: ``train(samples, out, config=...)``).

        Example:
            >>> TrainConfig.from_run("runs/fashion").epochs
            2
        """
        from multilabel_keras.runs import RunDir

        run = RunDir(run_dir)
        saved = run.read_config().get("settings")
        if saved is None:
            raise ValueError(f"{run.file(run.CONFIG)} records no settings that can be rebuilt "
                             f"(the run was given a built model or loss object, or an older "
                             f"version wrote it)")
        return cls.from_json(saved, run.file(run.CONFIG))

    @classmethod
    def from_json(cls, data, where="saved config"):
        """Rebuilds a config written by ``to_json`` (a resume spec), checking it again.

        Example:
            >>> TrainConfig.from_json({"trainer": "image", "settings": {"epochs": 3}}).epochs
            3
        """
        if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
            raise ValueError(f"{where}: expected {{'trainer': ..., 'settings': {{...}}}}")
        try:
            return cls(data.get("trainer", "image"), **data["settings"])
        except ConfigError as err:
            raise ValueError(f"{where}: {err}") from None


def _plain(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _unknown(name, trainer):
    close = [s for s in settings_of(trainer) if s.startswith(name[:4])][:3]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"is not a setting (the {trainer} trainer takes: {', '.join(settings_of(trainer))}){hint}"


_WHY_UNUSED = {
    ("twin", "loss"): "it trains with each head's own loss",
    ("twin", "precision"): "it trains in float32",
    ("twin", "distribution"): "it trains on one device",
    ("features", "on_bad_image"): "the images were read when the features were extracted",
    ("features", "max_bad_fraction"): "the images were read when the features were extracted",
    ("features", "weights"): "the backbone's weights were fixed when the features were extracted",
    ("features", "schedule"): "only the head trains",
    ("features", "augment"): "cached features carry no augmentation",
}


def _unused(name, trainer):
    why = _WHY_UNUSED.get((trainer, name))
    return f"is not used by the {trainer} trainer" + (f" ({why})" if why else "")


def _across(values, given):
    """Rules that tie two settings together."""
    problems = []
    policy = values.get("threshold_policy")
    arguments = values.get("threshold_kwargs") or {}
    allowed = POLICY_ARGUMENTS.get(policy or "f1", ())
    for key in sorted(set(arguments) - set(allowed)):
        problems.append((f"threshold_kwargs.{key}", f"is not used by threshold policy "
                         f"{policy or 'f1'!r} (it takes: {', '.join(allowed) or 'no arguments'})"))
    for key, rule in (("min_precision", fraction()), ("k", count(1)), ("threshold", fraction())):
        if key in arguments and key in allowed and rule(arguments[key]):
            problems.append((f"threshold_kwargs.{key}", rule(arguments[key])))
    schedule = values.get("schedule")
    if "epochs" in given and not isinstance(schedule, (str, type(None))):
        total = _phase_epochs(schedule)
        if total is not None and total != values["epochs"]:
            problems.append(("epochs", f"is {values['epochs']} but the schedule's phases add up to "
                             f"{total} epochs over the images; give one or the other"))
    return problems


def _phase_epochs(schedule):
    if isinstance(schedule, dict):
        keys = ("freeze_epochs", "finetune_epochs", "final_epochs")
        if not all(isinstance(schedule.get(k, 0), numbers.Integral) for k in keys):
            return None
        return sum(int(schedule.get(k, 0)) for k in keys) or None
    return getattr(schedule, "total_epochs", None) or None
