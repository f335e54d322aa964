"""The one table between the command line's flags and the library's settings.

The command line passes the library only the flags the user typed; the
library (``TrainConfig``) holds every default and every check. Its messages
name settings; the command line shows them with the flag's name, looked up
here.
"""

from multilabel_keras.hints import spelled

# Setting (or "setting.key" inside a dict setting) -> the train flag that sets it.
FLAGS = {
    "model": "--model", "backbone": "--backbone", "epochs": "--epochs",
    "image_size": "--image-size", "batch_size": "--batch-size", "recipe": "--recipe",
    "val_split": "--val-split", "seed": "--seed", "deterministic": "--deterministic",
    "distribution": "--distribute",
    "precision": "--precision", "learning_rate": "--learning-rate", "weights": "--weights",
    "model_kwargs.head": "--head", "model_kwargs.pooling": "--pooling", "schedule": "--schedule",
    "model_kwargs.preprocessing": "--preprocessing", "preprocessing": "--preprocessing",
    "calibration": "--calibration", "tta": "--tta",
    "schedule.freeze_epochs": "--freeze-epochs", "schedule.finetune_epochs": "--finetune-epochs",
    "schedule.final_epochs": "--final-epochs", "unfreeze_from": "--unfreeze-from",
    "finetune_learning_rate": "--finetune-learning-rate", "loss": "--loss",
    "layer_decay": "--layer-decay",
    "threshold_policy": "--threshold-policy", "threshold_kwargs.min_precision": "--min-precision",
    "threshold_kwargs.k": "--top-k", "on_bad_image": "--on-bad-image",
    "max_bad_fraction": "--max-bad-fraction", "patience": "--patience", "augment": "--no-augment",
    "mix": "--mix", "recolour": "--recolour", "recolour_split": "--recolour-split",
    "colour_labels": "--colour-labels", "lr_plan": "--lr-plan", "overwrite": "--overwrite",
    "allow_outside_root": "--allow-outside-root", "label_sep": "--label-sep",
}
# argparse destinations that are not settings of their own but parts of one.
_PARTS = {"head": "model_kwargs.head", "pooling": "model_kwargs.pooling",
          "preprocessing": "model_kwargs.preprocessing",
          "freeze_epochs": "schedule.freeze_epochs", "finetune_epochs": "schedule.finetune_epochs",
          "final_epochs": "schedule.final_epochs", "min_precision": "threshold_kwargs.min_precision",
          "top_k": "threshold_kwargs.k"}
# Flags of the train command that are not settings.
_NOT_SETTINGS = ("data", "features", "resume", "out", "sep", "label_sep", "allow_outside_root",
                 "overwrite", "quiet", "command", "debug", "tensorboard")


def train_settings(args):
    """The trainer and the settings the user typed, from parsed ``train`` arguments.

    Args:
        args: the parsed ``train`` command line (setting flags absent unless typed).

    Returns:
        ``(trainer, settings)``: ``"image"``, ``"twin"`` or ``"features"``, and
        a dict for ``TrainConfig``; numbers are parsed by the config's rules.

    Example:
        >>> from multilabel_keras.cli_parser import build_parser
        >>> args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--epochs", "3",
        ...                                   "--top-k", "2", "--threshold-policy", "top_k"])
        >>> train_settings(args)
        ('image', {'epochs': 3, 'threshold_kwargs': {'k': 2}, 'threshold_policy': 'top_k'})
    """
    from multilabel_keras.training.settings import parse_text

    given = {k: v for k, v in vars(args).items() if k not in _NOT_SETTINGS}
    trainer = ("features" if getattr(args, "features", None) else
               "twin" if given.get("model") == "xception_twin" else "image")
    if trainer == "twin":
        given.pop("model")  # --model xception_twin chose the trainer; it is not a twin setting
    settings = {}
    for dest, value in given.items():
        name = _PARTS.get(dest, dest)
        setting, _, key = name.partition(".")
        if key:
            if setting == "schedule" or key == "k":  # whole numbers
                value = parse_text("epochs", value)
            elif key == "min_precision":
                value = parse_text("max_bad_fraction", value)
            elif key == "pooling" and value == "flatten":
                value = None
            settings.setdefault(setting, {})[key] = value
        elif name == "colour_labels" and value != "auto":
            settings[name] = [x.strip() for x in value.split(",") if x.strip()]
        else:
            settings[name] = parse_text(name, value)
    return trainer, settings


def flag_for(setting, args=None):
    """The flag that sets ``setting`` (``"epochs"`` -> ``"--epochs"``); the name itself if none.

    Example:
        >>> flag_for("threshold_kwargs.k"), flag_for("schedule")
        ('--top-k', '--schedule')
    """
    if setting == "schedule" and args is not None and not hasattr(args, "schedule"):
        phases = [FLAGS[f"schedule.{k}"] for k in ("freeze_epochs", "finetune_epochs", "final_epochs")
                  if hasattr(args, k)]
        if phases:
            return "/".join(phases)
    return FLAGS.get(setting, setting)


def config_message(err, args=None):
    """A ``ConfigError``'s message with each setting shown as its flag.

    Example:
        >>> from multilabel_keras.training.config import ConfigError
        >>> config_message(ConfigError([("epochs", "must be a whole number >= 1, got 0")]))
        '--epochs must be a whole number >= 1, got 0'
    """
    return "; ".join(f"{flag_for(name, args)} {text}" for name, text in err.problems)


def resume_hint(args):
    """How to continue a stopped ``train`` run, when it left something to resume.

    Args:
        args: the parsed command line.

    Returns:
        ``"; continue with: multilabel-keras train --resume OUT"`` or ``""``.

    Example:
        >>> from multilabel_keras.cli_parser import build_parser
        >>> resume_hint(build_parser().parse_args(["train", "--data", "d", "--out", "nowhere"]))
        ''
    """
    from multilabel_keras.runs import RunDir

    out = getattr(args, "resume", None) or getattr(args, "out", None)
    if args.command == "train" and out and RunDir(out).stopped():
        return f"; continue with: multilabel-keras train --resume {out}"
    return ""


def flag_spelling(name, value):
    """How the command line sets a setting: ``--overwrite``, ``--max-bad-fraction 0.2``.

    Example:
        >>> flag_spelling("overwrite", True), flag_spelling("max_bad_fraction", 0.2)
        ('--overwrite', '--max-bad-fraction 0.2')
    """
    flag = flag_for(name)
    return flag if value is True else f"{flag} {value}"


def cli_message(err, args=None):
    """An error's message as the command line shows it: every setting named by its flag.

    Example:
        >>> from multilabel_keras.hints import Setting, hinted
        >>> cli_message(hinted(ValueError, "pass ", Setting("allow_outside_root", True)))
        'pass --allow-outside-root'
    """
    if hasattr(err, "problems"):
        return config_message(err, args)
    return spelled(err, flag_spelling)
