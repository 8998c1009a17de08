"""Batch augmentations for the ``augment(xb, generator)`` hook of :class:`kdlib.train.Batches`:
each takes an N x C x H x W batch and a ``torch.Generator`` (or None) and returns a new batch, never
modifying its input."""
from __future__ import annotations

import math

import torch

from . import argcheck


def jitter(x: torch.Tensor, generator: torch.Generator | None = None, max_shift: int = 2,
           fill: float | None = None) -> torch.Tensor:
    """Move each image of an N x C x H x W batch by a random whole-pixel shift (dx, dy), each drawn
    uniformly from the integers in [-``max_shift``, ``max_shift``] (no shift among them): Hinton, Vinyals
    & Dean (2015), section 3, "jittered by up to two pixels in any direction".

    ``out[n, :, i, j] = x[n, :, i - dy, j - dx]``: positive dx moves the content right, positive dy down,
    all channels together; what falls off the edge is lost. The uncovered border takes ``fill``, or with
    ``fill=None`` each image's own minimum per channel (the background of a normalised MNIST image is
    -0.4242, not 0). One ``torch.randint`` call on ``generator`` draws the shifts, so a seeded generator
    repeats them. Returns a new tensor like ``x``.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"x must be a 4-D N x C x H x W tensor, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    m = argcheck.integer("max_shift", max_shift, "an int >= 0", lambda v: v >= 0)
    if fill is not None:
        argcheck.number("fill", fill, "None or a finite number", math.isfinite)
    n, c, h, w = x.shape
    shifts = torch.randint(-m, m + 1, (n, 2), generator=generator,
                           device=generator.device if generator is not None else "cpu")
    if m == 0 or x.numel() == 0:
        return x.clone()
    shifts = shifts.to(x.device)
    dx, dy = shifts[:, 0], shifts[:, 1]
    if fill is None:
        bg = x.amin(dim=(2, 3), keepdim=True)
    else:
        bg = torch.full((1, 1, 1, 1), float(fill), dtype=x.dtype, device=x.device)
    padded = bg.expand(n, c, h + 2 * m, w + 2 * m).clone()
    padded[:, :, m:m + h, m:m + w] = x
    # out = the H x W window of the padded image at offset (m - dy, m - dx): unfold views all
    # (2m + 1)^2 windows without a copy, one index picks each image's.
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)
    return windows[torch.arange(n, device=x.device), :, m - dy, m - dx].contiguous()


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image of an N x C x H x W batch left-right with probability 1/2 (notebook 05's
    CIFAR-10 teacher)."""
    flip = torch.rand(len(x), generator=generator) < 0.5
    return torch.where(flip.to(x.device)[:, None, None, None], x.flip(3), x)
