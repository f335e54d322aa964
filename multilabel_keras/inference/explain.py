"""Grad-CAM per label: where in the image a label's score comes from."""

import os
import re

import cv2
import keras
import numpy as np
import tensorflow as tf

from multilabel_keras.data.images import load_images
from multilabel_keras.data.label_names import label_name
from multilabel_keras.decisions import apply_temperatures
from multilabel_keras.inference.predictor import Predictor
from multilabel_keras.io import atomic_path, check_new_path
from multilabel_keras.runs import RunDir


def _split_model(model, layer_name=None):
    """Splits a chain model at the feature map Grad-CAM reads: ``(front, back)``.

    Every layer is reused (same weights). The feature layer is ``layer_name``
    or the last layer with a 4-D output (for transfer models the nested
    ``backbone``); ``back`` maps that feature map to the model's outputs.
    """
    chain = model.layers[1:]
    if layer_name is None:
        spatial = [layer for layer in chain if len(_output_shape(layer)) == 4]
        if not spatial:
            raise ValueError(f"model {model.name} has no layer with a 4-D output for Grad-CAM")
        layer_name = spatial[-1].name
    names = [layer.name for layer in chain]
    if layer_name not in names:
        raise ValueError(f"no layer named {layer_name!r} in model {model.name}")
    cut = names.index(layer_name) + 1
    inputs = keras.Input(model.input_shape[1:])
    x = inputs
    for layer in chain[:cut]:
        x = layer(x)
    front = keras.Model(inputs, x)
    maps = keras.Input(tuple(x.shape[1:]))
    y = maps
    for layer in chain[cut:]:
        y = layer(y)
    back = keras.Model(maps, y)
    # Re-calling the layers in order reproduces the model only if it is a chain.
    probe = np.random.default_rng(0).uniform(0, 255, (1, *model.input_shape[1:])).astype("float32")
    joined = keras.ops.convert_to_numpy(back(front(probe, training=False), training=False))
    if not np.allclose(joined, keras.ops.convert_to_numpy(model(probe, training=False)), atol=1e-5):
        raise ValueError(f"Grad-CAM needs a chain of layers; model {model.name} is not one")
    return front, back


def _value_and_gradient(fn, x):
    """``fn(x)`` and the gradient of its sum with respect to ``x``, on the active Keras backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        def total(v):
            y = fn(v)
            return keras.ops.sum(y), y

        (_, y), grad = jax.value_and_grad(total, has_aux=True)(jax.numpy.asarray(x))
        return np.asarray(y), np.asarray(grad)
    if backend == "torch":
        v = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        y = fn(v)
        y.sum().backward()
        return y.detach().cpu().numpy(), v.grad.cpu().numpy()
    v = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(v)
        y = fn(v)
    return y.numpy(), tape.gradient(y, v).numpy()


def _output_shape(layer):
    try:
        return tuple(layer.output.shape)
    except (AttributeError, ValueError):
        return ()


def grad_cam(model, images, label_index, layer_name=None):
    """Grad-CAM heat maps for one label.

    The feature map's channels are weighted by the mean gradient of the
    label's probability with respect to them, summed, passed through a
    ReLU, scaled to [0, 1] per image and resized to the input size.

    Args:
        model: a chain model (every built-in model), sigmoid or 2-way head.
        images: float array ``(n, H, W, 3)`` of 0-255 pixels.
        label_index: the label's output index.
        layer_name: feature layer (default: the last 4-D one).

    Returns:
        ``(heat, scores)``: ``(n, H, W)`` maps in [0, 1] and the label's
        ``n`` probabilities.

    Example:
        >>> from multilabel_keras.inference.predictor import load_run_model
        >>> model = load_run_model("runs/fashion/model.keras")
        >>> batch = load_images(["dress.jpg", "a.jpg"], 32)
        >>> heat, scores = grad_cam(model, batch, label_index=2)
        >>> heat.shape, scores.shape
        ((2, 32, 32), (2,))
    """
    front, back = _split_model(model, layer_name)
    x = np.asarray(images, dtype=np.float32)
    features = keras.ops.convert_to_numpy(front(x, training=False))

    def label_score(maps):
        outputs = back(maps, training=False)
        return outputs[:, label_index, 1] if len(outputs.shape) == 3 else outputs[:, label_index]

    # Each image's score depends only on its own maps: the gradient of the sum is per image.
    score, grads = _value_and_gradient(label_score, features)
    weights = grads.mean(axis=(1, 2), keepdims=True)
    cam = np.maximum((weights * features).sum(axis=-1), 0.0)
    peak = cam.max(axis=(1, 2), keepdims=True)
    cam = np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0.0)
    size = (x.shape[2], x.shape[1])
    heat = np.stack([cv2.resize(c.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
                     for c in cam])
    return np.clip(heat, 0, 1), np.asarray(score, np.float64)


# Overlays are drawn with their long side in this range: a 28-pixel image grows to be
# seen, a 24-megapixel photo shrinks to be opened.
OVERLAY_SIDE = (256, 1024)


def _usable_size(original):
    height, width = original.shape[:2]
    side = max(height, width)
    scale = min(max(1.0, OVERLAY_SIDE[0] / side), OVERLAY_SIDE[1] / side)
    if scale == 1.0:
        return original
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(original, size, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)


def _colour_bar(height):
    """A JET bar from 1 (top) to 0 (bottom), labelled, on white, 48 pixels wide."""
    ramp = np.linspace(255, 0, height).astype(np.uint8)[:, None].repeat(16, axis=1)
    panel = np.full((height, 48, 3), 255, np.uint8)
    panel[:, 6:22] = cv2.applyColorMap(ramp, cv2.COLORMAP_JET)
    for text, y in (("1", 12), ("0", height - 4)):
        cv2.putText(panel, text, (26, y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return panel


def overlay(image_path, heat, path, alpha=0.4):
    """Writes the heat map over the image as a PNG, with a colour bar.

    The image keeps its aspect ratio; its long side is brought into
    ``OVERLAY_SIDE`` (256-1024 pixels) so small images can be seen and
    large ones opened. The bar on the right reads the colours: 1 is where
    the label's evidence is strongest in this image, 0 none.

    Args:
        image_path: the original image file.
        heat: ``(H, W)`` map in [0, 1].
        path: destination PNG (written atomically).
        alpha: heat map opacity.

    Returns:
        ``path``.

    Example:
        >>> heat = np.outer(np.linspace(0, 1, 8), np.ones(8))
        >>> overlay("dress.jpg", heat, "dress_red.png")
        'dress_red.png'
        >>> cv2.imread("dress_red.png").shape  # a 32x32 photo is enlarged, a colour bar added
        (256, 304, 3)
    """
    # Read by Python, decoded by OpenCV: cv2.imread crashes the process on a file name
    # that is not valid UTF-8.
    data = np.fromfile(os.fspath(image_path), np.uint8)
    original = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if original is None:
        raise ValueError(f"cannot read image {image_path}")
    original = _usable_size(original)
    heat = cv2.resize(heat.astype(np.float32), (original.shape[1], original.shape[0]))
    colored = cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0, 1)), cv2.COLORMAP_JET)
    blended = cv2.addWeighted(colored, alpha, original, 1 - alpha, 0)
    blended = np.concatenate([blended, _colour_bar(blended.shape[0])], axis=1)
    with atomic_path(path) as tmp:
        ok, data = cv2.imencode(".png", blended)
        if not ok:
            raise ValueError(f"cannot encode the overlay for {image_path}")
        with open(tmp, "wb") as f:
            f.write(data.tobytes())
    return path


def explain(run, image, label, out=None, layer_name=None, overwrite=False):
    """Grad-CAM of one label for one image, from a run directory.

    Args:
        run: a run directory or a ``Predictor``.
        image: image file path.
        label: a label name of the run's vocabulary.
        out: overlay PNG to write (default
            ``<run>/explain/<image stem>_<label>.png``, see ``overlay_name``).
        layer_name: feature layer (default: the last 4-D one).
        overwrite: replace an existing ``out`` (refused by default: it may
            be one of the user's files). Overlays in the run's own
            ``explain/`` folder are always replaced.

    Returns:
        Dict with ``heat`` (``(S, S)`` map at the model's input size),
        ``score`` (the label's calibrated probability, without test-time
        augmentation) and ``overlay`` (the PNG path).

    Example:
        >>> result = explain("runs/fashion", "dress.jpg", "red")
        >>> result["overlay"]
        'runs/fashion/explain/dress_red.png'
    """
    if out is not None:
        check_new_file(out, overwrite)
    predictor = run if isinstance(run, Predictor) else Predictor.load(run)
    names = predictor.vocabulary.classes_
    label = label_name(label) if isinstance(label, str) else label
    if label not in names:
        raise ValueError(f"label {label!r} is not in the run's labels: {names}")
    batch = load_images([image], predictor.image_size)
    index = names.index(label)
    heat, score = grad_cam(predictor.model, batch, index, layer_name)
    if predictor.temperatures is not None:  # the score Predictor gives, its flip TTA aside
        score = apply_temperatures(np.reshape(score, (-1, 1)), predictor.temperatures[index:index + 1])
    if out is None:
        if isinstance(run, Predictor):
            raise ValueError("pass out= when explaining with a Predictor")
        folder = RunDir(run).file(RunDir.EXPLAIN)
        os.makedirs(folder, exist_ok=True)
        out = os.path.join(folder, overlay_name(image, label))
    overlay(image, heat[0], out)
    return {"heat": heat[0], "score": float(np.ravel(score)[0]), "overlay": os.fspath(out)}


def check_new_file(path, overwrite=False):
    """Refuses to write an overlay over an existing file unless asked to, or over a folder.

    Args:
        path: the file about to be written.
        overwrite: allow replacing a regular file (a folder is never replaced).

    Returns:
        None.

    Example:
        >>> check_new_file("photo.jpg")
        Traceback (most recent call last):
        ...
        FileExistsError: photo.jpg exists; pass overwrite=True to replace it
    """
    if os.path.isdir(path):
        raise ValueError(f"{os.fspath(path)} is a folder; name a .png file to write")
    check_new_path(path, overwrite)


def overlay_name(image, label, taken=None):
    """A file name for an overlay: ``<image stem>_<label>.png``, safe and unique.

    Characters other than letters, digits, ``.``, ``-`` and ``_`` become
    ``_``, so a label such as ``../x`` or ``a/b`` cannot lead the file
    elsewhere; names already in ``taken`` get ``-2``, ``-3`` … so two
    images with the same name in different folders keep both overlays.

    Args:
        image: the image file path.
        label: the explained label.
        taken: a set of names already used in this folder (updated).

    Returns:
        The file name (no folder).

    Example:
        >>> taken = set()
        >>> overlay_name("a/shoe.jpg", "red", taken), overlay_name("b/shoe.jpg", "red", taken)
        ('shoe_red.png', 'shoe_red-2.png')
        >>> overlay_name("shoe.jpg", "../up")
        'shoe_.._up.png'
    """
    taken = set() if taken is None else taken
    stem = os.path.splitext(os.path.basename(os.fspath(image)))[0]
    safe = re.sub(r"[^\w.-]+", "_", f"{stem}_{label}", flags=re.ASCII).strip(".") or "overlay"
    name, number = f"{safe}.png", 2
    while name in taken:
        name, number = f"{safe}-{number}.png", number + 1
    taken.add(name)
    return name
