"""Shared test settings: one torch thread per test process (``make test`` runs two processes on two cores)."""
import torch

torch.set_num_threads(1)
