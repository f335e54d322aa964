"""Random geometric augmentation as one registered Keras preprocessing layer."""

import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="multilabel_keras")
class RandomAffine(keras.layers.Layer):
    """Random rotation, shift, shear, zoom and horizontal flip in one resampling.

    Chaining ``RandomRotation``, ``RandomTranslation``, ``RandomZoom`` and
    ``RandomFlip`` resamples every image four times; composing the four into
    one affine matrix per image resamples once, which is what makes
    augmentation nearly free next to training. The defaults are those of the
    classic ``ImageDataGenerator`` recipe (rotation 25, shifts 0.1, shear
    0.2 degrees, zoom 0.2, horizontal flip, nearest fill).

    Args:
        rotation: maximum rotation in degrees (uniform in ``±rotation``).
        shift: maximum shift as a fraction of width and height.
        shear: maximum shear angle in degrees, as ``ImageDataGenerator``
            reads its ``shear_range``.
        zoom: scale is drawn uniformly from ``[1 - zoom, 1 + zoom]``.
        horizontal_flip: mirror half of the images left-right.
        fill_mode: how pixels outside the source are filled: ``"nearest"``,
            ``"reflect"``, ``"wrap"`` or ``"constant"``.
        seed: optional integer seed.
        **kwargs: passed to ``keras.layers.Layer``.

    Example:
        >>> augment = RandomAffine(rotation=10, zoom=0.1)
        >>> out = augment(ops.ones((2, 32, 32, 3)), training=True)
        >>> tuple(out.shape)
        (2, 32, 32, 3)
    """

    def __init__(
        self,
        rotation=25.0,
        shift=0.1,
        shear=0.2,
        zoom=0.2,
        horizontal_flip=True,
        fill_mode="nearest",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.rotation = rotation
        self.shift = shift
        self.shear = shear
        self.zoom = zoom
        self.horizontal_flip = horizontal_flip
        self.fill_mode = fill_mode
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = False

    def call(self, images, training=True):
        if not training:
            return images
        unbatched = len(images.shape) == 3
        if unbatched:
            images = ops.expand_dims(images, 0)
        matrices = self.random_matrices(ops.shape(images))
        out = ops.image.affine_transform(
            images, matrices, interpolation="bilinear", fill_mode=self.fill_mode
        )
        return out[0] if unbatched else out

    def random_matrices(self, shape):
        """Draws one output-to-input affine matrix per image, Keras layout (8 numbers)."""
        batch = shape[0]
        height = ops.cast(shape[1], "float32")
        width = ops.cast(shape[2], "float32")

        def uniform(limit):
            return keras.random.uniform(
                (batch,), -limit, limit, seed=self.seed_generator
            )

        angle = uniform(math.radians(self.rotation))
        shear = uniform(math.radians(self.shear))
        scale = 1.0 + uniform(self.zoom)
        shift_x = uniform(self.shift) * width
        shift_y = uniform(self.shift) * height
        if self.horizontal_flip:
            coin = keras.random.uniform((batch,), seed=self.seed_generator)
            flip = ops.where(coin < 0.5, -1.0, 1.0)
        else:
            flip = ops.ones((batch,))
        cos, sin = ops.cos(angle), ops.sin(angle)
        # Linear part = scale * rotation @ shear @ diag(flip, 1).
        a0 = scale * cos * flip
        a1 = scale * (-cos * ops.sin(shear) - sin * ops.cos(shear))
        b0 = scale * sin * flip
        b1 = scale * (-sin * ops.sin(shear) + cos * ops.cos(shear))
        cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
        a2 = cx - a0 * cx - a1 * cy + shift_x
        b2 = cy - b0 * cx - b1 * cy + shift_y
        zeros = ops.zeros((batch,))
        return ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            rotation=self.rotation,
            shift=self.shift,
            shear=self.shear,
            zoom=self.zoom,
            horizontal_flip=self.horizontal_flip,
            fill_mode=self.fill_mode,
            seed=self.seed,
        )
        return config
