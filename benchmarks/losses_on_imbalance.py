"""BCE vs. weighted BCE vs. focal vs. ASL on an imbalanced multi-label set, one run.

The demo data (tinted Fashion-MNIST garments, labels colour + garment) is
made imbalanced: images holding the last colour or the last garment are
kept only a few per folder, so those two labels occur in about 5% of the
images. The same SmallerVGGNet (same seed, split, epochs, augmentation)
is trained once per loss; each run tunes per-label F1 thresholds on its
validation split, and is scored on the same held-out test split.

Usage:
    python benchmarks/losses_on_imbalance.py [--epochs 12] [--image-size 48]
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from multilabel_keras import LabelVocabulary, evaluate, from_folders, split_samples, train  # noqa: E402
from multilabel_keras.data.demo import COLOURS, GARMENTS, make_demo_folders  # noqa: E402

LOSSES = ("bce", "weighted_bce", "focal", "asl")


def imbalanced(samples, rare, keep):
    """Keeps ``keep`` images of every folder that holds a rare label."""
    kept, seen = [], {}
    for i, labels in enumerate(samples.labels):
        if labels & rare:
            key = frozenset(labels)
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > keep:
                continue
        kept.append(i)
    return samples.subset(kept)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-folder", type=int, default=60)
    parser.add_argument("--keep", type=int, default=8, help="images kept per rare folder")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rare = {list(COLOURS)[-1], list(GARMENTS)[-1]}
    with tempfile.TemporaryDirectory() as tmp:
        root = make_demo_folders(os.path.join(tmp, "demo"), per_folder=args.per_folder,
                                 size=args.image_size, seed=args.seed, log=lambda *_: None)
        samples = imbalanced(from_folders(root), rare, args.keep)
        vocab = LabelVocabulary().fit(samples.labels)
        y = vocab.transform(samples.labels)
        freq = {n: y[:, j].mean() for j, n in enumerate(vocab.classes_)}
        fit, val, test = split_samples(samples, vocab, (0.6, 0.2, 0.2), seed=args.seed)
        print(f"{len(samples)} images ({len(fit)} train / {len(val)} val / {len(test)} test), "
              f"{vocab.num_labels} labels; rare: "
              + ", ".join(f"{n} {freq[n]:.1%}" for n in sorted(rare))
              + f"; SmallerVGGNet {args.image_size}px, {args.epochs} epochs", flush=True)
        rows = {}
        for name in LOSSES:
            start = time.perf_counter()
            run = os.path.join(tmp, name)
            train(fit, run, "smallervggnet", val_samples=val, vocabulary=vocab, loss=name,
                  image_size=args.image_size, epochs=args.epochs, seed=args.seed, verbose=0)
            report = evaluate(run, test)
            rare_f1 = [report["per_label"][n]["f1"] for n in sorted(rare)]
            rare_ap = [report["per_label"][n]["ap"] for n in sorted(rare)]
            rows[name] = (report["mAP"], report["macro_f1"], sum(rare_ap) / len(rare_ap),
                          sum(rare_f1) / len(rare_f1), time.perf_counter() - start)
            print(f"{name}: done in {rows[name][-1]:.0f} s", flush=True)

    print("\nloss            test mAP   macro-F1   rare-label AP   rare-label F1")
    for name, (m_ap, f1, r_ap, r_f1, _) in rows.items():
        print(f"{name:<14} {m_ap:>9.4f} {f1:>10.4f} {r_ap:>15.4f} {r_f1:>15.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
