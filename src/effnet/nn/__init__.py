"""Modules built from descriptions."""
from .blocks import BLOCKS, NormOptions, make_block
from .layers import PADDINGS, Conv2dSame, ConvNormAct, DepthwiseConv2d, DropPath, SqueezeExcite, same_padding
from .model import EfficientNet, FeatureInfo, build, feature_levels, init_weights

__all__ = [
    "BLOCKS", "Conv2dSame", "ConvNormAct", "DepthwiseConv2d", "DropPath", "EfficientNet", "FeatureInfo", "NormOptions",
    "PADDINGS", "SqueezeExcite", "build", "feature_levels", "init_weights", "make_block", "same_padding",
]
