"""effnet: the complete EfficientNet system on PyTorch."""
from .arch import Network, Stage, Stem, cost, get_network, list_networks, scale
from .factory import create_model
from .nn import EfficientNet, build

__version__ = "0.1.0"
__all__ = ["EfficientNet", "Network", "Stage", "Stem", "build", "cost", "create_model", "get_network",
           "list_networks", "scale", "__version__"]
