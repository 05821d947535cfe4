"""``effnet export``: ONNX or TorchScript with dynamic batch and image size, checked against PyTorch."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export to ONNX or TorchScript (BatchNorm folded, dynamic shapes)",
                              description="Export a model with BatchNorm folded into the convolutions and dynamic "
                                          "batch, height and width, then check the exported outputs against PyTorch "
                                          "at three input sizes (max abs difference <= 1e-4).")
    p.add_argument("model", metavar="MODEL", help="model name, description .json, or effnet checkpoint")
    p.add_argument("--pretrained", action="store_true", help="load effnet's offline ImageNet weights for a model name")
    p.add_argument("--format", choices=("onnx", "torchscript"), required=True)
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--no-verify", action="store_true", help="skip the check against PyTorch")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..deploy.export import export_onnx, export_torchscript, verify_onnx, verify_torchscript
    from ..deploy.loading import load_model_arg

    model = load_model_arg(args.model, pretrained=args.pretrained)
    if args.format == "onnx":
        path = export_onnx(model, args.out, opset=args.opset)
        runner = "ONNX Runtime"
        verify = verify_onnx
    else:
        path = export_torchscript(model, args.out)
        runner = "TorchScript"
        verify = verify_torchscript
    print(f"wrote {path} ({args.format}, BatchNorm folded, dynamic batch/height/width)")
    if args.no_verify:
        return 0
    checks = verify(model, path)
    print(f"check against PyTorch eager ({runner}, random inputs):")
    for c in checks:
        print(c.line())
    if not all(c.ok for c in checks):
        print("export check failed: outputs differ from PyTorch")
        return 1
    return 0
