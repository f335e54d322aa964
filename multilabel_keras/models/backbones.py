"""One spec per ``keras.applications`` family: preprocessing, default input size, how its blocks group.

In the spirit of timm's ``default_cfgs`` and fastai's ``model_meta``: what
the library knows about a backbone family lives here, beside the models,
and both the builders (``transfer.py``) and the surgery that transfer
plans use (``surgery.py``) read it.
"""

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """What the library knows about one ``keras.applications`` module.

    Attributes:
        preprocess: the ``preprocess_layer`` mode its inputs need (``"tf"``,
            ``"torch"``, ``"caffe"``), or ``None`` when the network rescales
            0-255 pixels itself.
        default_size: its input side when none is given.
        blocks: how its layers group into blocks: ``"end_marker"`` (a block
            is named by the layer that ends it, InceptionV3's ``mixedN``) or
            ``"prefix"`` (layer-name prefixes: ``block13_``, ``block_16_``,
            ``conv5_block3_``, ``expanded_conv_10_``).
        head_after: the layer of a transfer model after which the head begins.
    """

    preprocess: object
    default_size: int = 224
    blocks: str = "prefix"
    head_after: str = "pooler"


# Keyed by the keras.applications module that defines the constructor.
FAMILIES = {
    "convnext": BackboneSpec(None),
    "densenet": BackboneSpec("torch"),
    "efficientnet": BackboneSpec(None),
    "efficientnet_v2": BackboneSpec(None),
    "inception_resnet_v2": BackboneSpec("tf", 299),
    "inception_v3": BackboneSpec("tf", 299, blocks="end_marker"),
    "mobilenet": BackboneSpec("tf"),
    "mobilenet_v2": BackboneSpec("tf"),
    "mobilenet_v3": BackboneSpec(None),
    "nasnet": BackboneSpec("tf"),
    "resnet": BackboneSpec("caffe"),
    "resnet_v2": BackboneSpec("tf"),
    "vgg16": BackboneSpec("caffe"),
    "vgg19": BackboneSpec("caffe"),
    "xception": BackboneSpec("tf", 299),
}
# Members of a family whose input size differs from the family's.
DEFAULT_SIZES = {"nasnetlarge": 331}

# Layer-name prefixes that group a "prefix" family into blocks, tried in order:
# InceptionResNetV2 repeats (block8_10_*), numbered blocks (block13_*, block_16_*,
# block7a_*, conv5_block3_*, ..._stage_3_block_2_*) and MobileNetV3's expanded_conv_10_*.
BLOCK_PREFIXES = (
    re.compile(r"^(block\d+_\d+)_"),
    re.compile(r"^(.*?block_?\d+[a-z]?)(?:_|$)"),
    re.compile(r"^(expanded_conv(?:_\d+)?)_"),
)
# An "end_marker" family names a block by the concatenation that ends it (mixed9).
END_MARKER = re.compile(r"^mixed\d+$")
