"""EMA of weights with the reference warm-up, on AveragedModel."""
import pytest
import torch
from torch import nn

from effnet.train import build_ema, ema_decay_at


def test_ema_decay_warms_up_then_caps():
    assert ema_decay_at(0.9999, 0) == pytest.approx(0.1)
    assert ema_decay_at(0.9999, 1) == pytest.approx(2 / 11)
    assert ema_decay_at(0.9999, 90) == pytest.approx(91 / 100)
    assert ema_decay_at(0.9, 1000) == 0.9


def test_ema_follows_the_warm_up_formula_for_weights_and_batchnorm_buffers():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = build_ema(model, decay=0.5)
    expected_w, expected_rm = None, None
    for t in range(5):
        with torch.no_grad():
            model[0].weight.fill_(float(t + 1))
            model[1].running_mean.fill_(float(10 * (t + 1)))
            model[1].num_batches_tracked.fill_(t + 1)
        ema.update_parameters(model)
        if t == 0:
            expected_w, expected_rm = 1.0, 10.0  # the first update copies
        else:
            d = min(0.5, (1 + t) / (10 + t))
            expected_w = d * expected_w + (1 - d) * (t + 1)
            expected_rm = d * expected_rm + (1 - d) * 10 * (t + 1)
        assert ema.module[0].weight.flatten()[0].item() == pytest.approx(expected_w, rel=1e-6)
        assert ema.module[1].running_mean[0].item() == pytest.approx(expected_rm, rel=1e-6)
        assert ema.module[1].num_batches_tracked.item() == t + 1
    assert expected_w != pytest.approx(5.0)  # the average lags the weights
