"""Activation checkpointing (exact gradients and BatchNorm statistics, less memory) and mixed precision."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from effnet.arch import Network, get_network
from effnet.nn import build
from effnet.train import TrainConfig, enable_grad_checkpointing
from effnet.train.trainer import Trainer
from train_helpers import TINY_JSON, one_torch_thread, tensor_dataset


one_thread = pytest.fixture(autouse=True)(one_torch_thread)


def activation_bytes_and_grads(model, x, y, seed=1):
    """Run one training step; return the bytes of activations held for backward and the gradients.

    Measured as the unique tensor storages autograd saves for backward (parameters excluded) plus,
    for checkpointed stages, the input each stage keeps to recompute itself. This is the memory
    held between forward and backward; during backward one stage at a time is recomputed.
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages = {}

    def keep(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            storages[s.data_ptr()] = s.nbytes()

    def pack(t):
        keep(t)
        return t

    handles = []
    for stage in model.stages:
        if type(stage).__name__ == "CheckpointedSequential":
            handles.append(stage.register_forward_pre_hook(lambda m, args: keep(args[0])))
    torch.manual_seed(seed)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(model(x), y)
    for h in handles:
        h.remove()
    loss.backward()
    return sum(storages.values()), {n: p.grad.clone() for n, p in model.named_parameters()}, loss.item()


@pytest.fixture(scope="module")
def b0_pair():
    torch.manual_seed(0)
    plain = build(get_network("efficientnet_b0"), num_classes=3, drop_path_rate=0.5)
    ckpt = enable_grad_checkpointing(copy.deepcopy(plain))
    return plain, ckpt


def test_checkpointing_keeps_parameter_names(b0_pair):
    plain, ckpt = b0_pair
    assert list(plain.state_dict()) == list(ckpt.state_dict())


def test_checkpointing_gives_identical_gradients_and_running_stats_with_a_third_less_memory(b0_pair):
    plain, ckpt = (copy.deepcopy(m) for m in b0_pair)
    plain.train(), ckpt.train()
    x, y = torch.randn(4, 3, 48, 48), torch.tensor([0, 1, 2, 0])
    mem_plain, g_plain, loss_plain = activation_bytes_and_grads(plain, x, y)
    mem_ckpt, g_ckpt, loss_ckpt = activation_bytes_and_grads(ckpt, x, y)
    assert loss_plain == loss_ckpt
    # stochastic depth (rate 0.5) draws the same masks in the recomputation
    for name in g_plain:
        assert torch.equal(g_plain[name], g_ckpt[name]), name
    # BatchNorm running statistics updated once, as without checkpointing
    for (name, a), b in zip(plain.state_dict().items(), ckpt.state_dict().values()):
        assert torch.equal(a, b), name
    assert mem_ckpt <= 0.7 * mem_plain, (mem_ckpt, mem_plain)


def test_naive_checkpointing_would_update_batchnorm_statistics_twice():
    # what the momentum-0 recompute context prevents: a plain checkpoint updates running stats again
    torch.manual_seed(0)
    stage = build(get_network("efficientnet_b0"), num_classes=3).stages[1]
    twin = copy.deepcopy(stage)
    x = torch.randn(4, 16, 32, 32, requires_grad=True)
    stage(x).sum().backward()
    checkpoint(twin, x, use_reentrant=False).sum().backward()
    bn = [(a, b) for (n, a), b in zip(stage.state_dict().items(), twin.state_dict().values()) if "running_mean" in n]
    assert any(not torch.equal(a, b) for a, b in bn)


def test_bf16_autocast_on_cpu_trains_with_finite_loss():
    torch.manual_seed(0)
    model = build(Network.from_dict(TINY_JSON), num_classes=3)
    cfg = TrainConfig(amp="bf16", batch_size=4, epochs=1, ema=False, lr=0.01, warmup_epochs=0)
    trainer = Trainer(cfg, model, tensor_dataset(8, size=32), device=torch.device("cpu"))
    dtypes = []
    hook = model.stem.conv.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    for _ in trainer.train_epoch():
        pass
    hook.remove()
    assert trainer.step == 2 and dtypes == [torch.bfloat16] * 2
    loss = trainer.sums["loss"] / trainer.sums["seen"]
    assert torch.isfinite(torch.tensor(loss))
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())


def test_fp16_on_cpu_is_refused_with_a_clear_message():
    from effnet.train.runtime import autocast_dtype

    with pytest.raises(ValueError, match="fp16 needs CUDA"):
        autocast_dtype("fp16", torch.device("cpu"))
    assert autocast_dtype("none", torch.device("cpu")) is None
    assert autocast_dtype("bf16", torch.device("cpu")) is torch.bfloat16
