"""The ``multilabel-keras`` command line: thin sub-commands over the library."""

import json
import os
import signal
import sys
import threading
import warnings

from multilabel_keras.cli_env import (hide_retracing_notes, import_tensorflow_quietly, is_terminal,
                                      keras_problem, silence_stdout, terminated, tolerant_streams)
from multilabel_keras.cli_parser import build_parser


def _data_kwargs(args, path):
    kwargs = {"allow_outside_root": args.allow_outside_root}
    if os.path.isdir(path):
        kwargs["sep"] = args.sep
    elif str(path).lower().endswith(".csv"):
        kwargs["label_sep"] = args.label_sep
    return kwargs


def _check_out_of_data(args):
    """An output folder inside a data folder would be read back as a label of it: refused."""
    data, out = getattr(args, "data", None), getattr(args, "out", None)
    if not data or not out or not os.path.isdir(data):
        return
    base, target = os.path.realpath(data), os.path.realpath(out)
    if os.path.commonpath([base, target]) == base:
        raise ValueError(f"--out {out} lies inside the data folder {data}: what it writes would "
                         f"be read as images of a label next time; choose a folder outside it")


def _verbosity(args):
    """Keras' progress bar on a terminal; one line per epoch into a file or pipe."""
    if args.quiet:
        return 0
    try:
        return 1 if sys.stdout.isatty() else 2
    except (AttributeError, ValueError):
        return 2


def run_train(args):
    from multilabel_keras.cli_flags import train_settings

    verbose = _verbosity(args)
    callbacks = _tracking(args)
    if getattr(args, "resume", None):
        from multilabel_keras.training import resume_training

        _print_summary(resume_training(args.resume, verbose=verbose, callbacks=callbacks))
        return
    if not getattr(args, "out", None):
        raise ValueError("--out is required (the run directory to create)")
    from multilabel_keras.training import TrainConfig

    trainer, settings = train_settings(args)
    # Checked before any data is read: a bad setting costs nothing.
    config = TrainConfig(trainer, **settings)
    _check_out_of_data(args)
    if trainer == "features":
        from multilabel_keras.training import train_on_features

        result = train_on_features(args.features, args.out, config=config,
                                   overwrite=args.overwrite, verbose=verbose, callbacks=callbacks)
    else:
        from multilabel_keras.data.sources import load_samples
        from multilabel_keras.training import train, train_twin

        samples = load_samples(args.data, **_data_kwargs(args, args.data))
        trainer_fn = train_twin if trainer == "twin" else train
        result = trainer_fn(samples, args.out, config=config, overwrite=args.overwrite,
                            verbose=verbose, callbacks=callbacks)
    _print_summary(result)


def _tracking(args):
    """The callbacks the tracking flags ask for (``--tensorboard DIR``)."""
    if not getattr(args, "tensorboard", None):
        return []
    import keras

    if os.path.lexists(args.tensorboard) and not os.path.isdir(args.tensorboard):
        raise ValueError(f"--tensorboard {args.tensorboard} is a file; give a folder")
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        raise ValueError("--tensorboard needs the tensorboard package: pip install "
                         "'multilabel_keras[tracking]' (or pip install tensorboard)")
    return [keras.callbacks.TensorBoard(log_dir=args.tensorboard)]


def _print_summary(result):
    summary = {k: result.metrics.get(k) for k in ("mAP", "micro_f1", "macro_f1", "subset_accuracy")}
    print(json.dumps({"run": result.run_dir, "validation": summary}), file=sys.stderr)


def run_extract_features(args):
    from multilabel_keras.data.sources import load_samples
    from multilabel_keras.training import extract_features

    _check_out_of_data(args)
    weights = None if args.weights.lower() == "none" else args.weights
    samples = load_samples(args.data, **_data_kwargs(args, args.data))
    index = extract_features(samples, args.out, args.backbone, weights, args.image_size,
                             args.batch_size, args.pooling, args.overwrite,
                             preprocessing=args.preprocessing)
    print(json.dumps({k: index[k] for k in ("backbone", "image_size", "dim", "count")}))


def run_evaluate(args):
    from multilabel_keras.data.sources import load_samples
    from multilabel_keras.inference import evaluate

    samples = load_samples(args.data, **_data_kwargs(args, args.data))
    print(json.dumps(evaluate(args.run, samples, batch_size=args.batch_size,
                              on_bad_image=args.on_bad_image,
                              max_bad_fraction=args.max_bad_fraction, tta=args.tta)))


def run_inspect(args):
    from multilabel_keras.data.sources import load_samples
    from multilabel_keras.data.diagnostics import inspect_data

    _check_out_of_data(args)
    samples = load_samples(args.data, **_data_kwargs(args, args.data))
    report = inspect_data(samples, args.out, args.val_split, args.seed, args.overwrite)
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
    from multilabel_keras.inference.explain import check_new_file, overlay_name

    taken = set()
    folder = args.out if len(args.images) > 1 else None
    own = False
    if len(args.images) > 1 and folder is None:
        from multilabel_keras.runs import RunDir

        folder, own = RunDir(args.run).file(RunDir.EXPLAIN), True
    outs = [args.out if folder is None else os.path.join(folder, overlay_name(i, args.label, taken))
            for i in args.images]
    # Every target is checked before the first overlay is written: all or nothing.
    for out in outs:
        if out is not None and not own:
            check_new_file(out, args.overwrite)
    if folder is not None:
        os.makedirs(folder, exist_ok=True)
    for image, out in zip(args.images, outs):
        result = explain(args.run, image, args.label, out, overwrite=True)
        print(json.dumps({"path": image, "label": args.label, "score": round(result["score"], 6),
                          "overlay": result["overlay"]}))


def image_paths(items):
    """Expands the ``predict`` arguments: a folder stands for every image under it.

    Args:
        items: file and folder paths, as typed.

    Returns:
        Paths in the order given, each folder's images as ``images_under``
        lists them.

    Example:
        >>> image_paths(["photos/", "extra.jpg"])
        ['photos/a.jpg', 'photos/b/c.png', 'extra.jpg']
    """
    from multilabel_keras.data.walk import IMAGE_EXTENSIONS, images_under

    paths = []
    for item in items:
        if not os.path.isdir(item):
            paths.append(item)
            continue
        found = images_under(item)
        if not found:
            raise ValueError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) under {item}")
        paths += found
    return paths


def run_predict(args):
    from multilabel_keras.cli_flags import cli_message
    from multilabel_keras.inference import Predictor
    from multilabel_keras.progress import Progress

    if args.preset:
        from multilabel_keras.inference.preset import load_preset

        predictor = load_preset(args.preset, tta=args.tta)
    else:
        predictor = Predictor.load(args.run, tta=args.tta)
    paths = image_paths(args.images)
    failed = 0
    # On a terminal the JSON lines themselves show progress; into a file or pipe, a bar does.
    bar = Progress(len(paths), "predicting", enabled=not is_terminal(sys.stdout))
    for start in range(0, len(paths), predictor.batch_size):
        chunk = paths[start:start + predictor.batch_size]
        try:
            results = predictor.predict(chunk)
        except (ValueError, OSError):
            # One bad image: the batch is redone one image at a time, and only that one is lost.
            results = []
            for path in chunk:
                try:
                    results += predictor.predict([path])
                except (ValueError, OSError) as err:
                    failed += 1
                    reason = cli_message(err)
                    print(f"multilabel-keras predict: error: {reason}", file=sys.stderr)
                    results.append({"path": path, "error": reason})
        for result in results:
            print(json.dumps(result), flush=True)
        bar.update(len(chunk))
    bar.close()
    if failed:
        print(f"multilabel-keras predict: {failed} of {len(paths)} images could not be read",
              file=sys.stderr)
        return 1
    return 0


def run_export(args):
    from multilabel_keras.inference.export import export_run

    if args.format == "preset":
        from multilabel_keras.inference.preset import save_preset

        print(f"saved preset: {save_preset(args.run, args.out)} (load it with predict --preset "
              f"or load_preset)")
        return

    path = export_run(args.run, args.out, args.format)
    print(f"exported {args.format}: {path} (labels, thresholds and input in "
          f"{os.path.join(args.out, 'export.json')})")


def run_report(args):
    from multilabel_keras.inference.report import write_report

    samples = None
    if args.data:
        from multilabel_keras.data.sources import load_samples

        samples = load_samples(args.data, **_data_kwargs(args, args.data))
    print(f"wrote {write_report(args.run, samples, args.out, args.overwrite)}")


def run_demo(args):
    from multilabel_keras.demo_job import run_demo as demo

    demo(args.out, epochs=args.epochs, image_size=args.image_size,
         per_folder=args.per_folder, seed=args.seed, verbose=_verbosity(args))


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
    "export": run_export,
    "report": run_report,
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
        >>> main(["list-models"])  # doctest: +ELLIPSIS
        convnextbase
        ...
        smallervggnet
        ...
        xception_twin
        0
    """
    args = build_parser().parse_args(argv)
    tolerant_streams()
    # 3: also TensorFlow's C++ "errors" that are only notes (a uint8 op falling back to Eigen);
    # real failures reach the user as Python exceptions.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if not args.debug:
        import_tensorflow_quietly()
        hide_retracing_notes()
    problem = keras_problem()
    if problem:
        print(f"multilabel-keras {args.command}: error: {problem}", file=sys.stderr)
        return 2
    from multilabel_keras.cli_flags import cli_message, resume_hint
    from multilabel_keras.progress import quiet

    quiet(getattr(args, "quiet", False))

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, terminated)
    shown = warnings.formatwarning
    warnings.formatwarning = lambda message, category, *rest: (
        f"multilabel-keras {args.command}: warning: {cli_message(message)}\n")
    try:
        code = COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print(f"multilabel-keras {args.command}: interrupted{resume_hint(args)}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader stopped reading (``predict … | head -1``): stop quietly, as cat does.
        silence_stdout()
        return 141
    except (FileNotFoundError, FileExistsError, NotADirectoryError, ValueError,
            ConnectionError) as err:
        if args.debug:
            raise
        print(f"multilabel-keras {args.command}: error: {cli_message(err, args)}", file=sys.stderr)
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
    finally:
        warnings.formatwarning = shown
    return code or 0



if __name__ == "__main__":
    sys.exit(main())
