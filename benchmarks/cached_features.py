"""Epoch time of a head on cached features vs. a frozen-backbone epoch over images.

Same data, same head, one run:

(images)   the transfer model (frozen backbone + head) trained for one epoch
           from JPEG files through ``make_dataset``: every epoch pays the
           backbone's forward pass again;
(features) the ``mlp`` head trained for one epoch on the pooled features
           that ``extract_features`` stored once (the one-off extraction
           time is printed too).

Both run ``--rounds`` times, alternating, after one warm-up epoch each;
the script prints median epoch times and their ratio (goal: >= 50x).

Usage:
    python benchmarks/cached_features.py [--backbone mobilenetv2] [--image-size 160]
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
from multilabel_keras.training.features import extract_features, load_features  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_throughput import EpochTimer  # noqa: E402


def timed_epochs(model, data, steps, epochs):
    """Seconds per epoch inside one ``model.fit``, after one warm-up epoch."""
    timer = EpochTimer()
    model.fit(data, epochs=epochs + 1, steps_per_epoch=steps, callbacks=[timer], verbose=0,
              shuffle=False)
    return timer.times[1:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="mobilenetv2")
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", default=None, help="folder data set (default: demo data)")
    args = parser.parse_args(argv)
    size = args.image_size

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or make_demo_folders(os.path.join(tmp, "demo"),
                                              per_folder=max(1, args.images // 20), size=size,
                                              log=lambda *_: None)
        samples = from_folders(root)
        vocab = LabelVocabulary().fit(samples.labels)
        steps = len(samples) // args.batch_size
        print(f"{args.backbone} {size}x{size}, {len(samples)} images, batch {args.batch_size}, "
              f"{os.cpu_count()} CPU cores, TF {tf.__version__}, Keras {keras.__version__}",
              flush=True)

        start = time.perf_counter()
        extract_features(samples, os.path.join(tmp, "feat"), args.backbone, image_size=size,
                         batch_size=args.batch_size, verbose=0)
        extraction = time.perf_counter() - start
        features, _, _ = load_features(os.path.join(tmp, "feat"))
        y = vocab.transform(samples.labels).astype("float32")

        image_model = build_model(args.backbone, vocab.num_labels, (size, size, 3),
                                  freeze_backbone=True, hidden=500)
        image_model.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
        image_data = make_dataset(samples, vocab, size, args.batch_size, shuffle=True,
                                  repeat=True, seed=0)
        head = build_model("mlp", vocab.num_labels, (features.shape[1],), hidden=(500,))
        head.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
        feature_data = (tf.data.Dataset.from_tensor_slices((features, y)).shuffle(len(y), seed=0)
                        .batch(args.batch_size).repeat().prefetch(2))

        results = {"images": [], "features": []}
        for r in range(args.rounds):
            results["images"] += timed_epochs(image_model, image_data, steps, 1)
            results["features"] += timed_epochs(head, feature_data, steps, 1)
            print(f"round {r + 1}: images {results['images'][-1]:.3f} s/epoch, "
                  f"features {results['features'][-1]:.4f} s/epoch", flush=True)

    med = {k: statistics.median(v) for k, v in results.items()}
    per_round = statistics.median(a / b for a, b in zip(results["images"], results["features"]))
    print(f"\none-off feature extraction: {extraction:.1f} s for {len(samples)} images")
    print(f"frozen backbone over images: {med['images']:.3f} s/epoch (median)")
    print(f"head on cached features:     {med['features']:.4f} s/epoch (median)")
    print(f"speed-up: {med['images'] / med['features']:.0f}x (ratio of medians), "
          f"{per_round:.0f}x (median of per-round ratios)")
    print(f"break-even after {extraction / max(med['images'] - med['features'], 1e-9):.1f} epochs")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    sys.exit(main())
