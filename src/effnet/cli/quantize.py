"""``effnet quantize``: INT8 ONNX Runtime static quantisation with an accuracy and speed report."""
from __future__ import annotations

import argparse


from .common import add_json, add_pretrained, emit_json

def register(subparsers) -> None:
    p = subparsers.add_parser("quantize", help="INT8 static quantisation (ONNX Runtime) with accuracy and speed report",
                              description="Export the model to ONNX, quantise it to INT8 (per-channel weights, "
                                          "activations calibrated on the training split; the first convolutions, "
                                          "at stride 4 or finer, stay fp32) and report the change in "
                                          "held-out top-1 accuracy and the speed-up over the fp32 ONNX Runtime model.")
    p.add_argument("model", metavar="MODEL", help="model name, description .json, effnet checkpoint or run folder "
                                                   "(fine-tuned on the data for a meaningful accuracy)")
    add_pretrained(p)
    p.add_argument("--data", required=True, help="'elpv', 'fashion-mnist', 'synthetic', an image folder or a .csv list")
    p.add_argument("--out", required=True, metavar="FILE.onnx")
    p.add_argument("--calib-images", type=int, default=200, help="training images used for calibration (default 200)")
    p.add_argument("--calibration", choices=("percentile", "minmax", "entropy"), default=None,
                   help="activation range calibration (default percentile; minmax with --qat-epochs)")
    p.add_argument("--qat-epochs", type=float, default=0.0,
                   help="first fine-tune a copy this many epochs with INT8 rounding simulated (quantisation-"
                        "aware training; fractions allowed; default 0: post-training quantisation only)")
    p.add_argument("--qat-lr", type=float, default=2e-5, help="learning rate of that fine-tuning (default 2e-5)")
    p.add_argument("--img-size", type=int, default=None, help="input size (default: the model's own)")
    p.add_argument("--eval-split", choices=("val", "test"), default="test", help="held-out split the accuracy change is measured on")
    p.add_argument("--eval-limit", type=int, default=None, help="evaluate on at most this many held-out images")
    p.add_argument("--limit-per-class", type=int, default=None, help="use at most this many images per class")
    p.add_argument("--repeats", type=int, default=30, help="timed runs for the speed comparison")
    p.add_argument("--seed", type=int, default=0, help="split seed (use the one the model was trained with)")
    add_json(p, "the report")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data import DataSpec, load_data
    from ..deploy.loading import load_model_arg
    from ..deploy.quantize import quantize_model
    from ..weights.meta import input_size

    if args.qat_epochs < 0 or args.qat_lr <= 0:
        raise ValueError(f"--qat-epochs must be >= 0 and --qat-lr > 0, got {args.qat_epochs:g} and {args.qat_lr:g}")
    if not str(args.out).endswith(".onnx"):
        raise ValueError(f"--out must name a .onnx file, got {args.out}")
    model = load_model_arg(args.model, pretrained=args.pretrained)
    prep = getattr(model, "preprocessing", None)
    size = input_size(model, args.img_size)
    splits = load_data(DataSpec(args.data, seed=args.seed, limit_per_class=args.limit_per_class), img_size=size,
                       preprocessing=prep, augment="autoaugment")
    report = quantize_model(model, splits, args.out, calib_images=args.calib_images, img_size=size,
                            eval_split=args.eval_split, eval_limit=args.eval_limit, repeats=args.repeats,
                            method=args.calibration, qat_epochs=args.qat_epochs, qat_lr=args.qat_lr)
    if not (args.json and emit_json(report.to_dict(), args.json)):
        print(report.text())
    return 0
