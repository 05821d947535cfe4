"""``effnet scale``: step 2 of compound scaling, one description per phi from fixed coefficients."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import load_base, parse_phis


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "scale", help="scale a base network by phi with fixed alpha, beta, gamma (writes description JSONs)",
        description="Step 2 of compound scaling: depth alpha^phi, width beta^phi, resolution gamma^phi for each phi. "
                    "Writes DIR/phi<phi>.json per phi (train one with 'effnet train --model DIR/phi3.json') and "
                    "prints each network's cost. FLOPs are multiply-adds.",
    )
    p.add_argument("--base", default="efficientnet_b0", help="registered network name or description JSON")
    add_coefficient_arguments(p)
    p.add_argument("--phi", default="0,1,2,3", help="comma-separated phi values (default 0,1,2,3); negative values scale the base down "
                   "(write them as --phi=-2,-1)")
    p.add_argument("--img-size", type=int, default=None, metavar="PX",
                   help="base resolution to scale (default: the base description's)")
    p.add_argument("--out", default=None, metavar="DIR", help="write DIR/phi<phi>.json (default: print only)")
    p.set_defaults(func=run)


def coefficients_from(path: str) -> tuple[float, float, float]:
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as exc:
        raise OSError(f"cannot read {p}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p} is not valid JSON: {exc}") from None
    best = data.get("best") if isinstance(data, dict) else None
    if not isinstance(best, dict) or not all(k in best for k in ("alpha", "beta", "gamma")):
        raise ValueError(f"{p} has no best alpha, beta, gamma (expected a grid search's best.json)")
    return float(best["alpha"]), float(best["beta"]), float(best["gamma"])


def add_coefficient_arguments(p: argparse.ArgumentParser) -> None:
    """``--alpha/--beta/--gamma`` or ``--coefficients best.json``; read back with :func:`coefficients_arg`."""
    p.add_argument("--alpha", type=float, default=None, help="depth coefficient (default 1.2, the paper's)")
    p.add_argument("--beta", type=float, default=None, help="width coefficient (default 1.1)")
    p.add_argument("--gamma", type=float, default=None, help="resolution coefficient (default 1.15)")
    p.add_argument("--coefficients", metavar="BEST_JSON", default=None,
                   help="take alpha, beta, gamma from a grid search's best.json")


def coefficients_arg(args: argparse.Namespace) -> tuple[float, float, float]:
    """alpha, beta, gamma from ``--coefficients best.json`` or ``--alpha/--beta/--gamma`` (paper's by default)."""
    from ..arch import ALPHA, BETA, GAMMA

    if args.coefficients:
        if any(v is not None for v in (args.alpha, args.beta, args.gamma)):
            raise ValueError("give either --coefficients or --alpha/--beta/--gamma, not both")
        return coefficients_from(args.coefficients)
    return (ALPHA if args.alpha is None else args.alpha, BETA if args.beta is None else args.beta,
            GAMMA if args.gamma is None else args.gamma)


def run(args: argparse.Namespace) -> int:
    from ..arch import cost, scale
    from ..fsutil import atomic_write_text
    base = load_base(args.base)
    alpha, beta, gamma = coefficients_arg(args)
    phis = parse_phis(args.phi)
    if args.img_size is not None and args.img_size < 1:
        raise ValueError(f"--img-size must be a positive integer, got {args.img_size}")
    base_res = args.img_size or base.resolution
    rows = []
    base_macs = cost(base, base_res).macs
    for phi in phis:
        res = max(1, int(round(base_res * gamma**phi)))
        desc = scale(base, phi, alpha, beta, gamma, image_size=res, name=f"{base.name}-phi{phi:g}")
        c = cost(desc, res)
        path = None
        if args.out:
            path = Path(args.out) / f"phi{phi:g}.json"
            atomic_write_text(path, desc.to_json() + "\n")
        rows.append((f"{phi:g}", f"{alpha**phi:.3f}", f"{beta**phi:.3f}", str(res), str(desc.num_blocks),
                     str(desc.num_features), f"{c.params / 1e6:.2f}", f"{c.macs / 1e6:.1f}", f"{c.macs / base_macs:.2f}",
                     str(path) if path else ""))
    print(f"{base.name} scaled with alpha {alpha:g}, beta {beta:g}, gamma {gamma:g} "
          f"(alpha*beta^2*gamma^2 = {alpha * beta**2 * gamma**2:.3f}) from {base_res} px; "
          f"FLOPs are multiply-adds from the analytic cost model, {base.num_classes} classes")
    header = ("phi", "depth", "width", "px", "blocks", "features", "params (M)", "FLOPs (M)", "x base", "file")
    if not args.out:
        header, rows = header[:-1], [r[:-1] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths)).rstrip())
    for r in rows:
        print("  ".join(v.rjust(w) for v, w in zip(r, widths)).rstrip())
    return 0
