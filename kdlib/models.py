"""The networks of the series. Parameter counts are checked in tests/test_models.py."""
from __future__ import annotations

from torch import nn


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


def BlogTeacherNet() -> nn.Sequential:
    """The seed blog's teacher: Conv 64 and Conv 128 (3x3, padding 1, each with 2x2 max-pool),
    Linear(128*7*7, 1024), Dropout(0.5), Linear(1024, 10): 6,508,298 parameters."""
    return nn.Sequential(
        nn.Conv2d(1, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128 * 7 * 7, 1024), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(1024, 10),
    )


def WeakStudentNet() -> nn.Sequential:
    """The seed blog's weak student: Conv2d(1, 1, 7, stride 7) - ReLU - Linear(16, 10): 220 parameters."""
    return nn.Sequential(nn.Conv2d(1, 1, 7, stride=7), nn.ReLU(), nn.Flatten(), nn.Linear(16, 10))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
