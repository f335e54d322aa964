"""The built-in demo data: tinted Fashion-MNIST garments as JPEG files."""

import gzip
import json
import os

import cv2
import numpy as np

from multilabel_keras.io import atomic_path, read_json, write_json

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

# Fashion-MNIST class index -> demo garment name.
GARMENTS = {"dress": 3, "trousers": 1, "shirt": 0, "sneaker": 7, "bag": 8}
# RGB colours of the tints.
COLOURS = {
    "black": (25, 25, 25),
    "blue": (35, 70, 205),
    "red": (205, 35, 35),
    "green": (40, 150, 60),
}


def load_fashion_mnist(directory=FASHION_MNIST_DIR, log=print):
    """Loads the Fashion-MNIST training images and labels.

    Reads the IDX files of Debian's ``dataset-fashion-mnist`` package when
    they are present; otherwise falls back to ``keras.datasets.fashion_mnist``
    (which downloads, so it needs internet) and says so.

    Args:
        directory: folder holding ``train-images-idx3-ubyte(.gz)`` and
            ``train-labels-idx1-ubyte(.gz)``.
        log: function that receives progress messages.

    Returns:
        ``(images, labels)``: uint8 ``(60000, 28, 28)`` and int ``(60000,)``.

    Example:
        >>> images, labels = load_fashion_mnist()  # doctest: +SKIP
    """
    images = _find_idx(directory, "train-images-idx3-ubyte")
    labels = _find_idx(directory, "train-labels-idx1-ubyte")
    if images and labels:
        return _read_idx(images), _read_idx(labels)
    log(
        f"Fashion-MNIST files not found in {directory} (install the Debian package "
        "'dataset-fashion-mnist'); falling back to keras.datasets.fashion_mnist, "
        "which downloads them"
    )
    import keras

    (x, y), _ = keras.datasets.fashion_mnist.load_data()
    return x, y


def _find_idx(directory, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def _read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], "big")
    if magic >> 8 != 0x08:  # 0x08 = unsigned byte
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def tint(garment, colour, rng, size=96):
    """Paints a grayscale garment in ``colour`` on a light, noisy background.

    Args:
        garment: uint8 ``(28, 28)`` Fashion-MNIST image (white on black).
        colour: RGB triple.
        rng: ``np.random.Generator``.
        size: side of the square output canvas.

    Returns:
        uint8 RGB image ``(size, size, 3)``.

    Example:
        >>> img = tint(np.zeros((28, 28), np.uint8), (255, 0, 0), np.random.default_rng(0))
        >>> img.shape
        (96, 96, 3)
    """
    canvas = _background(rng, size)
    _paste(canvas, garment, colour, rng, int(size * rng.uniform(0.6, 0.9)))
    return canvas


def _background(rng, size):
    base = rng.uniform(200, 250, size=3)
    noise = rng.normal(0, 6, size=(size, size, 1))
    return np.clip(base + noise, 0, 255)


def _paste(canvas, garment, colour, rng, side, x=None, y=None):
    size = canvas.shape[0]
    alpha = cv2.resize(garment, (side, side), interpolation=cv2.INTER_LINEAR) / 255.0
    alpha = alpha[..., None]
    shaded = np.asarray(colour, float) * (0.55 + 0.45 * alpha)
    x = rng.integers(0, size - side + 1) if x is None else x
    y = rng.integers(0, size - side + 1) if y is None else y
    region = canvas[y : y + side, x : x + side]
    canvas[y : y + side, x : x + side] = region * (1 - alpha) + shaded * alpha


def _write_jpeg(path, rgb):
    image = np.clip(np.round(rgb), 0, 255).astype(np.uint8)
    ok = cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise OSError(f"could not write {path}")


def make_demo_folders(out_dir, per_folder=120, size=96, seed=0, log=print):
    """Writes the demo set: ``<colour>_<garment>/NNNN.jpg`` for every pair.

    Args:
        out_dir: destination folder; reused as is when it already holds a
            demo set made with the same arguments.
        per_folder: images per colour/garment pair.
        size: side of the written JPEG images.
        seed: random seed (garment choice, tint, placement).
        log: function that receives progress messages.

    Returns:
        ``out_dir``.

    Example:
        >>> root = make_demo_folders("demo_output/data", per_folder=20)  # doctest: +SKIP
    """
    spec = {"kind": "folders", "per_folder": per_folder, "size": size, "seed": seed,
            "garments": GARMENTS, "colours": COLOURS}
    if _is_made(out_dir, spec):
        log(f"demo data already in {out_dir}")
        return out_dir
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise FileExistsError(
            f"{out_dir} is not empty and holds no matching demo data set; choose another folder"
        )
    images, labels = load_fashion_mnist(log=log)
    rng = np.random.default_rng(seed)
    pairs = [(c, g) for c in COLOURS for g in GARMENTS]
    total = len(pairs) * per_folder
    log(f"writing {total} demo images ({len(pairs)} colour_garment folders) to {out_dir}")
    for colour, garment in pairs:
        folder = os.path.join(out_dir, f"{colour}_{garment}")
        os.makedirs(folder, exist_ok=True)
        pool = np.flatnonzero(labels == GARMENTS[garment])
        for i, index in enumerate(rng.choice(pool, per_folder, replace=False)):
            image = tint(images[index], COLOURS[colour], rng, size)
            _write_jpeg(os.path.join(folder, f"{i:04d}.jpg"), image)
    write_json(os.path.join(out_dir, "demo.json"), spec)
    return out_dir


def make_demo_canvases(out_dir, count=400, size=96, max_items=3, seed=0, log=print):
    """Writes a second demo set: several garments per image, CSV manifest.

    Each canvas holds one to ``max_items`` garments (of any colour) side by
    side; its labels are the garment types present, so label sets vary in
    size. ``manifest.csv`` lists ``filename,labels``.

    Args:
        out_dir: destination folder (reused when it holds the same set).
        count: number of images.
        size: side of the written JPEG images.
        max_items: most garments on one canvas.
        seed: random seed.
        log: function that receives progress messages.

    Returns:
        Path of ``manifest.csv``.

    Example:
        >>> manifest = make_demo_canvases("demo_output/canvas", count=50)  # doctest: +SKIP
    """
    spec = {"kind": "canvases", "count": count, "size": size, "max_items": max_items,
            "seed": seed, "garments": GARMENTS}
    manifest = os.path.join(out_dir, "manifest.csv")
    if _is_made(out_dir, spec):
        return manifest
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise FileExistsError(f"{out_dir} is not empty and holds no matching demo data set")
    images, labels = load_fashion_mnist(log=log)
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    rows = ["filename,labels"]
    names = list(GARMENTS)
    slot = size // max_items
    for i in range(count):
        canvas = _background(rng, size)
        chosen = rng.choice(names, rng.integers(1, max_items + 1), replace=False)
        slots = rng.permutation(max_items)[: len(chosen)]
        for garment, k in zip(chosen, slots):
            index = rng.choice(np.flatnonzero(labels == GARMENTS[garment]))
            colour = COLOURS[rng.choice(list(COLOURS))]
            y = int(rng.integers(0, size - slot + 1))
            _paste(canvas, images[index], colour, rng, slot, x=int(k * slot), y=y)
        name = f"images/{i:05d}.jpg"
        _write_jpeg(os.path.join(out_dir, name), canvas)
        rows.append(f"{name},{' '.join(sorted(chosen))}")
    with atomic_path(manifest) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(rows) + "\n")
    write_json(os.path.join(out_dir, "demo.json"), spec)
    return manifest


def _is_made(out_dir, spec):
    marker = os.path.join(out_dir, "demo.json")
    if not os.path.isfile(marker):
        return False
    try:
        return read_json(marker, "demo marker") == json.loads(json.dumps(spec))
    except (OSError, ValueError):  # unreadable or damaged: the demo data is made again
        return False
