"""The accuracy suite's tasks, built offline from real images, different for every seed.

Three tasks, each written as JPEG files (so they go through the same file
path as a user's data) with a train / validation / test split:

(a) ``attribute_object``: ``<colour>_<garment>/`` folders. Garments are 6 of
    Fashion-MNIST's 10 classes and colours 4 of 9, both drawn per seed; 4
    colour-garment pairs (no colour or garment twice) appear only in test.
(b) ``digit_canvas``: a second domain. One to three of scikit-learn's
    handwritten digits per canvas, labels = the digits present; train,
    validation and test canvases use disjoint digit images.
(c) ``rare_garments``: one or two garments per canvas from 8 classes, three
    of which (drawn per seed) are rare: about 3-4% of the images each.
(d) ``photo_garments``: one or two tinted garments blended onto crops of
    real photographs (Debian's ``mate-backgrounds`` nature photos); test
    crops come from photos never used for training or validation; labels
    are colours and garments, one garment is rare (~4%) and two
    colour-garment pairs appear only in test.

Images come from Fashion-MNIST's *test* split (the demo uses the training
split) and ``sklearn.datasets.load_digits``.
"""

import os

import cv2
import numpy as np

from multilabel_keras import Samples
from multilabel_keras.data.demo import FASHION_MNIST_DIR, _background, _find_idx, _paste, _read_idx
from multilabel_keras.data.demo import _write_jpeg, tint

FASHION_CLASSES = ["tshirt", "trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                   "bag", "boot"]
PALETTE = {
    "red": (205, 35, 35), "blue": (35, 70, 205), "green": (40, 150, 60), "black": (25, 25, 25),
    "yellow": (225, 200, 30), "purple": (130, 40, 160), "orange": (235, 120, 20),
    "cyan": (30, 180, 200), "brown": (120, 70, 30),
}
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def fashion_test_split():
    """Fashion-MNIST's 10,000 test images and labels (Debian's dataset-fashion-mnist)."""
    images = _find_idx(FASHION_MNIST_DIR, "t10k-images-idx3-ubyte")
    labels = _find_idx(FASHION_MNIST_DIR, "t10k-labels-idx1-ubyte")
    if not (images and labels):
        raise SystemExit(f"Fashion-MNIST test files not found in {FASHION_MNIST_DIR}: "
                         f"apt-get install dataset-fashion-mnist")
    return _read_idx(images), _read_idx(labels)


class Task:
    """A built task: its splits and what its extra metrics need."""

    def __init__(self, name, train, val, test, unseen=(), rare=()):
        self.name, self.train, self.val, self.test = name, train, val, test
        self.unseen = [frozenset(pair) for pair in unseen]
        self.rare = list(rare)


def _split_three(items, rng, fractions=(0.7, 0.15)):
    order = rng.permutation(len(items))
    a = int(round(fractions[0] * len(items)))
    b = a + int(round(fractions[1] * len(items)))
    return [items[i] for i in order[:a]], [items[i] for i in order[a:b]], [items[i] for i in order[b:]]


def attribute_object(root, seed, per_pair=50, size=64):
    rng = np.random.default_rng(seed)
    images, labels = fashion_test_split()
    garments = [int(g) for g in rng.choice(10, 6, replace=False)]
    colours = [str(c) for c in rng.choice(list(PALETTE), 4, replace=False)]
    held_out = {(colours[i], FASHION_CLASSES[g])
                for i, g in enumerate(rng.choice(garments, 4, replace=False))}
    splits = {"train": [], "val": [], "test": []}
    for colour in colours:
        for g in garments:
            name = FASHION_CLASSES[g]
            folder = os.path.join(root, f"{colour}_{name}")
            os.makedirs(folder, exist_ok=True)
            items = []
            for i, index in enumerate(rng.choice(np.flatnonzero(labels == g), per_pair, replace=False)):
                path = os.path.join(folder, f"{i:04d}.jpg")
                _write_jpeg(path, tint(images[index], PALETTE[colour], rng, size))
                items.append((path, {colour, name}))
            if (colour, name) in held_out:
                splits["test"] += items
            else:
                for key, part in zip(("train", "val", "test"), _split_three(items, rng)):
                    splits[key] += part
    return Task("attribute_object", *(_samples(splits[k]) for k in ("train", "val", "test")),
                unseen=held_out)


def digit_canvas(root, seed, count=1400, size=64):
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    digits = load_digits()
    pools = [np.flatnonzero(digits.target == d) for d in range(10)]
    # Disjoint digit images per split, so test canvases show digits never seen in training.
    split_pools = {key: [] for key in ("train", "val", "test")}
    for pool in pools:
        for key, part in zip(("train", "val", "test"), _split_three(list(rng.permutation(pool)), rng)):
            split_pools[key].append(part)
    counts = {"train": int(count * 0.7), "val": int(count * 0.15), "test": int(count * 0.15)}
    splits = {}
    for key, n in counts.items():
        folder = os.path.join(root, key)
        os.makedirs(folder, exist_ok=True)
        items = []
        for i in range(n):
            canvas = _background(rng, size)
            chosen = rng.choice(10, rng.integers(1, 4), replace=False)
            slot = size // 3
            for digit, k in zip(chosen, rng.permutation(3)):
                index = rng.choice(split_pools[key][digit])
                glyph = (digits.images[index] * (255 / 16)).astype(np.uint8)
                glyph = cv2.resize(glyph, (28, 28), interpolation=cv2.INTER_CUBIC)
                colour = rng.uniform(0, 120, 3)
                y = int(rng.integers(0, size - slot + 1))
                _paste(canvas, glyph, colour, rng, slot, x=int(k * slot), y=y)
            path = os.path.join(folder, f"{i:05d}.jpg")
            _write_jpeg(path, canvas)
            items.append((path, {DIGITS[d] for d in chosen}))
        splits[key] = items
    return Task("digit_canvas", *(_samples(splits[k]) for k in ("train", "val", "test")))


def rare_garments(root, seed, count=1400, size=64):
    rng = np.random.default_rng(seed)
    images, labels = fashion_test_split()
    classes = [int(c) for c in rng.choice(10, 8, replace=False)]
    rare = [int(c) for c in rng.choice(classes, 3, replace=False)]
    # Each canvas draws its items from these weights: a rare class appears in ~3.5% of images.
    weights = np.array([0.023 if c in rare else 1.0 for c in classes])
    weights /= weights.sum()
    splits = {"train": [], "val": [], "test": []}
    for key, n in (("train", int(count * 0.7)), ("val", int(count * 0.15)),
                   ("test", int(count * 0.15))):
        folder = os.path.join(root, key)
        os.makedirs(folder, exist_ok=True)
        for i in range(n):
            canvas = _background(rng, size)
            chosen = rng.choice(classes, rng.integers(1, 3), replace=False, p=weights)
            slot = size // 2
            for c, k in zip(chosen, rng.permutation(2)):
                index = rng.choice(np.flatnonzero(labels == c))
                colour = PALETTE[rng.choice(list(PALETTE))]
                _paste(canvas, images[index], colour, rng, slot, x=int(k * slot),
                       y=int(rng.integers(0, size - slot + 1)))
            path = os.path.join(folder, f"{i:05d}.jpg")
            _write_jpeg(path, canvas)
            splits[key].append((path, {FASHION_CLASSES[c] for c in chosen}))
    return Task("rare_garments", *(_samples(splits[k]) for k in ("train", "val", "test")),
                rare=[FASHION_CLASSES[c] for c in rare])


PHOTO_DIRS = ("/usr/share/backgrounds/mate/nature", "/usr/share/backgrounds")


def _photos():
    """The nature photographs of ``mate-backgrounds``, each downscaled to 256 px on its short side."""
    for folder in PHOTO_DIRS:
        if os.path.isdir(folder):
            names = sorted(n for n in os.listdir(folder) if n.lower().endswith((".jpg", ".jpeg")))
            if len(names) >= 6:
                photos = []
                for name in names:
                    image = cv2.imread(os.path.join(folder, name), cv2.IMREAD_COLOR)
                    if image is None:
                        continue
                    scale = 256 / min(image.shape[:2])
                    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                    photos.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float64))
                return photos
    raise SystemExit("no photographs found: apt-get install mate-backgrounds")


def photo_garments(root, seed, count=1400, size=64):
    rng = np.random.default_rng(seed)
    images, labels = fashion_test_split()
    photos = _photos()
    order = rng.permutation(len(photos))
    test_photos = [photos[i] for i in order[: len(photos) // 3]]
    train_photos = [photos[i] for i in order[len(photos) // 3:]]
    garments = [int(g) for g in rng.choice(10, 6, replace=False)]
    colours = [str(c) for c in rng.choice(list(PALETTE), 5, replace=False)]
    rare = int(rng.choice(garments))
    weights = np.array([0.04 if g == rare else 1.0 for g in garments])
    weights /= weights.sum()
    pairs = [(c, g) for c in colours for g in garments if g != rare]
    held_out = [pairs[i] for i in rng.choice(len(pairs), 2, replace=False)]
    splits = {}
    for key, n in (("train", int(count * 0.7)), ("val", int(count * 0.15)),
                   ("test", int(count * 0.15))):
        folder = os.path.join(root, key)
        os.makedirs(folder, exist_ok=True)
        items = []
        while len(items) < n:
            photo = (test_photos if key == "test" else train_photos)[rng.integers(
                len(test_photos) if key == "test" else len(train_photos))]
            side = int(rng.integers(size, min(photo.shape[:2]) + 1))
            y, x = (int(rng.integers(0, photo.shape[d] - side + 1)) for d in (0, 1))
            canvas = cv2.resize(photo[y:y + side, x:x + side], (size, size),
                                interpolation=cv2.INTER_AREA)
            chosen = [(str(rng.choice(colours)), int(g))
                      for g in rng.choice(garments, rng.integers(1, 3), replace=False, p=weights)]
            if key != "test" and any(pair in held_out for pair in chosen):
                continue
            slot = size // 2
            for (colour, g), k in zip(chosen, rng.permutation(2)):
                index = rng.choice(np.flatnonzero(labels == g))
                _paste(canvas, images[index], PALETTE[colour], rng, slot, x=int(k * slot),
                       y=int(rng.integers(0, size - slot + 1)))
            path = os.path.join(folder, f"{len(items):05d}.jpg")
            _write_jpeg(path, canvas)
            items.append((path, {c for c, _ in chosen} | {FASHION_CLASSES[g] for _, g in chosen}))
        splits[key] = items
    return Task("photo_garments", *(_samples(splits[k]) for k in ("train", "val", "test")),
                unseen=[(c, FASHION_CLASSES[g]) for c, g in held_out],
                rare=[FASHION_CLASSES[rare]])


def _samples(items):
    return Samples([p for p, _ in items], [set(s) for _, s in items])


TASKS = {"attribute_object": attribute_object, "digit_canvas": digit_canvas,
         "rare_garments": rare_garments, "photo_garments": photo_garments}
