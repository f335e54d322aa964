"""The model name -> builder table."""

_BUILDERS = {}


def register_model(name):
    """Decorator that registers a model builder under ``name``.

    A builder takes ``num_labels`` and keyword arguments named as in
    ``keras.applications`` (``input_shape``, ``weights``, ``dropout`` …) and
    returns an uncompiled ``keras.Model``.

    Args:
        name: lower-case model name used by ``build_model``.

    Returns:
        The decorator, which returns the builder unchanged.

    Example:
        >>> import keras
        >>> @register_model("tiny")
        ... def tiny(num_labels, input_shape=(32, 32, 3), weights=None):
        ...     inputs = keras.Input(input_shape)
        ...     pooled = keras.layers.GlobalAveragePooling2D()(inputs)
        ...     return keras.Model(inputs, keras.layers.Dense(num_labels, activation="sigmoid")(pooled))
        >>> get_builder("tiny")(4).output_shape
        (None, 4)
        >>> _ = _BUILDERS.pop("tiny")  # the example leaves the table as it was
    """

    def decorator(builder):
        key = name.lower()
        if key in _BUILDERS and _BUILDERS[key] is not builder:
            raise ValueError(f"a model named {key!r} is already registered")
        _BUILDERS[key] = builder
        return builder

    return decorator


def get_builder(name):
    """Returns the builder registered as ``name``, or raises naming the choices."""
    key = str(name).lower()
    if key not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _BUILDERS[key]


def list_models():
    """Lists the registered model names, sorted.

    Returns:
        A list of strings.

    Example:
        >>> "smallervggnet" in list_models()
        True
    """
    return sorted(_BUILDERS)
