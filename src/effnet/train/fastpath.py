"""The fastest training settings for the machine at hand.

:func:`choose_training_settings` picks memory layout, mixed precision, compilation and threads
from what this CPU (or GPU) has, and says why. :meth:`FastSettings.config_overrides` gives them
as :class:`effnet.train.TrainConfig` keys; a caller's explicit settings should win over them.

The rules and the measurements behind them (``benchmarks/results/train-cpu.md``):

* channels_last: on CPU oneDNN runs the depthwise and 1x1 convolutions of an EfficientNet
  fastest in NHWC; B0's training step was 1.2x to 1.5x faster at 64 px and 1.4x at 224 px.
* bf16 autocast: only where the CPU computes in bfloat16 natively (AVX512-BF16 or AMX). Elsewhere
  PyTorch emulates it and every cast costs time, so fp32 is faster. Even with AVX512-BF16, eager
  autocast trains B0 (batch 32, channels_last) slower than fp32 up to 160 px and faster from
  192 px on a 2-core AMD EPYC (Zen 5), interleaved: 0.64x the fp32 step at 64 px, 0.81x at 128,
  0.72x at 160; 1.23x torchvision's fp32 channels_last step at 192 px and 1.40x at 224. The casts
  outweigh bf16's arithmetic until the activations outgrow the caches. So bf16 is chosen from
  ``BF16_MIN_PIXELS`` up.
* torch.compile: not chosen for CPU training. Compiling B0's training step took 753 s on this
  project's 2-core machine (load average 10) against about 1 s per eager step, more than a whole
  study trial; on a GPU it is left to the caller too, as it would be recompiled for every network
  a search builds.
* On a GPU (``benchmarks/results/gpu-h100-b0.md``, one H100, B0 at 224 px, batch 128, eager):
  channels_last trained 1.6x faster than NCHW in fp32 for effnet, torchvision and timm alike; bf16
  autocast halved the activation memory, and its step time against fp32 channels_last spread by
  30-60% over rounds (the eager step is bound by kernel launches), so no speed is claimed for it.
* threads: one intra-op thread per CPU this process may run on, unless ``OMP_NUM_THREADS`` says
  otherwise (a study that runs one worker per core sets it to 1).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from .. import machine
from ..checks import check_int

#: Smallest image side at which bf16 autocast is chosen on a CPU with native bfloat16.
BF16_MIN_PIXELS = 192


@dataclass(frozen=True)
class FastSettings:
    """Training settings and the reason for each."""

    device: str
    channels_last: bool
    amp: str  # a TrainConfig amp mode: "none", "bf16", "fp16" or "auto"
    compile: bool
    threads: int | None  # None: leave torch's (or OMP_NUM_THREADS's) setting
    reasons: tuple[str, ...] = field(default=())

    def config_overrides(self) -> dict[str, Any]:
        """The settings as ``TrainConfig`` keys (compilation has none: it is never chosen on CPU)."""
        out: dict[str, Any] = {"channels_last": self.channels_last, "amp": self.amp}
        if self.threads is not None:
            out["threads"] = self.threads
        return out

    def describe(self) -> str:
        threads = "default threads" if self.threads is None else f"{self.threads} thread(s)"
        head = (f"{self.device}: {'channels_last' if self.channels_last else 'NCHW'}, amp {self.amp}, "
                f"{'torch.compile' if self.compile else 'eager'}, {threads}")
        return head + "".join(f"\n  - {r}" for r in self.reasons)


def choose_training_settings(img_size: int, device: str = "cpu", *, flags: frozenset[str] | None = None,
                             cores: int | None = None, env: dict[str, str] | None = None) -> FastSettings:
    """The fastest settings measured for training an EfficientNet at ``img_size`` on ``device``.

    ``flags``, ``cores`` and ``env`` default to this machine's CPU flags, usable CPUs and
    environment (tests pass others).
    """
    check_int("img_size", img_size, 1)
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda, got {device!r}")
    if device == "cuda":
        return FastSettings("cuda", True, "auto", False, None, (
            "channels_last: cuDNN's NHWC kernels (B0's training step 1.6x NCHW's on an H100, batch 128 at 224 px)",
            "amp auto: bf16 where the GPU supports it, else fp16; it halves activation memory (on that H100 its "
            "speed against fp32 channels_last was not told apart: the eager B0 step is bound by kernel launches)",
            "eager: compilation is left to the caller"))
    flags = machine.cpu_flags() if flags is None else flags
    env = os.environ if env is None else env
    reasons = ["channels_last: oneDNN's depthwise and 1x1 convolutions are fastest in NHWC"]
    if not machine.native_bf16(flags):
        amp = "none"
        reasons.append("amp none: this CPU has no AVX512-BF16 or AMX, so bf16 would be emulated (slower than fp32)")
    elif img_size < BF16_MIN_PIXELS:
        amp = "none"
        reasons.append(f"amp none: the CPU has native bf16, but below {BF16_MIN_PIXELS} px the casts cost more "
                       "than bf16 saves")
    else:
        amp = "bf16"
        reasons.append("amp bf16: the CPU computes bfloat16 natively (AVX512-BF16 or AMX)")
    reasons.append("eager: compiling the training step costs minutes on CPU, more than a short run gains")
    if env.get("OMP_NUM_THREADS"):
        threads = None
        reasons.append(f"threads: OMP_NUM_THREADS={env['OMP_NUM_THREADS']} is kept")
    else:
        threads = cores or machine.cpu_count()
        reasons.append(f"threads: {threads}, one per usable CPU")
    return FastSettings("cpu", True, amp, False, threads, tuple(reasons))
