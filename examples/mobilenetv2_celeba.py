"""The MobileNetV2 CelebA recipe: attribute files → TFRecords → sigmoid vs. 2-way softmax heads.

1. read ``list_attr_celeba.txt`` (+ ``list_eval_partition.txt`` for the
   official train / val / test split) with ``from_celeba``;
2. write each split to sharded TFRecords once (images resized and
   re-encoded, so epochs read a few compact files instead of 200,000 JPEGs);
3. train the same MobileNetV2 twice from those records: one sigmoid per
   attribute (binary cross-entropy) and one 2-way softmax per attribute
   (``PairwiseSoftmaxLoss``), with the backbone frozen;
4. print test mAP / macro-F1 of both side by side.

Usage:
    python examples/mobilenetv2_celeba.py --celeba path/to/celeba --weights imagenet
    python examples/mobilenetv2_celeba.py        # a tiny CelebA-format set from the demo data

``--celeba`` is the folder holding ``list_attr_celeba.txt``,
``list_eval_partition.txt`` and ``img_align_celeba/``.
"""

import argparse
import json
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from multilabel_keras import (  # noqa: E402
    LabelVocabulary,
    build_model,
    compile_model,
    from_celeba,
    from_folders,
    make_dataset,
    write_tfrecords,
)
from multilabel_keras.models.outputs import predict_batches  # noqa: E402
from multilabel_keras.data.demo import make_demo_folders  # noqa: E402
from multilabel_keras.data.tfrecords import read_tfrecord_index  # noqa: E402
from multilabel_keras.metrics import multilabel_report  # noqa: E402
from multilabel_keras.decisions import tune_thresholds  # noqa: E402


def demo_celeba(folder, per_folder=12):
    """Writes the demo images in CelebA's layout: attribute file, partition file, images."""
    if os.path.exists(os.path.join(folder, "list_attr_celeba.txt")):
        return folder
    samples = from_folders(make_demo_folders(os.path.join(folder, "source"), per_folder=per_folder,
                                                 log=lambda m: None))
    names = sorted(set().union(*samples.labels))
    images = os.path.join(folder, "img_align_celeba")
    os.makedirs(images, exist_ok=True)
    attr = [str(len(samples)), " ".join(names)]
    parts = []
    for i, (path, labels) in enumerate(zip(samples.paths, samples.labels), start=1):
        name = f"{i:06d}.jpg"
        shutil.copyfile(path, os.path.join(images, name))
        attr.append(name + "".join(f" {1 if n in labels else -1:2d}" for n in names))
        parts.append(f"{name} {(0, 0, 0, 1, 2)[i % 5]}")
    with open(os.path.join(folder, "list_attr_celeba.txt"), "w") as f:
        f.write("\n".join(attr) + "\n")
    with open(os.path.join(folder, "list_eval_partition.txt"), "w") as f:
        f.write("\n".join(parts) + "\n")
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--celeba", help="folder with list_attr_celeba.txt and img_align_celeba/")
    parser.add_argument("--attributes", nargs="*", default=None, help="default: all 40")
    parser.add_argument("--weights", default=None,
                        help="'imagenet' (downloads) or a MobileNetV2 no-top .weights.h5 file")
    parser.add_argument("--image-size", type=int, default=96, help="side in pixels")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs of each head")
    parser.add_argument("--batch-size", type=int, default=64, help="images per batch")
    parser.add_argument("--shards", type=int, default=8, help="TFRecord files per split")
    parser.add_argument("--out", default="mobilenetv2_celeba_output", help="folder for the outputs")
    parser.add_argument("--quick", action="store_true",
                        help="32 px, 1 epoch, 2 shards: checks the script runs, not accuracy")
    args = parser.parse_args(argv)
    if args.quick:
        args.image_size, args.epochs, args.shards = 32, 1, 2
    if args.weights is None:
        print("RANDOM weights (no --weights): the backbone trains from scratch in a few epochs, "
              "so the numbers below mean little")

    root = args.celeba or demo_celeba(os.path.join(args.out, "celeba"), 4 if args.quick else 12)
    attr = os.path.join(root, "list_attr_celeba.txt")
    partition = os.path.join(root, "list_eval_partition.txt")
    splits = {split: from_celeba(attr, os.path.join(root, "img_align_celeba"), args.attributes,
                                 partition, split) for split in ("train", "val", "test")}
    names = args.attributes or open(attr).readlines()[1].split()
    vocab = LabelVocabulary(classes=names).fit([])
    records = {}
    for split, samples in splits.items():
        records[split] = os.path.join(args.out, "tfrecords", split)
        if not os.path.exists(os.path.join(records[split], "tfrecords.json")):
            write_tfrecords(samples, vocab, records[split], shards=args.shards,
                            image_size=args.image_size)
        print(f"{split}: {read_tfrecord_index(records[split])['num_records']} records")

    size, steps = args.image_size, -(-len(splits["train"]) // args.batch_size)
    train_ds = make_dataset(records["train"], vocab, size, args.batch_size, augment=True,
                            shuffle=True, repeat=True, seed=0)
    val_ds = make_dataset(records["val"], vocab, size, args.batch_size)
    test_ds = make_dataset(records["test"], vocab, size, args.batch_size)
    table = {}
    for head in ("sigmoid", "softmax2"):
        keras.utils.set_random_seed(0)
        model = build_model("mobilenetv2", vocab.num_labels, (size, size, 3), weights=args.weights,
                            head=head, freeze_backbone=args.weights is not None)
        loss = compile_model(model, 1e-3)
        model.fit(train_ds, epochs=args.epochs, steps_per_epoch=steps, verbose=0, shuffle=False)
        thresholds = tune_thresholds(*predict_batches(model, val_ds))  # validation only
        y_test, p_test = predict_batches(model, test_ds)
        report = multilabel_report(y_test, p_test, thresholds, vocab.classes_)
        table[f"{head} ({loss.name})"] = {k: round(report[k], 4) for k in ("mAP", "macro_f1")}
    print(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
