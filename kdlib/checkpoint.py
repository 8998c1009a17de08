"""Checkpoints that remember the settings that made them.

A checkpoint is ``<checkpoint dir>/<name>-<hash of settings>.pt``: other settings give another
file, so nothing is overwritten, and :func:`load` refuses a file whose stored settings differ.
Settings are a dataclass or a dict of JSON values (numbers, strings, booleans, lists, dicts); the
hash is taken over their canonical JSON, so every setting names the file. Files are written
atomically (:func:`kdlib.files.atomic_write`) and read with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
import time
import warnings
from pathlib import Path

import torch

from . import config
from .files import atomic_write
from .repro import seed_everything


class CheckpointMismatch(ValueError):
    """The checkpoint was made with other settings than the ones asked for."""


class CheckpointUnreadable(ValueError):
    """The checkpoint file exists but cannot be read back (truncated, corrupt, not a checkpoint)."""


def as_dict(settings) -> dict:
    """``settings`` (a dataclass or a dict) as a plain dict of JSON values, checked exactly.

    Raises ``ValueError`` for a value JSON cannot hold exactly (a tensor, NaN, an object):
    such a setting could not tell two checkpoints apart.
    """
    d = dataclasses.asdict(settings) if dataclasses.is_dataclass(settings) else settings
    if not isinstance(d, dict):
        raise ValueError(f"settings must be a dataclass or a dict, got {type(settings).__name__}")

    def check(v, where):
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"settings[{where}] is {v!r}: only finite numbers can name a checkpoint")
        if isinstance(v, dict):
            for k, x in v.items():
                if not isinstance(k, str):
                    raise ValueError(f"settings[{where}] has a non-string key {k!r}")
                check(x, f"{where}.{k}" if where else k)
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                check(x, f"{where}[{i}]")
        elif not (v is None or isinstance(v, (bool, int, float, str))):
            raise ValueError(f"settings[{where}] is a {type(v).__name__} ({v!r:.60}); use numbers, "
                             f"strings, booleans, lists or dicts")
    check(d, "")
    return json.loads(json.dumps(d, sort_keys=True))


def _canonical(settings) -> str:
    return json.dumps(as_dict(settings), sort_keys=True)


def path_for(name: str, settings) -> Path:
    """File name for ``name`` trained with ``settings``."""
    digest = hashlib.sha256(_canonical(settings).encode()).hexdigest()[:10]
    return config.checkpoint_dir() / f"{name}-{digest}.pt"


def save(path: Path, model: torch.nn.Module, settings, **extra) -> Path:
    """Write ``model``'s weights, ``settings`` and ``extra`` (history, scores...) atomically."""
    payload = {"settings": as_dict(settings), "state_dict": model.state_dict(), **extra}
    return atomic_write(path, lambda f: torch.save(payload, f))


def set_aside(path: Path) -> Path:
    """Rename an unreadable checkpoint to ``<path>.unreadable-<time>`` (kept, never deleted), so
    that the next run trains anew. Returns the new name."""
    path = Path(path)
    new = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
    path.rename(new)
    return new


def load(path: Path, model: torch.nn.Module, settings) -> dict:
    """Load weights into ``model`` if the file was made with exactly ``settings``.

    Returns the stored extras. Raises :class:`CheckpointMismatch` naming the differing settings,
    and :class:`CheckpointUnreadable` (with the way out) for a file that cannot be read.
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or "state_dict" not in payload:
            raise ValueError("it holds no 'state_dict'")
    except PermissionError as e:
        raise PermissionError(f"checkpoint {path} cannot be read: {e.strerror}. Fix its "
                              f"permissions, or point KDLIB_CHECKPOINTS at another folder.") from e
    except Exception as e:  # truncated, random bytes, empty, a text file...
        raise CheckpointUnreadable(
            f"checkpoint {path} is unreadable ({type(e).__name__}: {str(e)[:200]}). It is a cache "
            f"that kdlib wrote: move it aside and run again to retrain, e.g. "
            f"kdlib.checkpoint.set_aside({str(path)!r}) (renames it; nothing is deleted).") from e
    stored, wanted = payload.get("settings"), as_dict(settings)
    if stored != wanted:
        keys = sorted(k for k in set(stored or {}) | set(wanted)
                      if (stored or {}).get(k) != wanted.get(k))
        diff = ", ".join(f"{k}: file {(stored or {}).get(k)!r} vs asked {wanted.get(k)!r}" for k in keys)
        raise CheckpointMismatch(f"{path} was made with other settings ({diff}); not using it")
    model.load_state_dict(payload["state_dict"])
    return {k: v for k, v in payload.items() if k not in ("settings", "state_dict")}


def _check_writable(folder: Path) -> None:
    """Fail now, before any training, if checkpoints cannot be written to ``folder``."""
    where = f"{folder} (KDLIB_CHECKPOINTS)" if os.environ.get("KDLIB_CHECKPOINTS") else str(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise PermissionError(f"cannot write checkpoints to {where}: {e.strerror or e}. Point "
                              f"KDLIB_CHECKPOINTS at a writable folder; nothing was trained.") from e


def train_or_load(name: str, settings, model: torch.nn.Module, train_fn) -> dict:
    """Load ``name`` trained with ``settings`` if its checkpoint exists, else call
    ``train_fn(model)`` (which returns a dict of extras, e.g. the history) and save the result.
    Returns the extras, with ``"path"`` and ``"loaded"`` (True when nothing was trained).

    The folder is checked for writing before training; if saving still fails, the trained model
    is kept (a warning says why) rather than lost.
    """
    path = path_for(name, settings)
    if path.exists():
        extras = load(path, model, settings)
        return {**extras, "path": path, "loaded": True}
    _check_writable(path.parent)
    extras = train_fn(model)
    try:
        save(path, model, settings, **extras)
    except (OSError, RuntimeError) as e:
        warnings.warn(f"the trained {name} could not be saved to {path} ({e}); it is returned "
                      f"unsaved and will be trained again next time", stacklevel=2)
        return {**extras, "path": None, "loaded": False}
    return {**extras, "path": path, "loaded": False}


def cached_model(name: str, settings, build, train_fn) -> tuple[torch.nn.Module, dict]:
    """The frozen model ``name`` made with ``settings``: loaded from its checkpoint or trained now.

    ``settings.seed`` seeds the initial weights (so they depend on the seed only), ``build()``
    makes the untrained network and ``train_fn(model)`` trains it, returning a dict of extras
    (history, scores). Returns ``(model, info)``: eval mode, no gradients; ``info`` holds the
    extras, ``path``, ``loaded`` and ``settings``.
    """
    from .train import freeze  # train imports data only; keep checkpoint importable on its own

    seed_everything(as_dict(settings)["seed"])
    model = build()
    info = train_or_load(name, settings, model, train_fn)
    return freeze(model), {**info, "settings": settings}
