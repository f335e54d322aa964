"""Training throughput of SmallerVGGNet fed three ways, measured in one run.

(a) ``make_dataset``: JPEG files streamed from disk, decoded in parallel,
    augmented with ``RandomAffine`` (rotation 25, shift 0.1, shear 0.2,
    zoom 0.2, flip), prefetched;
(b) in-memory arrays passed to ``model.fit`` without augmentation (the
    ceiling: no decoding, no augmentation);
(c) Keras' legacy ``ImageDataGenerator.flow`` over in-memory arrays with the
    classic recipe's augmentation;
(d) for reference, the same in-memory arrays as a prefetched ``tf.data``
    pipeline without augmentation: the model's own compute ceiling, which
    shows what decoding and augmentation in (a) cost. (b) is slower than
    (d) because Keras' NumPy adapter slices and shuffles arrays per batch.

Each round trains a fresh model per method for one warm-up epoch and
``--epochs`` timed epochs; methods alternate within a round so machine
noise hits all three alike. Prints the median images/second per method and
the ratios a/c and a/b (ratio of medians, and the median of per-round
ratios).

Usage:
    python benchmarks/train_throughput.py [--images 480] [--rounds 3]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from multilabel_keras import LabelVocabulary, build_model, from_folders, make_dataset  # noqa: E402
from multilabel_keras.data.demo import make_demo_folders  # noqa: E402
from multilabel_keras.data.images import load_images  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def fresh_model(num_labels, size):
    model = build_model("smallervggnet", num_labels, (size, size, 3))
    model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    return model


def legacy_generator():
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    return ImageDataGenerator(rotation_range=25, width_shift_range=0.1, height_shift_range=0.1,
                              shear_range=0.2, zoom_range=0.2, horizontal_flip=True,
                              fill_mode="nearest")


def measure(method, data, args):
    samples, vocab, x, y = data
    steps = len(samples) // args.batch_size
    model = fresh_model(vocab.num_labels, args.image_size)
    timer = EpochTimer()
    epochs = args.epochs + 1
    if method == "a":
        ds = make_dataset(samples, vocab, args.image_size, args.batch_size, augment=True,
                          shuffle=True, repeat=True, seed=0)
        model.fit(ds, epochs=epochs, steps_per_epoch=steps, callbacks=[timer], verbose=0,
                  shuffle=False)
    elif method == "b":
        n = steps * args.batch_size
        model.fit(x[:n], y[:n], batch_size=args.batch_size, epochs=epochs, callbacks=[timer],
                  verbose=0, shuffle=True)
    elif method == "d":
        ds = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0)
              .batch(args.batch_size, drop_remainder=True).repeat().prefetch(2))
        model.fit(ds, epochs=epochs, steps_per_epoch=steps, callbacks=[timer], verbose=0,
                  shuffle=False)
    else:
        flow = legacy_generator().flow(x, y, batch_size=args.batch_size, seed=0)
        model.fit(flow, epochs=epochs, steps_per_epoch=steps, callbacks=[timer], verbose=0)
    timed = timer.times[1:]  # the first epoch traces and warms caches
    return steps * args.batch_size / statistics.median(timed)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=480)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", default=None, help="folder data set (default: demo data)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            per_folder = max(1, args.images // 20)
            root = make_demo_folders(os.path.join(tmp, "demo"), per_folder=per_folder,
                                     size=args.image_size, log=lambda *_: None)
        samples = from_folders(root)
        vocab = LabelVocabulary().fit(samples.labels)
        x = load_images(samples.paths, args.image_size)
        y = vocab.transform(samples.labels).astype("float32")
        data = (samples, vocab, x, y)
        print(f"SmallerVGGNet {args.image_size}x{args.image_size}, {len(samples)} images, "
              f"batch {args.batch_size}, {os.cpu_count()} CPU cores, TF {tf.__version__}, "
              f"Keras {keras.__version__}", flush=True)
        results = {"a": [], "b": [], "c": [], "d": []}
        for r in range(args.rounds):
            for method in results:
                results[method].append(measure(method, data, args))
            print(f"round {r + 1}: " + "  ".join(f"{m}={v[-1]:.1f}" for m, v in results.items()),
                  flush=True)

    names = {"a": "make_dataset + RandomAffine (disk)", "b": "in-memory arrays, no augmentation",
             "c": "ImageDataGenerator.flow + augmentation",
             "d": "in-memory tf.data, no augmentation"}
    med = {m: statistics.median(v) for m, v in results.items()}
    print("\nmethod                                     median img/s   runs")
    for m in "abcd":
        print(f"({m}) {names[m]:<38} {med[m]:>10.1f}   {', '.join(f'{v:.1f}' for v in results[m])}")
    for num, den in (("a", "c"), ("a", "b"), ("a", "d")):
        per_round = statistics.median(p / q for p, q in zip(results[num], results[den]))
        print(f"{num}/{den}: {med[num] / med[den]:.3f} (ratio of medians), "
              f"{per_round:.3f} (median of per-round ratios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
