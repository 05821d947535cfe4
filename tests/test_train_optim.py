"""The recipe's optimizer, learning-rate schedule, weight-decay groups and loss."""
import math

import pytest
import torch
from torch import nn

from effnet.arch import Network, Stage, Stem
from effnet.nn import build
from train_helpers import one_torch_thread
from effnet.train import PAPER, RMSpropTF, TrainConfig, build_optimizer, build_scheduler, param_groups


def paper_config(**kw) -> TrainConfig:
    """A config with the paper's value for every recipe key, ``kw`` over them."""
    return TrainConfig(**{**PAPER, **kw})


one_thread = pytest.fixture(autouse=True)(one_torch_thread)


def tiny_desc() -> Network:
    return Network(name="tiny", stem=Stem(8), stages=(Stage("mbconv", 1, 3, 1, 8, 2, 0.25),
                                                      Stage("mbconv", 4, 3, 2, 16, 1, 0.25)),
                   head_channels=32, resolution=32, dropout=0.2, num_classes=3)


def reference_rmsprop_tf(p0, grads, lr, decay=0.9, momentum=0.9, eps=1e-3, wd=0.0):
    """TensorFlow's RMSProp in plain Python floats, one parameter element at a time."""
    p, ms, mom = list(p0), [1.0] * len(p0), [0.0] * len(p0)
    for g in grads:
        for i in range(len(p)):
            gi = g[i] + wd * p[i]
            ms[i] = decay * ms[i] + (1 - decay) * gi * gi
            mom[i] = momentum * mom[i] + lr * gi / math.sqrt(ms[i] + eps)
            p[i] -= mom[i]
    return p


def run_optimizer(opt_cls, p0, grads, **kwargs):
    p = nn.Parameter(torch.tensor(p0, dtype=torch.float64))
    opt = opt_cls([p], **kwargs)
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return p.detach().tolist()


def test_rmsprop_tf_first_step_matches_hand_computation():
    # p=1, g=0.5, lr=0.1: ms = 0.9*1 + 0.1*0.25 = 0.925; step = 0.1*0.5/sqrt(0.925+0.001)
    (p,) = run_optimizer(RMSpropTF, [1.0], [[0.5]], lr=0.1)
    assert p == pytest.approx(1.0 - 0.05 / math.sqrt(0.926), abs=1e-12)
    assert p == pytest.approx(0.9480406, abs=1e-7)


def test_rmsprop_tf_matches_reference_over_several_steps():
    p0 = [1.0, -2.0, 0.5]
    grads = [[0.5, -1.0, 0.0], [0.3, 2.0, -0.1], [-0.2, 0.4, 3.0], [1.0, 1.0, 1.0]]
    got = run_optimizer(RMSpropTF, p0, grads, lr=0.05, weight_decay=1e-2)
    want = reference_rmsprop_tf(p0, grads, lr=0.05, wd=1e-2)
    assert got == pytest.approx(want, abs=1e-12)


def test_rmsprop_tf_differs_from_torch_rmsprop():
    # torch starts the square average at 0 and adds eps outside the square root
    p0, grads = [1.0], [[0.5], [0.5]]
    ours = run_optimizer(RMSpropTF, p0, grads, lr=0.1)
    torchs = run_optimizer(torch.optim.RMSprop, p0, grads, lr=0.1, alpha=0.9, momentum=0.9, eps=1e-3)
    assert abs(ours[0] - torchs[0]) > 0.1


def test_rmsprop_tf_keeps_learning_rate_inside_momentum():
    # halving lr after a step must not rescale the momentum already accumulated (TF semantics)
    p = nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = RMSpropTF([p], lr=0.1)
    p.grad = torch.tensor([0.5], dtype=torch.float64)
    opt.step()
    buf = opt.state[p]["momentum_buffer"].clone()
    opt.param_groups[0]["lr"] = 0.05
    p.grad = torch.zeros(1, dtype=torch.float64)
    before = p.detach().clone()
    opt.step()
    assert torch.allclose(before - p.detach(), 0.9 * buf)


def test_learning_rate_is_scaled_per_256_images():
    assert paper_config(batch_size=256).peak_lr() == pytest.approx(0.016)
    assert paper_config(batch_size=4096).peak_lr() == pytest.approx(0.256)
    assert paper_config(batch_size=32).peak_lr() == pytest.approx(0.002)
    assert paper_config(batch_size=32, lr=0.1).peak_lr() == 0.1


def lrs(cfg: TrainConfig, steps_per_epoch: int, n: int) -> list[float]:
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=cfg.peak_lr())
    sched = build_scheduler(cfg, opt, steps_per_epoch)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_step_schedule_warms_up_linearly_then_decays_097_every_24_epochs():
    cfg = paper_config(batch_size=512, warmup_epochs=5)  # peak 0.032
    values = lrs(cfg, steps_per_epoch=10, n=100)
    peak = 0.032
    assert values[0] == pytest.approx(peak / 50)
    assert values[24] == pytest.approx(peak * 25 / 50)
    assert values[49] == pytest.approx(peak)  # last warm-up step
    # after warm-up: 0.97 ** floor(step / 24), counted from the start of training
    assert values[50] == pytest.approx(peak * 0.97 ** 2)
    assert values[71] == pytest.approx(peak * 0.97 ** 2)
    assert values[72] == pytest.approx(peak * 0.97 ** 3)
    assert values[96] == pytest.approx(peak * 0.97 ** 4)


def test_cosine_schedule_reaches_half_midway_and_floor_at_end():
    cfg = paper_config(batch_size=256, warmup_epochs=1, schedule="cosine", epochs=11, min_lr_ratio=0.1)
    values = lrs(cfg, steps_per_epoch=10, n=110)
    assert values[9] == pytest.approx(0.016)
    assert values[10] == pytest.approx(0.016)
    assert values[60] == pytest.approx(0.016 * (0.1 + 0.9 * 0.5))
    assert values[109] == pytest.approx(0.016 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 99 / 100))))


def test_head_learning_rate_scale_gives_the_classifier_its_own_groups():
    model = build(tiny_desc())
    groups = param_groups(model, 1e-5, lr=0.01, head_lr_scale=10.0)
    head = {id(p) for p in model.classifier.parameters()}
    for g in groups:
        in_head = {id(p) in head for p in g["params"]}
        assert len(in_head) == 1
        assert g.get("lr") == (pytest.approx(0.1) if in_head == {True} else None)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    opt = build_optimizer(paper_config(optimizer="adamw", lr=0.01, head_lr_scale=10.0), model)
    assert sorted({g["lr"] for g in opt.param_groups}) == [pytest.approx(0.01), pytest.approx(0.1)]


def test_no_weight_decay_on_batchnorm_or_biases():
    model = build(tiny_desc())
    groups = param_groups(model, 1e-5)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    names = {id(p): n for n, p in model.named_parameters()}
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert id(m.weight) not in decayed and id(m.bias) not in decayed
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            assert id(m.weight) in decayed, names[id(m.weight)]
            if m.bias is not None:
                assert id(m.bias) not in decayed
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


@pytest.mark.parametrize("optimizer", ["rmsprop_tf", "sgd", "adamw"])
def test_with_zero_gradients_only_decayed_weights_move(optimizer):
    model = build(tiny_desc())
    cfg = paper_config(optimizer=optimizer, weight_decay=0.1, lr=0.1, momentum=0.9)
    opt = build_optimizer(cfg, model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for n, p in model.named_parameters():
        moved = not torch.equal(before[n], p.detach())
        nonzero = bool(before[n].abs().sum() > 0)
        assert moved == (p.ndim > 1 and nonzero), n


def test_label_smoothing_is_applied_to_the_training_loss():
    from effnet.train.trainer import Trainer

    from train_helpers import tensor_dataset

    trainer = Trainer(paper_config(label_smoothing=0.1, batch_size=4), build(tiny_desc()), tensor_dataset(8),
                      device=torch.device("cpu"))
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    y = torch.tensor([0, 1])
    logp = logits.log_softmax(1)
    want = (0.9 * -logp[torch.arange(2), y] + 0.1 * -logp.mean(1)).mean()
    assert trainer.criterion(logits, y).item() == pytest.approx(want.item(), abs=1e-6)
