"""The paths and peers ``effnet bench`` offers, torch-free so that the command line lists them
without importing torch (``effnet.analysis.bench`` and ``effnet.deploy.peers`` use them)."""

#: Our paths, in the order they run.
PATHS = ("eager", "channels_last", "bf16", "compile", "onnxruntime", "int8", "openvino_int8")
#: Paths only ``effnet bench --choose`` runs (``effnet.deploy.paths``): OpenVINO fp32 and bf16.
CHOOSE_ONLY_PATHS = ("openvino", "openvino_bf16")
#: Peer implementations; each runs these of the paths.
PEERS = ("torchvision", "timm")
