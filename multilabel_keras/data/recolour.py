"""Recolouring: breaks the link a model learns between a colour and the objects it was seen on.

When red was only ever seen on sandals, a network trained on the data
learns "red" as evidence against "sneaker", and red sneakers at test time
come out "red sandal". Rotating the hue of some training images while
marking their colour labels unknown (``-1``, which every loss of the
library ignores) shows every object in every colour, and teaches the
object labels not to depend on colour; the colour labels still learn from
the untouched images.

With ``split=True`` the untouched images teach only the colour labels
(their object labels are unknown), so object labels learn only from
recoloured images, where colour carries no hint of the object at all:
on images whose colour, object combination was never trained on, this
is what gets both labels right (see ``recipes.py``).
"""

import re

import numpy as np
import tensorflow as tf

# Basic colour terms and their usual modifiers: a label is a colour label when
# every word of it is one of these ("red", "light_blue", "navy-blue").
COLOUR_WORDS = frozenset("""
red blue green black white yellow orange purple pink brown grey gray cyan magenta violet
beige navy maroon teal turquoise olive lime gold golden silver tan khaki cream ivory indigo
burgundy lavender coral salmon crimson charcoal mint peach mustard rust aqua
light dark pale bright deep hot sky royal baby""".split())


def colour_labels(classes):
    """The labels of a vocabulary that name a colour.

    Args:
        classes: label names.

    Returns:
        The names made only of colour words (``COLOUR_WORDS``), in order.

    Example:
        >>> colour_labels(["red", "dress", "light_blue", "blue_jeans", "Black"])
        ['red', 'light_blue', 'Black']
    """
    found = []
    for name in classes:
        words = [w for w in re.split(r"[\s_\-]+", str(name).lower()) if w]
        if words and all(w in COLOUR_WORDS for w in words):
            found.append(name)
    return found


def recolour(images, labels, colour_mask, probability, seed, split=False):
    """Rotates the hue of a share of a batch and marks its colour labels unknown.

    Args:
        images: ``(B, H, W, 3)`` float batch in 0-255.
        labels: ``(B, L)`` targets in ``{0, 1, -1}``.
        colour_mask: ``(L,)`` 1 for colour labels, 0 for the others.
        probability: share of images recoloured.
        seed: stateless seed, two integers.
        split: also mark the other labels of the untouched images unknown,
            so that they teach colours only.

    Returns:
        ``(images, labels)`` of the same shapes; a recoloured image's hue is
        turned by a uniform random angle and its colour targets are ``-1``;
        with ``split``, an untouched image's other targets are ``-1``.

    Example:
        >>> x = tf.constant([[[[200.0, 30.0, 30.0]]]] * 2)
        >>> y = tf.constant([[1.0, 1.0], [1.0, 1.0]])
        >>> out, targets = recolour(x, y, [1.0, 0.0], 1.0, (0, 0))
        >>> targets.numpy().tolist()
        [[-1.0, 1.0], [-1.0, 1.0]]
        >>> bool(tf.reduce_all(tf.abs(out - x)[..., 1:] > 1.0))
        True
        >>> _, targets = recolour(x, y, [1.0, 0.0], 0.0, (0, 0), split=True)
        >>> targets.numpy().tolist()
        [[1.0, -1.0], [1.0, -1.0]]
    """
    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    chosen = tf.random.stateless_uniform((batch,), seed=seeds[0]) < probability
    # A turn of at least a sixth of the circle, so a recoloured image is
    # never left looking like its own colour.
    turn = tf.random.stateless_uniform((batch, 1, 1), seed=seeds[1], minval=1 / 6, maxval=5 / 6)
    hsv = tf.image.rgb_to_hsv(tf.clip_by_value(images, 0.0, 255.0) / 255.0)
    hue = tf.math.floormod(hsv[..., 0] + turn, 1.0)
    turned = tf.image.hsv_to_rgb(tf.stack([hue, hsv[..., 1], hsv[..., 2]], axis=-1)) * 255.0
    mask = tf.cast(tf.convert_to_tensor(np.asarray(colour_mask, np.float32)), labels.dtype)
    minus = tf.constant(-1.0, labels.dtype)
    unknown = tf.where(mask > 0, minus, labels)
    kept = tf.where(mask > 0, labels, minus) if split else labels
    return (tf.where(chosen[:, None, None, None], turned, images),
            tf.where(chosen[:, None], unknown, kept))
