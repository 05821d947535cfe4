"""Quantisation-aware fine-tuning: teach a model the INT8 rounding ONNX Runtime will apply.

Post-training quantisation (:func:`effnet.deploy.quantize.quantize_onnx`) rounds the convolutions'
weights (all but the first, high-resolution ones) to int8 (one scale per output channel) and the
activations between them to uint8 (one range per tensor). A network whose decisions move under that
much noise loses accuracy: with every convolution quantised, an EfficientNet-B0 fine-tuned on ELPV
lost 2 to 4 points whatever the calibration. This fine-tunes the BatchNorm-folded network with the
same rounding simulated in its forward pass (``torch.fake_quantize_per_channel_affine`` on the
weights, ``torch.fake_quantize_per_tensor_affine`` on convolution, activation and block outputs,
straight-through gradients), so the weights settle where rounding costs little. The result is an
ordinary float model, which ONNX Runtime then calibrates and quantises as usual.

PyTorch's own QAT flows (``torch.ao.quantization.prepare_qat``) end in PyTorch's quantised modules,
not in an ONNX Runtime graph; simulating ONNX Runtime's scheme directly needs only the two
fake-quantise operators and some hooks.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.utils.data import DataLoader, Dataset

from ..nn.blocks import Residual
from ..nn.layers import SqueezeExcite

#: Modules whose outputs ONNX Runtime quantises (it quantises each operator's output).
_ACTIVATIONS = (nn.SiLU, nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Sigmoid, nn.AdaptiveAvgPool2d)


class ActivationFakeQuant(nn.Module):
    """uint8 rounding of a tensor with an asymmetric range (always containing 0), tracked as a
    moving average of batch minima and maxima while training, fixed in eval mode."""

    def __init__(self, momentum: float = 0.1) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.zeros(()))
        self.register_buffer("seen", torch.zeros((), dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                lo, hi = x.detach().min().float(), x.detach().max().float()
                if not bool(self.seen):
                    self.lo.copy_(lo)
                    self.hi.copy_(hi)
                    self.seen.fill_(True)
                else:
                    self.lo.lerp_(lo, self.momentum)
                    self.hi.lerp_(hi, self.momentum)
        lo, hi = self.lo.clamp(max=0.0), self.hi.clamp(min=0.0)
        scale = ((hi - lo) / 255.0).clamp(min=1e-8)
        zero_point = torch.round(-lo / scale).clamp(0, 255).to(torch.int32)
        return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, 0, 255)


class WeightFakeQuant(nn.Module):
    """Symmetric int8 rounding of a weight, one scale per output channel (a parametrisation)."""

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        scale = (w.detach().abs().amax(dim=tuple(range(1, w.dim()))) / 127.0).clamp(min=1e-8)
        zero_point = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
        return torch.fake_quantize_per_channel_affine(w, scale, zero_point, 0, -128, 127)


class _Simulation:
    """The hooks and parametrisations that make a model compute as its INT8 version would."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.handles = []
        self.weighted: list[nn.Module] = []
        self.observers = nn.ModuleList()
        self._hook_input(model)
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                parametrize.register_parametrization(module, "weight", WeightFakeQuant())
                self.weighted.append(module)
                self._hook_output(module)
            elif isinstance(module, (*_ACTIVATIONS, Residual, SqueezeExcite)):
                self._hook_output(module)

    def _observer(self) -> ActivationFakeQuant:
        obs = ActivationFakeQuant()
        self.observers.append(obs)
        return obs

    def _hook_input(self, model: nn.Module) -> None:
        obs = self._observer()
        self.handles.append(model.register_forward_pre_hook(lambda _m, args: (obs(args[0]), *args[1:])))

    def _hook_output(self, module: nn.Module) -> None:
        obs = self._observer()
        self.handles.append(module.register_forward_hook(lambda _m, _args, out: obs(out)))

    def train(self, mode: bool) -> None:
        self.model.train(mode)
        self.observers.train(mode)

    def remove(self) -> None:
        """Back to a plain float model, keeping the fine-tuned (unrounded) weights."""
        for h in self.handles:
            h.remove()
        for module in self.weighted:
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)


def qat_finetune(model: nn.Module, train: Dataset, epochs: float = 1.0, lr: float = 2e-5,
                 batch_size: int = 32, seed: int = 0, progress: bool = True) -> nn.Module:
    """A BatchNorm-folded copy of ``model`` fine-tuned for ``epochs`` (fractions allowed) on
    ``train`` with INT8 rounding simulated (AdamW, cosine decay from ``lr``); returned in eval
    mode as a float model. ``progress`` shows a bar on a terminal."""
    if not hasattr(model, "optimize_for_inference"):
        raise ValueError(f"quantisation-aware fine-tuning takes an effnet model, got {type(model).__name__}")
    if not epochs > 0:
        raise ValueError(f"QAT epochs must be positive, got {epochs!r}")
    if not lr > 0:
        raise ValueError(f"QAT learning rate must be positive, got {lr!r}")
    if len(train) == 0:
        raise ValueError("the training set is empty")
    folded = model.optimize_for_inference(channels_last=False)
    for p in folded.parameters():
        p.requires_grad_(True)
    sim = _Simulation(folded)
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, generator=gen, num_workers=0, drop_last=len(train) > batch_size)
    steps = max(1, round(epochs * len(loader)))
    opt = torch.optim.AdamW([p for p in folded.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    from tqdm.auto import tqdm

    bar = tqdm(total=steps, desc="quantisation-aware fine-tuning", unit="step", leave=False,
               disable=None if progress else True)  # None: shown on a terminal only
    sim.train(True)
    step = 0
    try:
        while step < steps:
            for x, y in loader:
                loss = F.cross_entropy(folded(x), torch.as_tensor(y))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
                if step >= steps:
                    break
    finally:
        bar.close()
        sim.train(False)
        sim.remove()
    folded.eval()
    for p in folded.parameters():
        p.requires_grad_(False)
    return folded
