"""``effnet predict``: top-k classes of image files."""
from __future__ import annotations

import argparse
import sys


from .common import add_json, add_pretrained, emit_json

def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="top-k classes of image files",
                              description="Classify image files with a model name, description JSON or checkpoint. "
                                          "Images are prepared with the preprocessing stored with the model.")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--model", required=True, help="model name, description .json, effnet checkpoint, run folder, or a file written "
                                                  "by `effnet export` (.onnx, or OpenVINO .xml): it carries its "
                                                  "preprocessing and class names")
    add_pretrained(p)
    p.add_argument("--top-k", type=int, default=5, help="classes shown per image")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass")
    p.add_argument("--img-size", type=int, default=None, help="input size (default: the model's own)")
    add_json(p, "the predictions")
    p.add_argument("--path", default=None, metavar="PATH",
                   help="how to run the model: auto (the path `effnet bench --choose` cached for this model, batch size "
                        "and size on this machine, or measured once now), eager (PyTorch, BatchNorm folded, "
                        "channels_last: the default), onnxruntime (fp32), int8 (ONNX Runtime INT8, calibrated on random "
                        "crops of the given images), bf16 (PyTorch autocast; CPUs with AVX512-BF16 or AMX), openvino "
                        "(OpenVINO fp32), openvino_bf16 (OpenVINO in bf16; CPUs with AVX512-BF16 or AMX), openvino_int8 "
                        "(OpenVINO INT8 by NNCF, calibrated like int8; the 'openvino' extra)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..checks import check_int, optional
    from ..weights.meta import MIN_IMAGE_SIZE
    from ..deploy.loading import load_model_arg
    from ..deploy.predict import predict_files

    optional(check_int, "--img-size", args.img_size, MIN_IMAGE_SIZE)
    model = load_model_arg(args.model, pretrained=args.pretrained, exported=True)
    if args.path is not None and hasattr(model, "engine"):
        raise ValueError(f"--path does not apply to an exported model: {args.model} runs in {model.engine}")
    if args.path is None:
        result = predict_files(model, args.images, top_k=args.top_k, batch_size=args.batch_size,
                               img_size=args.img_size)
    else:
        result = _predict_on_path(args, model)
    for line in result.warnings:
        print(f"effnet predict: warning: {line}", file=sys.stderr)
    for bad in result.failed:
        print(f"effnet predict: {bad.error}", file=sys.stderr)
    ok = [p for p in result.predictions if p.error is None]
    payload = {"model": str(args.model), "img_size": result.img_size,
               "predictions": [p.to_dict() for p in result.predictions]}
    if not (args.json and emit_json(payload, args.json)):
        for p in ok:
            print(p.path)
            for rank, (label, prob) in enumerate(zip(p.labels, p.probabilities), 1):
                print(f"  {rank}. {prob:7.2%}  {label}")
    if not ok:
        return 2
    return 1 if result.failed else 0


def _predict_on_path(args: argparse.Namespace, model):
    import tempfile
    from pathlib import Path

    from ..deploy.paths import INT8_PATHS, PathCache, build_runner, cached_or_measured, model_identity
    from .paths import PREDICT_PATHS, check_path
    from ..deploy.predict import image_views, predict_files
    from ..weights.meta import input_size

    path = check_path(args.path, ["auto", *PREDICT_PATHS])
    size = input_size(model, args.img_size)
    candidate = PREDICT_PATHS.get(path)
    if path == "auto":
        cache = PathCache()
        if cache.warning:
            print(f"effnet predict: warning: {cache.warning}", file=sys.stderr)
        if cache.get(model_identity(args.model, args.pretrained), args.batch_size, size) is None:
            print(f"effnet predict: no cached path for this model at batch {args.batch_size}, {size}px on this "
                  "machine; measuring the paths once and caching the choice", file=sys.stderr, flush=True)
        candidate, _ = cached_or_measured(model, model_identity(args.model, args.pretrained), args.batch_size, size,
                                          cache)
        print(f"effnet predict: path {candidate} (the choice for this machine)", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        calib = image_views(model, args.images, size) if candidate in INT8_PATHS else None
        runner = build_runner(model, candidate, Path(tmp), calib)
        return predict_files(model, args.images, top_k=args.top_k, batch_size=args.batch_size, img_size=args.img_size,
                             runner=runner)
