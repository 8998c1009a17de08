"""A convolution whose windows do not overlap, as one matrix product.

The seed blog's weak student is ``nn.Conv2d(1, 1, 7, stride=7)``: on a 28 x 28 image it has 16
windows and 49 weights, so the convolution routine's fixed cost is most of a training step.
:class:`WindowConv2d` computes the same numbers as one matrix product over the windows (tested equal
to ``nn.Conv2d`` in float64, tests/test_fast_conv.py), and a matrix product also stacks across
models (:mod:`kdlib.fast.stacked`). :func:`window_convs` swaps it into a model built with plain
``nn.Conv2d`` layers; the state dict keeps its keys, so checkpoints load either way.
"""
from __future__ import annotations

import torch
from torch import nn


class WindowConv2d(nn.Conv2d):
    """``nn.Conv2d(c_in, c_out, k, stride=k)`` computed as one matrix product over the windows."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__(in_channels, out_channels, kernel_size, stride=kernel_size)

    def windows(self, x: torch.Tensor) -> torch.Tensor:
        """The k x k windows of x (n, c, h, w) as rows: (n, h/k * w/k, c k k), each row in the order
        of the weight's entries."""
        n, c, h, w = x.shape
        k = self.kernel_size[0]
        if h % k or w % k:
            raise ValueError(f"input height and width must be multiples of {k}, got {h} x {w}")
        return x.reshape(n, c, h // k, k, w // k, k).permute(0, 2, 4, 1, 3, 5).reshape(n, -1, c * k * k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        k = self.kernel_size[0]
        out = self.windows(x) @ self.weight.reshape(self.out_channels, -1).T + self.bias  # (n, windows, c_out)
        return out.transpose(1, 2).reshape(n, self.out_channels, h // k, w // k)


def _tiles(m: nn.Module) -> bool:
    """True for a plain ``nn.Conv2d`` whose square windows tile the image: stride = kernel size, no
    padding, dilation or groups, with a bias."""
    if type(m) is not nn.Conv2d:
        return False
    k = m.kernel_size
    return (k[0] == k[1] and m.stride == k and m.padding == (0, 0)
            and m.dilation == (1, 1) and m.groups == 1 and m.bias is not None and m.padding_mode == "zeros")


def window_convs(model: nn.Module) -> nn.Module:
    """``model`` with each non-overlapping ``nn.Conv2d`` replaced, in place, by a
    :class:`WindowConv2d` holding the same parameters (the same numbers, faster); returns ``model``.
    The swap draws no random numbers: a seeded run goes on as it would with the plain model."""
    for name, m in list(model.named_modules()):
        if _tiles(m):
            with torch.random.fork_rng(devices=[]):  # the new layer's own initialisation is thrown away
                fast = WindowConv2d(m.in_channels, m.out_channels, m.kernel_size[0])
            fast.weight, fast.bias = m.weight, m.bias
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            setattr(parent, name.rpartition(".")[2], fast)
    return model
