"""One call to make a run repeatable."""
from __future__ import annotations

import random

import numpy as np
import torch

from . import argcheck


def seed_everything(seed) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a ``torch.Generator`` seeded the same way.

    Pass the generator to :func:`kdlib.data.batches` (shuffling) and
    :func:`kdlib.losses.perturb_logits` (noise) so that a run is identical for the same seed.
    ``seed`` is an integer in [0, 2**64): a Python or NumPy integer or a 0-d integer tensor.
    """
    seed = argcheck.integer("seed", seed, "an integer in [0, 2**64), not a bool", lambda v: 0 <= v < 2**64)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
