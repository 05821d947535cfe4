"""Where and how a run computes: device, mixed-precision dtype, thread count and deterministic mode."""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

import torch
from torch import nn

from .. import machine
from .config import TrainConfig


def resolve_device(cfg: TrainConfig, local_rank: int = 0) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("device cuda was asked for but CUDA is not available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX); elsewhere bf16 autocast
    still works but is emulated and slow."""
    return machine.native_bf16(machine.cpu_flags())


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for an ``amp`` setting on ``device`` (``None``: full precision)."""
    if amp == "none":
        return None
    if device.type == "cuda":
        if amp == "bf16" or (amp == "auto" and torch.cuda.is_bf16_supported()):
            if not torch.cuda.is_bf16_supported():
                raise ValueError("this GPU does not support bfloat16; use amp=fp16")
            return torch.bfloat16
        return torch.float16
    if amp == "fp16":
        raise ValueError("amp=fp16 needs CUDA; on CPU use amp=bf16")
    if amp == "auto":
        return torch.bfloat16 if cpu_supports_bf16() else None
    return torch.bfloat16


@contextlib.contextmanager
def runtime(cfg: TrainConfig) -> Iterator[None]:
    """Thread count and deterministic mode for the run; the caller's settings come back afterwards."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    cudnn_benchmark = torch.backends.cudnn.benchmark
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        torch.backends.cudnn.benchmark = cudnn_benchmark


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
