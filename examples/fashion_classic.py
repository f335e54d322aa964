"""The classic fashion recipe, done right: SmallerVGGNet on ``<colour>_<type>/`` folders.

What the well-known blog's ``train.py`` and ``classify.py`` do, with the
library's fixes:

1. read ``<colour>_<type>/`` folders (``red_dress/`` → ``{"red", "dress"}``;
   the label vocabulary is stored as JSON, never pickled);
2. hold out a test split, stratified over labels, that training never sees;
3. train SmallerVGGNet (sigmoid outputs, binary cross-entropy), keeping
   the epoch with the best exact validation mAP and tuning each label's
   threshold on the validation split (not a fixed 0.5);
4. draw the training curves (``plot.png``) and precision-recall curves;
5. classify new images: each label with its score and whether it passes
   its tuned threshold;
6. report honest metrics on the test split.

Usage:
    python examples/fashion_classic.py --data path/to/folders
    python examples/fashion_classic.py             # the demo's garment folders
    python examples/fashion_classic.py --quick     # a minute-sized check
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from multilabel_keras import LabelVocabulary, Predictor, evaluate, from_folders  # noqa: E402
from multilabel_keras import split_samples, train  # noqa: E402
from multilabel_keras.data.demo import make_demo_folders  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", default=None,
                        help="a folder of <colour>_<type>/ sub-folders (default: the demo's data)")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs")
    parser.add_argument("--image-size", type=int, default=64, help="side in pixels")
    parser.add_argument("--per-folder", type=int, default=60, help="demo images per folder")
    parser.add_argument("--out", default="fashion_classic_output", help="folder for data and run")
    parser.add_argument("--quick", action="store_true",
                        help="tiny data, 2 epochs, 32 px: checks the script runs, not accuracy")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.image_size, args.per_folder = 2, 32, 8

    root = args.data or make_demo_folders(os.path.join(args.out, "data"), per_folder=args.per_folder,
                                          size=max(args.image_size, 28), log=lambda m: None)
    samples = from_folders(root)
    vocab = LabelVocabulary().fit(samples.labels)
    train_part, test = split_samples(samples, vocab, (0.85, 0.15), seed=0)
    print(f"{len(samples)} images, labels {vocab.classes_}; {len(test)} held out for the test")

    run = os.path.join(args.out, "run")
    train(train_part, run, "smallervggnet", vocabulary=vocab, image_size=args.image_size,
          epochs=args.epochs, overwrite=True, verbose=0 if args.quick else 2)
    print(f"curves: {os.path.join(run, 'plot.png')}, {os.path.join(run, 'pr_curves.png')}")

    predictor = Predictor.load(run)
    for path, result in zip(test.paths[:3], predictor.predict(test.paths[:3])):
        print(os.path.relpath(path, root))
        for name, score in sorted(result["scores"].items(), key=lambda item: -item[1])[:4]:
            chosen = "  <- predicted" if name in result["labels"] else ""
            print(f"  {name}: {100 * score:.1f}% (threshold "
                  f"{100 * predictor.thresholds[vocab.classes_.index(name)]:.1f}%){chosen}")

    report = evaluate(run, test)
    print(f"test ({report['num_images']} images): mAP {report['mAP']:.4f}, "
          f"macro-F1 {report['macro_f1']:.4f}, subset accuracy {report['subset_accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
