"""The MIML recipe on any folder or CSV data: InceptionV3 features once, a dense head on top.

1. hold out a test split (iterative stratification);
2. run InceptionV3 (frozen, pooled to 2,048 features) once over the rest
   and cache the features on disk;
3. train the ``mlp`` head on the cached features (seconds per epoch),
   tune per-label thresholds on a validation split, join the head back
   onto the backbone into one ``model.keras``;
4. evaluate on the untouched test split and predict a few images.

Usage:
    python examples/inceptionv3_features.py --data path/to/folders_or.csv --weights imagenet
    python examples/inceptionv3_features.py            # demo data, random weights, 96 px

The MIML scene set reads with ``from_miml("miml data.mat", "original")``;
pass ``--miml "miml data.mat" --images original`` to use it.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from multilabel_keras import LabelVocabulary, Predictor, evaluate, load_samples  # noqa: E402
from multilabel_keras.data import from_miml, split_samples  # noqa: E402
from multilabel_keras.data.demo import make_demo_folders  # noqa: E402
from multilabel_keras.training.features import extract_features, train_on_features  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", help="folder (<label>_<label>/) or CSV manifest")
    parser.add_argument("--miml", help="the MIML 'miml data.mat' file (with --images)")
    parser.add_argument("--images", help="folder of the MIML images 1.jpg … 2000.jpg")
    parser.add_argument("--weights", default=None,
                        help="'imagenet' (downloads) or an InceptionV3 no-top .weights.h5 file")
    parser.add_argument("--image-size", type=int, default=None,
                        help="default 299 (InceptionV3's own); 96 for the demo")
    parser.add_argument("--epochs", type=int, default=50, help="epochs of the head")
    parser.add_argument("--out", default="inceptionv3_features_output", help="folder for the outputs")
    parser.add_argument("--quick", action="store_true",
                        help="tiny demo data, 75 px, 3 epochs: checks the script runs, not accuracy")
    args = parser.parse_args(argv)
    per_folder = 20
    if args.quick:
        args.epochs, args.image_size, per_folder = 3, args.image_size or 75, 4

    if args.miml:
        samples = from_miml(args.miml, args.images)
    elif args.data:
        samples = load_samples(args.data)
    else:
        print("no --data: the demo data" + (" with RANDOM weights (numbers mean little)"
                                            if args.weights is None else ""))
        samples = load_samples(make_demo_folders(os.path.join(args.out, "data"),
                                                 per_folder=per_folder, log=lambda m: None))
        args.image_size = args.image_size or 96
    vocab = LabelVocabulary().fit(samples.labels)
    train_part, test = split_samples(samples, vocab, (0.8, 0.2), seed=0)

    features = os.path.join(args.out, "features")
    index = extract_features(train_part, features, "inceptionv3", weights=args.weights,
                             image_size=args.image_size, overwrite=True, verbose=0 if args.quick else 1)
    print(f"cached {index['count']} x {index['dim']} features in {features}")

    run = os.path.join(args.out, "run")
    result = train_on_features(features, run, epochs=args.epochs, overwrite=True, verbose=0)
    print("validation:", json.dumps({k: round(result.metrics[k], 4)
                                     for k in ("mAP", "micro_f1", "macro_f1")}))
    report = evaluate(run, test)
    print("test:", json.dumps({k: round(report[k], 4)
                               for k in ("mAP", "micro_f1", "macro_f1", "subset_accuracy")}))
    for line in Predictor.load(run).predict(test.paths[:3]):
        print(line["path"], "->", line["labels"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
