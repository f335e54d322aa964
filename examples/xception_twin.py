"""The fine-grained twin recipe on a small set made from the demo data.

Classes are garment types (dress, trousers, shirt, sneaker, bag); colours
vary inside each class. ``train_twin`` draws half of its pairs from one
class, trains the two category heads and the same/different head (loss
weights 1, 1, 0.5) with the transfer schedule (frozen backbone, then the
last two Xception blocks with SGD, then a last epoch without augmentation),
and writes a run directory that ``Predictor`` reads like any other.

Usage:
    python examples/xception_twin.py                          # random weights, 71 px
    python examples/xception_twin.py --weights xception_notop.weights.h5 --image-size 299
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from multilabel_keras import LabelVocabulary, Predictor, Samples, evaluate  # noqa: E402
from multilabel_keras import from_folders, split_samples  # noqa: E402
from multilabel_keras.data.demo import GARMENTS, make_demo_folders  # noqa: E402
from multilabel_keras.training.plans import TransferSchedule  # noqa: E402
from multilabel_keras.training import train_twin  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--weights", default=None,
                        help="'imagenet' (downloads) or an Xception no-top .weights.h5 file")
    parser.add_argument("--image-size", type=int, default=71, help="71 is Xception's minimum")
    parser.add_argument("--per-folder", type=int, default=10, help="demo images per folder")
    parser.add_argument("--out", default="xception_twin_output", help="folder for the outputs")
    parser.add_argument("--quick", action="store_true",
                        help="4 images per folder, one epoch per phase: checks the script runs")
    args = parser.parse_args(argv)
    schedule = TransferSchedule(2, 2, "last:2", final_epochs=1)
    if args.quick:
        args.per_folder, schedule = 4, TransferSchedule(1, 1, "last:2")

    if args.weights is None:
        print("RANDOM weights: a few CPU epochs stay near chance; pass --weights for real numbers")
    root = make_demo_folders(os.path.join(args.out, "data"), per_folder=args.per_folder,
                             size=max(args.image_size, 28), log=lambda m: None)
    folders = from_folders(root)
    samples = Samples(folders.paths, [labels & set(GARMENTS) for labels in folders.labels])
    vocab = LabelVocabulary().fit(samples.labels)
    train_part, test = split_samples(samples, vocab, (0.8, 0.2), seed=0)

    run = os.path.join(args.out, "run")
    result = train_twin(train_part, run, backbone="xception", weights=args.weights,
                        image_size=args.image_size, batch_size=16,
                        schedule=schedule,
                        overwrite=True, verbose=0)
    last = result.history[-1]
    print("last epoch:", json.dumps({k: round(v, 4) for k, v in last.items()
                                     if k.startswith("val_") and "accuracy" in k}))
    report = evaluate(run, test)
    print(f"test top-1 error: {1 - report['subset_accuracy']:.4f} ({report['num_images']} images)")
    predictor = Predictor.load(run)
    a, b = test.paths[0], test.paths[1]
    print(f"{os.path.basename(a)} -> {predictor.predict([a])[0]['labels']}")
    print(f"similarity({os.path.basename(a)}, {os.path.basename(b)}) = "
          f"{predictor.similarity(a, b):.3f} (classes {sorted(test.labels[0])} / {sorted(test.labels[1])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
