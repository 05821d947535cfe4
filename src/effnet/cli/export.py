"""``effnet export``: ONNX or TorchScript with dynamic batch and image size, checked against PyTorch."""
from __future__ import annotations

import argparse


from .common import add_pretrained

def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export to ONNX, TorchScript or OpenVINO IR (BatchNorm folded, dynamic shapes)",
                              description="Export a model with BatchNorm folded into the convolutions and dynamic "
                                          "batch, height and width, then check the exported outputs against PyTorch "
                                          "at three input sizes (max abs difference <= 1e-4).")
    p.add_argument("model", metavar="MODEL", help="model name, description .json, effnet checkpoint or run folder")
    add_pretrained(p)
    p.add_argument("--format", choices=("onnx", "torchscript", "openvino"), required=True,
                   help="openvino: IR, --out NAME.xml with NAME.bin beside it (the 'openvino' extra)")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--no-verify", action="store_true", help="skip the check against PyTorch")
    p.add_argument("--path", default=None, metavar="PATH",
                   help="fp32, int8 (ONNX Runtime static INT8), openvino_int8 (OpenVINO IR quantised by NNCF; "
                        "--format openvino), bf16 (refused: no bf16 ONNX kernels on CPUs; OpenVINO runs the fp32 "
                        "export in bf16) or auto (the path `effnet bench --choose` cached for batch 1 on this machine, "
                        "or measured once now). INT8 is calibrated on 300 of --data's training images or augmented "
                        "views of scikit-image's sample photos, and keeps as few first layers fp32 as agreement "
                        "with fp32 allows (measured)")
    p.add_argument("--data", default=None, help="with an INT8 --path: calibrate on this data's training images "
                                                 "('elpv', 'fashion-mnist', a folder, a .csv)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..deploy.export import export_onnx, export_torchscript, verify_onnx, verify_torchscript
    from ..deploy.loading import load_model_arg

    model = load_model_arg(args.model, pretrained=args.pretrained)
    if args.path is not None:
        return _export_path(args, model)
    if args.format == "onnx":
        path = export_onnx(model, args.out, opset=args.opset)
        runner = "ONNX Runtime"
        verify = verify_onnx
    elif args.format == "openvino":
        from ..deploy.export import export_openvino, verify_openvino

        path = export_openvino(model, args.out, opset=args.opset)
        runner = "OpenVINO, fp32"
        verify = verify_openvino
    else:
        path = export_torchscript(model, args.out)
        runner = "TorchScript"
        verify = verify_torchscript
    print(f"wrote {path} ({args.format}, BatchNorm folded, dynamic batch/height/width)")
    if args.format == "onnx":
        print("  it carries the model's name, description, preprocessing and class names in its metadata_props "
              "(effnet.model, effnet.description, effnet.preprocessing); `effnet predict IMAGE --model FILE` runs it alone")
    elif args.format == "openvino":
        print("  it carries the model's name, description, preprocessing and class names in its rt_info (effnet/...); "
              "`effnet predict IMAGE --model FILE` runs it alone")
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


def _export_path(args: argparse.Namespace, model) -> int:
    import sys

    from ..deploy.paths import PathCache, cached_or_measured, model_identity
    from ..deploy.runtime import BF16_UNSUPPORTED, bf16_supported
    from .paths import EXPORT_OF, RUN_WITH, check_path

    path = check_path(args.path, ("auto", "fp32", "int8", "openvino_int8", "bf16"))
    if args.format == "torchscript" and path != "fp32":
        raise ValueError(f"--path {path} exports ONNX or OpenVINO IR; got --format torchscript")
    from ..weights.meta import input_size

    size = input_size(model)
    if path == "auto":
        cache = PathCache()
        if cache.warning:
            print(f"effnet export: warning: {cache.warning}", file=sys.stderr)
        ident = model_identity(args.model, args.pretrained)
        if cache.get(ident, 1, size) is None:
            print(f"effnet export: no cached path for this model at batch 1, {size}px on this machine; measuring "
                  "the paths once and caching the choice", file=sys.stderr, flush=True)
        chosen, _ = cached_or_measured(model, ident, 1, size, cache)
        if args.format == "openvino":  # OpenVINO IR: INT8 when that was the choice, else the fp32 graph
            path = "openvino_int8" if chosen == "openvino_int8" else "fp32"
        else:  # ONNX: the OpenVINO INT8 choice is an IR, so the fp32 graph (and how to get the IR)
            path = EXPORT_OF[chosen] if chosen != "openvino_int8" else "fp32"
        print(f"chosen path on this machine: {chosen} -> {path} {'OpenVINO IR' if args.format == 'openvino' else 'ONNX'}")
        if chosen in RUN_WITH and not (chosen == "openvino_int8" and path == "openvino_int8"):
            print(f"it runs fastest in {RUN_WITH[chosen].replace('FILE', repr(args.out))}")
    if path == "openvino_int8" and args.format != "openvino":
        raise ValueError("--path openvino_int8 writes OpenVINO IR: use --format openvino --out NAME.xml")
    if path in ("int8", "bf16") and args.format != "onnx":
        raise ValueError(f"--path {path} exports ONNX; got --format {args.format}")
    if path == "bf16":
        raise ValueError(BF16_UNSUPPORTED if not bf16_supported() else
                         "ONNX Runtime's CPU kernels have no bf16 convolutions; export fp32 and run it with OpenVINO "
                         "in bf16 (`effnet predict --path openvino_bf16`)")
    if path == "fp32":
        args.path = None
        return run(args)
    args.path = path
    return _export_int8(args, model, size)


def _export_int8(args: argparse.Namespace, model, size: int) -> int:
    import os
    import shutil
    import tempfile
    from pathlib import Path

    import numpy as np

    from ..deploy.paths import (Tolerance, build_runner, int8_kept, labelled_arrays, ladder_text, ladder_views,
                                photo_views, predict_top1)

    if args.data:
        (held, labels), calib, ladder = labelled_arrays(args.data, model, size)
        what = f"{len(calib)} training images of {args.data}"
    else:
        calib, held, labels = photo_views(model, size, calibration=True), photo_views(model, size), None
        ladder = ladder_views(model, size)
        what = f"{len(calib)} augmented views of scikit-image's sample photos"
    out = Path(args.out)
    if args.path == "openvino_int8" and out.suffix != ".xml":
        raise ValueError(f"OpenVINO IR is written as NAME.xml (with NAME.bin beside it); got {out.name}")
    with tempfile.TemporaryDirectory() as tmp:
        target = Tolerance().ladder_target(labelled=bool(args.data))  # the chooser's INT8 tolerance
        run = build_runner(model, args.path, Path(tmp), calib, validation=ladder, target=target)
        made = Path(run.int8["file"])
        if args.path == "int8":
            from ..deploy.exported import add_onnx_metadata, deployment_metadata

            add_onnx_metadata(made, deployment_metadata(model))
        out.parent.mkdir(parents=True, exist_ok=True)
        if args.path == "openvino_int8":  # the weights first, then the graph that names them
            shutil.copyfile(made.with_suffix(".bin"), out.with_suffix(".bin"))
        staged = out.with_name(f".{out.name}.partial")
        shutil.copyfile(made, staged)
        os.replace(staged, out)
        kept = int8_kept(run.int8)
        engine = "OpenVINO IR, INT8 by NNCF" if args.path == "openvino_int8" else "ONNX INT8, static QDQ"
        print(f"wrote {out} ({engine}, calibrated on {what}; {kept}, measured on {run.int8['ladder_images']} other "
              f"images: {ladder_text(run.int8)}; any batch size and resolution)")
        if args.no_verify:
            return 0
        ref = predict_top1(build_runner(model, "eager", Path(tmp)), held)
        got = predict_top1(run, held)
    agree = float(np.mean(ref == got))
    line = f"check against PyTorch eager fp32 ({len(ref)} images): top-1 agreement {100 * agree:.1f}%"
    if labels is not None:
        line += f"; top-1 fp32 {100 * np.mean(ref == labels):.2f}%, INT8 {100 * np.mean(got == labels):.2f}%"
    print(line)
    return 0
