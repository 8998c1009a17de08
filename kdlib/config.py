"""Settings read from the environment, all in one place.

- ``KDLIB_FAST=1``     fast mode: few epochs and data subsets (CI and quick checks).
                       Unset or ``0``: full-length runs, the default for a user.
- ``KDLIB_DATA``       folder of the ``<name>-<split>.npz`` dataset files
                       (default ``~/.cache/kdlib/data``).
- ``KDLIB_CHECKPOINTS`` folder for trained models (default ``checkpoints/`` in the
                       project, else ``~/.cache/kdlib/checkpoints``).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def fast_mode() -> bool:
    """True when ``KDLIB_FAST`` asks for a short run."""
    value = os.environ.get("KDLIB_FAST", "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"KDLIB_FAST must be one of 0/1/true/false, got {value!r}")


def pick(full, fast):
    """Return ``fast`` in fast mode and ``full`` otherwise (e.g. ``epochs = pick(10, 1)``)."""
    return fast if fast_mode() else full


def data_dir() -> Path:
    """Folder holding the dataset ``.npz`` files."""
    env = os.environ.get("KDLIB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kdlib" / "data"


PROJECT_ROOT = Path(__file__).resolve().parent.parent


def checkpoint_dir() -> Path:
    """Folder for checkpoints (git-ignored inside the project)."""
    env = os.environ.get("KDLIB_CHECKPOINTS")
    if env:
        return Path(env).expanduser()
    if (PROJECT_ROOT / "pyproject.toml").exists():
        return PROJECT_ROOT / "checkpoints"
    return Path.home() / ".cache" / "kdlib" / "checkpoints"


def device() -> torch.device:
    """The GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
