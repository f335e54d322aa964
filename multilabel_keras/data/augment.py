"""Augmentation: one registered random-affine layer, and the batching stage that applies it."""

import math

import keras
import tensorflow as tf
from multilabel_keras.data.tf_ops import ops

from multilabel_keras.data.images import pipeline_workers
from multilabel_keras.data.recolour import recolour as recolour_batch


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
        return self.transform(images)

    def transform(self, images, seed=None):
        """Augments a batch; with a ``seed`` (two integers) the draws are stateless.

        The training pipeline passes ``(run seed, batch index)``, so batch
        ``k`` is augmented the same way whether the run went straight
        through or was killed and resumed before it.

        Args:
            images: ``(B, H, W, C)`` or ``(H, W, C)`` float images.
            seed: ``None`` (this layer's own random state) or a stateless
                seed.

        Returns:
            The augmented images, same shape.
        """
        unbatched = len(images.shape) == 3
        if unbatched:
            images = ops.expand_dims(images, 0)
        matrices = self.random_matrices(ops.shape(images), seed)
        out = ops.image.affine_transform(
            images, matrices, interpolation="bilinear", fill_mode=self.fill_mode
        )
        return out[0] if unbatched else out

    def random_matrices(self, shape, seed=None):
        """Draws one output-to-input affine matrix per image, Keras layout (8 numbers)."""
        batch = shape[0]
        seeds = iter(tf.unstack(tf.random.experimental.stateless_split(
            tf.cast(seed, tf.int64), 6))) if seed is not None else None

        def uniform(limit):
            if seeds is not None:
                return tf.random.stateless_uniform((batch,), seed=next(seeds), minval=-limit,
                                                   maxval=limit)
            return keras.random.uniform(
                (batch,), -limit, limit, seed=self.seed_generator
            )

        angle = uniform(math.radians(self.rotation))
        shear = uniform(math.radians(self.shear))
        scale = 1.0 + uniform(self.zoom)
        shift_x = uniform(self.shift) * ops.cast(shape[2], "float32")
        shift_y = uniform(self.shift) * ops.cast(shape[1], "float32")
        if self.horizontal_flip:
            coin = uniform(1.0)
            flip = ops.where(coin < 0.0, -1.0, 1.0)
        else:
            flip = ops.ones((batch,))
        return affine_matrices(angle, shear, scale, shift_x, shift_y, flip, shape[1], shape[2])

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


def affine_matrices(angle, shear, scale, shift_x, shift_y, flip, height, width):
    """Output-to-input affine matrices for ``ops.image.affine_transform``.

    Each output pixel ``(x, y)`` samples the input at ``A @ (x - c) + c +
    shift`` with ``c`` the image centre and ``A = scale * R(angle) @
    Shear(shear) @ diag(flip, 1)``: rotation, shear, zoom and mirroring all
    happen about the centre, and the content moves by ``-shift`` pixels.
    A positive angle turns the content counter-clockwise on screen; a scale
    below 1 zooms in.

    Args:
        angle: ``(batch,)`` rotation angles in radians.
        shear: ``(batch,)`` shear angles in radians.
        scale: ``(batch,)`` sampling scales.
        shift_x: ``(batch,)`` horizontal shifts in pixels.
        shift_y: ``(batch,)`` vertical shifts in pixels.
        flip: ``(batch,)`` ``-1`` to mirror left-right, ``1`` not to.
        height: image height in pixels.
        width: image width in pixels.

    Returns:
        A ``(batch, 8)`` tensor in Keras' layout ``[a0, a1, a2, b0, b1, b2, 0, 0]``.

    Example:
        >>> one = ops.ones((1,))
        >>> m = affine_matrices(0 * one, 0 * one, one, 2 * one, 0 * one, one, 5, 5)
        >>> (ops.convert_to_numpy(m) + 0.0).round(3).tolist()  # + 0.0 turns -0.0 into 0.0
        [[1.0, 0.0, 2.0, 0.0, 1.0, 0.0, 0.0, 0.0]]
    """
    height = ops.cast(height, "float32")
    width = ops.cast(width, "float32")
    cos, sin = ops.cos(angle), ops.sin(angle)
    # Linear part = scale * rotation @ shear @ diag(flip, 1).
    a0 = scale * cos * flip
    a1 = scale * (-cos * ops.sin(shear) - sin * ops.cos(shear))
    b0 = scale * sin * flip
    b1 = scale * (-sin * ops.sin(shear) + cos * ops.cos(shear))
    cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    a2 = cx - a0 * cx - a1 * cy + shift_x
    b2 = cy - b0 * cx - b1 * cy + shift_y
    zeros = ops.zeros_like(a0)
    return ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)



def union_labels(y):
    """The labels of images shown together: present if present in any, else unknown if unknown in any.

    Args:
        y: ``(k, batch, L)`` targets in {0, 1, -1}.

    Returns:
        ``(batch, L)`` targets.

    Example:
        >>> y = ops.convert_to_tensor([[[1.0, 0.0, 0.0]], [[0.0, -1.0, 0.0]]])
        >>> ops.convert_to_numpy(union_labels(y)).tolist()
        [[1.0, -1.0, 0.0]]
    """
    present = ops.any(ops.equal(y, 1.0), axis=0)
    unknown = ops.any(ops.equal(y, -1.0), axis=0)
    return ops.where(present, 1.0, ops.where(unknown, -1.0, 0.0))


def mosaic(images, labels, probability, seed):
    """Replaces a share of a batch by 2x2 mosaics of four of its images, labelled with their union.

    Each chosen image becomes a grid of itself and the next three images of
    the batch, each shrunk to half size; its targets are the union of the
    four (``union_labels``), which stays exact for multi-label data. The
    model sees every attribute beside every object, so it cannot learn that
    a label is evidence against another just because they never met in
    training (a colour only ever seen on one garment).

    Args:
        images: ``(B, H, W, C)`` float batch (H and W even).
        labels: ``(B, L)`` targets.
        probability: share of images replaced.
        seed: stateless seed, two integers (the pipeline passes the run's
            seed and the batch's index, so every batch draws anew and a
            rerun draws the same).

    Returns:
        ``(images, labels)`` of the same shapes.

    Example:
        >>> x = tf.reshape(tf.range(4 * 4 * 4 * 1, dtype=tf.float32), (4, 4, 4, 1))
        >>> y = tf.eye(4)
        >>> mixed, targets = mosaic(x, y, probability=1.0, seed=(0, 0))
        >>> targets.numpy().sum(axis=1).tolist()
        [4.0, 4.0, 4.0, 4.0]
    """
    height, width = images.shape[1], images.shape[2]
    half = tf.image.resize(images, (height // 2, width // 2), method="area")
    quads = [tf.roll(half, -k, axis=0) for k in range(4)]
    top = tf.concat(quads[:2], axis=2)
    bottom = tf.concat(quads[2:], axis=2)
    grid = tf.image.resize(tf.concat([top, bottom], axis=1), (height, width), method="nearest")
    union = union_labels(tf.stack([tf.roll(labels, -k, axis=0) for k in range(4)]))
    chosen = tf.random.stateless_uniform((tf.shape(images)[0],), seed=seed) < probability
    return (tf.where(chosen[:, None, None, None], grid, images),
            tf.where(chosen[:, None], union, labels))

def batch_and_augment(ds, batch_size, augment=False, seed=None, mix=0.0, recolour=None,
                      start_batch=0):
    """Batches ``(uint8 image, labels)`` pairs, augments, prefetches.

    Every random draw is stateless, keyed by ``seed`` and the batch's index
    (counted from ``start_batch``): a resumed run augments its batches
    exactly as the uninterrupted run would have.

    Args:
        ds: dataset of single ``(S, S, 3)`` uint8 images and label vectors.
        batch_size: images per batch.
        augment: ``False``, ``True`` (default ``RandomAffine``) or a layer.
        seed: augmentation seed.
        mix: share of each batch replaced by ``mosaic`` images (0: none).
        recolour: ``None``, ``(colour_mask, probability)`` or
            ``(colour_mask, probability, split)`` for ``recolour.recolour``
            (hue turned, colour labels unknown).
        start_batch: index of the first batch (a resumed run's position).

    Returns:
        A ``tf.data.Dataset`` of float32 image batches and labels, with the
        autotuner off (see ``make_dataset``).

    Example:
        >>> pairs = tf.data.Dataset.from_tensor_slices(
        ...     (tf.zeros((10, 32, 32, 3), tf.uint8), tf.ones((10, 4))))
        >>> ds = batch_and_augment(pairs, 4, augment=True, seed=0)
        >>> [tuple(images.shape) for images, labels in ds]
        [(4, 32, 32, 3), (4, 32, 32, 3), (2, 32, 32, 3)]
    """
    workers = pipeline_workers()
    base = int(seed or 0)
    layer = RandomAffine(seed=seed) if augment is True else (augment or None)
    mask, share, split = ([], 0.0, False) if recolour is None else (*recolour, False)[:3]
    recolouring = share > 0 and any(mask)

    def stages(i, x, y):
        x = tf.cast(x, tf.float32)
        i = tf.cast(i, tf.int32)
        if isinstance(layer, RandomAffine):
            x = layer.transform(x, seed=tf.stack([base, i]))
        elif layer is not None:
            x = layer(x, training=True)
        if mix:
            x, y = mosaic(x, y, float(mix), tf.stack([base + 2, i]))
        if recolouring:
            x, y = recolour_batch(x, y, mask, float(share), tf.stack([base + 1, i]), bool(split))
        return x, y

    ds = ds.batch(batch_size).enumerate(start=int(start_batch))
    ds = ds.map(lambda i, batch: stages(i, *batch), num_parallel_calls=workers, deterministic=True)
    ds = ds.prefetch(2)
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)
