"""Runs the package's docstring examples in a folder holding the files they name.

Every example reads or writes paths such as ``data/fashion``, ``photo.jpg``,
``runs/fashion`` or ``run/history.csv``. Each doctest gets a fresh copy of
one workspace built once per session (tiny 32x32 images, a CSV, CelebA
and MIML files, TFRecords and a run trained for two epochs) as its current
directory, so the examples run as written and cannot touch the checkout.
"""

import os
import shutil
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from _pytest.doctest import DoctestItem  # noqa: E402

COLOURS = {"black": (25, 25, 25), "blue": (30, 40, 220), "red": (220, 30, 30)}
FOLDERS = ("black_jeans", "blue_dress", "blue_shirt", "red_dress", "red_shirt")


def garment(colour, kind, seed=0, size=32):
    """A 32x32 RGB sketch of a garment in a colour, with a little noise."""
    import cv2

    rng = np.random.default_rng(seed)
    image = np.clip(np.full((size, size, 3), 235.0) + rng.normal(0, 4, (size, size, 3)), 0, 255)
    image = image.astype(np.uint8)
    fill = COLOURS[colour]
    shift = int(rng.integers(-2, 3))
    if kind == "jeans":
        cv2.rectangle(image, (9 + shift, 6), (14 + shift, 27), fill, -1)
        cv2.rectangle(image, (17 + shift, 6), (22 + shift, 27), fill, -1)
        cv2.rectangle(image, (9 + shift, 5), (22 + shift, 10), fill, -1)
    elif kind == "dress":
        points = np.array([[16 + shift, 4], [6 + shift, 28], [26 + shift, 28]], np.int32)
        cv2.fillPoly(image, [points], fill)
    else:
        cv2.rectangle(image, (10 + shift, 8), (22 + shift, 27), fill, -1)
        cv2.rectangle(image, (4 + shift, 8), (28 + shift, 14), fill, -1)
    return image


def _write(path, image):
    import cv2

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    assert cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR)), path


def build_workspace(root):
    """Writes every file the docstring examples name under ``root``."""
    import keras

    from multilabel_keras import LabelVocabulary, from_folders, train
    from multilabel_keras.data.tfrecords import write_tfrecords
    from multilabel_keras.training.features import extract_features

    os.chdir(root)
    for split, folders, count in (("fashion", FOLDERS, 6), ("test", FOLDERS + ("black_dress",), 3)):
        for folder in folders:
            colour, kind = folder.split("_")
            for i in range(count):
                _write(f"data/{split}/{folder}/{i}.jpg", garment(colour, kind, seed=i + 10 * count))
    _write("photo.jpg", garment("red", "dress", seed=1))
    _write("dress.jpg", garment("blue", "dress", seed=2))
    _write("a.jpg", garment("red", "shirt", seed=3))
    _write("b.png", garment("black", "jeans", seed=4))
    _write("extra.jpg", garment("blue", "shirt", seed=5))
    for path, labels in (("photos/a.jpg", "red\ndress\n"), ("photos/b/c.png", "blue\nshirt\n")):
        colour, kind = labels.split()
        _write(path, garment(colour, kind, seed=6))
        with open(path + ".txt", "w", encoding="utf-8") as f:
            f.write(labels)

    rows = ["filename,labels"] + [f"data/fashion/{folder}/{i}.jpg,{folder.replace('_', ' ')}"
                                  for folder in FOLDERS for i in range(6)]
    with open("data/train.csv", "w", encoding="utf-8") as f:
        f.write("\n".join(row.replace("data/fashion/", "fashion/") for row in rows) + "\n")
    with open("labels.csv", "w", encoding="utf-8") as f:
        f.write("\n".join(rows) + "\n")

    # CelebA: attribute table (1 / -1) and the train/val/test partition.
    names = ["Smiling", "Eyeglasses", "Male"]
    with open("list_attr_celeba.txt", "w", encoding="utf-8") as f, \
            open("list_eval_partition.txt", "w", encoding="utf-8") as g:
        f.write(f"6\n{' '.join(names)}\n")
        for i in range(1, 7):
            name = f"{i:06d}.jpg"
            _write(f"img_align_celeba/{name}", garment("red", "dress", seed=i))
            f.write(name + "".join(f" {1 if (i + j) % 2 else -1:>2}" for j in range(3)) + "\n")
            g.write(f"{name} {0 if i <= 4 else 1 if i == 5 else 2}\n")

    # MIML: a labels x images ``targets`` matrix (1 / -1) and images 1.jpg … n.jpg.
    from scipy.io import savemat

    targets = -np.ones((5, 4))
    for image, label in ((0, 0), (1, 1), (1, 3), (2, 2), (3, 4)):
        targets[label, image] = 1
    os.makedirs("original", exist_ok=True)
    for i in range(1, 5):
        _write(f"original/{i}.jpg", garment("blue", "shirt", seed=i))
    classes = np.array(["desert", "mountains", "sea", "sunset", "trees"], dtype=object)
    savemat("miml data.mat", {"targets": targets, "class_name": classes.reshape(-1, 1)})

    samples = from_folders("data/fashion")
    write_tfrecords(samples, LabelVocabulary().fit(samples.labels), "data/celeba_tfr", shards=2)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random backbone weights: only the folder's layout matters
        extract_features(samples, "features/fashion", "mobilenetv2", weights=None, image_size=32,
                         verbose=0)

    keras.utils.set_random_seed(0)
    train(samples, "runs/fashion", image_size=32, epochs=2, verbose=0)
    shutil.copytree("runs/fashion", "run")


@pytest.fixture(scope="session")
def doctest_workspace(tmp_path_factory):
    """The template folder, built once; each doctest works in a copy."""
    root = tmp_path_factory.mktemp("doctest_template")
    here = os.getcwd()
    try:
        build_workspace(str(root))
    finally:
        os.chdir(here)
    return root


def _link_or_copy(source, target):
    # The template is ~14 MB (mostly backbone weights) and ~140 doctests each get a tree;
    # the library writes files as temp-then-rename, so a linked file is never changed.
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@pytest.fixture(autouse=True)
def _doctest_in_workspace(request):
    if not isinstance(request.node, DoctestItem):
        yield
        return
    template = request.getfixturevalue("doctest_workspace")
    folder = request.getfixturevalue("tmp_path") / "work"
    shutil.copytree(template, folder, copy_function=_link_or_copy)
    here = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(here)
