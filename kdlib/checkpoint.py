"""Checkpoints that remember the settings that made them.

A checkpoint is ``<checkpoint dir>/<name>-<hash of the settings' canonical JSON>.pt``: other settings give
another file, and :func:`load` refuses a file whose stored settings differ. Files are written atomically once
known to load back, and read onto the CPU with ``torch.load(weights_only=True)`` after a zip CRC check.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import json
import math
import os
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from . import config
from .files import atomic_write
from .repro import seed_everything


class CheckpointMismatch(ValueError):
    """The checkpoint was made with other settings, or for another network than ``build()`` makes now."""


class CheckpointUnreadable(ValueError):
    """The checkpoint file exists but cannot be read back (truncated, corrupt, not a checkpoint)."""


def as_dict(settings) -> dict:
    """``settings`` (a dataclass or a dict) as a plain dict of JSON values; ``ValueError`` for a value JSON
    cannot hold exactly (a tensor, NaN, an object), which could not tell two checkpoints apart."""
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


def path_for(name: str, settings) -> Path:
    """File name for ``name`` trained with ``settings``, inside the checkpoint folder (``name`` is one file
    name part: a path separator or ``..`` raises ``ValueError``)."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or ".." in name:
        raise ValueError(f"name must be a non-empty file name part without '/', '\\' or '..' (the "
                         f"checkpoint stays inside {config.checkpoint_dir()}), got {name!r}")
    digest = hashlib.sha256(json.dumps(as_dict(settings), sort_keys=True).encode()).hexdigest()[:10]
    return config.checkpoint_dir() / f"{name}-{digest}.pt"


RESERVED = ("settings", "state_dict", "path", "loaded")  # keys kdlib itself puts in a checkpoint or info


def checked_extras(extras) -> dict:
    """``extras`` (what a ``train_fn`` returned) as they will be stored, or ``ValueError`` naming the key that
    cannot be. Allowed: ``None`` or a dict with string keys other than :data:`RESERVED`, whose values are JSON-like
    (``None``, ``bool``, ``int``, ``float``, ``str``; lists, tuples and string-keyed dicts of these) or tensors,
    what ``torch.load(weights_only=True)`` reads back; a NumPy scalar becomes the Python number it holds.
    Anything else (a NumPy array, a ``Path``, a function, an object) is refused: convert it first
    (``.tolist()``, ``str(path)``, ``torch.from_numpy``)."""
    if extras is None:
        return {}
    if not isinstance(extras, dict):
        raise ValueError(f"the extras (what train_fn returned) must be a dict or None, got a "
                         f"{type(extras).__name__} ({extras!r:.60})")
    taken = [k for k in extras if k in RESERVED]
    if taken:
        raise ValueError(f"the extras use the key(s) {taken}, which kdlib uses itself ({', '.join(RESERVED)}): "
                         f"rename them")
    return {k: _storable(v, k) for k, v in _plain_keys(extras, "extras").items()}


def _plain_keys(d: dict, where: str) -> dict:
    bad = [k for k in d if type(k) is not str]
    if bad:
        raise ValueError(f"{where} has the key {bad[0]!r}, not a string: only JSON-like values are "
                         f"stored, so that torch.load(weights_only=True) reads them back")
    return d


def _storable(v, where: str):
    """``v`` as stored (see :func:`checked_extras`); ``where`` names it in the error."""
    if isinstance(v, torch.Tensor):
        return v.detach().cpu()  # stored on the CPU: it loads without a GPU
    if v is None or type(v) in (bool, int, float, str):
        return v
    if isinstance(v, np.generic) and isinstance(v.item(), (bool, int, float, str)):
        return v.item()
    if isinstance(v, (list, tuple)):
        items = [_storable(x, f"{where}[{i}]") for i, x in enumerate(v)]
        return items if isinstance(v, list) else tuple(items)
    if isinstance(v, dict):
        return {k: _storable(x, f"{where}.{k}") for k, x in _plain_keys(v, where).items()}
    raise ValueError(f"the extra {where!r} is a {type(v).__name__} ({v!r:.60}), which "
                     f"torch.load(weights_only=True) could not load back: store numbers, strings, "
                     f"booleans, lists, dicts or tensors (e.g. .tolist(), str(path), torch.from_numpy)")


def save(path: Path, model: torch.nn.Module, settings, /, **extra) -> Path:
    """Write ``model``'s weights, ``settings`` and ``extra`` (:func:`checked_extras`) atomically, tensors on the
    CPU; only once they load back with ``torch.load(weights_only=True)``, else ``ValueError``, nothing written."""
    weights = {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in model.state_dict().items()}
    payload = {"settings": as_dict(settings), "state_dict": weights, **checked_extras(extra)}
    buf = io.BytesIO()
    torch.save(payload, buf)
    buf.seek(0)
    try:
        torch.load(buf, map_location="cpu", weights_only=True)
    except Exception as e:  # e.g. a module's get_extra_state() returning an object
        raise ValueError(f"the checkpoint for {path} would not load back with torch.load(weights_only=True) "
                         f"({type(e).__name__}: {str(e)[:200]}); nothing was written") from e
    return atomic_write(path, lambda f: f.write(buf.getbuffer()))


def set_aside(path: Path) -> Path:
    """Rename an unreadable checkpoint to ``<path>.unreadable-<time>`` (``-2``, ``-3``... within a second; never
    deleted), so that the next run trains anew. Returns the new name."""
    path = Path(path)
    stamp = f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}"
    for i in itertools.count(1):
        new = path.with_name(stamp if i == 1 else f"{stamp}-{i}")
        if not new.exists():
            path.rename(new)
            return new


def _way_out(path: Path) -> str:
    return (f"kdlib.checkpoint.set_aside({str(path)!r}) moves it aside (renames it; nothing is "
            f"deleted) and the next run trains anew")


def _read(path: Path) -> dict:
    """The checkpoint's payload, its zip CRCs checked first; :class:`CheckpointUnreadable` if not."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
        if bad is not None:
            raise ValueError(f"its part {bad!r} fails its CRC check: the bytes changed after writing")
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
            raise ValueError("it holds no 'state_dict'")
    except PermissionError as e:
        raise PermissionError(f"checkpoint {path} cannot be read: {e.strerror}. Fix its "
                              f"permissions, or point KDLIB_CHECKPOINTS at another folder.") from e
    except Exception as e:  # truncated, flipped bytes, random bytes, empty, a text file...
        raise CheckpointUnreadable(f"checkpoint {path} is unreadable ({type(e).__name__}: {str(e)[:200]}). "
                                   f"It is a cache that kdlib wrote: {_way_out(path)}.") from e
    return payload


def load(path: Path, model: torch.nn.Module, settings) -> dict:
    """Load weights into ``model`` if the file was made with exactly ``settings``; returns the stored extras.
    :class:`CheckpointMismatch` (other settings or network) and :class:`CheckpointUnreadable` name the way out."""
    path = Path(path)
    payload = _read(path)
    stored, wanted = payload.get("settings"), as_dict(settings)
    if stored != wanted:
        keys = sorted(k for k in set(stored or {}) | set(wanted) if (stored or {}).get(k) != wanted.get(k))
        diff = ", ".join(f"{k}: file {(stored or {}).get(k)!r} vs asked {wanted.get(k)!r}" for k in keys)
        raise CheckpointMismatch(f"{path} was made with other settings ({diff}); not using it. Ask "
                                 f"for the settings it was made with, or retrain: {_way_out(path)}.")
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as e:
        raise CheckpointMismatch(
            f"{path} holds weights for another network than the one build() makes now ({str(e)[:300]}). If build() "
            f"changed on purpose, add a setting that says so (so the two get different files), or retrain: "
            f"{_way_out(path)}.") from e
    return {k: v for k, v in payload.items() if k not in ("settings", "state_dict")}


def train_or_load(name: str, settings, model: torch.nn.Module, train_fn) -> dict:
    """Load ``name`` trained with ``settings`` if its checkpoint exists, else call ``train_fn(model)`` (returns
    extras, :func:`checked_extras`, or None) and save; returns the extras with ``"path"`` and ``"loaded"`` (True
    when nothing was trained). ``name``, ``settings`` and the folder are checked before training. If saving
    fails, a warning says why and the model is kept, unsaved (``"path"`` is None)."""
    path = path_for(name, settings)
    if path.exists():
        return {**load(path, model, settings), "path": path, "loaded": True}
    folder = path.parent  # fail before any training if it cannot be written to
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        where = f"{folder} (KDLIB_CHECKPOINTS)" if os.environ.get("KDLIB_CHECKPOINTS") else str(folder)
        raise PermissionError(f"cannot write checkpoints to {where}: {e.strerror or e}. Point "
                              f"KDLIB_CHECKPOINTS at a writable folder; nothing was trained.") from e
    returned = train_fn(model)
    try:
        extras = checked_extras(returned)
        save(path, model, settings, **extras)
    except Exception as e:
        warnings.warn(f"the trained {name} could not be saved to {path} ({type(e).__name__}: {e}); "
                      f"it is returned unsaved and will be trained again next time", stacklevel=2)
        return {**(returned if isinstance(returned, dict) else {}), "path": None, "loaded": False}
    return {**extras, "path": path, "loaded": False}


def cached_model(name: str, settings, build, train_fn) -> tuple[torch.nn.Module, dict]:
    """The frozen model ``name`` made with ``settings``, loaded from its checkpoint or trained now: ``settings.seed``
    seeds the initial weights, ``build()`` makes the network and ``train_fn(model)`` trains it, returning extras
    (:func:`checked_extras`) or None. Returns ``(model, info)``: eval mode, no gradients, on
    :func:`kdlib.config.device`; ``info`` holds the extras, ``path``, ``loaded`` and ``settings``."""
    from .train import freeze  # train imports data only; keep checkpoint importable on its own
    seed_everything(as_dict(settings)["seed"])
    model = build()
    info = train_or_load(name, settings, model, train_fn)
    return freeze(model).to(config.device()), {**info, "settings": settings}
