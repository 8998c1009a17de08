"""The networks of the series. Parameter counts are checked in tests/test_models.py."""
from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from . import argcheck


def TeacherNet() -> nn.Sequential:
    """Seed teacher (pytorch/examples' MNIST CNN): 1,199,882 parameters, input 1 x 28 x 28."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(),
        nn.Conv2d(32, 64, 3), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
        nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, 10),
    )


def StudentNet(hidden: int = 16) -> nn.Sequential:
    """Seed student: 784-16-10 MLP, 12,730 parameters."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, 10))


class AlwaysDropout(nn.Module):
    """``F.dropout(x, p)`` with its default ``training=True``: on in ``eval()`` mode too, as the
    seed blog's teacher wrote it (so its soft targets and test scores come with dropout on)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def forward(self, x):
        return nn.functional.dropout(x, self.p, training=True)

    def extra_repr(self) -> str:
        return f"p={self.p}, on in eval mode too"


def BlogTeacherNet() -> nn.Sequential:
    """The seed blog's teacher as its code wrote it: Conv 64 and Conv 128 (3x3, padding 1, each
    with ReLU and 2x2 max-pool), Linear(128*7*7, 1024), functional dropout 0.5 that stays on in
    eval mode (:class:`AlwaysDropout`), Linear(1024, 10); no ReLU after the first Linear.
    6,508,298 parameters; inputs are pixels / 255 (no normalisation)."""
    return nn.Sequential(
        nn.Conv2d(1, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128 * 7 * 7, 1024), AlwaysDropout(0.5),
        nn.Linear(1024, 10),
    )


def WeakStudentNet() -> nn.Sequential:
    """The seed blog's weak student: Conv2d(1, 1, 7, stride 7) - ReLU - Linear(16, 10): 220 parameters."""
    return nn.Sequential(nn.Conv2d(1, 1, 7, stride=7), nn.ReLU(), nn.Flatten(), nn.Linear(16, 10))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---- Noisy teachers (Sau & Balasubramanian 2016), for notebook 05 ----------------------------

def LeNetMNIST() -> nn.Sequential:
    """MNIST teacher: [C5@20 - MP2] - [C5@50 - MP2] - FC500 - FC10 (431,080 parameters)."""
    return nn.Sequential(
        nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))


def MLP800(dropout: float = 0.0) -> nn.Sequential:
    """MNIST student: 784-800-800-10 MLP (1,276,810 parameters); ``dropout`` after each hidden layer
    (the paper's "noise in the student" comparison)."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(784, 800), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(800, 800), nn.ReLU(), nn.Dropout(dropout), nn.Linear(800, 10))


def NiN(num_classes: int = 10) -> nn.Sequential:
    """Network-in-Network for 32 x 32 x 3 images (Lin et al. 2014, CIFAR-10 model): three
    mlpconv blocks 192-160-96 / 192-192-192 / 192-192-10 and global average pooling
    (966,986 parameters, 222 M multiply-adds per image)."""
    def block(cin, cout, k, c1, c2):
        return [nn.Conv2d(cin, cout, k, padding=k // 2), nn.ReLU(), nn.Conv2d(cout, c1, 1), nn.ReLU(),
                nn.Conv2d(c1, c2, 1), nn.ReLU()]
    return nn.Sequential(
        *block(3, 192, 5, 160, 96), nn.MaxPool2d(3, 2, padding=1), nn.Dropout(0.5),
        *block(96, 192, 5, 192, 192), nn.AvgPool2d(3, 2, padding=1), nn.Dropout(0.5),
        *block(192, 192, 3, 192, num_classes)[:-1], nn.AdaptiveAvgPool2d(1), nn.Flatten())


def LeNetCIFAR(dropout: float = 0.0, channels: tuple[int, int] = (64, 128), hidden: int = 1024) -> nn.Sequential:
    """CIFAR-10 student, modified LeNet: [C5(S1P2)@64 - MP2] - [C5(S1P2)@128 - MP2] - FC1024 - FC10
    (8,609,674 parameters, 66 M multiply-adds per image). ``channels``/``hidden`` shrink it for a CPU:
    notebook 05's CPU size, ``channels=(16, 32), hidden=256``, has 541,162 parameters and 5 M."""
    c1, c2 = channels
    return nn.Sequential(
        nn.Conv2d(3, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(c2 * 8 * 8, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 10))


def SmallVGG(width: int = 32) -> nn.Sequential:
    """A CPU-sized CIFAR-10 teacher (not in the paper): three blocks of two 3x3 conv + BatchNorm +
    ReLU with ``width``, 2 ``width``, 4 ``width`` channels, each block ending in 2x2 max-pool, then
    dropout 0.3 and FC10. At width 24: 177,394 parameters and 22 M multiply-adds per image, against
    222 M for NiN (counted with ``torch.utils.flop_counter``)."""
    def conv(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    w = width
    return nn.Sequential(
        *conv(3, w), *conv(w, w), nn.MaxPool2d(2), *conv(w, 2 * w), *conv(2 * w, 2 * w), nn.MaxPool2d(2),
        *conv(2 * w, 4 * w), *conv(4 * w, 4 * w), nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.3),
        nn.Linear(4 * w * 4 * 4, 10))


def LeNetSVHN(dropout: float = 0.0) -> nn.Sequential:
    """SVHN student: [C5(S1P2)@32 - MP3(S2)] - [C5(S1P2)@64 - MP3(S2)] - FC1024 - FC10."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
        nn.Linear(64 * 7 * 7, 1024), nn.ReLU(), nn.Dropout(dropout), nn.Linear(1024, 10))


# ---- Hinton, Vinyals & Dean 2015, section 3 (MNIST), for notebook 06 -------------------------

def MLP(hidden: Sequence[int] = (800, 800), input_dropout: float = 0.0, dropout: float = 0.0,
        in_features: int = 784, num_classes: int = 10) -> nn.Sequential:
    """Flatten, [Dropout(``input_dropout``)], then per size in ``hidden`` Linear-ReLU-[Dropout(``dropout``)],
    and a Linear to ``num_classes`` (a dropout of 0 adds no layer; ``hidden`` may be empty).

    784-1200-1200-10 (Hinton et al.'s teacher) has 2,395,210 parameters; 784-800-800-10 (their
    student, :func:`MLP800`) 1,276,810; 784-300-300-10 328,810; 784-30-30-10 24,790.
    ``hidden``: positive ints; ``input_dropout`` and ``dropout`` in [0, 1); the sizes positive ints.
    """
    def positive_int(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0

    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or not all(map(positive_int, hidden)):
        raise ValueError(f"hidden must be a sequence of positive ints (>= 1), got {hidden!r}")
    for name, p in (("input_dropout", input_dropout), ("dropout", dropout)):
        argcheck.number(name, p, "in [0, 1)", lambda x: 0 <= x < 1)
    for name, v in (("in_features", in_features), ("num_classes", num_classes)):
        argcheck.integer(name, v, "a positive int (>= 1)", lambda n: n > 0)
    layers: list[nn.Module] = [nn.Flatten()]
    if input_dropout > 0:
        layers.append(nn.Dropout(float(input_dropout)))
    width = int(in_features)
    for h in map(int, hidden):
        layers += [nn.Linear(width, h), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(float(dropout)))
        width = h
    layers.append(nn.Linear(width, int(num_classes)))
    return nn.Sequential(*layers)


def shift_bias(model: nn.Module, classes: int | Iterable[int], delta: float) -> nn.Module:
    """A deep copy of ``model`` (mode and ``requires_grad`` flags carried over; ``model`` unchanged) with
    ``delta`` (finite) added to the output bias of ``classes`` (one int or distinct ints in [0, out_features)):
    ``delta`` is added to those classes' logits for every input, the others stay as they were.

    Hinton et al. (2015), section 3: a student that never saw a 3 gets most test 3s right once the bias of
    class 3 is raised by 3.5 (``shift_bias(student, 3, 3.5)``); one trained on 7s and 8s only needs those
    of 7 and 8 lowered by 7.6 (``shift_bias(student, (7, 8), -7.6)``). The output layer is the last module
    with parameters of its own: an ``nn.Linear`` with a bias.
    """
    own = [m for m in model.modules() if next(m.parameters(recurse=False), None) is not None]
    last = own[-1] if own else None
    if not isinstance(last, nn.Linear) or last.bias is None:
        raise ValueError("model must end in an nn.Linear with a bias (its last module with "
                         f"parameters is {type(last).__name__ if last is not None else 'none'}"
                         f"{', without a bias' if isinstance(last, nn.Linear) else ''})")
    k = last.out_features
    allowed = f"an int or a non-empty collection of distinct ints in [0, {k - 1}] (the output layer has {k} classes)"
    one = not isinstance(classes, Iterable) or getattr(classes, "ndim", None) == 0  # an int, or a 0-d tensor/array
    items = [classes] if one else list(classes)
    try:
        cls = [argcheck.integer("classes", c, allowed, lambda i: 0 <= i < k) for c in items]
    except ValueError:
        cls = []
    if not cls or len(set(cls)) != len(cls):
        raise ValueError(f"classes must be {allowed}, got {classes!r}")
    argcheck.number("delta", delta, "a finite number", math.isfinite)
    shifted = copy.deepcopy(model)
    own = [m for m in shifted.modules() if next(m.parameters(recurse=False), None) is not None]
    with torch.no_grad():
        own[-1].bias[cls] += delta
    return shifted
