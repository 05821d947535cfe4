"""SeededDataset: an item's random numbers depend on (seed, epoch, index) only, and the caller's are untouched."""
import random

import torch
from torch.utils.data import Dataset

from effnet.train.sampling import SeededDataset


class Draws(Dataset):
    def __len__(self) -> int:
        return 6

    def __getitem__(self, index: int):
        return torch.rand(2), random.random()


def test_items_draw_the_same_numbers_in_any_order_and_leave_the_callers_rng_alone():
    data = SeededDataset(Draws(), seed=3)
    torch.manual_seed(0)
    random.seed(0)
    forward = [data[i] for i in range(6)]
    after = (torch.rand(1), random.random())
    torch.manual_seed(0)
    random.seed(0)
    backward = [data[i] for i in reversed(range(6))][::-1]
    assert all(torch.equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(forward, backward))
    assert torch.equal(after[0], torch.rand(1)) and after[1] == random.random()  # caller's streams unchanged
    assert not torch.equal(forward[0][0], forward[1][0])  # items differ
    data.set_epoch(1)
    assert not torch.equal(data[0][0], forward[0][0])  # and epochs differ
