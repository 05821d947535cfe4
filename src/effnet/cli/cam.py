"""``effnet cam``: class activation maps of several models on the same images (paper Figure 7)."""
from __future__ import annotations

import argparse


from .common import add_pretrained, comma_list

def register(subparsers) -> None:
    p = subparsers.add_parser("cam", help="class activation maps: one row per model, one column per image",
                              description="Overlay CAM or Grad-CAM heat maps (last feature map, predicted class) "
                                          "on images, one row per model, to compare e.g. B0 with its depth-, width-, "
                                          "resolution- and compound-scaled versions.")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--models", type=comma_list, required=True, metavar="MODEL,...",
                   help="comma-separated model names, description .json files, checkpoints or run folders: one "
                        "row each")
    p.add_argument("--labels", type=comma_list, default=None, metavar="TEXT,...",
                   help="comma-separated row labels, one per model (default: the model arguments)")
    add_pretrained(p)
    p.add_argument("--method", choices=("cam", "gradcam"), default="cam", help="class activation map or its gradient-weighted form")
    p.add_argument("--out", required=True, metavar="FILE.png")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..analysis.cam import cam_figure

    if args.labels and len(args.labels) != len(args.models):
        raise ValueError(f"give one --labels item per --models item ({len(args.models)}), got {len(args.labels)}")
    path = cam_figure(args.images, args.models, args.out, method=args.method, labels=args.labels,
                      pretrained=args.pretrained)
    print(f"wrote {path} ({len(args.models)} model(s) x {len(args.images)} image(s), {args.method})")
    return 0
