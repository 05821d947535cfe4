"""EfficientNetV2-S/M/L built by effnet beside torchvision's: parameters, multiply-adds against the
figure torchvision publishes with its weights, and the largest output difference with torchvision's
weights (random, BatchNorm statistics randomised) loaded through effnet's checkpoint conversion.

    python benchmarks/v2_vs_torchvision.py --out benchmarks/results/efficientnet-v2-vs-torchvision.json
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import effnet  # noqa: E402
from effnet.arch import cost, get_network  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--size", type=int, default=64, help="input size of the output comparison (default 64)")
    args = p.parse_args()
    rows = []
    for key in "sml":
        name = f"efficientnet_v2_{key}"
        torch.manual_seed(0)
        theirs = torchvision.models.get_model(name).eval()
        with torch.no_grad():
            for m in theirs.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.normal_(0, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.pth"
            torch.save(theirs.state_dict(), path)
            ours = effnet.create_model(name, pretrained=str(path)).eval()
        x = torch.randn(2, 3, args.size, args.size)
        with torch.no_grad():
            diff = (ours(x) - theirs(x)).abs().max().item()
        desc = get_network(name)
        c = cost(desc)
        rows.append({"model": name, "resolution": desc.resolution, "params": c.params,
                     "torchvision_params": sum(t.numel() for t in theirs.parameters()),
                     "gmacs": c.macs / 1e9,
                     "torchvision_published_gflops": torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"],
                     "max_abs_output_diff": diff, "compare_size": args.size})
        print(rows[-1], flush=True)
    Path(args.out).write_text(json.dumps({"kind": "effnet.v2-vs-torchvision", "torch": torch.__version__,
                                          "torchvision": torchvision.__version__, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
