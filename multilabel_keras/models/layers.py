"""Backbone preprocessing as Keras' own layers, the registered layer it replaced, and calibration."""

import keras
import numpy as np
from keras import ops

# Per-channel statistics of ImageNet, as keras.applications uses them.
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
MODES = ("tf", "torch", "caffe")


@keras.saving.register_keras_serializable(package="multilabel_keras")
class ImagePreprocess(keras.layers.Layer):
    """A backbone's ``preprocess_input`` as a layer, so models take raw pixels.

    Modes follow ``keras.applications``: ``"tf"`` scales 0-255 to [-1, 1];
    ``"torch"`` scales to [0, 1] and normalises with ImageNet mean/std;
    ``"caffe"`` flips RGB to BGR and subtracts the ImageNet BGR mean.

    Args:
        mode: ``"tf"``, ``"torch"`` or ``"caffe"``.
        **kwargs: passed to ``keras.layers.Layer``.

    Example:
        >>> layer = ImagePreprocess("tf")
        >>> ops.convert_to_numpy(layer(ops.array([[[[0.0, 127.5, 255.0]]]]))).tolist()
        [[[[-1.0, 0.0, 1.0]]]]
    """

    def __init__(self, mode="tf", **kwargs):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"ImagePreprocess mode must be one of {MODES}, got {mode!r}")
        self.mode = mode

    def call(self, images):
        images = ops.cast(images, self.compute_dtype)
        if self.mode == "tf":
            return images / 127.5 - 1.0
        if self.mode == "torch":
            mean = ops.convert_to_tensor(_TORCH_MEAN, self.compute_dtype)
            std = ops.convert_to_tensor(_TORCH_STD, self.compute_dtype)
            return (images / 255.0 - mean) / std
        bgr = ops.flip(images, axis=-1)
        return bgr - ops.convert_to_tensor(_CAFFE_BGR_MEAN, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode)
        return config


def preprocess_layer(mode, name="preprocess"):
    """A backbone's ``preprocess_input`` built from Keras' own layers.

    A model made of built-in layers loads with ``keras.models.load_model``
    (``safe_mode=True``) in a process that never imported this package:
    ``"tf"`` is a ``Rescaling`` to [-1, 1]; ``"torch"`` a per-channel
    ``Rescaling`` by ImageNet's mean and standard deviation; ``"caffe"`` a frozen
    1x1 ``Conv2D`` whose kernel swaps RGB to BGR and whose bias subtracts
    ImageNet's BGR mean. (``ImagePreprocess`` still loads runs saved before.)

    Args:
        mode: ``"tf"``, ``"torch"`` or ``"caffe"``.
        name: the layer's name.

    Returns:
        A Keras layer taking raw 0-255 pixels.

    Example:
        >>> layer = preprocess_layer("tf")
        >>> out = ops.convert_to_numpy(layer(ops.array([[0.0, 127.5, 255.0]])))[0]
        >>> [round(float(v), 6) + 0.0 for v in out]
        [-1.0, 0.0, 1.0]
    """
    if mode == "tf":
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name=name)
    if mode == "torch":
        # (x / 255 - mean) / std as one per-channel scale and offset: constants built in the
        # graph, which ONNX export keeps (Normalization's eager tensors became model inputs).
        scale = [1.0 / (255.0 * s) for s in _TORCH_STD]
        offset = [-m / s for m, s in zip(_TORCH_MEAN, _TORCH_STD)]
        return keras.layers.Rescaling(scale, offset=offset, name=name)
    if mode == "caffe":
        swap = np.eye(3, dtype="float32")[::-1].reshape(1, 1, 3, 3)
        return keras.layers.Conv2D(
            3, 1, name=name, trainable=False,
            kernel_initializer=keras.initializers.Constant(swap.tolist()),
            bias_initializer=keras.initializers.Constant([-m for m in _CAFFE_BGR_MEAN]))
    raise ValueError(f"preprocess mode must be one of {MODES}, got {mode!r}")


@keras.saving.register_keras_serializable(package="multilabel_keras")
class TemperatureScaling(keras.layers.Layer):
    """Per-label temperature calibration of probabilities: ``sigmoid(logit(p) / T)``.

    The same computation as ``decisions.apply_temperatures``, inside a
    model (exports carry the run's calibration with it).

    Args:
        temperatures: one temperature per label.
        **kwargs: passed to ``keras.layers.Layer``.

    Example:
        >>> layer = TemperatureScaling([1.0, 2.0])
        >>> [round(float(v), 3) for v in ops.convert_to_numpy(layer(ops.array([[0.9, 0.9]])))[0]]
        [0.9, 0.75]
    """

    def __init__(self, temperatures, **kwargs):
        super().__init__(**kwargs)
        self.temperatures = [float(t) for t in temperatures]

    def call(self, scores):
        edge = 1e-7
        p = ops.clip(ops.cast(scores, "float32"), edge, 1.0 - edge)
        temperatures = ops.cast(self.temperatures, "float32")
        return ops.sigmoid((ops.log(p) - ops.log(1.0 - p)) / temperatures)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "temperatures": self.temperatures}
