"""``effnet info``: resolution, parameters and multiply-adds of networks, beside the paper's Table 2.

Only :mod:`effnet.arch` is used, so the command answers without importing torch.
"""
from __future__ import annotations

import argparse
from pathlib import Path

#: The paper's Table 2 (ImageNet): top-1 %, top-5 %, parameters (millions), FLOPs (billions of
#: multiply-adds), as published.
PAPER_TABLE2: dict[str, tuple[float, float, float, float]] = {
    "efficientnet_b0": (77.1, 93.3, 5.3, 0.39),
    "efficientnet_b1": (79.1, 94.4, 7.8, 0.70),
    "efficientnet_b2": (80.1, 94.9, 9.2, 1.0),
    "efficientnet_b3": (81.6, 95.7, 12, 1.8),
    "efficientnet_b4": (82.9, 96.4, 19, 4.2),
    "efficientnet_b5": (83.6, 96.7, 30, 9.9),
    "efficientnet_b6": (84.0, 96.8, 43, 19),
    "efficientnet_b7": (84.3, 97.0, 66, 37),
}


from .common import add_json, emit_json

def register(subparsers) -> None:
    p = subparsers.add_parser(
        "info", help="parameters and multiply-adds of networks, beside the paper's Table 2",
        description="For each network: input resolution, parameters and multiply-adds counted from its "
                    "description (FLOPs = multiply-adds, as in the paper), with the paper's Table 2 figures "
                    "beside them where published. NAME is a registered network or a description JSON file; "
                    "with no NAME every registered network is listed.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="registered network name or description .json path")
    p.add_argument("--all", action="store_true", help="list every registered network (the default without NAME)")
    p.add_argument("--resolution", type=int, default=None, metavar="PX",
                   help="count multiply-adds at this input size instead of each network's own")
    p.add_argument("--table", action="store_true", help="also print each network as the paper's Table 1")
    p.add_argument("--compare-formula", action="store_true",
                   help="print the phi that each official variant's width, depth and resolution imply under "
                        "d=alpha^phi, w=beta^phi, r=gamma^phi")
    p.add_argument("--alpha", type=float, default=1.2, help="depth coefficient for --compare-formula (default 1.2)")
    p.add_argument("--beta", type=float, default=1.1, help="width coefficient for --compare-formula (default 1.1)")
    p.add_argument("--gamma", type=float, default=1.15,
                   help="resolution coefficient for --compare-formula (default 1.15)")
    add_json(p, "the table")
    p.set_defaults(func=run)


def _resolve(name: str):
    from ..arch import Network, get_network

    if name.endswith(".json") or Path(name).is_file():
        return Network.load(name)
    return get_network(name)


def model_rows(names: list[str], resolution: int | None = None) -> list[dict]:
    """One record per network: name, resolution, params, macs, and Table 2's figures where known."""
    from ..arch import cost

    if resolution is not None and (isinstance(resolution, bool) or resolution < 1):
        raise ValueError(f"--resolution must be a positive integer, got {resolution}")
    rows = []
    for name in names:
        desc = _resolve(name)
        res = resolution or desc.resolution
        c = cost(desc, res)
        row = {"name": desc.name, "resolution": res, "params": c.params, "macs": c.macs,
               "blocks": desc.num_blocks, "activation": desc.activation, "dropout": desc.dropout}
        paper = PAPER_TABLE2.get(desc.name)
        if paper is not None and name == desc.name:
            top1, top5, params_m, flops_b = paper
            row.update(paper_top1=top1, paper_top5=top5, paper_params_m=params_m, paper_flops_b=flops_b)
        rows.append(row)
    return rows


def _fmt_opt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_rows(rows: list[dict]) -> str:
    header = ("model", "res", "params (M)", "FLOPs (B)", "paper params (M)", "paper FLOPs (B)", "paper top-1 %")
    body = [
        (r["name"], str(r["resolution"]), f"{r['params'] / 1e6:.2f}", f"{r['macs'] / 1e9:.3f}",
         _fmt_opt(r.get("paper_params_m"), "g"), _fmt_opt(r.get("paper_flops_b"), "g"),
         _fmt_opt(r.get("paper_top1"), ".1f"))
        for r in rows
    ]
    widths = [max(len(x[c]) for x in [header, *body]) for c in range(len(header))]
    lines = ["FLOPs = multiply-adds (as in the paper), counted from each description at the resolution shown; "
             "paper columns: Table 2 of Tan & Le (2019), ImageNet, at each variant's own resolution."]
    for j, row in enumerate([header, *body]):
        cells = [row[0].ljust(widths[0])] + [v.rjust(widths[c]) for c, v in enumerate(row) if c]
        lines.append("  ".join(cells))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def formula_rows(alpha: float, beta: float, gamma: float) -> list[dict]:
    from ..arch import compound_multipliers, official_vs_formula

    compound_multipliers(1.0, alpha, beta, gamma)  # validates the coefficients
    return official_vs_formula(alpha, beta, gamma)


def format_formula(rows: list[dict], alpha: float, beta: float, gamma: float) -> str:
    header = ("model", "width", "depth", "res", "phi(depth)", "phi(width)", "phi(res)")
    body = [(r["name"], f"{r['width']:g}", f"{r['depth']:g}", str(r["resolution"]),
             f"{r['phi_depth']:.2f}", f"{r['phi_width']:.2f}", f"{r['phi_resolution']:.2f}") for r in rows]
    widths = [max(len(x[c]) for x in [header, *body]) for c in range(len(header))]
    lines = [f"phi implied by each released variant under d=alpha^phi, w=beta^phi, r=gamma^phi "
             f"(alpha={alpha:g}, beta={beta:g}, gamma={gamma:g}, base resolution 224); "
             "equal columns would mean the table follows the formula."]
    for j, row in enumerate([header, *body]):
        lines.append("  ".join([row[0].ljust(widths[0])] + [v.rjust(widths[c]) for c, v in enumerate(row) if c]))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..arch import list_networks

    out: dict = {}
    text: list[str] = []
    want_models = bool(args.names) or args.all or not args.compare_formula
    if want_models:
        names = list(args.names)
        if args.all or not names:
            names += [n for n in list_networks() if n not in names]
        rows = model_rows(names, args.resolution)
        out["models"] = rows
        text.append(format_rows(rows))
        if args.table:
            for name in names:
                text.append("")
                text.append(_resolve(name).table(args.resolution))
    if args.compare_formula:
        frows = formula_rows(args.alpha, args.beta, args.gamma)
        out["formula"] = frows
        if text:
            text.append("")
        text.append(format_formula(frows, args.alpha, args.beta, args.gamma))

    # one list of records; an object holding both lists when both were asked for
    if not (args.json and emit_json(out if len(out) == 2 else next(iter(out.values())), args.json)):
        print("\n".join(text))
    return 0
