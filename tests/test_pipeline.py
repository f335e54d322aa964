import cv2
import numpy as np
import pytest

from multilabel_keras import LabelVocabulary, Samples, from_folders, make_dataset
from multilabel_keras.data.images import load_images

from conftest import draw, write_rgb


def _vocab(samples):
    return LabelVocabulary().fit(samples.labels)


def test_batches_have_the_promised_shapes_and_types(folder_data):
    samples = from_folders(folder_data)
    vocab = _vocab(samples)
    ds = make_dataset(samples, vocab, image_size=24, batch_size=5)
    batches = list(ds)
    assert [b[0].shape[0] for b in batches] == [5, 5, 5, 5, 4]
    x, y = batches[0]
    assert x.shape[1:] == (24, 24, 3) and x.dtype.name == "float32"
    assert y.shape == (5, vocab.num_labels) and y.dtype.name == "float32"
    assert 0 <= float(np.min(x)) and float(np.max(x)) <= 255 and float(np.max(x)) > 1
    ys = np.concatenate([b[1] for b in batches])
    np.testing.assert_array_equal(ys, vocab.transform(samples.labels))


def test_formats_become_rgb(tmp_path):
    red = np.zeros((20, 20, 3), np.uint8)
    red[..., 0] = 200
    bgr = cv2.cvtColor(red, cv2.COLOR_RGB2BGR)
    paths = {
        "a.jpg": bgr,
        "b.png": np.dstack([bgr, np.full((20, 20), 255, np.uint8)]),  # RGBA
        "c.bmp": bgr,
        "d.png": np.full((20, 20), 90, np.uint8),  # grayscale
    }
    for name, image in paths.items():
        assert cv2.imwrite(str(tmp_path / name), image)
    images = load_images([str(tmp_path / n) for n in paths], 16)
    assert images.shape == (4, 16, 16, 3)
    for colour in images[:3]:
        r, g, b = colour.reshape(-1, 3).mean(0)
        assert r > 180 and g < 20 and b < 20
    np.testing.assert_allclose(images[3], 90, atol=1)


def test_bad_image_errors_name_the_file(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="broken.jpg"):
        load_images([str(tmp_path / "broken.jpg")], 16)
    with pytest.raises(FileNotFoundError, match="gone.jpg"):
        load_images([str(tmp_path / "gone.jpg")], 16)


def test_images_stream_from_disk(tmp_path):
    # If the pipeline held decoded images, changing a file after building it
    # would not show; it does, because every pass reads the file again.
    path = str(tmp_path / "x" / "img.png")
    write_rgb(path, draw("red", "square"))
    samples = Samples([path], [{"red"}])
    ds = make_dataset(samples, _vocab(samples), image_size=32, batch_size=1)
    first = next(iter(ds))[0].numpy()
    write_rgb(path, draw("blue", "square"))
    second = next(iter(ds))[0].numpy()
    assert first[0, 16, 16, 0] > 150 and second[0, 16, 16, 2] > 150


def test_evaluation_data_is_decoded_once_when_it_fits_and_streamed_when_not(tmp_path):
    from multilabel_keras.data.pipeline import evaluation_dataset

    paths = [str(tmp_path / "x" / f"{i}.png") for i in range(3)]
    for i, path in enumerate(paths):
        write_rgb(path, draw("red", "square", seed=i))
    samples = Samples(paths, [{"red"}] * 3)
    vocab = _vocab(samples)
    kept = evaluation_dataset(samples, vocab, image_size=32, batch_size=2)
    streamed = evaluation_dataset(samples, vocab, image_size=32, batch_size=2,
                                  memory_bytes=3 * 32 * 32 * 3 - 1)  # one byte short
    oracle = np.concatenate([x for x, _ in make_dataset(samples, vocab, 32, batch_size=2)])
    for ds in (kept, streamed):
        np.testing.assert_array_equal(np.concatenate([x for x, _ in ds]), oracle)
    for path in paths:
        write_rgb(path, draw("blue", "square"))
    # Kept: the first pass's pixels; streamed: the files as they are now.
    np.testing.assert_array_equal(np.concatenate([x for x, _ in kept]), oracle)
    assert np.concatenate([x for x, _ in streamed])[:, 16, 16, 2].min() > 150


def test_shuffle_changes_order_between_passes(folder_data):
    samples = from_folders(folder_data)
    ds = make_dataset(samples, _vocab(samples), image_size=8, batch_size=24, shuffle=True, seed=1)
    a, b = (next(iter(ds))[0].numpy() for _ in range(2))
    assert not np.array_equal(a, b)
    key = lambda x: sorted(x.reshape(len(x), -1).sum(1).round(3).tolist())  # noqa: E731
    assert key(a) == key(b)


def test_repeat_and_augment(folder_data):
    samples = from_folders(folder_data)
    vocab = _vocab(samples)
    plain = make_dataset(samples, vocab, image_size=32, batch_size=24)
    aug = make_dataset(samples, vocab, image_size=32, batch_size=24, augment=True, repeat=True, seed=0)
    x_plain = next(iter(plain))[0].numpy()
    batches = list(aug.take(3))
    assert len(batches) == 3  # 72 images from 24: it repeats
    x_aug = batches[0][0].numpy()
    assert x_aug.shape == x_plain.shape
    assert np.abs(x_aug - x_plain).mean() > 1.0
    np.testing.assert_array_equal(batches[0][1], next(iter(plain))[1])


def test_empty_samples_error():
    with pytest.raises(ValueError, match="no samples"):
        make_dataset(Samples([], []), LabelVocabulary().fit([{"a"}]))


def test_a_stream_started_later_matches_the_uninterrupted_stream(folder_data):
    # A resumed run asks for the stream from batch k: it must see exactly the
    # images, augmentation, mosaics and recolouring the uninterrupted run saw.
    samples = from_folders(folder_data)
    vocab = _vocab(samples)
    mask = [1.0 if name in ("red", "blue") else 0.0 for name in vocab.classes_]
    kwargs = dict(image_size=16, batch_size=5, augment=True, shuffle=True, repeat=True, seed=3,
                  mix=0.3, recolour=(mask, 0.5, True))
    whole = [(x.numpy(), y.numpy()) for x, y in make_dataset(samples, vocab, **kwargs).take(12)]
    later = [(x.numpy(), y.numpy())
             for x, y in make_dataset(samples, vocab, start_batch=7, **kwargs).take(5)]
    for (x1, y1), (x2, y2) in zip(whole[7:], later):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    # Passes differ in order (24 images, 5 per batch: pass 2 starts inside batch 4).
    firsts = [whole[0][0], whole[5][0]]
    assert not np.array_equal(*firsts)
    targets = np.concatenate([y for _, y in whole])
    colour = np.array(mask) > 0
    assert (targets[:, colour] == -1).any()  # some images were recoloured
    assert (targets[:, ~colour] == -1).any()  # and some others teach colours only
