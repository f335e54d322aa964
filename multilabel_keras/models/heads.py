"""Multi-label heads: what turns a backbone's feature map into one score per label.

Three heads are registered, each for every backbone:

- ``dense``: global pooling, dropout, one dense layer (the classic head).
- ``csra``: class-specific residual attention (Zhu & Wu, ICCV 2021). Each
  label scores every position of the map with its own (normalised) 1x1
  classifier; its logit is the mean of those scores plus ``lam`` times a
  softmax-weighted (temperature ``temperature``) average of them, so a label
  that shows in a small region is not averaged away.
- ``ml_decoder``: ML-Decoder (Ridnik et al., 2023). The map's positions,
  projected to ``dim``, are keys and values for learned group queries (one
  per label up to ``groups``); one cross-attention layer and a feed-forward
  layer later, each query answers for its group of labels with its own
  linear map.

The attention heads read the spatial map, not the pooled vector; both are
registered Keras layers, so a model using them loads with ``safe_mode=True``
once this package is imported.
"""

import dataclasses
import math
import warnings

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="multilabel_keras")
class CSRA(layers.Layer):
    """Class-specific residual attention: a feature map in, one logit per label out.

    For label ``i`` and map position ``j`` with features ``x_j``, the score
    is ``s_ij = m_i . x_j / |m_i|``; the logit is
    ``mean_j s_ij + lam * sum_j softmax_j(temperature * s_ij) * s_ij + b_i``.

    Args:
        num_labels: labels scored.
        lam: weight of the attention term (the paper's lambda).
        temperature: softmax temperature over positions (large: max pooling).
        **kwargs: passed to ``keras.layers.Layer``.

    Example:
        >>> layer = CSRA(3)
        >>> tuple(layer(ops.ones((2, 4, 4, 8))).shape)
        (2, 3)
    """

    def __init__(self, num_labels, lam=0.1, temperature=1.0, **kwargs):
        super().__init__(**kwargs)
        self.num_labels = int(num_labels)
        self.lam = float(lam)
        self.temperature = float(temperature)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.kernel = self.add_weight(name="kernel", shape=(channels, self.num_labels),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.num_labels,), initializer="zeros")

    def call(self, maps):
        kernel = ops.cast(self.kernel, maps.dtype)
        kernel = kernel / ops.sqrt(ops.sum(ops.square(kernel), axis=0, keepdims=True) + 1e-12)
        scores = ops.einsum("bhwc,cl->bhwl", maps, kernel)
        scores = ops.reshape(scores, (ops.shape(scores)[0], -1, self.num_labels))
        base = ops.mean(scores, axis=1)
        # A softmax written out: Keras warns about one over a single position (a 1x1 map).
        sharpened = scores * self.temperature
        weights = ops.exp(sharpened - ops.max(sharpened, axis=1, keepdims=True))
        weights = weights / ops.sum(weights, axis=1, keepdims=True)
        attended = ops.sum(weights * scores, axis=1)
        return base + self.lam * attended + ops.cast(self.bias, maps.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_labels)

    def get_config(self):
        return {**super().get_config(), "num_labels": self.num_labels, "lam": self.lam,
                "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="multilabel_keras")
class MLDecoder(layers.Layer):
    """ML-Decoder: label-group queries cross-attend to a feature map; logits out.

    Positions are projected to ``dim`` (dense + ReLU). ``groups`` learned
    queries attend to them (multi-head attention, then residual and layer
    norm; a ReLU feed-forward of width ``4 * dim``, then residual and layer
    norm; no self-attention, as in the paper). Query ``k`` answers for labels
    ``k * g … k * g + g - 1`` with its own ``(dim, g)`` map, ``g =
    ceil(num_labels / groups)``.

    Args:
        num_labels: labels scored.
        groups: queries (default: one per label, at most 100).
        dim: width of the decoder.
        heads: attention heads (``dim`` must divide by it).
        dropout: dropout inside the decoder while training.
        **kwargs: passed to ``keras.layers.Layer``.

    Example:
        >>> layer = MLDecoder(5, dim=16, heads=2)
        >>> tuple(layer(ops.ones((2, 3, 3, 8))).shape)
        (2, 5)
    """

    def __init__(self, num_labels, groups=None, dim=256, heads=8, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.num_labels = int(num_labels)
        self.groups = int(groups or min(self.num_labels, 100))
        if not 1 <= self.groups <= self.num_labels:
            raise ValueError(f"ml_decoder groups must be in [1, {self.num_labels}], got {groups!r}")
        if dim % heads:
            raise ValueError(f"ml_decoder dim {dim} must be a multiple of heads {heads}")
        self.dim, self.heads, self.dropout = int(dim), int(heads), float(dropout)
        self.per_group = math.ceil(self.num_labels / self.groups)
        self.embed = layers.Dense(self.dim, activation="relu", name="embed")
        self.attention = layers.MultiHeadAttention(self.heads, self.dim // self.heads,
                                                   dropout=self.dropout, name="attention")
        self.norm1 = layers.LayerNormalization(epsilon=1e-5, name="norm1")
        self.hidden = layers.Dense(4 * self.dim, activation="relu", name="hidden")
        self.project = layers.Dense(self.dim, name="project")
        self.norm2 = layers.LayerNormalization(epsilon=1e-5, name="norm2")
        self.drop = layers.Dropout(self.dropout)

    def build(self, input_shape):
        tokens = (input_shape[0], None, self.dim)
        self.embed.build((input_shape[0], None, input_shape[-1]))
        self.queries = self.add_weight(name="queries", shape=(self.groups, self.dim),
                                       initializer=keras.initializers.RandomNormal(stddev=1.0))
        self.attention.build(tokens, tokens, tokens)
        self.norm1.build(tokens)
        self.hidden.build(tokens)
        self.project.build((input_shape[0], None, 4 * self.dim))
        self.norm2.build(tokens)
        self.group_kernel = self.add_weight(name="group_kernel",
                                            shape=(self.groups, self.dim, self.per_group),
                                            initializer="glorot_uniform")
        self.group_bias = self.add_weight(name="group_bias", shape=(self.groups * self.per_group,),
                                          initializer="zeros")

    def call(self, maps, training=False):
        batch = ops.shape(maps)[0]
        tokens = self.embed(ops.reshape(maps, (batch, -1, ops.shape(maps)[-1])))
        queries = ops.broadcast_to(ops.cast(self.queries, tokens.dtype)[None],
                                   (batch, self.groups, self.dim))
        with warnings.catch_warnings():
            # Keras warns of a softmax over one position: a 1x1 map has one token, which is fine.
            warnings.filterwarnings("ignore", message="You are using a softmax over axis")
            attended = self.attention(queries, tokens, tokens, training=training)
        x = self.norm1(queries + self.drop(attended, training=training))
        x = self.norm2(x + self.drop(self.project(self.hidden(x)), training=training))
        logits = ops.einsum("bkd,kdg->bkg", x, ops.cast(self.group_kernel, x.dtype))
        logits = ops.reshape(logits, (batch, self.groups * self.per_group))
        logits = logits + ops.cast(self.group_bias, x.dtype)
        return logits[:, : self.num_labels]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_labels)

    def get_config(self):
        return {**super().get_config(), "num_labels": self.num_labels, "groups": self.groups,
                "dim": self.dim, "heads": self.heads, "dropout": self.dropout}


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    """What a registered head needs.

    Attributes:
        name: its name (``head=``).
        spatial: it reads the feature map (else the pooled vector).
        outputs: ``"sigmoid"`` (``[batch, labels]``) or ``"softmax2"``
            (``[batch, labels, 2]``).
        options: the ``head_options`` it takes.
    """

    name: str
    spatial: bool
    outputs: str = "sigmoid"
    options: tuple = ()


HEADS = {
    "dense": HeadSpec("dense", spatial=False),
    "softmax2": HeadSpec("softmax2", spatial=False, outputs="softmax2"),
    "csra": HeadSpec("csra", spatial=True, options=("lam", "temperature")),
    "ml_decoder": HeadSpec("ml_decoder", spatial=True, options=("groups", "dim", "heads", "dropout")),
}
# Runs saved before the heads were named call the dense head "sigmoid".
ALIASES = {"sigmoid": "dense"}


def head_spec(head):
    """The ``HeadSpec`` of a head name (``"sigmoid"`` is ``"dense"``).

    Args:
        head: ``"dense"``, ``"softmax2"``, ``"csra"`` or ``"ml_decoder"``.

    Returns:
        A ``HeadSpec``.

    Example:
        >>> head_spec("csra").spatial, head_spec("sigmoid").name
        (True, 'dense')
    """
    name = ALIASES.get(head, head)
    if name not in HEADS:
        raise ValueError(f"head must be one of {', '.join(HEADS)}; got {head!r}")
    return HEADS[name]


def pooling_layer(pooling):
    """The global pooling layer named ``pooler`` (``"avg"`` or ``"max"``).

    Example:
        >>> pooling_layer("max").name
        'pooler'
    """
    pool = {"avg": layers.GlobalAveragePooling2D, "max": layers.GlobalMaxPooling2D}
    if pooling not in pool:
        raise ValueError(f"pooling must be 'avg' or 'max', got {pooling!r}")
    return pool[pooling](name="pooler")


def attach_head(maps, num_labels, head="dense", pooling="avg", dropout=0.2, hidden=None,
                head_options=None):
    """The head on a backbone's output map, ending in the layer ``predictions``.

    ``dense``/``softmax2``: ``pooler`` → ``head_dropout`` → optional
    ``head_hidden`` → ``predictions``. ``csra``/``ml_decoder``:
    ``head_dropout`` (on the map) → ``head_attention`` (logits) →
    ``predictions`` (sigmoid).

    Args:
        maps: the backbone's output tensor ``(batch, h, w, channels)``.
        num_labels: labels.
        head: a name of ``HEADS``.
        pooling: ``"avg"`` or ``"max"`` (pooled heads).
        dropout: dropout rate before the scoring layer.
        hidden: optional hidden width (pooled heads).
        head_options: arguments of ``CSRA`` / ``MLDecoder`` (``lam``, ``dim`` …).

    Returns:
        The output tensor.

    Example:
        >>> y = attach_head(keras.Input((3, 3, 8)), 4, "csra")
        >>> tuple(y.shape)
        (None, 4)
    """
    spec = head_spec(head)
    options = dict(head_options or {})
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        takes = f"takes {', '.join(spec.options)}" if spec.options else "takes no head options"
        raise ValueError(f"head {spec.name!r} {takes}; got {', '.join(unknown)}")
    if not spec.spatial:
        x = layers.Dropout(dropout, name="head_dropout")(pooling_layer(pooling)(maps))
        if hidden:
            x = layers.Dense(hidden, activation="relu", name="head_hidden")(x)
        if spec.outputs == "softmax2":
            x = layers.Dense(num_labels * 2, name="head_pairs")(x)
            x = layers.Reshape((num_labels, 2), name="head_reshape")(x)
            return layers.Softmax(axis=-1, name="predictions")(x)
        return layers.Dense(num_labels, activation="sigmoid", name="predictions")(x)
    if hidden:
        raise ValueError(f"head {spec.name!r} takes no hidden layer; hidden works with the dense head")
    layer = CSRA if spec.name == "csra" else MLDecoder
    scorer = layer(num_labels, name="head_attention", **options)
    x = layers.Dropout(dropout, name="head_dropout")(maps)
    return layers.Activation("sigmoid", name="predictions")(scorer(x))
