"""Distributed data parallel set-up from the environment ``torchrun`` provides.

One machine, N processes::

    torchrun --nproc_per_node N -m effnet train --model efficientnet_b0 --data elpv ...

Several machines (run the same line on each, with its own ``--node_rank``)::

    torchrun --nnodes 2 --node_rank 0 --nproc_per_node 8 \\
             --master_addr HOST0 --master_port 29500 -m effnet train ...

(or ``--rdzv_backend c10d --rdzv_endpoint HOST0:29500 --rdzv_id JOB``). The backend is NCCL when
CUDA is used and gloo on CPU. ``batch_size`` is the global batch: each process takes
``batch_size / world_size`` of it, so a run's recipe does not depend on how many processes run it.
Only rank 0 writes files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def from_env() -> DistInfo:
    """The rank layout ``torchrun`` describes in ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"bad distributed environment: RANK={rank}, WORLD_SIZE={world}")
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def init(device: torch.device) -> DistInfo:
    """Join the process group when launched by ``torchrun`` with more than one process."""
    info = from_env()
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_object(info: DistInfo, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(info: DistInfo, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_mean(info: DistInfo, value: float) -> float:
    if not info.enabled:
        return value
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


class GlobalBatchNorm2d(torch.nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the global batch of every process, on CPU (gloo).

    Written here because ``torch.nn.SyncBatchNorm`` runs only on GPUs. Per channel, the sums of
    ``x`` and ``x**2`` and the count are summed over processes with the differentiable
    ``torch.distributed.nn.all_reduce``, so gradients flow through the shared statistics as with
    ``SyncBatchNorm``. Outside training, or in a single process, it is a plain ``BatchNorm2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn import all_reduce

        c = x.shape[1]
        xf = x.float()
        count = torch.full((1,), float(x.numel() // c), dtype=xf.dtype, device=x.device)
        stats = all_reduce(torch.cat([xf.sum((0, 2, 3)), (xf * xf).sum((0, 2, 3)), count]))
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp_min(0.0)  # biased, as BatchNorm normalises
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1.0 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1.0 - m).add_(var.detach() * (n / (n - 1)).clamp_min(0.0), alpha=m)
        y = (xf - mean[None, :, None, None]) * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)


def convert_global_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    """Replace every ``BatchNorm2d`` in ``module`` by :class:`GlobalBatchNorm2d` (same parameters,
    buffers and state-dict names)."""
    if type(module) is torch.nn.BatchNorm2d:
        new = GlobalBatchNorm2d(module.num_features, module.eps, module.momentum, module.affine,
                                module.track_running_stats, device=module.running_mean.device
                                if module.running_mean is not None else None)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, convert_global_batchnorm(child))
    return module
