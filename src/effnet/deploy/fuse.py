"""Fold BatchNorm into the convolution before it, for inference and export."""
from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..nn import ConvNormAct


def fuse_batchnorm(model: nn.Module, inplace: bool = False) -> nn.Module:
    """An eval-mode copy of ``model`` with every ``ConvNormAct``'s ``conv`` + ``bn`` made one conv.

    The fused convolution gets a bias; ``bn`` becomes ``nn.Identity`` so module names (and a
    later ``state_dict`` of the fused model) keep their layout. ``torch.nn.utils.fusion`` does the
    arithmetic and keeps the convolution's class (so TF 'same' padding survives fusion).
    Attributes such as ``preprocessing`` travel with the copy.
    """
    fused = model if inplace else copy.deepcopy(model)
    fused.eval()
    for module in fused.modules():
        if isinstance(module, ConvNormAct) and isinstance(getattr(module, "bn", None), nn.BatchNorm2d):
            module.conv = fuse_conv_bn_eval(module.conv, module.bn)
            module.bn = nn.Identity()
    return fused
