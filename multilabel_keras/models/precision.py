"""Training precision: float32 by default, bfloat16 compute on request; float32 models on disk.

On a CPU with bfloat16 instructions (AVX512-BF16 or AMX) TensorFlow's
oneDNN kernels run SmallerVGGNet's training step about 1.2x faster in
``mixed_bfloat16`` than in float32 (``benchmarks/train_throughput.py``).
``train`` keeps batch normalisation, the pixel rescaling, the first
convolution and the dense head in float32 (``CAREFUL_FLOAT32``), which
costs no speed; even so the accuracy suite lost test mAP on one task of
two measured (``docs/benchmarks.md``), so it is not the default. The
variables stay float32 either way, so a model moves between the two
policies by rebuilding it from its config and copying the weights; saved
models, thresholds and exports are always float32.
"""

import warnings

import keras

PRECISIONS = ("float32", "mixed_bfloat16")


def cpu_has_bf16(cpuinfo="/proc/cpuinfo"):
    """Whether the CPU reports bfloat16 instructions (``avx512_bf16`` or ``amx_bf16``).

    Args:
        cpuinfo: the file listing CPU flags (Linux).

    Returns:
        ``True`` or ``False`` (``False`` where the file cannot be read).

    Example:
        >>> cpu_has_bf16("/no/such/file")
        False
    """
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(precision="float32"):
    """Checks a training precision, warning where bfloat16 would be emulated.

    float32 is the default: bfloat16 trained SmallerVGGNet faster on a CPU
    with AVX512-BF16 but lost test mAP on most accuracy-suite tasks
    (``docs/benchmarks.md``, "Speed and scale").

    Args:
        precision: ``"float32"`` or ``"mixed_bfloat16"``.

    Returns:
        The precision.

    Example:
        >>> resolve_precision("float32")
        'float32'
        >>> resolve_precision("half")
        Traceback (most recent call last):
        ...
        ValueError: precision must be one of float32, mixed_bfloat16, not 'half'
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "mixed_bfloat16" and not cpu_has_bf16():
        warnings.warn("this CPU has no bfloat16 instructions: mixed_bfloat16 is emulated there "
                      "and slower than float32 (on a GPU it runs natively)", UserWarning,
                      stacklevel=2)
    return precision


# Layers the "careful" bfloat16 plan keeps in float32: batch normalisation (its
# statistics and the division by them lose most to 8 bits of mantissa), the
# pixel rescaling and first convolution (raw pixels) and every dense layer (the head).
CAREFUL_FLOAT32 = ("BatchNormalization", "Rescaling", "first_conv", "Dense")


def with_policy(model, policy, keep=()):
    """A copy of a functional model computing in ``policy``, holding the same weights.

    Layers that produce the model's outputs stay float32, so losses and
    probabilities are computed at full precision.

    Args:
        model: a functional ``keras.Model``.
        policy: ``"float32"`` or ``"mixed_bfloat16"``.
        keep: also kept in float32 under ``mixed_bfloat16``: layer class
            names, and ``"first_conv"`` for the first convolution
            (``CAREFUL_FLOAT32`` is the set ``train`` uses).

    Returns:
        The rebuilt model, or ``model`` itself when it already computes in
        ``policy`` or cannot be rebuilt from its config (a subclassed model).

    Example:
        >>> inputs = keras.Input((4,))
        >>> hidden = keras.layers.Dense(8, name="hidden")(inputs)
        >>> model = keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden))
        >>> fast = with_policy(model, "mixed_bfloat16")
        >>> fast.get_layer("hidden").compute_dtype, fast.get_layer("out").compute_dtype
        ('bfloat16', 'float32')
        >>> with_policy(fast, "float32").get_layer("hidden").compute_dtype
        'float32'
    """
    if policy_of(model) == policy and not keep:
        return model
    try:
        config = model.get_config()
        outputs = config["output_layers"]
        outputs = {outputs[0]} if isinstance(outputs[0], str) else {name for name, *_ in outputs}
    except (NotImplementedError, TypeError, KeyError, ValueError):
        return model
    if policy != "float32" and keep:
        outputs |= _kept_layers(model, keep)
    _set_policy(config, policy, outputs)
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def policy_of(model):
    """``"mixed_bfloat16"`` if any layer of ``model`` computes in bfloat16, else ``"float32"``.

    Args:
        model: a ``keras.Model``.

    Returns:
        The policy name.

    Example:
        >>> policy_of(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
        'float32'
    """
    for layer in model._flatten_layers(include_self=False):
        if layer.compute_dtype == "bfloat16":
            return "mixed_bfloat16"
    return "float32"


def _kept_layers(model, keep):
    names, first = set(), "first_conv" in keep
    for layer in model._flatten_layers(include_self=False):
        kind = layer.__class__.__name__
        if kind in keep:
            names.add(layer.name)
        if first and isinstance(layer, keras.layers.Conv2D):
            names.add(layer.name)
            first = False
    return names


def _set_policy(config, policy, keep_float32):
    for layer in config.get("layers", []):
        inner = layer.get("config", {})
        name = inner.get("name")
        if "dtype" in inner and layer.get("class_name") != "InputLayer":
            inner["dtype"] = "float32" if name in keep_float32 else policy
        if isinstance(inner.get("layers"), list):  # a nested functional model (a backbone)
            _set_policy(inner, policy, keep_float32)
