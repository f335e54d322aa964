"""The demo job: build the demo data, train, evaluate, save, predict, report."""

import datetime
import os
import time

import numpy as np

from multilabel_keras.data.demo import make_demo_folders
from multilabel_keras.data.sources import from_folders
from multilabel_keras.data.splits import split_samples
from multilabel_keras.data.vocabulary import LabelVocabulary
from multilabel_keras.inference import Predictor, evaluate
from multilabel_keras.io import atomic_path
from multilabel_keras.runs import RunDir
from multilabel_keras.training import train


def write_manifest(samples, path):
    """Writes ``samples`` as a ``filename,labels`` CSV relative to its folder.

    Args:
        samples: the ``Samples`` to list.
        path: destination CSV (written atomically).

    Returns:
        None.

    Example:
        >>> from multilabel_keras import from_folders
        >>> write_manifest(from_folders("data/test"), "data/test.csv")
        >>> open("data/test.csv").read().splitlines()[:2]
        ['filename,labels', 'test/black_dress/0.jpg,black dress']
    """
    root = os.path.dirname(os.path.abspath(path))
    lines = ["filename,labels"]
    for image, labels in zip(samples.paths, samples.labels):
        name = os.path.relpath(os.path.abspath(image), root)
        if "," in name or '"' in name:
            name = '"' + name.replace('"', '""') + '"'
        lines.append(f"{name},{' '.join(sorted(labels))}")
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


def _check_out(out):
    """The demo writes only into a new folder, an empty one, or one of its own earlier outputs."""
    if not os.path.lexists(out):
        return
    if not os.path.isdir(out):
        raise FileExistsError(f"{out} exists and is not a folder; choose another --out")
    entries = sorted(os.listdir(out))
    ours = os.path.isfile(os.path.join(out, "data", "demo.json"))
    if entries and not ours:
        shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
        raise FileExistsError(f"{out} holds files the demo did not write ({shown}); choose "
                              f"another --out or an empty folder")


def run_demo(out="demo_output", epochs=12, image_size=48, per_folder=120, seed=0, verbose=1,
             log=print):
    """Runs the whole job on the built-in demo data and prints a report.

    Writes ``<out>/data`` (tinted Fashion-MNIST JPEGs in
    ``<colour>_<garment>/`` folders), ``<out>/test.csv`` (the held-out
    test split) and a new run directory ``<out>/runs/demo-<time>``; trains
    SmallerVGGNet on 70% of the images, tunes thresholds on 15% and
    reports on the other 15%.

    Args:
        out: output folder.
        epochs: training epochs.
        image_size: model input side.
        per_folder: images per colour/garment folder.
        seed: random seed.
        verbose: 1 for Keras' progress bar, 2 for one line per epoch, 0 for none.
        log: function that receives the report lines.

    Returns:
        A dict with ``run_dir``, ``test_metrics`` and ``predictions``.

    Example:
        >>> summary = run_demo("demo_output", epochs=2)  # doctest: +SKIP
    """
    start = time.time()
    _check_out(out)
    data_dir = make_demo_folders(os.path.join(out, "data"), per_folder=per_folder, seed=seed, log=log)
    samples = from_folders(data_dir)
    vocabulary = LabelVocabulary().fit(samples.labels)
    train_set, val_set, test_set = split_samples(samples, vocabulary, (0.7, 0.15, 0.15), seed)
    write_manifest(test_set, os.path.join(out, "test.csv"))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = os.path.join(out, "runs", f"demo-{stamp}")
    log(f"training smallervggnet on {len(train_set)} images ({len(val_set)} validation, "
        f"{len(test_set)} test), {vocabulary.num_labels} labels: {', '.join(vocabulary.classes_)}")
    result = train(train_set, run_dir, "smallervggnet", val_samples=val_set, vocabulary=vocabulary,
                   image_size=image_size, epochs=epochs, seed=seed, verbose=verbose)
    predictor = Predictor.load(run_dir)
    metrics = evaluate(predictor, test_set)
    RunDir(run_dir).write_json(RunDir.TEST_METRICS, {"split": "test", **metrics})
    picked = np.random.default_rng(seed).choice(len(test_set), min(4, len(test_set)), replace=False)
    examples = predictor.predict([test_set.paths[i] for i in sorted(picked)])

    log("")
    log(f"run directory: {run_dir}")
    log(f"test split ({metrics['num_images']} images, thresholds tuned on validation only):")
    for key in ("mAP", "micro_f1", "macro_f1", "subset_accuracy", "hamming_loss"):
        log(f"  {key:<16} {metrics[key]:.4f}")
    log("  per label:        AP     F1   support")
    for name, row in metrics["per_label"].items():
        log(f"    {name:<14} {row['ap']:.3f}  {row['f1']:.3f}  {row['support']:>5}")
    log("predictions:")
    for item in examples:
        truth = " ".join(sorted(test_set.labels[test_set.paths.index(item["path"])]))
        log(f"  {os.path.relpath(item['path'], out)}: {' '.join(item['labels']) or '-'}"
            f"  (true: {truth})")
    log(f"plot: {RunDir(run_dir).file(RunDir.PLOT)}")
    log(f"done in {time.time() - start:.0f} s")
    return {"run_dir": run_dir, "test_metrics": metrics, "predictions": examples,
            "validation_metrics": result.metrics}
