"""Thread counts: a tiny network trains fastest on one thread.

A 784-16-10 student's operations are too small to split across cores: the hand-off between threads
costs more than it saves, and on a busy 2-core machine it made an epoch 50x slower (50 s against
1 s). :func:`threads_for` picks one thread for such a model and leaves every other model to PyTorch's
default. The numbers are the same on any thread count up to float rounding (tests/test_fast_threads.py).
"""
from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` intra-op threads (``None``: leave as is), then restore."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def auto_threads(model: torch.nn.Module, copies: int = 1) -> int | None:
    """1 thread for a tiny model on the CPU (largest weight under 50,000 entries, no convolution),
    else ``None`` (PyTorch's default). ``copies``: trained stacked as one (:mod:`kdlib.fast.stacked`),
    whose ops are ``copies`` times larger: the largest weight counts ``copies`` times.

    A convolution's work grows with the image, not its weights: a teacher's conv layers alone (the
    trunk of notebook 03) are small in weights but not in work.
    """
    from .conv import WindowConv2d  # a matrix product, not a convolution routine

    largest = copies * max(p.numel() for p in model.parameters())
    conv = any(isinstance(m, torch.nn.Conv2d) and not isinstance(m, WindowConv2d) for m in model.modules())
    return 1 if largest < 50_000 and not conv and next(model.parameters()).device.type == "cpu" else None


def threads_for(model: torch.nn.Module, copies: int = 1):
    """``with threads_for(model): ...``: the block runs on :func:`auto_threads`' count."""
    return torch_threads(auto_threads(model, copies))
