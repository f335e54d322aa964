"""RandomAffine against transforms computed another way: np.rot90, np.roll, hand-placed pixels."""

import keras
import numpy as np
import pytest
from keras import ops

from multilabel_keras import RandomAffine
from multilabel_keras.data.augment import affine_matrices

SIZE = 9  # odd: the centre (4, 4) is a pixel, so 90 degree turns land on pixels


def _apply(image, angle=0.0, shear=0.0, scale=1.0, shift_x=0.0, shift_y=0.0, flip=1.0):
    one = ops.ones((1,))
    matrix = affine_matrices(angle * one, shear * one, scale * one, shift_x * one, shift_y * one,
                             flip * one, image.shape[1], image.shape[2])
    out = ops.image.affine_transform(image, matrix, interpolation="bilinear", fill_mode="constant")
    return ops.convert_to_numpy(out)


def _marked(*pixels):
    image = np.zeros((1, SIZE, SIZE, 1), "float32")
    for row, col in pixels:
        image[0, row, col] = 255.0
    return image


@pytest.mark.parametrize("turns", [1, 2, 3, -1])
def test_quarter_turns_equal_rot90(turns):
    image = np.random.default_rng(turns % 4).uniform(0, 255, (1, SIZE, SIZE, 1)).astype("float32")
    out = _apply(image, angle=turns * np.pi / 2)
    np.testing.assert_allclose(out[0, ..., 0], np.rot90(image[0, ..., 0], turns), atol=1e-3)


@pytest.mark.parametrize("dx, dy", [(2, 0), (0, 3), (-1, 2)])
def test_integer_shift_moves_a_marked_pixel_exactly(dx, dy):
    image = _marked((4, 4))
    out = _apply(image, shift_x=dx, shift_y=dy)[0, ..., 0]
    expected = np.zeros((SIZE, SIZE))
    expected[4 - dy, 4 - dx] = 255.0  # content moves by minus the sampling shift
    np.testing.assert_allclose(out, expected, atol=1e-3)


def test_zoom_is_about_the_centre():
    # Sampling at half scale doubles distances from the centre (4, 4).
    image = _marked((4, 4), (5, 6), (3, 2))
    out = _apply(image, scale=0.5)[0, ..., 0]
    assert out[4, 4] == pytest.approx(255, abs=1e-3)
    assert out[6, 8] == pytest.approx(255, abs=1e-3)
    assert out[2, 0] == pytest.approx(255, abs=1e-3)
    # Half-way pixels sample half-way between the centre and empty neighbours.
    assert out[5, 5] == pytest.approx(255 / 4, abs=1e-3)


def test_mirror_equals_fliplr():
    image = np.random.default_rng(0).uniform(0, 255, (1, SIZE, SIZE, 3)).astype("float32")
    out = _apply(image, flip=-1.0)
    np.testing.assert_allclose(out[0], image[0, :, ::-1], atol=1e-3)


def test_same_seed_same_draws_other_seed_other_draws():
    images = np.random.default_rng(1).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    a = ops.convert_to_numpy(RandomAffine(seed=7)(images, training=True))
    b = ops.convert_to_numpy(RandomAffine(seed=7)(images, training=True))
    c = ops.convert_to_numpy(RandomAffine(seed=8)(images, training=True))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_random_affine_identity_and_flip():
    images = np.random.default_rng(0).uniform(0, 255, (6, 16, 16, 3)).astype("float32")
    identity = RandomAffine(rotation=0, shift=0, shear=0, zoom=0, horizontal_flip=False)
    np.testing.assert_allclose(identity(images, training=True), images, atol=1e-3)
    flip = RandomAffine(rotation=0, shift=0, shear=0, zoom=0, horizontal_flip=True, seed=3)
    out = keras.ops.convert_to_numpy(flip(images, training=True))
    flipped = [np.allclose(o, i[:, ::-1], atol=1e-3) for o, i in zip(out, images)]
    same = [np.allclose(o, i, atol=1e-3) for o, i in zip(out, images)]
    assert all(f or s for f, s in zip(flipped, same)) and any(flipped)
    np.testing.assert_array_equal(flip(images, training=False), images)


def test_random_affine_config_round_trip():
    layer = RandomAffine(rotation=10, shift=0.05, shear=1.0, zoom=0.1, horizontal_flip=False,
                         fill_mode="reflect", seed=4)
    clone = RandomAffine.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, RandomAffine) and restored.rotation == 10




def test_union_labels_present_beats_unknown_beats_absent():
    from multilabel_keras.data.augment import union_labels

    y = np.array([[[1, 0, 0, -1]], [[0, -1, 0, 0]], [[0, 0, 0, -1]]], "float32")
    np.testing.assert_array_equal(ops.convert_to_numpy(union_labels(y)), [[1, -1, 0, -1]])


def test_mosaic_quadrants_are_the_next_four_images_shrunk():
    import cv2

    from multilabel_keras.data.augment import mosaic

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (5, 8, 8, 3)).astype("float32")
    y = np.eye(5, dtype="float32")
    mixed, targets = (ops.convert_to_numpy(t) for t in mosaic(x, y, 1.0, (1, 2)))
    for i in range(5):
        quads = [mixed[i, :4, :4], mixed[i, :4, 4:], mixed[i, 4:, :4], mixed[i, 4:, 4:]]
        for k, quad in enumerate(quads):
            shrunk = cv2.resize(x[(i + k) % 5], (4, 4), interpolation=cv2.INTER_AREA)
            np.testing.assert_allclose(quad, shrunk, atol=1e-3)
        expected = np.zeros(5)
        expected[[(i + k) % 5 for k in range(4)]] = 1
        np.testing.assert_array_equal(targets[i], expected)
    kept, same = (ops.convert_to_numpy(t) for t in mosaic(x, y, 0.0, (1, 2)))
    np.testing.assert_array_equal(kept, x)
    np.testing.assert_array_equal(same, y)


def test_pipeline_mosaics_draw_anew_each_batch_and_repeat_with_the_seed(folder_data):
    from multilabel_keras import LabelVocabulary, from_folders, make_dataset

    samples = from_folders(folder_data)
    vocab = LabelVocabulary().fit(samples.labels)

    def labels(seed):
        ds = make_dataset(samples, vocab, 16, batch_size=8, mix=0.5, seed=seed, repeat=True)
        return [b[1].numpy() for b in ds.take(3)]

    plain = np.concatenate([b[1].numpy() for b in make_dataset(samples, vocab, 16, batch_size=8)])
    first, again, other = labels(3), labels(3), labels(4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    mixed_rows = [(batch.sum(1) > plain[k * 8:(k + 1) * 8].sum(1)) for k, batch in enumerate(first)]
    assert 0 < sum(int(m.sum()) for m in mixed_rows) < 24  # some, not all, images became mosaics
    assert len({tuple(m) for m in mixed_rows}) > 1  # a different draw in each batch
