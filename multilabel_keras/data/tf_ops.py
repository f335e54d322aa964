"""``keras.ops`` for the tf.data pipeline: TensorFlow's implementation whatever the Keras backend.

Augmentation, mosaics and recolouring run inside ``tf.data`` maps on
TensorFlow tensors. Under the JAX or PyTorch backend, ``keras.ops`` would
hand those graph tensors to JAX or PyTorch; Keras' own preprocessing
layers switch to their TensorFlow implementation in ``tf.data`` for the
same reason. This module gives the pipeline the same functions, always
running on TensorFlow.
"""

import types

import keras

_NAMES = {
    "numpy": ("any", "cos", "equal", "expand_dims", "ones", "sin", "stack", "where", "zeros_like"),
    "core": ("cast", "convert_to_numpy", "convert_to_tensor", "shape"),
}


def _tensorflow_ops():
    from keras.src.backend import tensorflow as backend

    names = {name: getattr(getattr(backend, module), name)
             for module, listed in _NAMES.items() for name in listed}
    return types.SimpleNamespace(
        image=types.SimpleNamespace(affine_transform=backend.image.affine_transform), **names)


ops = keras.ops if keras.backend.backend() == "tensorflow" else _tensorflow_ops()
