"""The ``multilabel-keras`` command line: thin sub-commands over the library."""

import argparse
import json
import os
import sys


def _add_train(sub):
    p = sub.add_parser("train", help="train a model on a folder or CSV data set")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="folder in <label>_<label>/ layout or a CSV manifest")
    source.add_argument("--features", help="folder from extract-features: train the mlp head on it")
    source.add_argument("--resume", metavar="RUN_DIR",
                        help="continue a killed run from its last finished epoch")
    p.add_argument("--model", default="smallervggnet", help="model name (see list-models)")
    p.add_argument("--backbone", default="xception", help="backbone of --model xception_twin")
    p.add_argument("--epochs", type=int, default=75)
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per batch (default: the recipe's: 16 smallervggnet, 32 others)")
    p.add_argument("--recipe", choices=("classic",), default=None,
                   help="train with the published recipe's settings instead of the model's own")
    p.add_argument("--out", help="run directory to create (required unless --resume)")
    p.add_argument("--val-split", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--learning-rate", type=float, default=None,
                   help="Adam's (peak) learning rate (default: the recipe's, 1e-3)")
    p.add_argument("--weights", default=None,
                   help="a .weights.h5 file (model or backbone), or 'imagenet' (downloads)")
    p.add_argument("--head", choices=("sigmoid", "softmax2"), default=None,
                   help="transfer models: one sigmoid per label (default) or a 2-way softmax per label")
    p.add_argument("--freeze-epochs", type=int, default=None,
                   help="transfer schedule: epochs with the backbone frozen (replaces --epochs)")
    p.add_argument("--finetune-epochs", type=int, default=0,
                   help="transfer schedule: epochs fine-tuning from --unfreeze-from (SGD)")
    p.add_argument("--final-epochs", type=int, default=0,
                   help="transfer schedule: last epochs fine-tuning without augmentation")
    p.add_argument("--unfreeze-from", default=None,
                   help="block or layer where fine-tuning starts: all, block13, mixed9, last:2 … "
                        "(default: all with LP-FT, last:2 with --freeze-epochs)")
    p.add_argument("--finetune-learning-rate", type=float, default=None,
                   help="fine-tuning rate (default: 3e-4 with LP-FT, 1e-4 SGD with --freeze-epochs)")
    p.add_argument("--loss", default=None, choices=("bce", "weighted_bce", "focal", "asl", "softmax2"),
                   help="default bce (softmax2 with --head softmax2)")
    p.add_argument("--threshold-policy", default="f1",
                   choices=("f1", "mcc", "precision", "global", "fixed", "top_k", "at_least_one"),
                   help="how decisions are tuned on the validation split")
    p.add_argument("--min-precision", type=float, default=0.9, help="for --threshold-policy precision")
    p.add_argument("--top-k", type=int, default=1, help="for --threshold-policy top_k")
    _add_bad_image_flags(p)
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience in epochs")
    p.add_argument("--no-augment", action="store_true", help="train without augmentation")
    p.add_argument("--mix", type=float, default=None,
                   help="share of each batch replaced by 2x2 mosaics of four images labelled with "
                        "the union of their labels")
    p.add_argument("--recolour", type=float, default=None,
                   help="share of each batch whose hue is turned with its colour labels unknown, "
                        "so objects are recognised in any colour (default: the recipe's)")
    p.add_argument("--colour-labels", default="auto",
                   help="labels --recolour treats as colours: auto (labels named by colour words) "
                        "or a comma-separated list")
    p.add_argument("--lr-plan", choices=("decay", "cosine"), default=None,
                   help="Adam's learning-rate plan: the classic inverse-time decay, or one warm-up "
                        "epoch then a cosine to zero")
    p.add_argument("--pooling", choices=("flatten", "avg"), default=None,
                   help="smallervggnet: flatten -> dense 1024 (the classic network) or global "
                        "average pooling -> dense 1024")
    p.add_argument("--sep", default="_",
                   help="label separator in folder names ('' = the folder name is one class)")
    p.add_argument("--overwrite", action="store_true", help="allow a non-empty --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_others(sub):
    p = sub.add_parser("evaluate", help="print metrics of a run on labelled data as JSON")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--data", required=True, help="folder or CSV manifest")
    p.add_argument("--batch-size", type=int, default=32)
    _add_bad_image_flags(p)
    p.add_argument("--sep", default="_", help="label separator in folder names")

    p = sub.add_parser("extract-features", help="run a frozen backbone once; store pooled features")
    p.add_argument("--data", required=True, help="folder or CSV manifest")
    p.add_argument("--backbone", default="inceptionv3", help="a keras.applications name")
    p.add_argument("--weights", required=True,
                   help="a backbone .weights.h5 file, 'imagenet' (downloads), or 'none' for random "
                        "weights (features of a random backbone score near chance)")
    p.add_argument("--image-size", type=int, default=None, help="default: the backbone's own")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--pooling", choices=("avg", "max"), default="avg")
    p.add_argument("--out", required=True, help="folder to create")
    p.add_argument("--sep", default="_", help="label separator in folder names")
    p.add_argument("--overwrite", action="store_true", help="allow a non-empty --out")

    p = sub.add_parser("inspect", help="label statistics, co-occurrence, unseen combinations")
    p.add_argument("--data", required=True, help="folder or CSV manifest")
    p.add_argument("--out", default=None, help="folder for inspect.json and cooccurrence.png")
    p.add_argument("--val-split", type=float, default=0.2, help="the hold-out to check")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sep", default="_", help="label separator in folder names")

    p = sub.add_parser("explain", help="Grad-CAM of one label: heat-map overlay PNG per image")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--label", required=True, help="a label of the run")
    p.add_argument("--out", default=None, help="overlay PNG (one image) or folder (several)")
    p.add_argument("images", nargs="+", help="image files")

    p = sub.add_parser("predict", help="print one JSON line per image")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("images", nargs="+", help="image files")

    p = sub.add_parser("demo", help="build the demo data, train, evaluate, predict, report")
    p.add_argument("--out", default="demo_output", help="folder for the demo data and runs")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--image-size", type=int, default=48)
    p.add_argument("--per-folder", type=int, default=120, help="images per colour_garment folder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    sub.add_parser("list-models", help="list the registered model names")


def _add_bad_image_flags(p):
    p.add_argument("--on-bad-image", choices=("skip", "error"), default="skip",
                   help="skip (default; each skipped file is named) or stop at the first bad image")
    p.add_argument("--max-bad-fraction", type=float, default=0.2,
                   help="fail when more than this share of the images is bad")


def build_parser():
    """Returns the ``argparse`` parser of the command line.

    Returns:
        ``argparse.ArgumentParser``.

    Example:
        >>> build_parser().parse_args(["list-models"]).command
        'list-models'
    """
    parser = argparse.ArgumentParser(
        prog="multilabel-keras", description="Multi-label image classification with Keras 3."
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of one line")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_others(sub)
    return parser


def _data_kwargs(args, path):
    return {"sep": args.sep} if os.path.isdir(path) else {}


def run_train(args):
    from multilabel_keras.data.sources import load_samples
    from multilabel_keras.training import TransferSchedule, train, train_on_features

    if args.resume:
        from multilabel_keras.training import resume_training

        _print_summary(resume_training(args.resume, verbose=0 if args.quiet else 1))
        return
    if not args.out:
        raise ValueError("--out is required (the run directory to create)")
    from multilabel_keras.cli_checks import check_train_flags

    check_train_flags(args)
    decision = {"threshold_policy": args.threshold_policy,
                "threshold_kwargs": _policy_kwargs(args)}
    if args.features:
        result = train_on_features(
            args.features, args.out, val_split=args.val_split, epochs=args.epochs,
            batch_size=args.batch_size or 32, learning_rate=args.learning_rate or 1e-3,
            loss=args.loss,
            seed=args.seed, overwrite=args.overwrite, verbose=0 if args.quiet else 1, **decision,
        )
        _print_summary(result)
        return
    samples = load_samples(args.data, **_data_kwargs(args, args.data))
    schedule = None
    if args.freeze_epochs is not None or args.finetune_epochs or args.final_epochs:
        schedule = TransferSchedule(
            args.freeze_epochs if args.freeze_epochs is not None else args.epochs,
            args.finetune_epochs, args.unfreeze_from or "last:2", args.finetune_learning_rate or 1e-4,
            final_epochs=args.final_epochs,
        )
    elif args.unfreeze_from and args.weights and args.model != "xception_twin":
        # LP-FT (the default with --weights), fine-tuning from the named block.
        schedule = TransferSchedule.lp_ft(args.epochs, args.finetune_learning_rate or 3e-4,
                                          args.unfreeze_from)
    if args.model == "xception_twin":
        from multilabel_keras.training import train_twin

        result = train_twin(
            samples, args.out, backbone=args.backbone, val_split=args.val_split,
            image_size=args.image_size, batch_size=args.batch_size or 32, epochs=args.epochs,
            schedule=schedule, learning_rate=args.learning_rate or 1e-3,
            augment=not args.no_augment,
            weights=args.weights, seed=args.seed, overwrite=args.overwrite,
            verbose=0 if args.quiet else 1,
        )
        _print_summary(result)
        return
    result = train(
        samples,
        args.out,
        args.model,
        val_split=args.val_split,
        image_size=args.image_size,
        batch_size=args.batch_size,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        augment=not args.no_augment,
        patience=args.patience,
        weights=args.weights,
        model_kwargs=_model_kwargs(args),
        mix=args.mix,
        recolour=args.recolour,
        colour_labels=(args.colour_labels if args.colour_labels == "auto"
                       else [x.strip() for x in args.colour_labels.split(",") if x.strip()]),
        lr_plan=args.lr_plan,
        recipe=args.recipe,
        on_bad_image=args.on_bad_image,
        max_bad_fraction=args.max_bad_fraction,
        schedule=schedule,
        loss=args.loss,
        seed=args.seed,
        **decision,
        overwrite=args.overwrite,
        verbose=0 if args.quiet else 1,
    )
    _print_summary(result)


def _model_kwargs(args):
    kwargs = {}
    if args.head:
        kwargs["head"] = args.head
    if args.pooling:
        kwargs["pooling"] = None if args.pooling == "flatten" else args.pooling
    return kwargs or None


def _policy_kwargs(args):
    if args.threshold_policy == "precision":
        return {"min_precision": args.min_precision}
    if args.threshold_policy == "top_k":
        return {"k": args.top_k}
    return {}


def _print_summary(result):
    summary = {k: result.metrics.get(k) for k in ("mAP", "micro_f1", "macro_f1", "subset_accuracy")}
    print(json.dumps({"run": result.run_dir, "validation": summary}), file=sys.stderr)


def run_extract_features(args):
    from multilabel_keras.data.sources import load_samples
    from multilabel_keras.training import extract_features

    weights = None if args.weights.lower() == "none" else args.weights
    samples = load_samples(args.data, **_data_kwargs(args, args.data))
    index = extract_features(samples, args.out, args.backbone, weights, args.image_size,
                             args.batch_size, args.pooling, args.overwrite)
    print(json.dumps({k: index[k] for k in ("backbone", "image_size", "dim", "count")}))


def run_evaluate(args):
    from multilabel_keras.data.sources import load_samples
    from multilabel_keras.inference import evaluate

    samples = load_samples(args.data, **_data_kwargs(args, args.data))
    print(json.dumps(evaluate(args.run, samples, batch_size=args.batch_size,
                              on_bad_image=args.on_bad_image,
                              max_bad_fraction=args.max_bad_fraction)))


def run_inspect(args):
    from multilabel_keras.data.sources import load_samples
    from multilabel_keras.data.diagnostics import inspect_data

    samples = load_samples(args.data, **_data_kwargs(args, args.data))
    report = inspect_data(samples, args.out, args.val_split, args.seed)
    print(f"{report['num_images']} images, {report['num_labels']} labels, "
          f"cardinality {report['cardinality']:.2f}, density {report['density']:.3f}, "
          f"{report['distinct_label_sets']} distinct label sets, "
          f"{report['images_without_labels']} images without labels")
    width = max(len(n) for n in report["labels"]) if report["labels"] else 5
    for name in report["labels"]:
        print(f"  {name:<{width}}  {report['support'][name]:>7}")
    for name, count in report["rare_labels"].items():
        print(f"warning: label {name!r} has {count} positive(s): too few for a "
              f"{args.val_split:.0%} hold-out", file=sys.stderr)
    for combo in report["unseen_in_training"]:
        print(f"warning: {'+'.join(combo['labels']) or '(no labels)'} x{combo['count']} in the "
              f"hold-out never occurs in training", file=sys.stderr)
    if args.out:
        print(f"wrote {os.path.join(args.out, 'inspect.json')} and cooccurrence.png")


def run_explain(args):
    from multilabel_keras.inference import explain

    for image in args.images:
        out = args.out
        if out is not None and len(args.images) > 1:
            os.makedirs(out, exist_ok=True)
            stem = os.path.splitext(os.path.basename(image))[0]
            out = os.path.join(out, f"{stem}_{args.label}.png")
        result = explain(args.run, image, args.label, out)
        print(json.dumps({"path": image, "label": args.label, "score": round(result["score"], 6),
                          "overlay": result["overlay"]}))


def run_predict(args):
    from multilabel_keras.inference import Predictor

    predictor = Predictor.load(args.run)
    for result in predictor.predict(args.images):
        print(json.dumps(result))


def run_demo(args):
    from multilabel_keras.demo_job import run_demo as demo

    demo(args.out, epochs=args.epochs, image_size=args.image_size,
         per_folder=args.per_folder, seed=args.seed, verbose=0 if args.quiet else 1)


def run_list_models(args):
    from multilabel_keras.models import list_models

    print("\n".join(list_models()))


COMMANDS = {
    "train": run_train,
    "evaluate": run_evaluate,
    "extract-features": run_extract_features,
    "explain": run_explain,
    "inspect": run_inspect,
    "predict": run_predict,
    "demo": run_demo,
    "list-models": run_list_models,
}


def main(argv=None):
    """Entry point of the ``multilabel-keras`` console script.

    Args:
        argv: argument list (default: ``sys.argv[1:]``).

    Returns:
        Process exit status.

    Example:
        >>> main(["list-models"])  # doctest: +SKIP
    """
    from multilabel_keras.cli_checks import resume_hint

    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"multilabel-keras {args.command}: interrupted{resume_hint(args)}", file=sys.stderr)
        return 130
    except (FileNotFoundError, FileExistsError, NotADirectoryError, ValueError,
            ConnectionError) as err:
        if args.debug:
            raise
        print(f"multilabel-keras {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # disk full, permission denied, read-only folder …
        if args.debug:
            raise
        where = f" ({err.filename})" if getattr(err, "filename", None) else ""
        print(f"multilabel-keras {args.command}: error: {err.strerror or err}{where}"
              f"{resume_hint(args)}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001  one line for the user; --debug shows the rest
        if args.debug:
            raise
        text = str(err).strip().splitlines()[0] if str(err).strip() else ""
        print(f"multilabel-keras {args.command}: error: {type(err).__name__}: {text} "
              f"(run with --debug for the traceback)", file=sys.stderr)
        return 1
    return 0



if __name__ == "__main__":
    sys.exit(main())
