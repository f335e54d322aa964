import gzip
import os

import numpy as np
import pytest

from multilabel_keras.data import demo
from multilabel_keras.data.sources import from_csv, from_folders


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """A small stand-in for the Fashion-MNIST files, in the real IDX format."""
    rng = np.random.default_rng(0)
    images = np.zeros((40, 28, 28), np.uint8)
    images[:, 6:22, 8:20] = rng.integers(120, 255, (40, 16, 12))
    labels = np.tile(np.arange(10), 4)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    monkeypatch.setattr(demo, "FASHION_MNIST_DIR", str(tmp_path))
    return tmp_path, images, labels


def test_reads_idx_files(fake_mnist):
    directory, images, labels = fake_mnist
    x, y = demo.load_fashion_mnist(str(directory))
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, labels)


def test_falls_back_to_keras_and_says_so(tmp_path, monkeypatch):
    import keras

    fake = (np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.uint8))
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", lambda: (fake, fake))
    messages = []
    x, _ = demo.load_fashion_mnist(str(tmp_path / "absent"), log=messages.append)
    assert x.shape == (2, 28, 28)
    assert "falling back to keras.datasets.fashion_mnist" in messages[0]


def test_tint_colours_the_garment():
    garment = np.zeros((28, 28), np.uint8)
    garment[4:24, 4:24] = 255
    image = demo.tint(garment, (200, 20, 20), np.random.default_rng(0), size=64)
    assert image.shape == (64, 64, 3)
    reddish = (image[..., 0] > 150) & (image[..., 1] < 60)
    assert reddish.mean() > 0.1  # the garment covers at least a tenth of the canvas
    assert image[..., 1].max() > 180  # the background stays light


def test_demo_folders_layout_and_reuse(fake_mnist, tmp_path):
    out = str(tmp_path / "demo")
    demo.make_demo_folders(out, per_folder=2, size=32, log=lambda *_: None)
    samples = from_folders(out)
    assert len(samples) == len(demo.COLOURS) * len(demo.GARMENTS) * 2
    assert {"red", "dress"} in samples.labels
    mtime = os.path.getmtime(samples.paths[0])
    demo.make_demo_folders(out, per_folder=2, size=32, log=lambda *_: None)  # reused, not rewritten
    assert os.path.getmtime(samples.paths[0]) == mtime
    with pytest.raises(FileExistsError, match="not empty"):
        demo.make_demo_folders(out, per_folder=3, size=32, log=lambda *_: None)
    # A damaged marker, however hostile, is a folder not made by this spec: never overwritten.
    for damage in ("{not json", "[" * 100000, "\udcff"):
        with open(os.path.join(out, "demo.json"), "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(damage)
        with pytest.raises(FileExistsError, match="not empty"):
            demo.make_demo_folders(out, per_folder=2, size=32, log=lambda *_: None)
    assert os.path.getmtime(samples.paths[0]) == mtime


def test_demo_canvases_manifest(fake_mnist, tmp_path):
    manifest = demo.make_demo_canvases(str(tmp_path / "canvas"), count=12, size=48, log=lambda *_: None)
    samples = from_csv(manifest)
    assert len(samples) == 12
    assert all(1 <= len(labels) <= 3 for labels in samples.labels)
    assert set().union(*samples.labels) <= set(demo.GARMENTS)


@pytest.mark.slow
def test_run_demo_end_to_end(fake_mnist, tmp_path):
    from multilabel_keras.demo_job import run_demo

    lines = []
    summary = run_demo(str(tmp_path / "out"), epochs=1, image_size=32, per_folder=4, verbose=0,
                       log=lines.append)
    run_dir = summary["run_dir"]
    for name in ("model.keras", "labels.json", "thresholds.json", "config.json", "history.csv",
                 "plot.png", "metrics.json", "test_metrics.json"):
        assert os.path.isfile(os.path.join(run_dir, name)), name
    assert os.path.isfile(tmp_path / "out" / "test.csv")
    assert len(from_csv(tmp_path / "out" / "test.csv")) == summary["test_metrics"]["num_images"]
    assert any(line.strip().startswith("mAP") for line in lines)
    assert len(summary["predictions"]) == 4
