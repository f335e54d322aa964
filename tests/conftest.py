import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

COLOURS = {"red": (220, 30, 30), "blue": (30, 40, 220)}


def draw(colour, shape, size=32, seed=0):
    """A small RGB picture: a coloured square or circle on a light background."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size, 3), 235, np.uint8)
    image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    c = size // 2 + int(rng.integers(-3, 4))
    r = size // 4
    if shape == "square":
        image[c - r : c + r, c - r : c + r] = COLOURS[colour]
    else:
        cv2.circle(image, (c, c), r, COLOURS[colour], -1)
    return image


def write_rgb(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def make_folder_data(root, per_folder=6):
    """Writes a <colour>_<shape>/ data set of 32x32 JPEG images under ``root``."""
    for colour in COLOURS:
        for shape in ("square", "circle"):
            for i in range(per_folder):
                write_rgb(str(root / f"{colour}_{shape}" / f"{i}.jpg"), draw(colour, shape, seed=i))
    return root


@pytest.fixture
def folder_data(tmp_path):
    """A tiny <colour>_<shape>/ data set: 4 folders x 6 JPEG images, 32x32."""
    return make_folder_data(tmp_path / "data")


@pytest.fixture
def csv_data(tmp_path):
    """A tiny CSV manifest with relative paths and varying label counts."""
    root = tmp_path / "csvdata"
    rows = ["filename,labels"]
    for i in range(8):
        colour = "red" if i % 2 else "blue"
        shape = "square" if i % 3 else "circle"
        name = f"images/{i}.png"
        write_rgb(str(root / name), draw(colour, shape, seed=i))
        labels = f"{colour} {shape}" if i != 5 else ""
        rows.append(f"{name},{labels}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root / "labels.csv"


def calibrated_backbone(path, images):
    """A stand-in for pretrained weights: random filters whose batch-norm statistics fit the data.

    With its initial statistics (mean 0, variance 1) a random MobileNetV2 gives near-constant
    pooled features; one training-mode pass with momentum 0 sets them from real images.
    """
    import keras

    from multilabel_keras.models.transfer import build_backbone

    net = build_backbone("mobilenetv2", (32, 32, 3))[0]
    for layer in net.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    net(images / 127.5 - 1.0, training=True)
    net.save_weights(path)
    return path
