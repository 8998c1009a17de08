"""Dropout masks from random bytes.

A teacher that runs with its dropout on for every batch (notebook 03: the seed's and the blog's
teachers) draws a mask of 9,216 features per image; ``nn.Dropout`` draws one random number per
element with ``bernoulli_``, and on a CPU that is most of the work. :class:`ByteDropout` keeps an
element when its random byte is >= 256 p: one 64-bit draw gives 8 mask elements. The same
distribution as ``nn.Dropout(p)`` for p a multiple of 1/256 (0.25 and 0.5 here; tested in
tests/test_fast_dropout.py); notebook 03's committed run timed 6.6 ms against 59.8 ms for one stacked
batch. :func:`fast_dropout` swaps it into a copy of a teacher's head.
"""
from __future__ import annotations

import copy
import numbers

import numpy as np
import torch
from torch import nn

from ..models import AlwaysDropout

BLOCK = 2 ** 18  # elements per block of ByteDropout's products on a CPU (1 MB of float32)


class ByteDropout(nn.Module):
    """Dropout whose mask comes from random bytes: an element is kept when its byte is >= 256 p,
    and kept elements are scaled by 1 / (1 - p). ``always=True``: on in eval mode too
    (:class:`~kdlib.models.AlwaysDropout`).

    On the CPU the bytes come from NumPy's SFC64 generator (3x faster than ``torch``'s own
    ``random_`` here), seeded from torch's generator on every call, so ``torch.manual_seed`` still
    fixes every mask."""

    def __init__(self, p: float = 0.5, always: bool = False):
        super().__init__()
        if not isinstance(p, numbers.Real) or not 0 <= p < 1 or not float(p * 256).is_integer():
            raise ValueError(f"p must be a multiple of 1/256 in [0, 1), got {p!r}")
        self.p, self.always = float(p), always

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0 or not (self.training or self.always):
            return x
        # keep = 1 where the byte is >= c = 256 p, else 0: clamp to [c - 1, c], minus c - 1, in bytes;
        # then as x's dtype, times 1 / (1 - p). Arithmetic, not a boolean mask: 3x faster on a CPU
        c = round(256 * self.p)
        keep = random_bytes(x.numel(), x.device).clamp_(c - 1, c).sub_(c - 1)
        if x.device.type != "cpu" or (x.requires_grad and torch.is_grad_enabled()):
            return x * keep.view(x.shape).to(x.dtype).mul_(1 / (1 - self.p))
        # the same products, BLOCK elements at a time: each block's mask stays in the CPU's cache (1.7x)
        flat, out = x.reshape(-1), torch.empty(x.numel(), dtype=x.dtype)
        for i in range(0, len(out), BLOCK):
            out[i:i + BLOCK].copy_(keep[i:i + BLOCK]).mul_(1 / (1 - self.p)).mul_(flat[i:i + BLOCK])
        return out.view(x.shape)

    def extra_repr(self) -> str:
        return f"p={self.p}" + (", on in eval mode too" if self.always else "")


def random_bytes(n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` independent uniform random bytes (uint8), determined by torch's global generator: on
    the CPU from NumPy's SFC64 seeded with one draw of it, elsewhere from ``random_`` on the device
    (the full 64-bit range, so all 8 bytes of a draw are uniform)."""
    words = -(-n // 8)
    if torch.device(device).type == "cpu":
        seed = int(torch.randint(0, 2 ** 63 - 1, ()))
        draws = torch.from_numpy(np.random.SFC64(seed).random_raw(words).view(np.uint8))
    else:
        draws = torch.empty(words, dtype=torch.int64, device=device).random_(-2 ** 63, None).view(torch.uint8)
    return draws[:n]


def fast_dropout(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with each ``nn.Dropout`` / :class:`~kdlib.models.AlwaysDropout` replaced
    by a :class:`ByteDropout` of the same p (and the same eval-mode behaviour); the other layers are
    copies. The original is left as it is."""
    model = copy.deepcopy(model)
    for name, m in list(model.named_modules()):
        if isinstance(m, (nn.Dropout, AlwaysDropout)):
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            setattr(parent, name.rpartition(".")[2], ByteDropout(m.p, always=isinstance(m, AlwaysDropout)))
    return model
