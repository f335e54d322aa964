"""What the per-epoch exact mAP costs: epoch time with and without it, in one run.

SmallerVGGNet with the library's recipe trains on JPEG files (80/20 split)
three ways, interleaved round by round:

(none)     no per-epoch evaluation (the baseline);
(streamed) ``ExactMAP`` with the validation files decoded and resized
           again every epoch (as ``train`` did before), the training mAP
           from the training pass's own outputs (``EpochOutputs``);
(now)      ``ExactMAP`` as ``train`` uses it: the same, with the validation
           images decoded once and kept in memory (``evaluation_dataset``).

Prints the median epoch time of each and the overhead over (none).

Usage:
    python benchmarks/eval_overhead.py [--images 600] [--rounds 3]
"""

import argparse
import json
import os
import statistics
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from multilabel_keras import LabelVocabulary, build_model, from_folders, make_dataset  # noqa: E402
from multilabel_keras.data.augment import RandomAffine  # noqa: E402
from multilabel_keras.data.demo import make_demo_folders  # noqa: E402
from multilabel_keras.data.pipeline import evaluation_dataset  # noqa: E402
from multilabel_keras.training.callbacks import ExactMAP  # noqa: E402
from multilabel_keras.training.epoch_outputs import EpochOutputs  # noqa: E402
from multilabel_keras.training.recipes import resolve_recipe  # noqa: E402
from train_throughput import EpochTimer  # noqa: E402

METHODS = ("none", "streamed", "now")


def measure(method, train, val, vocab, args):
    recipe = resolve_recipe("smallervggnet")
    batch = int(recipe["batch_size"])
    steps = int(np.ceil(len(train) / batch))
    model = build_model("smallervggnet", vocab.num_labels, (args.image_size,) * 2 + (3,),
                        **recipe["model_kwargs"])
    in_pass = EpochOutputs(steps * batch, vocab.num_labels) if method != "none" else None
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy",
                  metrics=None if in_pass is None else [in_pass])
    data = make_dataset(train, vocab, args.image_size, batch, shuffle=True, repeat=True, seed=0,
                        augment=RandomAffine(seed=0, **recipe["augment"]))
    callbacks = []
    if method != "none":
        build = make_dataset if method == "streamed" else evaluation_dataset
        callbacks.append(ExactMAP(build(val, vocab, args.image_size, batch), None,
                                  train_outputs=in_pass))
    timer = EpochTimer()  # last: its epoch time includes the evaluation callbacks
    model.fit(data, epochs=args.epochs + 1, steps_per_epoch=steps, callbacks=callbacks + [timer],
              verbose=0)
    return timer.times[1:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_demo_folders(os.path.join(tmp, "demo"), per_folder=max(1, args.images // 20),
                                 size=args.image_size, log=lambda *_: None)
        samples = from_folders(root)
        order = np.random.default_rng(0).permutation(len(samples))
        cut = int(0.8 * len(samples))
        train, val = samples.subset(np.sort(order[:cut])), samples.subset(np.sort(order[cut:]))
        vocab = LabelVocabulary().fit(samples.labels)
        print(f"SmallerVGGNet {args.image_size}x{args.image_size}, {len(train)} training / "
              f"{len(val)} validation images", flush=True)
        times = {m: [] for m in METHODS}
        for r in range(args.rounds):
            for method in METHODS:
                times[method] += measure(method, train, val, vocab, args)
            print(f"round {r + 1}: " + "  ".join(f"{m}={v[-1]:.2f}s" for m, v in times.items()),
                  flush=True)
    med = {m: statistics.median(v) for m, v in times.items()}
    print(f"\n{'per-epoch evaluation':<44} {'epoch s':>8} {'overhead':>9}")
    labels = {"none": "none", "streamed": "before: validation decoded every epoch",
              "now": "now: validation decoded once, in memory"}
    for m in METHODS:
        print(f"{labels[m]:<44} {med[m]:>8.2f} {med[m] / med['none'] - 1:>8.1%}")
    result = {"epoch_s": med, "overhead_streamed": med["streamed"] / med["none"] - 1,
              "overhead_now": med["now"] / med["none"] - 1, "images": len(train)}
    print("RESULT " + json.dumps(result))
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
