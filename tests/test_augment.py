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


