"""One call to make a run repeatable."""
from __future__ import annotations

import numbers
import random

import numpy as np
import torch


def seed_everything(seed) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a ``torch.Generator`` seeded the same way.

    Pass the generator to :func:`kdlib.data.batches` (shuffling) and
    :func:`kdlib.losses.perturb_logits` (noise) so that a run is identical for the same seed.
    ``seed`` is an integer in [0, 2**64): a Python or NumPy integer or a 0-d integer tensor.
    """
    value = seed.item() if isinstance(seed, torch.Tensor) and seed.ndim == 0 else seed
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), not a bool, got {seed!r}")
    seed = int(value)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
