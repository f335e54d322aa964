"""Command-line flags checked before a command reads or writes anything."""

import math
import os


def check_train_flags(args):
    """Refuses numeric ``train`` flags that cannot work, before anything is read or written.

    Args:
        args: the parsed ``train`` arguments.

    Returns:
        None; raises ``ValueError`` naming the first bad flag.

    Example:
        >>> from multilabel_keras.cli import build_parser
        >>> args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--epochs", "0"])
        >>> check_train_flags(args)
        Traceback (most recent call last):
        ...
        ValueError: --epochs must be a whole number >= 1, got 0
    """
    counts = {"--epochs": args.epochs, "--batch-size": args.batch_size,
              "--image-size": args.image_size, "--freeze-epochs": args.freeze_epochs,
              "--patience": args.patience, "--top-k": args.top_k}
    for flag, value in counts.items():
        if value is not None and value < (0 if flag == "--freeze-epochs" else 1):
            least = 0 if flag == "--freeze-epochs" else 1
            raise ValueError(f"{flag} must be a whole number >= {least}, got {value}")
    for flag, value in (("--finetune-epochs", args.finetune_epochs),
                        ("--final-epochs", args.final_epochs)):
        if value < 0:
            raise ValueError(f"{flag} must be >= 0, got {value}")
    rates = {"--learning-rate": args.learning_rate,
             "--finetune-learning-rate": args.finetune_learning_rate}
    for flag, value in rates.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{flag} must be a finite number > 0, got {value}")
    fractions = {"--val-split": (args.val_split, 0.0, 1.0, "[0, 1)"),
                 "--mix": (args.mix, 0.0, 1.0, "[0, 1]"),
                 "--recolour": (args.recolour, 0.0, 1.0, "[0, 1]"),
                 "--max-bad-fraction": (args.max_bad_fraction, 0.0, 1.0, "[0, 1]"),
                 "--min-precision": (args.min_precision, 0.0, 1.0, "[0, 1]")}
    for flag, (value, low, high, shown) in fractions.items():
        if value is None:
            continue
        top_ok = value < high if flag == "--val-split" else value <= high
        if not (math.isfinite(value) and value >= low and top_ok):
            raise ValueError(f"{flag} must be in {shown}, got {value}")


def resume_hint(args):
    """How to continue a stopped ``train`` run, when it left something to resume.

    Args:
        args: the parsed command line.

    Returns:
        ``"; continue with: multilabel-keras train --resume OUT"`` or ``""``.

    Example:
        >>> from multilabel_keras.cli import build_parser
        >>> resume_hint(build_parser().parse_args(["train", "--data", "d", "--out", "nowhere"]))
        ''
    """
    out = getattr(args, "resume", None) or getattr(args, "out", None)
    if args.command == "train" and out and os.path.isfile(os.path.join(out, "resume", "spec.json")):
        return f"; continue with: multilabel-keras train --resume {out}"
    return ""


# The library's messages name its Python arguments; the command line has flags for them.
_PYTHON_TO_FLAGS = (("overwrite=True", "--overwrite"),
                    ("allow_outside_root=True", "--allow-outside-root"),
                    ("on_bad_image='error'", "--on-bad-image error"),
                    ("max_bad_fraction=", "--max-bad-fraction "))


def cli_words(text):
    """Rewrites a library message's Python hints as the command line's flags.

    Args:
        text: an error or warning message.

    Returns:
        The message with ``overwrite=True`` as ``--overwrite`` and so on.

    Example:
        >>> cli_words("not empty; pass overwrite=True")
        'not empty; pass --overwrite'
    """
    for python, flag in _PYTHON_TO_FLAGS:
        text = text.replace(python, flag)
    return text
