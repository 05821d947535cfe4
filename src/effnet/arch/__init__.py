"""Network descriptions, compound scaling and the analytic cost model. Pure Python: no torch."""
from .cost import Cost, cost
from .families import (
    EFFICIENTNET_B0,
    EFFICIENTNET_LITE0,
    EFFICIENTNET_VARIANTS,
    LITE_VARIANTS,
    MOBILENET_V1,
    MOBILENET_V2,
    RESNET50,
    get_network,
    list_networks,
    official_vs_formula,
)
from .rounding import make_divisible, round_filters, round_repeats
from .scale import ALPHA, BETA, GAMMA, Multipliers, compound_multipliers, implied_phi, scale
from .types import ACTIVATIONS, OPS, Block, Network, Stage, Stem

__all__ = [
    "ACTIVATIONS", "ALPHA", "BETA", "Block", "Cost", "EFFICIENTNET_B0", "EFFICIENTNET_LITE0",
    "EFFICIENTNET_VARIANTS", "GAMMA", "LITE_VARIANTS", "MOBILENET_V1", "MOBILENET_V2", "Multipliers",
    "Network", "OPS", "RESNET50", "Stage", "Stem", "compound_multipliers", "cost", "get_network",
    "implied_phi", "list_networks", "make_divisible", "official_vs_formula", "round_filters",
    "round_repeats", "scale",
]
