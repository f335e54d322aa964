"""The ``multilabel-keras`` argument parser: every sub-command and its flags."""

import argparse


def _add_train(sub):
    # Setting flags default to SUPPRESS: only the flags the user typed reach the
    # library, whose TrainConfig holds every default. Numbers stay text here so
    # that a bad one is refused by the config in the same words as from Python.
    p = sub.add_parser("train", help="train a model on a folder or CSV data set",
                       argument_default=argparse.SUPPRESS)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="folder in <label>_<label>/ layout or a CSV manifest")
    source.add_argument("--features", help="folder from extract-features: train the mlp head on it")
    source.add_argument("--resume", metavar="RUN_DIR",
                        help="continue a killed run from its last finished epoch")
    p.add_argument("--out", help="run directory to create (required unless --resume)")
    p.add_argument("--model", help="model name (see list-models; default smallervggnet)")
    p.add_argument("--backbone", help="backbone of --model xception_twin (default xception)")
    p.add_argument("--epochs", help="epochs over the images, all phases together (default 75; "
                                    "twin 10; --features 50)")
    p.add_argument("--image-size", help="side in pixels images are resized to (default 96)")
    p.add_argument("--batch-size",
                   help="images per batch (default: the recipe's: 16 smallervggnet, 32 others)")
    p.add_argument("--recipe", choices=("classic", "smallervggnet"),
                   help="train with that recipe's settings instead of the model's own")
    p.add_argument("--val-split",
                   help="share of the images held out to pick the best epoch and tune thresholds "
                        "(default 0.2)")
    p.add_argument("--seed", help="seed of every random draw: split, order, initialisation, "
                                  "dropout, augmentation (default 0)")
    p.add_argument("--deterministic", action="store_true",
                   help="deterministic kernels: the same --seed gives the same weights whatever "
                        "the thread count, at some speed (see docs/reliability.md)")
    p.add_argument("--distribute", action="store_const", const="data_parallel", dest="distribution",
                   help="data-parallel training on every device of every process (JAX backend, "
                        "keras.distribution; processes from KERAS_DISTRIBUTION_* variables); "
                        "--batch-size is then the global batch")
    p.add_argument("--precision", choices=("float32", "mixed_bfloat16"),
                   help="training compute (default float32); mixed_bfloat16 (batch norm, first "
                        "layers and head kept float32) is ~1.2x faster on CPUs with bfloat16 "
                        "instructions but was less accurate; the saved model is float32 either way")
    p.add_argument("--learning-rate", help="Adam's (peak) learning rate (default: the recipe's, 1e-3), or 'find': "
                   "a learning-rate range test picks it (runs without a transfer plan)")
    p.add_argument("--weights", help="a .weights.h5 file (model or backbone), or 'imagenet' (downloads)")
    p.add_argument("--head", choices=("dense", "sigmoid", "softmax2", "csra", "ml_decoder"),
                   help="transfer models: dense (default; also called sigmoid: pooled features -> "
                        "one sigmoid per label), softmax2 (a 2-way softmax per label), csra "
                        "(class-specific residual attention on the feature map) or ml_decoder "
                        "(label queries cross-attending to the feature map)")
    p.add_argument("--preprocessing", choices=("tf", "torch", "caffe", "none", "auto"),
                   help="how --weights want their pixels: tf [-1, 1], torch (ImageNet mean/std), "
                        "caffe (BGR minus the ImageNet mean), none (0-255) or auto (a linear "
                        "probe's choice); default: what WEIGHTS.json beside a weights file says, "
                        "else auto for a weights file and the family's own for imagenet")
    p.add_argument("--calibration", choices=("temperature", "none"),
                   help="per-label temperature scaling fitted on the validation split before "
                        "thresholds are tuned (default temperature)")
    p.add_argument("--tta", choices=("none", "flip"),
                   help="test-time augmentation: flip averages each image's scores with its "
                        "mirror image's, for validation (thresholds) and the run's predictions")
    p.add_argument("--schedule", choices=("auto", "lp_ft", "frozen", "none"),
                   help="transfer plan (default auto: LP-FT with --weights on a transfer model, "
                        "else every layer trains); the phase flags below give explicit phases")
    p.add_argument("--freeze-epochs",
                   help="explicit phases: epochs with the backbone frozen (default: --epochs less "
                        "the other phases)")
    p.add_argument("--finetune-epochs", help="explicit phases: epochs fine-tuning from --unfreeze-from (SGD)")
    p.add_argument("--final-epochs", help="explicit phases: last epochs fine-tuning without augmentation")
    p.add_argument("--unfreeze-from",
                   help="block or layer where fine-tuning starts: all, block13, mixed9, last:2 … "
                        "(default: the last 40%% of the blocks with LP-FT, e.g. last:7 of "
                        "MobileNetV2's 17; last:2 with explicit phases)")
    p.add_argument("--finetune-learning-rate",
                   help="fine-tuning rate (default: 3e-4 with LP-FT, 1e-4 SGD with explicit phases)")
    p.add_argument("--layer-decay",
                   help="discriminative fine-tuning rates: the backbone's last block learns at this "
                        "times the head's rate, each block below at this times the one above "
                        "(default 1: one rate)")
    p.add_argument("--loss", choices=("bce", "weighted_bce", "focal", "asl", "softmax2"),
                   help="default bce (softmax2 with --head softmax2)")
    p.add_argument("--threshold-policy",
                   choices=("f1", "mcc", "precision", "global", "fixed", "top_k", "at_least_one"),
                   help="how decisions are tuned on the validation split (default f1)")
    p.add_argument("--min-precision", help="for --threshold-policy precision (default 0.9)")
    p.add_argument("--top-k", help="for --threshold-policy top_k (default 1)")
    p.add_argument("--on-bad-image", choices=("skip", "error"),
                   help="skip (default; each skipped file is named) or stop at the first bad image")
    p.add_argument("--max-bad-fraction",
                   help="fail when more than this share of the images is bad (default 0.2)")
    p.add_argument("--patience", help="early-stopping patience in epochs")
    p.add_argument("--no-augment", action="store_false", dest="augment",
                   help="train without augmentation")
    p.add_argument("--mix", help="share of each batch replaced by 2x2 mosaics of four images "
                                 "labelled with the union of their labels")
    p.add_argument("--recolour",
                   help="share of each batch whose hue is turned with its colour labels unknown, "
                        "so objects are recognised in any colour (default: the recipe's)")
    p.add_argument("--recolour-split", action=argparse.BooleanOptionalAction,
                   help="untouched images teach colour labels only, so object labels learn only "
                        "from recoloured ones (default: the recipe's)")
    p.add_argument("--colour-labels",
                   help="labels --recolour treats as colours: auto (default: labels named by "
                        "colour words) or a comma-separated list")
    p.add_argument("--lr-plan", choices=("decay", "cosine"),
                   help="Adam's learning-rate plan: the classic inverse-time decay, or one warm-up "
                        "epoch then a cosine to zero")
    p.add_argument("--pooling", choices=("flatten", "avg"),
                   help="smallervggnet: flatten -> dense 1024 (the classic network) or global "
                        "average pooling -> dense 1024")
    _add_data_flags(p)
    p.add_argument("--overwrite", action="store_true", default=False, help="allow a non-empty --out")
    p.add_argument("--tensorboard", default=None, metavar="DIR",
                   help="also log every epoch (exact mAP and val_mAP included) for TensorBoard "
                        "into DIR (Keras' TensorBoard callback)")
    p.add_argument("--quiet", action="store_true", default=False, help="no progress bar")


def _add_tta_flag(p):
    p.add_argument("--tta", choices=("none", "flip"), default=None,
                   help="test-time augmentation (default: the run's own, under which its "
                        "thresholds were tuned)")


def _add_others(sub):
    p = sub.add_parser("evaluate", help="print metrics of a run on labelled data as JSON")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--data", required=True, help="folder or CSV manifest")
    p.add_argument("--batch-size", type=int, default=32, help="images per prediction batch")
    _add_tta_flag(p)
    _add_bad_image_flags(p)
    _add_data_flags(p)
    _add_quiet_flag(p)

    p = sub.add_parser("extract-features", help="run a frozen backbone once; store pooled features")
    p.add_argument("--data", required=True, help="folder or CSV manifest")
    p.add_argument("--backbone", default="inceptionv3", help="a keras.applications name")
    p.add_argument("--weights", required=True,
                   help="a backbone .weights.h5 file, 'imagenet' (downloads), or 'none' for random "
                        "weights (features of a random backbone score near chance)")
    p.add_argument("--image-size", type=int, default=None, help="default: the backbone's own")
    p.add_argument("--batch-size", type=int, default=32, help="images per extraction batch")
    p.add_argument("--pooling", choices=("avg", "max"), default="avg",
                   help="how the backbone's last maps become one feature vector")
    p.add_argument("--preprocessing", choices=("tf", "torch", "caffe", "none", "auto"),
                   help="how --weights want their pixels (as train's --preprocessing); default: "
                        "WEIGHTS.json beside a weights file, else measured from the images")
    p.add_argument("--out", required=True, help="folder to create")
    _add_data_flags(p)
    _add_quiet_flag(p)
    p.add_argument("--overwrite", action="store_true", help="allow a non-empty --out")

    p = sub.add_parser("inspect", help="label statistics, co-occurrence, unseen combinations")
    p.add_argument("--data", required=True, help="folder or CSV manifest")
    p.add_argument("--out", default=None, help="folder for inspect.json and cooccurrence.png")
    p.add_argument("--val-split", type=float, default=0.2, help="the hold-out to check")
    p.add_argument("--seed", type=int, default=0, help="seed of the split to check")
    p.add_argument("--overwrite", action="store_true",
                   help="replace inspect.json and cooccurrence.png in --out")
    _add_data_flags(p)
    _add_quiet_flag(p)

    p = sub.add_parser("explain", help="Grad-CAM of one label: heat-map overlay PNG per image")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--label", required=True, help="a label of the run")
    p.add_argument("--out", default=None, help="overlay PNG (one image) or folder (several)")
    p.add_argument("--overwrite", action="store_true", help="replace existing overlay files")
    p.add_argument("images", nargs="+", help="image files")

    p = sub.add_parser("predict", help="print one JSON line per image; a bad image gets an "
                                       "error line and the rest go on (exit status 1)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="run directory")
    source.add_argument("--preset", help="a preset folder, or an hf://… / kaggle://… handle "
                                         "(needs keras-hub and the network)")
    _add_tta_flag(p)
    p.add_argument("images", nargs="+", help="image files, or folders (every image under them)")
    _add_quiet_flag(p)

    p = sub.add_parser("export", help="write a run's model as a SavedModel, TFLite or ONNX file, "
                                      "with export.json (labels, thresholds, rule, input size)")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--format", choices=("savedmodel", "tflite", "onnx", "preset"),
                   default="savedmodel",
                   help="savedmodel and tflite need only TensorFlow; onnx needs the [export] "
                        "extra (tf2onnx, onnx); preset is a keras-hub style folder with the "
                        "labels, thresholds and calibration (predict --preset loads it)")
    p.add_argument("--out", required=True, help="folder to create (an existing one is refused)")

    p = sub.add_parser("report", help="one self-contained HTML page to look at a run: per-label "
                                      "table with threshold sliders, galleries of mistakes, plots")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--data", default=None,
                   help="labelled data to look at (folder or CSV); without it, the run's own "
                        "validation metrics and plots")
    p.add_argument("--out", default=None, help="the HTML file (default RUN/report.html)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    _add_data_flags(p)
    _add_quiet_flag(p)

    p = sub.add_parser("demo", help="build the demo data, train, evaluate, predict, report")
    p.add_argument("--out", default="demo_output", help="folder for the demo data and runs")
    p.add_argument("--epochs", type=int, default=12, help="training epochs")
    p.add_argument("--image-size", type=int, default=48, help="side in pixels")
    p.add_argument("--per-folder", type=int, default=120, help="images per colour_garment folder")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, split and training")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    sub.add_parser("list-models", help="list the registered model names")


def _add_data_flags(p):
    p.add_argument("--sep", default="_",
                   help="label separator in folder names ('' = the folder name is one label)")
    p.add_argument("--label-sep", default=" ",
                   help="label separator inside a CSV labels cell (default: white space)")
    p.add_argument("--allow-outside-root", action="store_true", default=False,
                   help="accept CSV paths and linked folders that lead outside the data folder")


def _add_quiet_flag(p):
    p.add_argument("--quiet", action="store_true", default=False,
                   help="no progress bar (none is drawn into a pipe or file either)")


def _add_bad_image_flags(p):
    p.add_argument("--on-bad-image", choices=("skip", "error"), default="skip",
                   help="skip (default; each skipped file is named) or stop at the first bad image")
    p.add_argument("--max-bad-fraction", type=float, default=0.2,
                   help="fail when more than this share of the images is bad")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show."""

    def _get_help_string(self, action):
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


class _SubParser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def build_parser():
    """Returns the ``argparse`` parser of the command line.

    Returns:
        ``argparse.ArgumentParser``.

    Example:
        >>> build_parser().parse_args(["list-models"]).command
        'list-models'
    """
    from multilabel_keras import __version__

    parser = argparse.ArgumentParser(
        prog="multilabel-keras", description="Multi-label image classification with Keras 3.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"multilabel-keras {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_SubParser)
    _add_train(sub)
    _add_others(sub)
    return parser
