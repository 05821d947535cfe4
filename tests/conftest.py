"""Shared test settings: one torch thread per test process (``make test`` runs two processes on two
cores), and caches (solved grids, chosen inference paths) kept in a temporary folder, never the user's."""
import os
import tempfile

import torch

torch.set_num_threads(1)
_CACHE = tempfile.mkdtemp(prefix="effnet-test-cache-")
os.environ.setdefault("EFFNET_PLAN_CACHE", os.path.join(_CACHE, "plans"))
