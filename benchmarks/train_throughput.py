"""Training throughput of SmallerVGGNet against the machine's matmul peak and the seed recipe, in one run.

Methods, each training a fresh model, interleaved round by round so that
machine noise hits them alike:

(a)    the library's default path: JPEG files streamed by ``make_dataset``
       with the recipe's augmentation (``RandomAffine``, recolouring of
       colour labels) and batch size,
       in float32 (``train``'s default precision);
(a16)  the same with ``precision="mixed_bfloat16"`` (opt-in: faster on a
       CPU with bfloat16 instructions, less accurate on the accuracy
       suite);
(a16c) the same with batch normalisation, the first convolution and the
       dense head kept in float32 (``CAREFUL_FLOAT32``);
(seed) the published recipe's pipeline: in-memory arrays through Keras'
       ``ImageDataGenerator.flow`` with its augmentation, float32, batch 32
       (the baseline the goal is set against);
(ram)  in-memory ``tf.data`` without augmentation, float32, batch 32: the
       float32 model's own compute ceiling;
(torch_files)   the same network and recipe in plain PyTorch eager
       (``torch_vgg.py``): JPEG files through a ``DataLoader`` with as many
       decoding workers as ``tf.data`` uses, the same augmentation and hue
       turns, channels-last, as many threads as TensorFlow;
(torch_ram)     the same on decoded images in memory;
(torch_compile) the same in memory under ``torch.compile`` (left out, with
       the reason, where it does not run).

The float32 matmul peak (2048x2048 ``tf.matmul``) is measured at the start
and the end of the run; a training image costs three forward passes of
FLOPs (forward, and backward for inputs and weights), counted from the
layers' shapes. Prints medians of per-epoch images/s, GFLOP/s, the share
of the peak and the ratios to the seed recipe.

Usage:
    python benchmarks/train_throughput.py [--images 480] [--rounds 3]
"""

import argparse
import json
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
from multilabel_keras.data.augment import RandomAffine  # noqa: E402
from multilabel_keras.data.demo import make_demo_folders  # noqa: E402
from multilabel_keras.data.images import load_images  # noqa: E402
from multilabel_keras.models.precision import CAREFUL_FLOAT32, cpu_has_bf16, with_policy  # noqa: E402
from multilabel_keras.training.compile import head_loss  # noqa: E402
from multilabel_keras.training.inputs import colour_mask  # noqa: E402
from multilabel_keras.training.recipes import resolve_recipe  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.start)


def matmul_peak(n=2048, repeats=10):
    """Float32 GFLOP/s of one ``n x n`` matmul, median of ``repeats``."""
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    run = tf.function(lambda: tf.matmul(a, b))
    run().numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run().numpy()
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def forward_flops(model):
    """Multiply-adds x 2 of one image's forward pass through convolutions and dense layers."""
    total = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Conv2D):
            out = layer.output.shape
            kh, kw, cin, cout = layer.kernel.shape
            total += 2 * out[1] * out[2] * kh * kw * cin * cout
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * int(np.prod(layer.kernel.shape))
    return total


def fresh_model(num_labels, size, policy, recipe, keep=()):
    model = build_model("smallervggnet", num_labels, (size, size, 3), **recipe["model_kwargs"])
    model = with_policy(model, policy, keep)
    # train()'s loss: masked BCE, since split recolouring marks some targets unknown (-1).
    model.compile(keras.optimizers.Adam(1e-3), head_loss("sigmoid"))
    return model


def legacy_generator():
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    return ImageDataGenerator(rotation_range=25, width_shift_range=0.1, height_shift_range=0.1,
                              shear_range=0.2, zoom_range=0.2, horizontal_flip=True,
                              fill_mode="nearest")


def measure_torch(method, data, args):
    """Images/s of each timed epoch of the PyTorch peer (its first epoch warms up, as Keras')."""
    import torch

    from multilabel_keras.data.images import pipeline_workers
    from torch_vgg import train_from_files, train_in_ram

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    samples, vocab, x, y = data
    batch = int(resolve_recipe("smallervggnet")["batch_size"])
    rates, start = [], [time.perf_counter()]

    def on_epoch(epoch, seen):
        now = time.perf_counter()
        if epoch:
            rates.append(seen / (now - start[0]))
        start[0] = now

    epochs = args.epochs + 1
    if method == "torch_files":
        train_from_files(samples.paths, y, args.image_size, epochs, batch,
                         workers=pipeline_workers(), on_epoch=on_epoch)
    else:
        train_in_ram(x, y, epochs, batch, compiled=method == "torch_compile", on_epoch=on_epoch)
    return rates


def measure(method, data, args):
    if method.startswith("torch"):
        return measure_torch(method, data, args)
    samples, vocab, x, y = data
    library = resolve_recipe("smallervggnet")
    classic = resolve_recipe("smallervggnet", "classic")
    recipe = library if method in ("a", "a16", "a16c") else classic
    batch = int(recipe["batch_size"])
    policy = "mixed_bfloat16" if method in ("a16", "a16c") else "float32"
    steps = len(samples) // batch
    model = fresh_model(vocab.num_labels, args.image_size, policy, recipe,
                        CAREFUL_FLOAT32 if method == "a16c" else ())
    timer = EpochTimer()
    epochs = args.epochs + 1
    if method in ("a", "a16", "a16c"):
        # As train() feeds it: the recipe's augmentation and recolouring of colour labels.
        ds = make_dataset(samples, vocab, args.image_size, batch,
                          augment=RandomAffine(seed=0, **library["augment"]),
                          recolour=(colour_mask(vocab, "auto"), library["recolour"],
                                    library["recolour_split"]),
                          shuffle=True, repeat=True, seed=0)
        model.fit(ds, epochs=epochs, steps_per_epoch=steps, callbacks=[timer], verbose=0)
    elif method == "ram":
        ds = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0)
              .batch(batch, drop_remainder=True).repeat().prefetch(2))
        model.fit(ds, epochs=epochs, steps_per_epoch=steps, callbacks=[timer], verbose=0)
    else:
        flow = legacy_generator().flow(x, y, batch_size=batch, seed=0)
        model.fit(flow, epochs=epochs, steps_per_epoch=steps, callbacks=[timer], verbose=0)
    return [steps * batch / t for t in timer.times[1:]]  # epoch 1 traces and warms caches


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=480)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", default=None, help="folder data set (default: demo data)")
    parser.add_argument("--no-torch", action="store_true", help="leave out the PyTorch peer")
    args = parser.parse_args(argv)
    bf16 = "yes" if cpu_has_bf16() else "no"

    peaks = [matmul_peak()]
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
        probe = build_model("smallervggnet", vocab.num_labels, (args.image_size,) * 2 + (3,),
                            **resolve_recipe("smallervggnet")["model_kwargs"])
        train_gflop = 3 * forward_flops(probe) / 1e9
        print(f"SmallerVGGNet {args.image_size}x{args.image_size}, {len(samples)} images, "
              f"{os.cpu_count()} CPU cores, TF {tf.__version__}, Keras {keras.__version__}, "
              f"CPU bfloat16 instructions: {bf16}, {train_gflop:.2f} GFLOP per training image",
              flush=True)
        methods = ["a", "a16", "a16c", "seed", "ram"]
        if not args.no_torch:
            methods += ["torch_files", "torch_ram", "torch_compile"]
        results = {m: [] for m in methods}
        left_out = {}
        for r in range(args.rounds):
            for method in [m for m in methods if m not in left_out]:
                try:
                    results[method] += measure(method, data, args)
                except Exception as err:  # noqa: BLE001  torch.compile needs a working compiler
                    if method != "torch_compile":
                        raise
                    left_out[method] = str(err).strip().splitlines()[0][:120]
            print(f"round {r + 1}: " + "  ".join(f"{m}={v[-1]:.1f}" for m, v in results.items()),
                  flush=True)
    peaks.append(matmul_peak())
    peak = statistics.median(peaks)
    names = {"a": "library default (files, augmented, float32)",
             "a16": "library path, mixed_bfloat16",
             "a16c": "library path, bfloat16, BN/first conv/head float32",
             "seed": "seed: ImageDataGenerator, in RAM",
             "ram": "in-RAM tf.data, no augmentation",
             "torch_files": "PyTorch eager, files via DataLoader",
             "torch_ram": "PyTorch eager, in RAM",
             "torch_compile": "PyTorch torch.compile, in RAM"}
    for method, why in left_out.items():
        print(f"({method}) left out: {why}")
    med = {m: statistics.median(v) for m, v in results.items() if v}
    print(f"\nfloat32 matmul peak: {peak:.1f} GFLOP/s (start {peaks[0]:.1f}, end {peaks[1]:.1f})")
    print(f"{'method':<54} {'img/s':>7} {'GFLOP/s':>8} {'of peak':>8} {'/ seed':>7}")
    for m in med:
        gflops = med[m] * train_gflop
        print(f"{'(' + m + ') ' + names[m]:<54} {med[m]:>7.1f} {gflops:>8.1f} {gflops / peak:>7.0%} "
              f"{med[m] / med['seed']:>7.2f}")
    for m in ("torch_files", "torch_ram", "torch_compile"):
        if m in med:
            print(f"library default (a) / ({m}): {med['a'] / med[m]:.2f}")
    result = {"peak_gflops": peak, "train_gflop": train_gflop, "images_per_s": med}
    print("RESULT " + json.dumps(result))
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
