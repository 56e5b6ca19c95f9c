"""Shared test settings: float64 physics, one thread per process (2-core CI)."""

import torch

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)
