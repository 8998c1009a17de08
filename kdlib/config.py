"""Settings read from the environment, all in one place.

- ``KDLIB_FAST``: ``1``/``true``/``yes``/``on``: fast mode (few epochs, data subsets; the default under pytest);
  ``0``/``false``/``no``/``off`` or unset: full-length runs, the default for a user; anything else is an error.
- ``KDLIB_DATA``: folder of the ``<name>-<split>.npz`` dataset files (default ``~/.cache/kdlib/data``).
- ``KDLIB_CHECKPOINTS``: trained models (default ``checkpoints/`` in the project, else ``~/.cache/kdlib/checkpoints``).
- ``KDLIB_BF16``: ``0`` turns bf16 autocast off where the hardware has it (default: on there).
- ``KDLIB_MALLOC``: ``1``: ``import kdlib`` lets glibc reuse freed memory (:mod:`kdlib.fast.memory`).
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def flag(name: str, default: bool = False) -> bool:
    """Read the yes/no environment variable ``name``; unset gives ``default``."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value not in _TRUE | _FALSE:
        raise ValueError(f"{name} must be one of 1/0, true/false, yes/no, on/off, got {raw!r}")
    return value in _TRUE


def fast_mode() -> bool:
    """True when ``KDLIB_FAST`` asks for a short run."""
    return flag("KDLIB_FAST")


def pick(full, fast):
    """Return ``fast`` in fast mode and ``full`` otherwise (e.g. ``epochs = pick(10, 1)``)."""
    return fast if fast_mode() else full


def data_dir() -> Path:
    """Folder holding the dataset ``.npz`` files."""
    env = os.environ.get("KDLIB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kdlib" / "data"


def checkpoint_dir() -> Path:
    """Folder for checkpoints (git-ignored inside the project)."""
    env = os.environ.get("KDLIB_CHECKPOINTS")
    if env:
        return Path(env).expanduser()
    if (PROJECT_ROOT / "pyproject.toml").exists():
        return PROJECT_ROOT / "checkpoints"
    return Path.home() / ".cache" / "kdlib" / "checkpoints"


def device(which=None) -> torch.device:
    """Where kdlib trains and predicts: ``which`` (a device or name), else the GPU if any, else the CPU; a GPU
    comes with its index (the current one, ``cuda:0``), as its tensors report it, so devices compare equal."""
    if which is None:
        which = "cuda" if torch.cuda.is_available() else "cpu"
    d = torch.device(which)
    if d.type == "cuda" and d.index is None and torch.cuda.is_available():
        d = torch.device("cuda", torch.cuda.current_device())
    return d


def bf16(where=None) -> bool:
    """bf16 autocast for convnets where device ``where`` (default :func:`device`) has it (a bf16 GPU, or a
    CPU with AVX512-BF16/AMX), unless ``KDLIB_BF16=0``."""
    kind = device(where).type
    if kind == "cuda":
        has = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    elif kind == "cpu":
        has = bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())
    else:
        has = False
    return has and flag("KDLIB_BF16", default=True)


def isa(flags) -> str:
    """The vector instructions a timing depends on, from a CPU's /proc/cpuinfo ``flags``:
    "AVX-512, bf16", "AVX-512, no bf16", "AVX2 only" or "no AVX2"."""
    flags = set(flags)
    bf16 = "bf16" if flags & {"avx512_bf16", "amx_bf16"} else "no bf16"
    if "avx512f" in flags:
        return f"AVX-512, {bf16}"
    return "AVX2 only" if "avx2" in flags else "no AVX2"


def cpu_name() -> str:
    """The CPU's model name and vector instructions (Linux /proc/cpuinfo, e.g. "AMD EPYC (AVX2 only)"),
    else the platform's: timings say where they ran."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        name = next(x.split(":", 1)[1].strip() for x in lines if x.startswith("model name"))
        flags = next((x.split(":", 1)[1].split() for x in lines if x.startswith("flags")), None)
        return f"{name} ({isa(flags)})" if flags is not None else name
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()
