"""``TrainConfig``: every setting of a training run, its default and its validity rule, in one place.

Python keywords, the command line (only the flags the user set) and a saved
run all build a ``TrainConfig``; it is validated once, on construction, with
one message per bad setting in the same words whichever way it was built
(the command line only swaps a setting's name for its flag). Each trainer
(``"image"``, ``"twin"``, ``"features"``) uses a subset of the settings; one
it does not use is refused by name rather than dropped.
"""

import dataclasses
import numbers
import os

from multilabel_keras.training.settings import (
    POLICY_ARGUMENTS,
    SETTINGS,
    TRAINERS,
    count,
    fraction,
    settings_of,
)


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
            problems += _across(values, self.given, trainer)
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


def _across(values, given, trainer):
    """Rules that tie two settings together."""
    problems = []
    if values.get("learning_rate") == "find":
        schedule = values.get("schedule")
        if trainer != "image":
            problems.append(("learning_rate", f"'find' is for the image trainer; give the "
                             f"{trainer} trainer a number"))
        elif schedule not in ("auto", "none"):
            shown = f"schedule {schedule!r}" if isinstance(schedule, str) else "a schedule of phases"
            problems.append(("learning_rate", f"'find' applies to runs without a transfer plan, "
                             f"and {shown} is one; give a number"))
        elif values.get("distribution"):
            problems.append(("learning_rate", "'find' runs on one machine; give a number with "
                             "distribution"))
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
        if "freeze_epochs" not in schedule:
            return None  # the plan makes it epochs less the other phases
        keys = ("freeze_epochs", "finetune_epochs", "final_epochs")
        if not all(isinstance(schedule.get(k, 0), numbers.Integral) for k in keys):
            return None
        return sum(int(schedule.get(k, 0)) for k in keys) or None
    return getattr(schedule, "total_epochs", None) or None
