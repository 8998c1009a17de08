"""Checkpoints that remember the settings that made them.

A checkpoint is ``<checkpoint dir>/<name>-<hash of settings>.pt``: other settings give another
file, so nothing is overwritten, and :func:`load` refuses a file whose stored settings differ.
Files are written atomically (temporary file, then ``os.replace``).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch

from . import config


class CheckpointMismatch(ValueError):
    """The checkpoint was made with other settings than the ones asked for."""


def _canonical(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True, default=str)


def path_for(name: str, settings: dict) -> Path:
    """File name for ``name`` trained with ``settings`` (a JSON-able dict)."""
    digest = hashlib.sha256(_canonical(settings).encode()).hexdigest()[:10]
    return config.checkpoint_dir() / f"{name}-{digest}.pt"


def save(path: Path, model: torch.nn.Module, settings: dict, **extra) -> Path:
    """Write ``model``'s weights, ``settings`` and ``extra`` (history, scores...) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"settings": json.loads(_canonical(settings)), "state_dict": model.state_dict(), **extra}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path: Path, model: torch.nn.Module, settings: dict) -> dict:
    """Load weights into ``model`` if the file was made with exactly ``settings``.

    Returns the stored extras. Raises :class:`CheckpointMismatch` naming the differing settings.
    """
    payload = torch.load(path, map_location="cpu", weights_only=False)
    stored, wanted = payload.get("settings"), json.loads(_canonical(settings))
    if stored != wanted:
        keys = sorted(k for k in set(stored or {}) | set(wanted)
                      if (stored or {}).get(k) != wanted.get(k))
        diff = ", ".join(f"{k}: file {(stored or {}).get(k)!r} vs asked {wanted.get(k)!r}" for k in keys)
        raise CheckpointMismatch(f"{path} was made with other settings ({diff}); not using it")
    model.load_state_dict(payload["state_dict"])
    return {k: v for k, v in payload.items() if k not in ("settings", "state_dict")}


def train_or_load(name: str, settings: dict, model: torch.nn.Module, train_fn) -> dict:
    """Load ``name`` trained with ``settings`` if its checkpoint exists, else call
    ``train_fn(model)`` (which returns a dict of extras, e.g. the history) and save the result.
    Returns the extras, with ``"path"`` and ``"loaded"`` (True when nothing was trained).
    """
    path = path_for(name, settings)
    if path.exists():
        extras = load(path, model, settings)
        return {**extras, "path": path, "loaded": True}
    extras = train_fn(model)
    save(path, model, settings, **extras)
    return {**extras, "path": path, "loaded": False}
